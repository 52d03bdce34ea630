/**
 * A trivial in-memory dum-dum broadcast server used only to validate the load harness (spec §8.1):
 * HELLO/AUTHENTICATE answered blindly, every SEND_MESSAGE turned into a broadcast with a counter id,
 * frames coalesced per connection into one write per event-loop turn. No persistence, no checks.
 */
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';

interface C {
  s: Socket;
  ready: boolean;
  nick: Buffer;
  out: Buffer[];
  outLen: number;
  pending: Buffer | undefined;
}

export function startMemoryBroadcastServer(): Promise<{ port: number; close(): void }> {
  const conns = new Set<C>();
  const dirty = new Set<C>();
  let scheduled = false;
  let id = 1n << 40n;
  const flush = (): void => {
    scheduled = false;
    for (const c of dirty) {
      c.s.write(c.out.length === 1 ? c.out[0]! : Buffer.concat(c.out, c.outLen));
      c.out = [];
      c.outLen = 0;
    }
    dirty.clear();
  };
  const queue = (c: C, b: Buffer): void => {
    c.out.push(b);
    c.outLen += b.length;
    dirty.add(c);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  const server = createServer({ noDelay: true }, (s) => {
    const c: C = { s, ready: false, nick: Buffer.alloc(0), out: [], outLen: 0, pending: undefined };
    conns.add(c);
    s.on('close', () => conns.delete(c));
    s.on('error', () => undefined);
    s.on('data', (chunk: Buffer) => {
      let b = c.pending ? Buffer.concat([c.pending, chunk]) : chunk;
      c.pending = undefined;
      let off = 0;
      while (off < b.length) {
        const t = b[off]!;
        if (t === 0x00) {
          if (off + 2 > b.length) break;
          queue(c, Buffer.of(0, 0));
          off += 2;
        } else if (t === 0x02) {
          if (off + 2 > b.length || off + 2 + b[off + 1]! > b.length) break;
          c.nick = Buffer.from(b.subarray(off + 1, off + 2 + b[off + 1]!));
          c.ready = true;
          queue(c, Buffer.of(2, 1));
          off += 2 + b[off + 1]!;
        } else if (t === 0x03) {
          if (off + 2 > b.length) break;
          const cl = b[off + 1]!;
          if (off + 4 + cl > b.length) break;
          const m = b.readUInt16BE(off + 2 + cl);
          const total = 4 + cl + m;
          if (off + total > b.length) break;
          const frame = Buffer.allocUnsafe(1 + 8 + 1 + cl + c.nick.length + 2 + m);
          frame[0] = 3;
          frame.writeBigUInt64BE(id++, 1);
          b.copy(frame, 9, off + 1, off + 2 + cl);
          c.nick.copy(frame, 10 + cl);
          b.copy(frame, 10 + cl + c.nick.length, off + 2 + cl, off + total);
          for (const r of conns) if (r.ready) queue(r, frame);
          off += total;
        } else {
          s.destroy();
          return;
        }
      }
      if (off < b.length) c.pending = Buffer.from(b.subarray(off));
      b = Buffer.alloc(0);
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () => {
          for (const c of conns) c.s.destroy();
          server.close();
        },
      }),
    ),
  );
}
