/**
 * One WebSocket connection: pumps frames into the dispatcher strictly one after another, writes
 * replies in request order, holds pushed updates while a request is in progress (spec §2.8), and
 * bounds everything it buffers (spec §3.1, §5).
 *
 * Rules:
 * 1. One request at a time; the reply is written before any update frame caused while it ran.
 * 2. Outgoing frames written in the same tick are coalesced into one socket write (cork/uncork).
 * 3. Input: above `maxInboxBytes` queued, the socket is paused (TCP backpressure) until drained.
 * 4. Output: more than `maxOutbufBytes` queued (held updates + socket buffer) closes the connection
 *    1008 `slow consumer`; nothing else is affected.
 * 5. Malformed frames are charged to the rate bucket (Dispatcher); a connection that keeps sending them with
 *    the bucket overdrawn gets that frame's 415, then close 1008 `malformed flood` (logged once).
 * 6. Fairness: replies that need no backend (415, 401, 429, …) resolve in microtasks, so a pipelined
 *    burst would be answered without ever returning to the event loop; the pump yields after
 *    PUMP_SLICE_MS of such work, and every queued message counts INBOX_ITEM_OVERHEAD bytes besides
 *    its payload, so a flood of tiny frames reaches the inbox bound (and TCP backpressure) too.
 */
import type { Socket } from 'node:net';
import type { Logger } from '@hubbub/runtime';
import WebSocket from 'ws';
import type { ConnContext } from '../app/context';
import type { Dispatcher } from '../app/dispatcher';
import { ConnectionMachine } from '../protocol/machine';
import type { PerAddressRate } from '@hubbub/runtime';
import { TokenBucket } from '../protocol/rate-limit';
import type { RequestRate } from '../protocol/rate-limit';
import { decodeUtf8 } from '../protocol/request';
import { CloseCode, CloseReason, WsmErrorCode } from '../protocol/status';
import type { WsmMetrics } from './metrics';

/**
 * An update's complete WebSocket text frame (header and payload in one buffer), built once per update Buffer: the push
 * hub hands the same Buffer to every subscriber, so a fan-out to a thousand sockets frames it once and each socket
 * gets one plain write of it instead of ws's per-send framing and a two-buffer writev.
 */
const wireFrames = new WeakMap<Buffer, Buffer>();
function wireFrameOf(frame: Buffer): Buffer {
  let w = wireFrames.get(frame);
  if (w === undefined) {
    w = textFrame(frame);
    wireFrames.set(frame, w);
  }
  return w;
}

/** An unmasked, final WebSocket text frame carrying `payload` (RFC 6455 §5.2: a server never masks). */
export function textFrame(payload: Buffer): Buffer {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + n);
  out[0] = 0x81; // FIN, opcode 1 (text)
  if (n < 126) out[1] = n;
  else if (n < 65536) {
    out[1] = 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 127;
    out.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    out.writeUInt32BE(n >>> 0, 6);
  }
  payload.copy(out, head);
  return out;
}

/** The longest run of back-to-back requests before the pump lets other connections' I/O and timers run. */
const PUMP_SLICE_MS = 10;
/** What a queued message costs besides its payload (the entry, the Buffer object): a 1-byte frame is not free. */
const INBOX_ITEM_OVERHEAD = 128;

export interface ConnectionOptions {
  readonly id: string;
  readonly instanceId: string;
  readonly clientAddress: string;
  readonly ratePerS: number;
  readonly rateBurst: number;
  /** The requests of all connections from one client address (WSM_IP_RATE_PER_S); checked after the connection's. */
  readonly ipRate?: PerAddressRate;
  readonly maxOutbufBytes: number;
  readonly maxInboxBytes: number;
  readonly nowMs: () => number;
}

export interface ConnectionHooks {
  readonly dispatcher: Dispatcher;
  readonly log: Logger;
  readonly metrics: WsmMetrics;
  /** The connection ended (any reason): leave the hub, forget it. */
  readonly onClosed: (c: WsConnection, reason: string) => void;
}

export class WsConnection implements ConnContext {
  readonly id: string;
  readonly clientAddress: string;
  readonly openedAtMs: number;
  readonly machine = new ConnectionMachine();
  authenticatedOnce = false;
  lastPingAtMs: number;
  awaitingPong = false;

  private readonly bucket: RequestRate;
  /** This connection's key in `o.ipRate`. */
  private readonly ipKey: string | undefined;
  private readonly inbox: { data: Buffer; isBinary: boolean }[] = [];
  private inboxBytes = 0;
  private paused = false;
  private busy = false;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private out: (Buffer | string)[] = [];
  private flushScheduled = false;
  private seq = 0;
  private closed = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly o: ConnectionOptions,
    private readonly h: ConnectionHooks,
  ) {
    this.id = o.id;
    this.clientAddress = o.clientAddress;
    this.openedAtMs = o.nowMs();
    this.lastPingAtMs = this.openedAtMs;
    const own = new TokenBucket(o.ratePerS, o.rateBurst);
    const ip = o.ipRate;
    const ipKey = ip?.join(o.clientAddress, this.openedAtMs);
    this.ipKey = ipKey;
    // A request passes when both the connection and its address have a token; malformed frames (charge) count
    // against the connection only.
    this.bucket =
      ip && ipKey !== undefined
        ? { take: (nowMs) => own.take(nowMs) && ip.wait(ipKey, nowMs) === 0, charge: (nowMs) => own.charge(nowMs) }
        : own;
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) =>
      this.onMessage(toBuffer(data), isBinary),
    );
    ws.on('pong', () => {
      this.awaitingPong = false;
    });
    ws.on('close', (code: number) => this.finish(closeReason(code)));
    ws.on('error', (err: Error & { code?: string }) => {
      const code = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? WsmErrorCode.FrameTooLarge : err.code;
      h.log.warn({ conn: this.id, code, err: err.message }, 'websocket error');
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  nextClientKey(): string {
    return `${this.o.instanceId}.${this.id}.${++this.seq}`;
  }

  /** PushTarget: an update frame for this connection. */
  push(frame: Buffer): void {
    if (this.closed) return;
    if (this.busy) {
      this.held.push(frame);
      this.heldBytes += frame.length;
      this.checkOutbuf();
      return;
    }
    this.write(frame);
  }

  /** PushTarget: the subscription ended with the final 401 frame. */
  subscriptionEnded(): void {
    this.machine.apply('token_ended');
  }

  setSubscribed(userId: string | undefined): void {
    if (userId === undefined) this.machine.apply('unsubscribe');
    else this.machine.apply('subscribe', userId);
  }

  ping(nowMs: number): void {
    if (this.closed) return;
    this.awaitingPong = true;
    this.lastPingAtMs = nowMs;
    try {
      this.ws.ping();
    } catch {
      /* the socket is closing */
    }
  }

  /** Closes with a WebSocket close code; `hard` drops the socket without the closing handshake. */
  close(code: number, reason: string, metricReason: string, hard = false): void {
    if (this.closed) return;
    this.finish(metricReason);
    if (hard) this.ws.terminate();
    else this.ws.close(code, reason);
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    this.inbox.push({ data, isBinary });
    this.inboxBytes += data.length + INBOX_ITEM_OVERHEAD;
    if (this.inboxBytes > this.o.maxInboxBytes && !this.paused) {
      this.paused = true;
      this.ws.pause();
    }
    if (!this.busy) void this.pump();
  }

  private async pump(): Promise<void> {
    this.busy = true;
    let sliceStart = performance.now();
    try {
      while (this.inbox.length > 0 && !this.closed) {
        if (performance.now() - sliceStart >= PUMP_SLICE_MS) {
          // A pipelined burst answered without backend calls never left the microtask queue: 100 000
          // one-byte frames (700 kB) stalled every other connection for seconds (spec §5).
          await new Promise<void>((r) => setImmediate(r));
          sliceStart = performance.now();
          if (this.closed) break;
        }
        const item = this.inbox.shift()!;
        this.inboxBytes -= item.data.length + INBOX_ITEM_OVERHEAD;
        const text = item.isBinary ? decodeUtf8(item.data) : item.data.toString('utf8');
        const r = await this.h.dispatcher.handle(this, text, this.bucket);
        if (r.authenticated) this.authenticatedOnce = true;
        if (this.closed) break;
        this.h.metrics.request(r.label, r.code);
        // Per-request lines only at debug (spec §3.9); never the frame itself (it may carry secrets).
        if (this.h.log.isLevelEnabled('debug')) {
          this.h.log.debug({ conn: this.id, type: r.label, status: r.code, code: r.error }, 'request');
        }
        this.write(r.text);
        // Updates that arrived while the request ran follow its reply (spec §2.8).
        if (this.held.length > 0) {
          const held = this.held;
          this.held = [];
          this.heldBytes = 0;
          for (const f of held) this.write(f);
        }
        if (r.flood) {
          // The 415 just written goes out before the close frame.
          this.h.log.warn(
            { conn: this.id, addr: this.clientAddress, code: WsmErrorCode.MalformedFlood },
            'malformed frames beyond the request rate; connection closed',
          );
          this.flush();
          this.close(CloseCode.PolicyViolation, CloseReason.malformedFlood, 'malformed_flood');
          break;
        }
        if (this.paused && this.inboxBytes <= this.o.maxInboxBytes / 2) {
          this.paused = false;
          this.ws.resume();
        }
      }
    } finally {
      this.busy = false;
    }
  }

  private write(data: Buffer | string): void {
    if (this.closed) return;
    this.out.push(data);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.closed) {
      this.out = [];
      return;
    }
    const frames = this.out;
    this.out = [];
    const socket = (this.ws as unknown as { _socket?: Socket })._socket;
    // Updates (Buffers) go out pre-framed; replies (strings) through ws. Both write to the socket at once (no
    // extension is negotiated — perMessageDeflate is off — so ws never queues a send), so their order is kept; with
    // an extension everything would go through ws.
    const raw = socket !== undefined && this.ws.readyState === WebSocket.OPEN && this.ws.extensions === '';
    socket?.cork();
    try {
      for (const f of frames) {
        if (raw && typeof f !== 'string') socket.write(wireFrameOf(f));
        else this.ws.send(f, { binary: false });
      }
    } finally {
      socket?.uncork();
    }
    this.checkOutbuf();
  }

  private checkOutbuf(): void {
    if (this.ws.bufferedAmount + this.heldBytes > this.o.maxOutbufBytes) {
      this.h.log.warn({ conn: this.id, code: WsmErrorCode.SlowConsumer }, 'slow consumer closed');
      this.held = [];
      this.heldBytes = 0;
      this.close(CloseCode.PolicyViolation, CloseReason.slowConsumer, 'slow_consumer');
    }
  }

  private finish(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.ipKey !== undefined) this.o.ipRate?.leave(this.ipKey);
    this.h.metrics.closed(reason);
    this.machine.apply('close');
    this.inbox.length = 0;
    this.held = [];
    this.h.onClosed(this, reason);
  }
}

function closeReason(code: number): string {
  switch (code) {
    case 1009:
      return 'frame_too_large';
    case 1002:
    case 1007:
      return 'protocol_error';
    case 1006:
      return 'abnormal';
    default:
      return 'peer_close';
  }
}

function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
