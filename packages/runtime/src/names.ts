/**
 * The one case-folding function for every name comparison on the platform (usernames, guest nicks,
 * channel slugs): Unicode NFKC, then lowercase. Presence and identity both use it.
 */
export function foldName(name: string): string {
  return name.normalize('NFKC').toLowerCase();
}

const INVISIBLE = /\p{Default_Ignorable_Code_Point}/u;

/**
 * Whether a display name has a character that renders as nothing (Unicode Default_Ignorable_Code_Point: zero-width
 * space and joiners, soft hyphen, word joiner, BOM, Hangul fillers, variation selectors, …). `foldName` keeps them, so
 * "alice" followed by a zero-width space is another name that looks exactly like "alice": guest names with them are
 * refused. (Emoji joined by U+200D are refused with them.)
 */
export function hasInvisibleCharacter(name: string): boolean {
  return INVISIBLE.test(name);
}
