/**
 * JSON text byte-identical to Python's `json.dumps` defaults (spec §2.3): `", "` and `": "`
 * separators, `ensure_ascii` escaping (everything outside U+0020..U+007E, lowercase hex, surrogate
 * pairs for astral characters), `/` not escaped. Only the value kinds MTP replies contain exist here:
 * strings, integers, booleans, null, arrays of those, and objects written by the caller in a fixed
 * key order.
 */

const SAFE_RE = /^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/;
const SHORT: Record<number, string> = {
  0x22: '\\"',
  0x5c: '\\\\',
  0x0a: '\\n',
  0x0d: '\\r',
  0x09: '\\t',
  0x08: '\\b',
  0x0c: '\\f',
};

/** A Python `json.dumps` string literal. */
export function pyStr(s: string): string {
  if (SAFE_RE.test(s)) return '"' + s + '"';
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e && c !== 0x22 && c !== 0x5c) continue;
    out += s.slice(start, i);
    out += SHORT[c] ?? '\\u' + c.toString(16).padStart(4, '0');
    start = i + 1;
  }
  return out + s.slice(start) + '"';
}

/** A nullable string. */
export function pyStrOrNull(s: string | null | undefined): string {
  return s === null || s === undefined ? 'null' : pyStr(s);
}

/** A nullable integer (always plain decimal). */
export function pyInt(n: number | null | undefined): string {
  if (n === null || n === undefined) return 'null';
  return Number.isInteger(n) ? String(n) : String(Math.trunc(n));
}

export function pyBool(b: boolean | null | undefined): string {
  return b === null || b === undefined ? 'null' : b ? 'true' : 'false';
}

/** A nullable list, each item encoded by `item`. */
export function pyList<T>(items: readonly T[] | null | undefined, item: (t: T) => string): string {
  if (items === null || items === undefined) return 'null';
  if (items.length === 0) return '[]';
  let out = '[';
  for (let i = 0; i < items.length; i++) {
    if (i > 0) out += ', ';
    out += item(items[i] as T);
  }
  return out + ']';
}

/**
 * Python's `repr(float)`: the shortest round-trip digits, fixed notation for exponents -4..15 (with
 * a trailing `.0` when integral), otherwise `d.ddde+XX`.
 */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  const [mant, expStr] = Math.abs(x).toExponential().split('e') as [string, string];
  const exp = Number(expStr);
  const digits = mant.replace('.', '');
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? digits[0] + '.' + digits.slice(1) : digits;
    const e = Math.abs(exp).toString().padStart(2, '0');
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${e}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  if (digits.length <= exp + 1) return `${sign}${digits}${'0'.repeat(exp + 1 - digits.length)}.0`;
  return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
}
