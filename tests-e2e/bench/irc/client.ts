/**
 * The load generator's dum-dum connection: one socket, a handshake, then a byte scanner that counts
 * broadcasts (0x03 frames) without decoding strings. Per receiver it checks that the ids of every
 * sender strictly increase (so a count of exactly N·M means no loss and no duplicate). Nicks are
 * `b<index>`, so the sender index is read from the nick bytes.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';

export class BenchConn {
  received = 0;
  orderErrors = 0;
  closed = false;
  /** Called for every broadcast when set (pingpong). */
  onBroadcast: ((sender: number) => void) | undefined;
  private pending: Buffer | undefined;
  private readonly lastHi: Uint32Array;
  private readonly lastLo: Uint32Array;

  private constructor(
    readonly socket: Socket,
    readonly index: number,
    senders: number,
  ) {
    this.lastHi = new Uint32Array(senders);
    this.lastLo = new Uint32Array(senders);
  }

  static async open(port: number, index: number, senders: number, host = '127.0.0.1'): Promise<BenchConn> {
    const s = connect({ port, host, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    const c = new BenchConn(s, index, senders);
    await c.handshake();
    s.on('data', (b: Buffer) => c.scan(b));
    s.on('close', () => (c.closed = true));
    s.on('error', () => (c.closed = true));
    return c;
  }

  private async handshake(): Promise<void> {
    const nick = Buffer.from(`b${this.index}`);
    const got: Buffer[] = [];
    let len = 0;
    const need = (n: number): Promise<Buffer> =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (len >= n) {
            const all = Buffer.concat(got);
            got.length = 0;
            if (all.length > n) got.push(all.subarray(n));
            len -= n;
            this.socket.off('data', onData);
            resolve(all.subarray(0, n));
          }
        };
        const onData = (b: Buffer): void => {
          got.push(b);
          len += b.length;
          check();
        };
        this.socket.on('data', onData);
        this.socket.once('close', () => reject(new Error(`connection ${this.index} closed during the handshake`)));
        check();
      });
    this.socket.write(Buffer.of(0x00, 0x02));
    const hello = await need(2);
    if (hello[0] !== 0 || hello[1] !== 0) throw new Error(`unexpected HELLO ${hello.toString('hex')}`);
    this.socket.write(Buffer.concat([Buffer.of(0x02, nick.length), nick]));
    const ack = await need(2);
    if (ack[0] !== 2 || ack[1] !== 1) throw new Error(`AUTHENTICATE b${this.index} refused: ${ack.toString('hex')}`);
  }

  private scan(chunk: Buffer): void {
    let b = chunk;
    if (this.pending) {
      b = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    const end = b.length;
    let off = 0;
    while (off < end) {
      const t = b[off]!;
      if (t !== 0x03) {
        // Only broadcasts are expected after the handshake.
        this.orderErrors++;
        this.socket.destroy();
        return;
      }
      if (off + 10 > end) break;
      const c = b[off + 9]!;
      if (off + 11 + c > end) break;
      const nOff = off + 10 + c;
      const n = b[nOff]!;
      if (nOff + 3 + n > end) break;
      const m = (b[nOff + 1 + n]! << 8) | b[nOff + 2 + n]!;
      const total = nOff + 3 + n + m - off;
      if (off + total > end) break;
      // sender index from the nick "b<digits>"
      let sender = 0;
      for (let i = nOff + 2; i < nOff + 1 + n; i++) sender = sender * 10 + (b[i]! - 48);
      const hi = b.readUInt32BE(off + 1);
      const lo = b.readUInt32BE(off + 5);
      const ph = this.lastHi[sender]!;
      if (hi < ph || (hi === ph && lo <= this.lastLo[sender]!)) this.orderErrors++;
      this.lastHi[sender] = hi;
      this.lastLo[sender] = lo;
      this.received++;
      this.onBroadcast?.(sender);
      off += total;
    }
    if (off < end) this.pending = b.subarray(off);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** M SEND_MESSAGE frames of `size` content bytes into `channel`, as one buffer. */
export function sendFrames(channel: string, size: number, count: number, tag: number): Buffer {
  const ch = Buffer.from(channel);
  const frame = Buffer.alloc(1 + 1 + ch.length + 2 + size, 0x61);
  frame[0] = 0x03;
  frame[1] = ch.length;
  ch.copy(frame, 2);
  frame.writeUInt16BE(size, 2 + ch.length);
  const body = 4 + ch.length;
  const tagText = Buffer.from(`${tag}:`);
  tagText.copy(frame, body, 0, Math.min(size, tagText.length));
  const out = Buffer.alloc(frame.length * count);
  for (let i = 0; i < count; i++) frame.copy(out, i * frame.length);
  return out;
}
