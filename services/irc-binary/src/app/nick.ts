/** §3.4 row 1: what makes a nick invalid before any lookup. */

/** White space at either end. */
const EDGE_SPACE = /^\s|\s$/u;

/** C0/C1 controls (U+0000..U+001F, U+007F..U+009F) and bidirectional controls. */
function isForbidden(c: number): boolean {
  return (
    c <= 0x1f ||
    (c >= 0x7f && c <= 0x9f) ||
    c === 0x061c ||
    c === 0x200e ||
    c === 0x200f ||
    (c >= 0x202a && c <= 0x202e) ||
    (c >= 0x2066 && c <= 0x2069)
  );
}

export function isValidNick(nick: string): boolean {
  if (nick.length === 0 || EDGE_SPACE.test(nick)) return false;
  for (let i = 0; i < nick.length; i++) if (isForbidden(nick.charCodeAt(i))) return false;
  return true;
}

/** Splits `name#token` at the first `#` (§3.4 row 2), or undefined when there is none. */
export function splitToken(nick: string): { name: string; token: string } | undefined {
  const at = nick.indexOf('#');
  return at < 0 ? undefined : { name: nick.slice(0, at), token: nick.slice(at + 1) };
}
