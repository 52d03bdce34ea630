/**
 * Username rules (one place): `^[A-Za-z][A-Za-z0-9_-]{1,23}$`, i.e. 2-24 ASCII characters. That
 * fits irc-binary's 32-byte nick (a 19-byte name leaves room for `#` + a 12-character app
 * password), p2p's bundle name rule and ssh-frontend's registration form, and never contains `#`.
 * Names compare by `foldName` (NFKC, then lowercase); reserved names can never be registered.
 */
import { foldName } from '@hubbub/runtime';

export const USERNAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{1,23}$/;
/** `foldName` of a name that follows USERNAME_PATTERN: the only values `users.username_fold` ever holds. */
export const FOLDED_USERNAME_PATTERN = /^[a-z][a-z0-9_-]{1,23}$/;
export const MIN_USERNAME_LENGTH = 2;
export const MAX_USERNAME_LENGTH = 24;

/** Folded names nobody may register (impersonation of staff or the system, door keywords). */
export const RESERVED_USERNAMES: ReadonlySet<string> = new Set([
  'root',
  'admin',
  'administrator',
  'sysop',
  'sysadmin',
  'system',
  'guest',
  'guests',
  'new',
  'god',
  'operator',
  'moderator',
  'mod',
  'staff',
  'support',
  'help',
  'info',
  'security',
  'abuse',
  'postmaster',
  'hostmaster',
  'webmaster',
  'nobody',
  'anonymous',
  'everyone',
  'all',
  'here',
  'server',
  'service',
  'hubbub',
  'identity',
  'null',
  'undefined',
  'deleted',
  'user-deleted',
]);

export type UsernameCheck =
  { ok: true; folded: string } | { ok: false; reason: 'USERNAME_INVALID' | 'USERNAME_RESERVED'; message: string };

export const USERNAME_RULE_TEXT = 'Username must be 2-24 characters: letters, digits, _ or -, starting with a letter';

export function checkUsername(name: string): UsernameCheck {
  if (!USERNAME_PATTERN.test(name)) return { ok: false, reason: 'USERNAME_INVALID', message: USERNAME_RULE_TEXT };
  const folded = foldName(name);
  if (RESERVED_USERNAMES.has(folded))
    return { ok: false, reason: 'USERNAME_RESERVED', message: 'That name is reserved' };
  return { ok: true, folded };
}

export function isReservedName(folded: string): boolean {
  return RESERVED_USERNAMES.has(folded);
}

export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 128;
/** Longest secret accepted at all (bytes), before any hashing. */
export const MAX_SECRET_BYTES = 1024;

export type PasswordCheck = { ok: true } | { ok: false; message: string };

/** Password rules: 8-128 characters, not the username (case-insensitively). */
export function checkPassword(password: string, username: string): PasswordCheck {
  const chars = [...password].length;
  if (chars < MIN_PASSWORD_LENGTH)
    return { ok: false, message: `Password must be at least ${MIN_PASSWORD_LENGTH} characters` };
  if (chars > MAX_PASSWORD_LENGTH || Buffer.byteLength(password) > MAX_SECRET_BYTES)
    return { ok: false, message: `Password must be at most ${MAX_PASSWORD_LENGTH} characters` };
  if (foldName(password) === foldName(username)) return { ok: false, message: 'Password must not be your username' };
  return { ok: true };
}

export const MAX_EMAIL_LENGTH = 64;
/** Loose check: one `@` with text on both sides, no spaces or controls, at most 64 characters. */
export function isValidEmail(email: string): boolean {
  return email.length <= MAX_EMAIL_LENGTH && /^[^\s@\p{Cc}]+@[^\s@\p{Cc}]+$/u.test(email);
}

/** Display names, bios, avatars: bounded, no control or bidi-control characters in one-line fields. */
export const MAX_DISPLAY_NAME_LENGTH = 64;
export const MAX_BIO_LENGTH = 1024;
export const MAX_AVATAR_LENGTH = 2048;
// eslint-disable-next-line no-control-regex
const UNSAFE_LINE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
// eslint-disable-next-line no-control-regex
const UNSAFE_TEXT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

export function isSafeLine(s: string): boolean {
  return !UNSAFE_LINE.test(s);
}
export function isSafeText(s: string): boolean {
  return !UNSAFE_TEXT.test(s);
}
