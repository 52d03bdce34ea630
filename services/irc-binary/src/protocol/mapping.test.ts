import { decodeSnowflake, fitsWireName, toWireContent, toWireNick } from './mapping';
import { utf8Length } from './utf8';

const bytes = (s: string): string => Buffer.from(s, 'utf8').toString('hex');

describe('snowflakes (§2.7)', () => {
  it('C3 decodes 0x0d102e51ffbeb000 into ms 1795393470455, worker 107, seq 0', () => {
    expect(decodeSnowflake(0x0d102e51ffbeb000n)).toEqual({ ms: 1795393470455, worker: 107, seq: 0 });
    expect(new Date(1795393470455).toISOString()).toBe('2026-11-23T00:24:30.455Z');
  });
});

describe('nick mapping (§3.6)', () => {
  it('C8 cuts a 20 × "é" display name (40 bytes) to 16 × "é" (32 bytes)', () => {
    expect(toWireNick('é'.repeat(20))).toBe('é'.repeat(16));
  });
  it('cuts on a code-point boundary, never inside a 4-byte character', () => {
    const n = 'a'.repeat(30) + '😀';
    expect(toWireNick(n)).toBe('a'.repeat(30));
    expect(toWireNick('a'.repeat(28) + '😀')).toBe('a'.repeat(28) + '😀');
  });
  it('keeps short names unchanged', () => {
    expect(toWireNick('Zoë')).toBe('Zoë');
    expect(toWireNick('n'.repeat(32))).toBe('n'.repeat(32));
  });
});

describe('content mapping (§3.6)', () => {
  it('C9 cuts 2000 ASCII bytes to the first 1021 bytes + e2 80 a6', () => {
    const out = toWireContent('a'.repeat(2000), false);
    expect(utf8Length(out)).toBe(1024);
    expect(bytes(out)).toBe('61'.repeat(1021) + 'e280a6');
  });
  it('C10 cuts 1023 ASCII bytes + "€" (1026 bytes) to the first 1021 bytes + "…"', () => {
    const out = toWireContent('a'.repeat(1023) + '€', false);
    expect(bytes(out)).toBe('61'.repeat(1021) + 'e280a6');
  });
  it('does not split a multi-byte character at the cut', () => {
    const out = toWireContent('a'.repeat(1020) + '€€', false);
    expect(bytes(out)).toBe('61'.repeat(1020) + 'e280a6');
  });
  it('C11 keeps exactly 1024 bytes unchanged; empty text with an attachment becomes [attachment]', () => {
    const exact = 'b'.repeat(1022) + 'é';
    expect(toWireContent(exact, false)).toBe(exact);
    expect(toWireContent('', true)).toBe('[attachment]');
    expect(toWireContent('', false)).toBe('');
    expect(toWireContent('see file', true)).toBe('see file');
  });
});

describe('fitsWireName', () => {
  it('accepts at most 32 bytes', () => {
    expect(fitsWireName('x'.repeat(32))).toBe(true);
    expect(fitsWireName('x'.repeat(33))).toBe(false);
    expect(fitsWireName('€'.repeat(10) + 'ab')).toBe(true);
    expect(fitsWireName('€'.repeat(11))).toBe(false);
  });
});
