/**
 * The dum-dum-irc v2 codec (spec §2), sans-IO. Readers parse one frame at an offset and report
 * "need more data" by returning undefined; encoders size the frame first and write it straight into
 * one buffer. Two streaming decoders wrap the readers: `FrameDecoder` (client → server frames, what
 * the server reads) and `ServerFrameDecoder` (server → client frames, what clients read). Both
 * implement `StreamDecoder` from @hubbub/testing.
 *
 * Rules enforced here (§3.2):
 * 1. An incomplete frame is never an error; it is re-read when more bytes arrive.
 * 2. Errors are raised as early as the bytes allow: an unknown type byte at once, a varchar length
 *    over its maximum as soon as its prefix is read, bad UTF-8 when the varchar is complete.
 * 3. Nothing is allocated in proportion to a length field before the bytes have arrived.
 */
import {
  ClientType,
  MAX_CHANNEL_NAME_BYTES,
  MAX_CLIENT_FRAME_BYTES,
  MAX_CONTENT_BYTES,
  MAX_LIST_CHANNELS_BYTES,
  MAX_LIST_MESSAGES_BYTES,
  MAX_NICK_BYTES,
  ServerType,
  isClientType,
  isServerType,
} from './constants';
import { ErrorCode, localError, remoteError } from './errors';
import type { ClientFrame, ServerFrame, WireMessage } from './events';
import { decodeUtf8, utf8Length, writeUtf8 } from './utf8';

// ---------------------------------------------------------------------------------------------
// reading

/** Result slot of the readers: the frame's total byte length (valid when a frame was returned). */
export interface ReadResult {
  length: number;
}

function readVarchar(
  b: Uint8Array,
  p: number,
  end: number,
  prefixBytes: 1 | 2,
  max: number,
  what: string,
  out: { value: string; next: number },
): boolean {
  if (p + prefixBytes > end) return false;
  const len = prefixBytes === 1 ? b[p]! : (b[p]! << 8) | b[p + 1]!;
  if (len > max) throw remoteError(ErrorCode.Length, `${what} length ${len} exceeds ${max}`);
  const start = p + prefixBytes;
  if (start + len > end) return false;
  const s = decodeUtf8(b, start, start + len);
  if (s === undefined) throw remoteError(ErrorCode.BadUtf8, `${what} is not valid UTF-8`);
  out.value = s;
  out.next = start + len;
  return true;
}

function readU64(b: Uint8Array, p: number): bigint {
  const hi = ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  const lo = ((b[p + 4]! << 24) | (b[p + 5]! << 16) | (b[p + 6]! << 8) | b[p + 7]!) >>> 0;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

const slot = { value: '', next: 0 };

/**
 * Reads one client → server frame starting at `b[off]` (off < end). Returns undefined when more
 * bytes are needed. `allowed` is checked right after the type byte (spec §3.2 rule 2, used by the
 * state machine); it returns the error to raise, or undefined.
 * @throws ProtocolError (side 'remote')
 */
export function readClientFrame(
  b: Uint8Array,
  off: number,
  end: number,
  result: ReadResult,
  allowed?: (type: ClientType) => ErrorCode | undefined,
): ClientFrame | undefined {
  const type = b[off]!;
  if (!isClientType(type)) throw remoteError(ErrorCode.UnknownType, `unknown client frame type 0x${hex2(type)}`);
  if (allowed) {
    const err = allowed(type);
    if (err !== undefined) throw remoteError(err, `frame type 0x${hex2(type)} not allowed in this state`);
  }
  switch (type) {
    case ClientType.Hello: {
      if (off + 2 > end) return undefined;
      result.length = 2;
      return { type: 'Hello', version: b[off + 1]! };
    }
    case ClientType.Authenticate: {
      if (!readVarchar(b, off + 1, end, 1, MAX_NICK_BYTES, 'nick', slot)) return undefined;
      result.length = slot.next - off;
      return { type: 'Authenticate', nick: slot.value };
    }
    case ClientType.SendMessage: {
      if (!readVarchar(b, off + 1, end, 1, MAX_CHANNEL_NAME_BYTES, 'channel name', slot)) return undefined;
      const channel = slot.value;
      if (!readVarchar(b, slot.next, end, 2, MAX_CONTENT_BYTES, 'content', slot)) return undefined;
      result.length = slot.next - off;
      return { type: 'SendMessage', channel, content: slot.value };
    }
    case ClientType.ListChannels: {
      result.length = 1;
      return { type: 'ListChannels' };
    }
    case ClientType.ListMessages: {
      if (!readVarchar(b, off + 1, end, 1, MAX_CHANNEL_NAME_BYTES, 'channel name', slot)) return undefined;
      const p = slot.next;
      if (p + 16 > end) return undefined;
      result.length = p + 16 - off;
      return { type: 'ListMessages', channel: slot.value, before: readU64(b, p), after: readU64(b, p + 8) };
    }
  }
  return undefined;
}

function readRecord(b: Uint8Array, p: number, end: number, out: { next: number }): WireMessage | undefined {
  if (p + 8 > end) return undefined;
  const id = readU64(b, p);
  if (!readVarchar(b, p + 8, end, 1, MAX_CHANNEL_NAME_BYTES, 'channel name', slot)) return undefined;
  const channel = slot.value;
  if (!readVarchar(b, slot.next, end, 1, MAX_NICK_BYTES, 'nick', slot)) return undefined;
  const nick = slot.value;
  if (!readVarchar(b, slot.next, end, 2, MAX_CONTENT_BYTES, 'content', slot)) return undefined;
  out.next = slot.next;
  return { id, channel, nick, content: slot.value };
}

/**
 * Reads one server → client frame (what a client does). Stricter than the original client: list
 * bodies must hold whole items only (§2.4), else IRCB_ERR_LENGTH.
 * @throws ProtocolError (side 'remote')
 */
export function readServerFrame(b: Uint8Array, off: number, end: number, result: ReadResult): ServerFrame | undefined {
  const type = b[off]!;
  if (!isServerType(type)) throw remoteError(ErrorCode.UnknownType, `unknown server frame type 0x${hex2(type)}`);
  switch (type) {
    case ServerType.Hello:
    case ServerType.IncompatibleVersion:
    case ServerType.AcknowledgeAuthentication: {
      if (off + 2 > end) return undefined;
      result.length = 2;
      const v = b[off + 1]!;
      if (type === ServerType.Hello) return { type: 'Hello', usingSsl: v !== 0 };
      if (type === ServerType.IncompatibleVersion) return { type: 'IncompatibleVersion', version: v };
      return { type: 'AcknowledgeAuthentication', success: v !== 0 };
    }
    case ServerType.SendMessage: {
      const next = { next: 0 };
      const message = readRecord(b, off + 1, end, next);
      if (!message) return undefined;
      result.length = next.next - off;
      return { type: 'SendMessage', message };
    }
    case ServerType.ListChannels: {
      if (off + 3 > end) return undefined;
      const n = (b[off + 1]! << 8) | b[off + 2]!;
      const start = off + 3;
      if (start + n > end) return undefined;
      const channels: string[] = [];
      let p = start;
      while (p < start + n) {
        if (!readVarchar(b, p, start + n, 1, MAX_CHANNEL_NAME_BYTES, 'channel name', slot))
          throw remoteError(ErrorCode.Length, 'LIST_CHANNELS body ends inside an item');
        channels.push(slot.value);
        p = slot.next;
      }
      result.length = start + n - off;
      return { type: 'ListChannels', channels };
    }
    case ServerType.ListMessages: {
      if (off + 4 > end) return undefined;
      const n = (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!;
      const start = off + 4;
      if (start + n > end) return undefined;
      const messages: WireMessage[] = [];
      const next = { next: start };
      while (next.next < start + n) {
        const m = readRecord(b, next.next, start + n, next);
        if (!m) throw remoteError(ErrorCode.Length, 'LIST_MESSAGES body ends inside a record');
        messages.push(m);
      }
      result.length = start + n - off;
      return { type: 'ListMessages', messages };
    }
  }
  return undefined;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

// ---------------------------------------------------------------------------------------------
// streaming decoders

/**
 * Accumulates bytes and returns complete frames. Holds at most one incomplete frame: for
 * client frames that is at most MAX_CLIENT_FRAME_BYTES (§3.2 rule 1).
 */
abstract class ByteQueue {
  protected buf: Uint8Array = new Uint8Array(0);
  protected off = 0;

  /** Bytes received but not yet part of a complete frame. */
  get bufferedBytes(): number {
    return this.buf.length - this.off;
  }

  protected append(chunk: Uint8Array): void {
    if (this.off === this.buf.length) {
      this.buf = chunk;
      this.off = 0;
      return;
    }
    const rest = this.buf.length - this.off;
    const merged = new Uint8Array(rest + chunk.length);
    merged.set(this.buf.subarray(this.off), 0);
    merged.set(chunk, rest);
    this.buf = merged;
    this.off = 0;
  }
}

/** Streaming decoder of client → server frames, without state checks (see machine.ts for those). */
export class FrameDecoder extends ByteQueue {
  private readonly res: ReadResult = { length: 0 };

  /** @throws ProtocolError */
  push(chunk: Uint8Array): ClientFrame[] {
    this.append(chunk);
    const out: ClientFrame[] = [];
    while (this.off < this.buf.length) {
      const f = readClientFrame(this.buf, this.off, this.buf.length, this.res);
      if (!f) break;
      this.off += this.res.length;
      out.push(f);
    }
    if (this.bufferedBytes > MAX_CLIENT_FRAME_BYTES) {
      // Unreachable by construction (every incomplete frame is shorter); kept as the stated bound.
      throw localError(`decoder holds ${this.bufferedBytes} bytes of one frame`);
    }
    return out;
  }
}

/** Streaming decoder of server → client frames (clients, tests, the benchmark). */
export class ServerFrameDecoder extends ByteQueue {
  private readonly res: ReadResult = { length: 0 };

  /** @throws ProtocolError */
  push(chunk: Uint8Array): ServerFrame[] {
    this.append(chunk);
    const out: ServerFrame[] = [];
    while (this.off < this.buf.length) {
      const f = readServerFrame(this.buf, this.off, this.buf.length, this.res);
      if (!f) break;
      this.off += this.res.length;
      out.push(f);
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// encoding

function checkedLength(s: string, max: number, what: string): number {
  const n = utf8Length(s);
  if (n > max) throw localError(`${what} is ${n} bytes, over ${max}; map it before encoding`);
  return n;
}

function writeU64(b: Uint8Array, p: number, v: bigint): void {
  if (v < 0n || v > 0xffffffffffffffffn) throw localError(`u64 out of range: ${v}`);
  const hi = Number(v >> 32n);
  const lo = Number(v & 0xffffffffn);
  b[p] = hi >>> 24;
  b[p + 1] = (hi >>> 16) & 0xff;
  b[p + 2] = (hi >>> 8) & 0xff;
  b[p + 3] = hi & 0xff;
  b[p + 4] = lo >>> 24;
  b[p + 5] = (lo >>> 16) & 0xff;
  b[p + 6] = (lo >>> 8) & 0xff;
  b[p + 7] = lo & 0xff;
}

/** Byte lengths of one record's strings, computed once and reused by the writer. */
interface RecordSizes {
  c: number;
  n: number;
  m: number;
}

function recordSizes(m: WireMessage): RecordSizes {
  return {
    c: checkedLength(m.channel, MAX_CHANNEL_NAME_BYTES, 'channel name'),
    n: checkedLength(m.nick, MAX_NICK_BYTES, 'nick'),
    m: checkedLength(m.content, MAX_CONTENT_BYTES, 'content'),
  };
}

function recordBytes(s: RecordSizes): number {
  return 8 + 1 + s.c + 1 + s.n + 2 + s.m;
}

function writeRecord(b: Uint8Array, p: number, m: WireMessage, s: RecordSizes): number {
  writeU64(b, p, m.id);
  p += 8;
  b[p++] = s.c;
  p += writeUtf8(m.channel, b, p);
  b[p++] = s.n;
  p += writeUtf8(m.nick, b, p);
  b[p++] = s.m >>> 8;
  b[p++] = s.m & 0xff;
  p += writeUtf8(m.content, b, p);
  return p;
}

/**
 * Encodes a broadcast (`03` + Message record). The result is meant to be encoded once per message
 * and shared by every recipient (§3.6).
 * @throws ProtocolError (side 'local') when a field is over its limit
 */
export function encodeMessageFrame(m: WireMessage): Uint8Array {
  const s = recordSizes(m);
  const b = new Uint8Array(1 + recordBytes(s));
  b[0] = ServerType.SendMessage;
  writeRecord(b, 1, m, s);
  return b;
}

/**
 * Encodes any server → client frame. LIST_CHANNELS is cut after the last whole name that fits in
 * 65 535 bytes (§2.4).
 * @throws ProtocolError (side 'local') when a field is over its limit
 */
export function encodeServerFrame(f: ServerFrame): Uint8Array {
  switch (f.type) {
    case 'Hello':
      return Uint8Array.of(ServerType.Hello, f.usingSsl ? 1 : 0);
    case 'IncompatibleVersion':
      return Uint8Array.of(ServerType.IncompatibleVersion, f.version & 0xff);
    case 'AcknowledgeAuthentication':
      return Uint8Array.of(ServerType.AcknowledgeAuthentication, f.success ? 1 : 0);
    case 'SendMessage':
      return encodeMessageFrame(f.message);
    case 'ListChannels': {
      const lens: number[] = [];
      let total = 0;
      for (const c of f.channels) {
        const n = checkedLength(c, MAX_CHANNEL_NAME_BYTES, 'channel name');
        if (total + 1 + n > MAX_LIST_CHANNELS_BYTES) break;
        lens.push(n);
        total += 1 + n;
      }
      const b = new Uint8Array(3 + total);
      b[0] = ServerType.ListChannels;
      b[1] = total >>> 8;
      b[2] = total & 0xff;
      let p = 3;
      for (let i = 0; i < lens.length; i++) {
        b[p++] = lens[i]!;
        p += writeUtf8(f.channels[i]!, b, p);
      }
      return b;
    }
    case 'ListMessages': {
      const sizes = f.messages.map(recordSizes);
      let total = 0;
      for (const s of sizes) total += recordBytes(s);
      if (total > MAX_LIST_MESSAGES_BYTES)
        throw localError(`LIST_MESSAGES body of ${total} bytes is over the u24 limit`);
      const b = new Uint8Array(4 + total);
      b[0] = ServerType.ListMessages;
      b[1] = total >>> 16;
      b[2] = (total >>> 8) & 0xff;
      b[3] = total & 0xff;
      let p = 4;
      for (let i = 0; i < sizes.length; i++) p = writeRecord(b, p, f.messages[i]!, sizes[i]!);
      return b;
    }
  }
}

/**
 * Encodes a client → server frame (clients, tests, the benchmark).
 * @throws ProtocolError (side 'local') when a field is over its limit
 */
export function encodeClientFrame(f: ClientFrame): Uint8Array {
  switch (f.type) {
    case 'Hello':
      return Uint8Array.of(ClientType.Hello, f.version & 0xff);
    case 'Authenticate': {
      const n = checkedLength(f.nick, MAX_NICK_BYTES, 'nick');
      const b = new Uint8Array(2 + n);
      b[0] = ClientType.Authenticate;
      b[1] = n;
      writeUtf8(f.nick, b, 2);
      return b;
    }
    case 'SendMessage': {
      const c = checkedLength(f.channel, MAX_CHANNEL_NAME_BYTES, 'channel name');
      const m = checkedLength(f.content, MAX_CONTENT_BYTES, 'content');
      const b = new Uint8Array(1 + 1 + c + 2 + m);
      b[0] = ClientType.SendMessage;
      b[1] = c;
      let p = 2 + writeUtf8(f.channel, b, 2);
      b[p++] = m >>> 8;
      b[p++] = m & 0xff;
      writeUtf8(f.content, b, p);
      return b;
    }
    case 'ListChannels':
      return Uint8Array.of(ClientType.ListChannels);
    case 'ListMessages': {
      const c = checkedLength(f.channel, MAX_CHANNEL_NAME_BYTES, 'channel name');
      const b = new Uint8Array(1 + 1 + c + 16);
      b[0] = ClientType.ListMessages;
      b[1] = c;
      const p = 2 + writeUtf8(f.channel, b, 2);
      writeU64(b, p, f.before);
      writeU64(b, p + 8, f.after);
      return b;
    }
  }
}
