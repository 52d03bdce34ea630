/**
 * Property tests: random and mutated byte streams, fed in random chunks, never make the codec or
 * the machine throw anything but ProtocolError, and never make them hold more than their limits.
 */
import { hex, randomChunks, seededRandom as prng } from '@hubbub/testing';
import { clientVectors, serverVectors } from '../../test/vectors/load';
import { MAX_CLIENT_FRAME_BYTES } from './constants';
import { isProtocolError } from './errors';
import { FrameDecoder, ServerFrameDecoder } from './frames';
import { NEED_DATA, PAUSED, ServerConnection, State } from './machine';

const VALID_CLIENT = clientVectors().map((v) => hex(v.hex));
const VALID_SERVER = serverVectors().map((v) => hex(v.hex));

function randomStream(rnd: () => number, pool: Uint8Array[]): Uint8Array {
  const parts: number[] = [];
  const kind = rnd();
  if (kind < 0.3) {
    const n = Math.floor(rnd() * 300);
    for (let i = 0; i < n; i++) parts.push(Math.floor(rnd() * 256));
  } else {
    // Valid frames back to back, then mutated: flipped, inserted, deleted and truncated bytes.
    const n = 1 + Math.floor(rnd() * 8);
    for (let i = 0; i < n; i++) parts.push(...pool[Math.floor(rnd() * pool.length)]!);
    const muts = Math.floor(rnd() * 4);
    for (let m = 0; m < muts && parts.length > 0; m++) {
      const at = Math.floor(rnd() * parts.length);
      const op = rnd();
      if (op < 0.4) parts[at] = Math.floor(rnd() * 256);
      else if (op < 0.6) parts.splice(at, 0, Math.floor(rnd() * 256));
      else if (op < 0.8) parts.splice(at, 1);
      else parts[at] = [0x00, 0x20, 0x21, 0x7f, 0x80, 0xff, 0x04, 0x03][Math.floor(rnd() * 8)]!;
    }
  }
  return Uint8Array.from(parts);
}

const RUNS = 3_000;

describe('decoder fuzz', () => {
  it('FrameDecoder throws only ProtocolError and buffers at most one incomplete frame', () => {
    const rnd = prng(0x1234);
    for (let run = 0; run < RUNS; run++) {
      const d = new FrameDecoder();
      try {
        for (const chunk of randomChunks(randomStream(rnd, VALID_CLIENT), rnd)) {
          d.push(chunk);
          expect(d.bufferedBytes).toBeLessThan(MAX_CLIENT_FRAME_BYTES);
        }
      } catch (e) {
        if (!isProtocolError(e)) throw e;
        expect(e.side).toBe('remote');
      }
    }
  });

  it('ServerFrameDecoder throws only ProtocolError', () => {
    const rnd = prng(0x5678);
    for (let run = 0; run < RUNS; run++) {
      const d = new ServerFrameDecoder();
      try {
        for (const chunk of randomChunks(randomStream(rnd, VALID_SERVER), rnd)) d.push(chunk);
      } catch (e) {
        if (!isProtocolError(e)) throw e;
      }
    }
  });

  it('ServerConnection, driven like the transport, throws only remote ProtocolErrors and stays bounded', () => {
    const rnd = prng(0x9abc);
    const handshake = [hex('00 02'), hex('02 05 61 6c 69 63 65')];
    for (let run = 0; run < RUNS; run++) {
      const c = new ServerConnection({
        nowMs: 0,
        helloTimeoutMs: 10_000,
        tlsHandshakeTimeoutMs: 10_000,
        authTimeoutMs: 60_000,
        maxAuthFailures: 3,
      });
      // Half of the runs start from a valid handshake so that READY is fuzzed too.
      const prefix = rnd() < 0.5 ? handshake : [];
      const stream = [...prefix, ...randomChunks(randomStream(rnd, VALID_CLIENT), rnd)];
      try {
        for (const chunk of stream) {
          c.receive(chunk);
          for (;;) {
            const ev = c.nextEvent();
            if (ev === NEED_DATA) break;
            if (ev === PAUSED) {
              if (c.state === State.AwaitingServerHello) c.send({ type: 'Hello', usingSsl: false });
              else if (c.state === State.AwaitingVersionReply) c.send({ type: 'IncompatibleVersion', version: 2 });
              else if (c.state === State.Authenticating)
                c.send({ type: 'AcknowledgeAuthentication', success: rnd() < 0.5 });
              else break;
              continue;
            }
          }
          if (c.state === State.Closed) break;
          // One incomplete frame at most, once everything parseable was parsed.
          expect(c.bufferedBytes).toBeLessThan(MAX_CLIENT_FRAME_BYTES);
        }
      } catch (e) {
        if (!isProtocolError(e)) throw e;
        expect(e.side).toBe('remote');
        expect(c.state).toBe(State.Closed);
      }
    }
  });
});
