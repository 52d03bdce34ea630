/**
 * One TCP connection: pumps socket bytes into the protocol machine, hands decoded frames to the
 * application session, writes replies through a per-turn coalesced output queue, and enforces the
 * transport limits (§5): handshake timers, bounded output (slow reader), read backpressure at
 * IRCB_MAX_PENDING_FRAMES, and the TLS upgrade of §2.8.
 *
 * Rules:
 * 1. Every byte to the peer goes through `queue()` (one coalesced write per turn), except the
 *    server HELLO `00 01`, which is written straight to the raw socket right before the socket is
 *    wrapped in TLS, in the same event-loop turn (§2.8 step 2).
 * 2. A protocol error closes at once: queued output is discarded and nothing more is sent (§5.1).
 * 3. The socket is read only while the machine may parse (not PAUSED) and the session's queue is
 *    below the pending-frames limit.
 * 4. Output backpressure: in READY, no further frame is parsed while the connection's unsent output
 *    is at or over half of IRCB_MAX_OUTBUF_BYTES; parsing resumes when written bytes drain below it.
 *    One tiny request can have a large reply (1 byte of LIST_CHANNELS → up to 64 KiB), so without
 *    this a single read of requests could queue unbounded output in one event-loop turn. (Before
 *    READY every reply is 2 bytes, no larger than its request; reading there never waits for output,
 *    so no plaintext can sit unread in the socket when the TLS switch happens.)
 * 5. The peer finishing its sending (FIN) closes the connection at once (§3.9: nothing more is sent),
 *    but in READY the SEND_MESSAGE frames it sent before still take effect (D13: frames are handled in
 *    order, whatever the segmentation): the complete frames still buffered go to the session, which
 *    takes them as its queue makes room (the IRCB_MAX_PENDING_FRAMES bound still holds).
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { SecureContext } from 'node:tls';
import type { Logger } from '@hubbub/runtime';
import type { Door, Session } from '../app/door';
import type { ConnectionHandle } from '../app/ports';
import { ErrorCode, isProtocolError, remoteError } from '../protocol/errors';
import type { ProtocolError } from '../protocol/errors';
import type { ClientFrame, ServerFrame } from '../protocol/events';
import { readClientFrame } from '../protocol/frames';
import { ALLOWED_CLIENT_TYPES, NEED_DATA, PAUSED, ServerConnection, State } from '../protocol/machine';
import { cancelFlush, scheduleFlush } from './flush-scheduler';
import { clientCertFingerprint } from './tls';

export interface ConnectionOptions {
  readonly helloTimeoutMs: number;
  readonly tlsHandshakeTimeoutMs: number;
  readonly authTimeoutMs: number;
  readonly maxAuthFailures: number;
  readonly maxOutbufBytes: number;
  readonly maxPendingFrames: number;
  readonly secureContext: SecureContext | undefined;
}

/** Close codes that are not protocol errors. */
export const CloseCode = {
  Peer: 'IRCB_CLOSE_PEER',
  Shutdown: 'IRCB_CLOSE_SHUTDOWN',
} as const;

const KEEPALIVE_MS = 60_000;
const GRACEFUL_END_MS = 2_000;

export class Connection implements ConnectionHandle {
  readonly machine: ServerConnection;
  readonly session: Session;
  private socket: Socket;
  private tls: TLSSocket | undefined;
  private fingerprint: string | undefined;
  private out: Uint8Array[] = [];
  private outBytes = 0;
  private open = true;
  private paused = false;
  private pumping = false;
  private pumpAgain = false;
  /** Rule 4: parsing stopped because unsent output reached `outputPauseBytes`. */
  private waitingForOutput = false;
  private readonly outputPauseBytes: number;
  private timer: NodeJS.Timeout | undefined;
  private timerAt: number | undefined;
  /** Rule 5: the connection stays counted (limits, metrics) until the posts sent before the FIN are handled. */
  private countedUntil: Promise<void> | undefined;
  private readonly onData = (chunk: Buffer): void => this.receive(chunk);
  /** Write callback (Rule 4): resumes parsing once the unsent output fell below the pause mark. */
  private readonly onWritten = (): void => {
    if (this.waitingForOutput && this.open && this.unsentBytes < this.outputPauseBytes) {
      this.waitingForOutput = false;
      this.pump();
    }
  };

  constructor(
    private readonly raw: Socket,
    readonly id: string,
    readonly peerAddress: string,
    readonly log: Logger,
    private readonly door: Door,
    private readonly o: ConnectionOptions,
    private readonly onClosed: (c: Connection, code: string) => void,
  ) {
    this.socket = raw;
    this.outputPauseBytes = Math.max(1, Math.floor(o.maxOutbufBytes / 2));
    raw.setNoDelay(true);
    raw.setKeepAlive(true, KEEPALIVE_MS);
    this.machine = new ServerConnection({
      nowMs: Date.now(),
      helloTimeoutMs: o.helloTimeoutMs,
      tlsHandshakeTimeoutMs: o.tlsHandshakeTimeoutMs,
      authTimeoutMs: o.authTimeoutMs,
      maxAuthFailures: o.maxAuthFailures,
    });
    this.session = door.openSession(this);
    this.attach(raw);
    this.armTimer();
  }

  get isOpen(): boolean {
    return this.open;
  }

  get isTls(): boolean {
    return this.tls !== undefined;
  }

  get clientCertFingerprint(): string | undefined {
    return this.fingerprint;
  }

  get state(): State {
    return this.machine.state;
  }

  /** Unsent output: queued in this turn plus what the socket has not handed to the kernel. */
  get unsentBytes(): number {
    return this.outBytes + this.socket.writableLength;
  }

  // ---- ConnectionHandle (called by the application) ----

  acknowledge(success: boolean, countFailure: boolean): void {
    if (!this.open) return;
    const bytes = this.machine.send({ type: 'AcknowledgeAuthentication', success }, { countFailure });
    this.queue(bytes);
    if (this.machine.state === State.Closed) {
      // IRCB_ERR_AUTH_ATTEMPTS: the last 02 00 goes out, then the connection closes.
      this.closeAfterFlush(this.machine.error ?? remoteError(ErrorCode.AuthAttempts, 'too many refusals'));
      return;
    }
    this.armTimer();
    this.pump();
  }

  send(frame: ServerFrame): void {
    if (!this.open || this.machine.state !== State.Ready) return;
    let bytes: Uint8Array;
    try {
      bytes = this.machine.send(frame);
    } catch (e) {
      this.fail(e);
      return;
    }
    this.queue(bytes);
  }

  enqueueShared(bytes: Uint8Array): void {
    if (this.open && this.machine.state === State.Ready) this.queue(bytes);
  }

  resumeReading(): void {
    if (this.open && this.paused) this.pump();
  }

  // ---- output ----

  /**
   * Queues bytes for this turn's write. The slow-reader limit (§5.1, D8) counts output the kernel
   * has not accepted: it applies once the socket already holds unsent bytes (the peer is not
   * reading), so one large burst to a healthy reader, which the kernel takes at once, is fine.
   */
  private queue(bytes: Uint8Array): void {
    this.out.push(bytes);
    this.outBytes += bytes.length;
    const held = this.socket.writableLength;
    if (held > 0 && this.outBytes + held > this.o.maxOutbufBytes) {
      this.slowReader();
      return;
    }
    scheduleFlush(this);
  }

  /** Writes everything queued in this turn as one buffer (called by the flush scheduler). */
  flush(): void {
    if (!this.open || this.out.length === 0) return;
    const buf = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    this.socket.write(buf, this.onWritten);
    if (this.socket.writableLength > this.o.maxOutbufBytes) this.slowReader();
  }

  private slowReader(): void {
    this.fail(remoteError(ErrorCode.SlowReader, `unsent output over ${this.o.maxOutbufBytes} bytes`));
  }

  // ---- input ----

  private attach(s: Socket): void {
    s.on('data', this.onData);
    s.on('end', () => this.peerEnded());
    s.on('close', () => this.close(CloseCode.Peer));
    s.on('error', (err: Error & { code?: string }) => {
      if (this.machine.state === State.TlsHandshake) this.fail(this.machine.tlsFailed(err.code ?? err.message));
      else {
        this.log.debug({ err: err.message }, 'socket error');
        this.close(CloseCode.Peer);
      }
    });
  }

  private receive(chunk: Buffer): void {
    if (!this.open) return;
    if (this.timerAt !== undefined) {
      const expired = this.machine.tick(Date.now());
      if (expired) {
        this.fail(expired);
        return;
      }
    }
    this.machine.receive(chunk);
    this.pump();
  }

  /** Parses and dispatches frames until the machine needs data or must wait (Rule 3). */
  private pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        this.pumpOnce();
      } while (this.pumpAgain && this.open);
    } finally {
      this.pumping = false;
    }
  }

  private pumpOnce(): void {
    while (this.open) {
      if (this.session.pendingFrames >= this.o.maxPendingFrames) {
        this.pauseSocket();
        return;
      }
      if (this.machine.state === State.Ready && this.unsentBytes >= this.outputPauseBytes) {
        // Rule 4: the flush scheduled for the queued bytes (or the write in progress) calls onWritten.
        this.waitingForOutput = true;
        this.pauseSocket();
        return;
      }
      let ev;
      try {
        ev = this.machine.nextEvent();
      } catch (e) {
        this.fail(e);
        return;
      }
      if (ev === NEED_DATA) {
        this.resumeSocket();
        return;
      }
      if (ev === PAUSED) {
        this.pauseSocket();
        return;
      }
      switch (ev.type) {
        case 'Hello':
          if (this.machine.state === State.AwaitingVersionReply) {
            this.queue(this.machine.send({ type: 'IncompatibleVersion', version: 2 }));
            break;
          }
          if (this.o.secureContext) {
            this.startTls(this.o.secureContext);
            return;
          }
          this.queue(this.machine.send({ type: 'Hello', usingSsl: false }));
          this.armTimer();
          break;
        case 'Authenticate':
          this.pauseSocket();
          this.session.onAuthenticate(ev.nick);
          return;
        default:
          this.session.onFrame(ev);
          break;
      }
    }
  }

  private pauseSocket(): void {
    if (!this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private resumeSocket(): void {
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  /** Rule 5: the peer sent FIN. */
  private peerEnded(): void {
    if (!this.open) return;
    const rest = this.machine.state === State.Ready ? this.machine.takeUnparsed() : undefined;
    if (rest && rest.length > 0)
      this.countedUntil = this.session.drainAfterClose(
        postsIn(rest, (e) =>
          this.log.warn(
            { code: isProtocolError(e) ? e.code : ErrorCode.State, nick: this.session.effectiveNick },
            'bad frame before the peer closed; the frames after it are ignored',
          ),
        ),
      );
    this.close(CloseCode.Peer);
  }

  // ---- TLS (§2.8) ----

  private startTls(ctx: SecureContext): void {
    const hello = this.machine.send({ type: 'Hello', usingSsl: true });
    // Rule 1: whatever is queued (an earlier 01 02) and the 00 01 leave now, in plaintext, in order.
    const pending = this.out;
    this.out = [];
    this.outBytes = 0;
    cancelFlush(this);
    this.raw.write(pending.length === 0 ? hello : Buffer.concat([...pending, hello]));
    this.raw.removeListener('data', this.onData);
    this.raw.removeAllListeners('end');
    const t = new TLSSocket(this.raw, {
      isServer: true,
      secureContext: ctx,
      requestCert: true,
      rejectUnauthorized: false,
    });
    this.tls = t;
    this.socket = t;
    this.attach(t);
    t.once('secure', () => {
      if (!this.open) return;
      this.fingerprint = clientCertFingerprint(t);
      this.log.debug({ protocol: t.getProtocol(), clientCert: this.fingerprint !== undefined }, 'TLS established');
      this.machine.tlsEstablished();
      this.armTimer();
      this.pump();
    });
    this.armTimer();
  }

  // ---- timers ----

  private armTimer(): void {
    const at = this.machine.nextDeadlineMs;
    if (at === this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = at;
    if (at === undefined) return;
    this.timer = setTimeout(() => this.onTimer(), Math.max(0, at - Date.now()));
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerAt = undefined;
    if (!this.open) return;
    const expired = this.machine.tick(Date.now());
    if (expired) this.fail(expired);
    else this.armTimer();
  }

  // ---- closing ----

  /** Protocol error: log its code, close without sending anything (§3.2 rule 5). */
  fail(e: unknown): void {
    if (!this.open) return;
    const err: ProtocolError = isProtocolError(e)
      ? e
      : remoteError(ErrorCode.State, `unexpected: ${e instanceof Error ? e.message : String(e)}`);
    if (!isProtocolError(e))
      this.log.error({ err: e, code: 'IRCB_ERR_INTERNAL' }, 'unexpected error; closing connection');
    this.log.warn(
      { code: err.code, side: err.side, nick: this.session.effectiveNick, why: err.message },
      'connection closed on error',
    );
    this.close(err.code);
  }

  private closeAfterFlush(err: ProtocolError): void {
    if (!this.open) return;
    this.log.warn({ code: err.code, nick: this.session.effectiveNick }, 'connection closed on error');
    const pending = this.out;
    this.out = [];
    this.outBytes = 0;
    const s = this.socket;
    if (pending.length > 0) s.write(Buffer.concat(pending));
    this.close(err.code, true);
  }

  /** Closes once; `graceful` lets already written bytes reach the peer before FIN. */
  close(code: string, graceful = false): void {
    if (!this.open) return;
    this.open = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    cancelFlush(this);
    this.out = [];
    this.outBytes = 0;
    this.machine.close();
    this.session.onClose();
    const s = this.socket;
    s.removeListener('data', this.onData);
    if (graceful) {
      s.end();
      setTimeout(() => s.destroy(), GRACEFUL_END_MS).unref();
    } else s.destroy();
    if (!graceful && s !== this.raw) this.raw.destroy();
    if (this.countedUntil) void this.countedUntil.then(() => this.onClosed(this, code));
    else this.onClosed(this, code);
  }
}

/**
 * The SEND_MESSAGE frames among complete READY frames in `b` (Rule 5), parsed lazily. Stops at an
 * incomplete frame, or at a protocol error (reported to `onError`).
 */
function* postsIn(
  b: Uint8Array,
  onError: (e: unknown) => void,
): Generator<Extract<ClientFrame, { type: 'SendMessage' }>, void, undefined> {
  const allowed = ALLOWED_CLIENT_TYPES[State.Ready];
  const res = { length: 0 };
  let off = 0;
  while (off < b.length) {
    let f: ClientFrame | undefined;
    try {
      f = readClientFrame(b, off, b.length, res, (t) => (allowed.has(t) ? undefined : ErrorCode.State));
    } catch (e) {
      onError(e);
      return;
    }
    if (!f) return;
    off += res.length;
    if (f.type === 'SendMessage') yield f;
  }
}
