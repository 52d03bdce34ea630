/**
 * The one case-folding function for every name comparison on the platform (usernames, guest nicks,
 * channel slugs): Unicode NFKC, then lowercase. Presence and identity both use it.
 */
export function foldName(name: string): string {
  return name.normalize('NFKC').toLowerCase();
}
