/**
 * UTF-8 helpers for varchars (§2.2). Lengths count UTF-8 bytes, never characters. Decoding is
 * strict (WHATWG fatal decoder: no overlong forms, no surrogates, nothing above U+10FFFF); the BOM
 * is kept so that bytes round-trip exactly.
 */

const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

/** Strictly decodes `b[start, end)`; returns undefined when the bytes are not valid UTF-8. */
export function decodeUtf8(b: Uint8Array, start: number, end: number): string | undefined {
  if (start === end) return '';
  // ASCII fast path: most nicks, channel names and chat lines are ASCII.
  let ascii = true;
  for (let i = start; i < end; i++) {
    if (b[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii && end - start <= 64) return String.fromCharCode.apply(null, b.subarray(start, end) as unknown as number[]);
  try {
    return strictDecoder.decode(b.subarray(start, end));
  } catch {
    return undefined;
  }
}

/**
 * UTF-8 byte length of `s` as TextEncoder would write it (a lone surrogate becomes U+FFFD, 3 bytes).
 */
export function utf8Length(s: string): number {
  let n = 0;
  const len = s.length;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < len) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/**
 * Writes `s` at `b[offset]` and returns the bytes written. The caller has sized the buffer with
 * utf8Length(s).
 */
export function writeUtf8(s: string, b: Uint8Array, offset: number): number {
  const len = s.length;
  // ASCII fast path, falls back to the encoder at the first non-ASCII code unit.
  let i = 0;
  for (; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) break;
    b[offset + i] = c;
  }
  if (i === len) return len;
  const r = encoder.encodeInto(s.slice(i), b.subarray(offset + i));
  return i + r.written;
}

/**
 * The longest prefix of `s` whose UTF-8 encoding is at most `maxBytes`, ending at a code-point
 * boundary, together with its byte length.
 */
export function utf8Prefix(s: string, maxBytes: number): { text: string; bytes: number } {
  let n = 0;
  const len = s.length;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    let w: number;
    let units = 1;
    if (c < 0x80) w = 1;
    else if (c < 0x800) w = 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < len && isLowSurrogate(s.charCodeAt(i + 1))) {
      w = 4;
      units = 2;
    } else w = 3;
    if (n + w > maxBytes) return { text: s.slice(0, i), bytes: n };
    n += w;
    i += units - 1;
  }
  return { text: s, bytes: n };
}

function isLowSurrogate(d: number): boolean {
  return d >= 0xdc00 && d <= 0xdfff;
}
