import { expectVector, feedThreeWays, hex } from '@hubbub/testing';
import { clientVectors, errorVectors, serverVectors } from '../../test/vectors/load';
import { MAX_LIST_CHANNELS_BYTES } from './constants';
import { isProtocolError } from './errors';
import { FrameDecoder, ServerFrameDecoder, encodeClientFrame, encodeMessageFrame, encodeServerFrame } from './frames';

const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('FrameDecoder (client → server)', () => {
  for (const v of clientVectors()) {
    it(`decodes ${v.name} whole, byte by byte and with a trailing 04`, () => {
      const c = { bytes: hex(v.hex), events: v.frames, trailing: hex('04').subarray(0, 0) };
      if (v.frames.length === 1) {
        // The trailing byte `04` is a complete LIST_CHANNELS, so feed a lone prefix of SEND_MESSAGE
        // for the bufferedBytes check and check the `04` separately below.
        expectVector(expect, () => new FrameDecoder(), { ...c, trailing: hex('03') });
      } else {
        const runs = feedThreeWays(() => new FrameDecoder(), { ...c, trailing: hex('03') });
        for (const r of runs) expect(r.events).toEqual(v.frames);
      }
      // §7.1 C1: followed by a trailing 04, that byte is the start of the next frame.
      const d = new FrameDecoder();
      const bytes = hex(v.hex + '04');
      expect(d.push(bytes)).toEqual([...v.frames, { type: 'ListChannels' }]);
    });
    it(`re-encodes ${v.name} exactly`, () => {
      expect(v.frames.map((f) => toHex(encodeClientFrame(f))).join('')).toBe(v.hex.replace(/\s/g, ''));
    });
  }
});

describe('encodeServerFrame / ServerFrameDecoder (server → client)', () => {
  for (const v of serverVectors()) {
    it(`encodes ${v.name} exactly`, () => {
      expect(toHex(encodeServerFrame(v.frame))).toBe(v.hex.replace(/\s/g, ''));
    });
    it(`decodes ${v.name} whole, byte by byte and with a trailing 00`, () => {
      expectVector(expect, () => new ServerFrameDecoder(), {
        bytes: hex(v.hex),
        events: [v.frame],
        trailing: hex('00'),
      });
    });
  }
  it('encodes a broadcast once into the same bytes as the generic encoder', () => {
    const m = { id: 0x0d102e51ffbeb000n, channel: 'general', nick: 'alice', content: 'hi' };
    expect(toHex(encodeMessageFrame(m))).toBe(toHex(encodeServerFrame({ type: 'SendMessage', message: m })));
  });
  it('cuts LIST_CHANNELS after the last whole name that fits in 65 535 bytes', () => {
    const names = Array.from({ length: 3000 }, (_, i) => `channel-name-number-${String(i).padStart(6, '0')}`); // 26 bytes + 1 prefix byte each
    const b = encodeServerFrame({ type: 'ListChannels', channels: names });
    const body = (b[1]! << 8) | b[2]!;
    expect(body).toBe(Math.floor(MAX_LIST_CHANNELS_BYTES / 27) * 27);
    expect(b.length).toBe(3 + body);
    const [f] = new ServerFrameDecoder().push(b);
    expect(f).toEqual({ type: 'ListChannels', channels: names.slice(0, body / 27) });
  });
  it('refuses to encode a varchar over its limit (side local)', () => {
    const tooLong = () => encodeServerFrame({ type: 'ListChannels', channels: ['x'.repeat(33)] });
    expect(tooLong).toThrow(expect.objectContaining({ code: 'IRCB_ERR_LOCAL_MISUSE', side: 'local' }));
    const euro = () => encodeClientFrame({ type: 'Authenticate', nick: '€'.repeat(11) });
    expect(euro).toThrow(expect.objectContaining({ side: 'local' }));
  });
});

describe('decoder errors', () => {
  for (const v of errorVectors()) {
    const make = (): { push(b: Uint8Array): unknown[] } =>
      v.direction === 'c2s' ? new FrameDecoder() : new ServerFrameDecoder();
    const catchPush = (d: { push(b: Uint8Array): unknown[] }, b: Uint8Array): unknown => {
      try {
        d.push(b);
        return undefined;
      } catch (e) {
        return e;
      }
    };
    it(`rejects ${v.name} with ${v.code} (wire: ${v.wireCode})`, () => {
      const bytes = hex(v.hex);
      const e = catchPush(make(), bytes);
      expect(isProtocolError(e)).toBe(true);
      expect(e).toMatchObject({ code: v.code, side: 'remote', wireCode: v.wireCode });
    });
    it(`detects ${v.name} after exactly ${v.failAt} bytes when fed byte by byte`, () => {
      const bytes = hex(v.hex);
      const d = make();
      let frames = 0;
      for (let i = 0; i < bytes.length; i++) {
        let got: unknown[];
        try {
          got = d.push(bytes.subarray(i, i + 1));
        } catch (e) {
          expect(e).toMatchObject({ code: v.code });
          expect(i + 1).toBe(v.failAt);
          expect(frames).toBe(v.framesBefore ?? 0);
          return;
        }
        frames += got.length;
      }
      throw new Error('no error raised');
    });
  }
});
