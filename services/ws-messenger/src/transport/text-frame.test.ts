import WebSocket from 'ws';
import { textFrame } from './connection';

/** ws's own framing of a server text frame (its Sender; not in @types/ws). */
const wsFrame = (payload: Buffer): Buffer =>
  Buffer.concat(
    (
      WebSocket as unknown as {
        Sender: { frame(d: Buffer, o: Record<string, unknown>): Buffer[] };
      }
    ).Sender.frame(payload, { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: true }),
  );

describe('textFrame', () => {
  it.each([0, 1, 125, 126, 127, 65535, 65536, 70000])(
    'frames a %i-byte payload exactly as ws does (header lengths 2, 4 and 10)',
    (n) => {
      const payload = Buffer.alloc(n, 'x');
      expect(textFrame(payload).equals(wsFrame(payload))).toBe(true);
    },
  );
});
