import type { StreamDecoder } from './index';
import { expectVector, feedThreeWays, hex, randomChunks } from './index';

/** A toy length-prefixed decoder: [len:u8][bytes…]. */
class LenDecoder implements StreamDecoder<string> {
  private buf = Buffer.alloc(0);
  get bufferedBytes(): number {
    return this.buf.length;
  }
  push(chunk: Uint8Array): string[] {
    this.buf = Buffer.concat([this.buf, chunk]);
    const out: string[] = [];
    while (this.buf.length >= 1 && this.buf.length >= 1 + this.buf[0]!) {
      out.push(this.buf.subarray(1, 1 + this.buf[0]!).toString());
      this.buf = this.buf.subarray(1 + this.buf[0]!);
    }
    return out;
  }
}

describe('expectVector', () => {
  it('feeds whole, byte by byte and with trailing bytes', () => {
    expectVector(expect, () => new LenDecoder(), {
      bytes: hex('03 61 62 63'),
      events: ['abc'],
      trailing: hex('05 78'),
    });
  });

  it('notices a decoder that emits early or leaves bytes behind', () => {
    const res = feedThreeWays(() => new LenDecoder(), { bytes: hex('02 61 62 00'), events: ['ab'] });
    // The trailing 00 is a complete empty frame here, so the decoder yields an extra event.
    expect(res.map((r) => r.events)).toEqual([
      ['ab', ''],
      ['ab', ''],
      ['ab', '', ''],
    ]);
  });

  it('rejects bad hex and chunks randomly', () => {
    expect(() => hex('0')).toThrow();
    const bytes = Uint8Array.from({ length: 100 }, (_, i) => i);
    const chunks = randomChunks(bytes);
    expect(Buffer.concat(chunks)).toEqual(Buffer.from(bytes));
  });
});
