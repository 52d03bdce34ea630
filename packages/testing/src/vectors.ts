/**
 * Wire-vector checks in the shape of h11's `tr()` (HOUSE-STYLE example 1): the same bytes are fed
 * whole, one byte at a time (no event may appear before the last byte), and followed by trailing
 * bytes (which must stay buffered, unconsumed).
 */
export interface StreamDecoder<E> {
  /** Feeds bytes; returns the complete events they finish. */
  push(chunk: Uint8Array): E[];
  /** Bytes received but not yet part of a complete event. */
  readonly bufferedBytes: number;
}

export interface VectorCase<E> {
  readonly bytes: Uint8Array;
  readonly events: readonly E[];
  /** Bytes appended in the trailing-bytes run; must be an incomplete prefix for the decoder. */
  readonly trailing?: Uint8Array;
}

export function hex(s: string): Uint8Array {
  const clean = s.replace(/[\s:]/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) throw new Error(`bad hex: ${s}`);
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}

/**
 * Runs the three feeds and returns the events of each, so callers assert with their own matcher:
 * `for (const r of feedThreeWays(make, c)) expect(r.events).toEqual(c.events)`.
 */
export function feedThreeWays<E>(
  make: () => StreamDecoder<E>,
  c: VectorCase<E>,
): { mode: 'whole' | 'byte-by-byte' | 'trailing'; events: E[]; bufferedBytes: number; earlyEvents: number }[] {
  const whole = make();
  const wholeEvents = whole.push(c.bytes);

  const bytewise = make();
  const byteEvents: E[] = [];
  let earlyEvents = 0;
  for (let i = 0; i < c.bytes.length; i++) {
    const got = bytewise.push(c.bytes.subarray(i, i + 1));
    if (i < c.bytes.length - 1 && c.events.length === 1) earlyEvents += got.length;
    byteEvents.push(...got);
  }

  const trailing = c.trailing ?? Uint8Array.of(0x00);
  const withTrail = make();
  const buf = new Uint8Array(c.bytes.length + trailing.length);
  buf.set(c.bytes, 0);
  buf.set(trailing, c.bytes.length);
  const trailEvents = withTrail.push(buf);

  return [
    { mode: 'whole', events: wholeEvents, bufferedBytes: whole.bufferedBytes, earlyEvents: 0 },
    { mode: 'byte-by-byte', events: byteEvents, bufferedBytes: bytewise.bufferedBytes, earlyEvents },
    { mode: 'trailing', events: trailEvents, bufferedBytes: withTrail.bufferedBytes - trailing.length, earlyEvents: 0 },
  ];
}

/** Jest-style assertion of the three feeds (pass `expect`). */
export function expectVector<E>(
  expectFn: (v: unknown) => { toEqual(x: unknown): void; toBe(x: unknown): void },
  make: () => StreamDecoder<E>,
  c: VectorCase<E>,
): void {
  for (const r of feedThreeWays(make, c)) {
    expectFn({ mode: r.mode, events: r.events }).toEqual({ mode: r.mode, events: c.events });
    expectFn({ mode: r.mode, bufferedBytes: r.bufferedBytes }).toEqual({ mode: r.mode, bufferedBytes: 0 });
    expectFn({ mode: r.mode, earlyEvents: r.earlyEvents }).toEqual({ mode: r.mode, earlyEvents: 0 });
  }
}

/** mulberry32: a small seeded PRNG for property tests, so the same cases run every time and failures reproduce. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Splits bytes into random-sized chunks (for property tests). */
export function randomChunks(bytes: Uint8Array, rnd: () => number = Math.random): Uint8Array[] {
  const out: Uint8Array[] = [];
  let i = 0;
  while (i < bytes.length) {
    const n = 1 + Math.floor(rnd() * Math.min(17, bytes.length - i));
    out.push(bytes.subarray(i, i + n));
    i += n;
  }
  return out;
}
