/**
 * A black-box dum-dum-irc v2 client for end-to-end tests and benchmarks, written from
 * ../shared/specs/irc-binary.md §2 (independent of the server's codec on purpose): it behaves like
 * the original client (HELLO v2, AUTHENTICATE, frames back to back, no pipelining before READY).
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';

export interface DdMessage {
  id: bigint;
  channel: string;
  nick: string;
  content: string;
}

export type ServerFrame =
  | { type: 'hello'; tls: boolean }
  | { type: 'incompatible'; version: number }
  | { type: 'ack'; ok: boolean }
  | { type: 'message'; message: DdMessage }
  | { type: 'channels'; channels: string[] }
  | { type: 'messages'; messages: DdMessage[] };

function str32(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > 32) throw new Error('str32 too long');
  return Buffer.concat([Buffer.of(b.length), b]);
}
function str1024(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > 1024) throw new Error('str1024 too long');
  const h = Buffer.alloc(2);
  h.writeUInt16BE(b.length);
  return Buffer.concat([h, b]);
}
function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
}

export const encode = {
  hello: (version = 2): Buffer => Buffer.of(0x00, version),
  authenticate: (nick: string): Buffer => Buffer.concat([Buffer.of(0x02), str32(nick)]),
  sendMessage: (channel: string, content: string): Buffer =>
    Buffer.concat([Buffer.of(0x03), str32(channel), str1024(content)]),
  listChannels: (): Buffer => Buffer.of(0x04),
  listMessages: (channel: string, before = 0n, after = 0n): Buffer =>
    Buffer.concat([Buffer.of(0x05), str32(channel), u64(before), u64(after)]),
};

/** Parses one Message record at `off`; returns [message, next offset] or undefined when incomplete. */
function readMessage(b: Buffer, off: number): [DdMessage, number] | undefined {
  if (b.length < off + 9) return undefined;
  const id = b.readBigUInt64BE(off);
  let p = off + 8;
  const cl = b[p]!;
  if (b.length < p + 1 + cl + 1) return undefined;
  const channel = b.toString('utf8', p + 1, p + 1 + cl);
  p += 1 + cl;
  const nl = b[p]!;
  if (b.length < p + 1 + nl + 2) return undefined;
  const nick = b.toString('utf8', p + 1, p + 1 + nl);
  p += 1 + nl;
  const ml = b.readUInt16BE(p);
  if (b.length < p + 2 + ml) return undefined;
  const content = b.toString('utf8', p + 2, p + 2 + ml);
  return [{ id, channel, nick, content }, p + 2 + ml];
}

/** Server→client decoder (bounded by the protocol's own maxima). */
export class ServerFrameDecoder {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): ServerFrame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: ServerFrame[] = [];
    for (;;) {
      const f = this.next();
      if (!f) break;
      out.push(f);
    }
    return out;
  }
  private next(): ServerFrame | undefined {
    const b = this.buf;
    if (b.length < 1) return undefined;
    const t = b[0]!;
    let frame: ServerFrame;
    let used: number;
    switch (t) {
      case 0x00:
      case 0x01:
      case 0x02: {
        if (b.length < 2) return undefined;
        frame =
          t === 0x00
            ? { type: 'hello', tls: b[1] !== 0 }
            : t === 0x01
              ? { type: 'incompatible', version: b[1]! }
              : { type: 'ack', ok: b[1] !== 0 };
        used = 2;
        break;
      }
      case 0x03: {
        const r = readMessage(b, 1);
        if (!r) return undefined;
        frame = { type: 'message', message: r[0] };
        used = r[1];
        break;
      }
      case 0x04: {
        if (b.length < 3) return undefined;
        const n = b.readUInt16BE(1);
        if (b.length < 3 + n) return undefined;
        const channels: string[] = [];
        let p = 3;
        while (p < 3 + n) {
          const l = b[p]!;
          channels.push(b.toString('utf8', p + 1, p + 1 + l));
          p += 1 + l;
        }
        frame = { type: 'channels', channels };
        used = 3 + n;
        break;
      }
      case 0x05: {
        if (b.length < 4) return undefined;
        const n = b.readUIntBE(1, 3);
        if (b.length < 4 + n) return undefined;
        const messages: DdMessage[] = [];
        let p = 4;
        while (p < 4 + n) {
          const r = readMessage(b.subarray(0, 4 + n), p);
          if (!r) throw new Error('truncated record inside LIST_MESSAGES');
          messages.push(r[0]);
          p = r[1];
        }
        frame = { type: 'messages', messages };
        used = 4 + n;
        break;
      }
      default:
        throw new Error(`unknown server frame type 0x${t.toString(16)}`);
    }
    this.buf = b.subarray(used);
    return frame;
  }
}

/** A connected, authenticated client with a frame queue. */
export class DumDumClient {
  readonly received: DdMessage[] = [];
  private readonly decoder = new ServerFrameDecoder();
  private waiters: { pred: (f: ServerFrame) => boolean; resolve: (f: ServerFrame) => void }[] = [];
  private readonly replies: ServerFrame[] = [];
  closed = false;
  onMessage?: (m: DdMessage) => void;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const f of this.decoder.push(chunk)) this.dispatch(f);
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => (this.closed = true));
  }

  private dispatch(f: ServerFrame): void {
    if (f.type === 'message') {
      this.received.push(f.message);
      this.onMessage?.(f.message);
      return;
    }
    const i = this.waiters.findIndex((w) => w.pred(f));
    if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(f);
    else this.replies.push(f);
  }

  next<T extends ServerFrame['type']>(type: T, timeoutMs = 5_000): Promise<Extract<ServerFrame, { type: T }>> {
    const i = this.replies.findIndex((f) => f.type === type);
    if (i >= 0) return Promise.resolve(this.replies.splice(i, 1)[0] as Extract<ServerFrame, { type: T }>);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${type} frame within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        pred: (f) => f.type === type,
        resolve: (f) => {
          clearTimeout(t);
          resolve(f as Extract<ServerFrame, { type: T }>);
        },
      });
    });
  }

  static async connect(port: number, nick: string, host = '127.0.0.1'): Promise<DumDumClient> {
    const socket = connect({ port, host, noDelay: true });
    await new Promise<void>((res, rej) => {
      socket.once('connect', res);
      socket.once('error', rej);
    });
    const c = new DumDumClient(socket);
    socket.write(encode.hello());
    const hello = await c.next('hello');
    if (hello.tls) throw new Error('server wants TLS; this client speaks plaintext');
    socket.write(encode.authenticate(nick));
    const ack = await c.next('ack');
    if (!ack.ok) {
      socket.destroy();
      throw new Error(`nick ${nick} refused`);
    }
    return c;
  }

  send(channel: string, content: string): void {
    this.socket.write(encode.sendMessage(channel, content));
  }

  async listChannels(): Promise<string[]> {
    this.socket.write(encode.listChannels());
    return (await this.next('channels')).channels;
  }

  async listMessages(channel: string, before = 0n, after = 0n): Promise<DdMessage[]> {
    this.socket.write(encode.listMessages(channel, before, after));
    return (await this.next('messages')).messages;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((r) => {
      this.socket.once('close', () => r());
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1_000).unref();
    });
  }
}
