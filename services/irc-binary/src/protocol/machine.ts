/**
 * The server side of one dum-dum-irc v2 connection, as a sans-IO state machine (spec §3.1–§3.2).
 *
 * Theory of operation
 * -------------------
 * Bytes go in through `receive(bytes)`; frames come out, one at a time, through `nextEvent()`,
 * which returns a ClientFrame, NEED_DATA (wait for more bytes) or PAUSED (do not read: the machine
 * waits for the application to answer). Frames the server writes go through `send(frame)`, which
 * checks them against the state and returns their bytes. Time enters only through `tick(nowMs)`.
 * There are no sockets, timers or clocks in this file.
 *
 * Rule 1: every state transition lives in TRANSITIONS below; `transition()` is the only code that
 *         assigns `state`. A (state, input) pair that is not in the table is a protocol error.
 * Rule 2: frames are parsed lazily and strictly in order: the next frame is parsed only when the
 *         application asks for it, against the state left by the complete handling of the frame
 *         before it (§3.2 rule 3). While an answer is owed (server HELLO, INCOMPATIBLE_VERSION,
 *         ACK), nothing is parsed: `nextEvent()` returns PAUSED and the transport stops reading.
 * Rule 3: the allowed client frame types of a state are derived from TRANSITIONS, and checked as
 *         soon as the type byte is read, before the body arrives (§3.2 rule 2).
 * Rule 4: a HELLO v2 with bytes already behind it is IRCB_ERR_EARLY_DATA (§3.2 rule 4, §2.8): the
 *         server must not answer it, so the TLS switch can never mix plaintext into TLS.
 * Rule 5: CLOSED is terminal. Any ProtocolError moves the machine there; `error` keeps the cause.
 *         The transport then closes without sending anything (there is no error frame, §5.1).
 * Rule 6: the machine never holds more than the bytes handed to it; the transport stops calling
 *         `receive` while `nextEvent()` says PAUSED, so the buffer stays bounded by one read.
 */
import { ClientType, PROTOCOL_VERSION } from './constants';
import type { ProtocolError } from './errors';
import { ErrorCode, isProtocolError, localError, remoteError } from './errors';
import type { ClientFrame, ServerFrame } from './events';
import { encodeServerFrame, readClientFrame } from './frames';
import type { ReadResult } from './frames';

/** §3.1 states. AWAITING_VERSION_REPLY is the short internal step between a HELLO ≠ v2 and its `01 02`. */
export const State = {
  AwaitingClientHello: 'AWAITING_CLIENT_HELLO',
  AwaitingVersionReply: 'AWAITING_VERSION_REPLY',
  AwaitingServerHello: 'AWAITING_SERVER_HELLO',
  TlsHandshake: 'TLS_HANDSHAKE',
  AwaitingAuthentication: 'AWAITING_AUTHENTICATION',
  Authenticating: 'AUTHENTICATING',
  Ready: 'READY',
  Closed: 'CLOSED',
} as const;
export type State = (typeof State)[keyof typeof State];

/** Everything that can move the machine: received frames, sent frames, TLS, timers, close. */
export type Input =
  | 'recv:Hello(v2)'
  | 'recv:Hello(other)'
  | 'recv:Authenticate'
  | 'recv:SendMessage'
  | 'recv:ListChannels'
  | 'recv:ListMessages'
  | 'send:Hello(plain)'
  | 'send:Hello(tls)'
  | 'send:IncompatibleVersion'
  | 'send:Ack(accepted)'
  | 'send:Ack(refused)'
  | 'send:Ack(refused,last)'
  | 'send:SendMessage'
  | 'send:ListChannels'
  | 'send:ListMessages'
  | 'tls:established'
  | 'timeout'
  | 'error'
  | 'close';

const S = State;

/**
 * The transition table (§3.1). 'timeout', 'error' and 'close' lead to CLOSED from every state and
 * are added below, so the table lists only the protocol's own moves.
 */
export const TRANSITIONS: Readonly<Record<State, Readonly<Partial<Record<Input, State>>>>> = {
  [S.AwaitingClientHello]: {
    'recv:Hello(v2)': S.AwaitingServerHello,
    'recv:Hello(other)': S.AwaitingVersionReply,
  },
  [S.AwaitingVersionReply]: { 'send:IncompatibleVersion': S.AwaitingClientHello },
  [S.AwaitingServerHello]: { 'send:Hello(plain)': S.AwaitingAuthentication, 'send:Hello(tls)': S.TlsHandshake },
  [S.TlsHandshake]: { 'tls:established': S.AwaitingAuthentication },
  [S.AwaitingAuthentication]: { 'recv:Authenticate': S.Authenticating },
  [S.Authenticating]: {
    'send:Ack(accepted)': S.Ready,
    'send:Ack(refused)': S.AwaitingAuthentication,
    'send:Ack(refused,last)': S.Closed,
  },
  [S.Ready]: {
    'recv:SendMessage': S.Ready,
    'recv:ListChannels': S.Ready,
    'recv:ListMessages': S.Ready,
    'send:SendMessage': S.Ready,
    'send:ListChannels': S.Ready,
    'send:ListMessages': S.Ready,
  },
  [S.Closed]: {},
};

const ALWAYS_CLOSING: ReadonlySet<Input> = new Set<Input>(['timeout', 'error', 'close']);

const RECV_INPUT_TYPE: Readonly<Partial<Record<Input, ClientType>>> = {
  'recv:Hello(v2)': ClientType.Hello,
  'recv:Hello(other)': ClientType.Hello,
  'recv:Authenticate': ClientType.Authenticate,
  'recv:SendMessage': ClientType.SendMessage,
  'recv:ListChannels': ClientType.ListChannels,
  'recv:ListMessages': ClientType.ListMessages,
};

/** Rule 3: client frame types each state accepts, derived from TRANSITIONS. */
export const ALLOWED_CLIENT_TYPES: Readonly<Record<State, ReadonlySet<number>>> = Object.fromEntries(
  Object.entries(TRANSITIONS).map(([state, row]) => [
    state,
    new Set(
      Object.keys(row)
        .map((i) => RECV_INPUT_TYPE[i as Input])
        .filter((t): t is ClientType => t !== undefined),
    ),
  ]),
) as unknown as Record<State, ReadonlySet<number>>;

/** States in which the machine owes the peer an answer and parses nothing. */
const PAUSED_STATES: ReadonlySet<State> = new Set([
  S.AwaitingVersionReply,
  S.AwaitingServerHello,
  S.TlsHandshake,
  S.Authenticating,
]);

export const NEED_DATA: unique symbol = Symbol('NEED_DATA');
export const PAUSED: unique symbol = Symbol('PAUSED');
export type NextEvent = ClientFrame | typeof NEED_DATA | typeof PAUSED;

/** Timer settings (§3.1, §5.2). */
export interface MachineOptions {
  readonly nowMs: number;
  readonly helloTimeoutMs: number;
  readonly tlsHandshakeTimeoutMs: number;
  readonly authTimeoutMs: number;
  readonly maxAuthFailures: number;
}

export interface Transition {
  readonly from: State;
  readonly input: Input;
  readonly to: State;
}

export class ServerConnection {
  private _state: State = S.AwaitingClientHello;
  private buf: Uint8Array = new Uint8Array(0);
  private off = 0;
  private readonly res: ReadResult = { length: 0 };
  private now: number;
  private helloDeadline: number | undefined;
  private tlsDeadline: number | undefined;
  private authDeadline: number | undefined;
  private _authFailures = 0;
  private _error: ProtocolError | undefined;
  /** Optional observer of every transition (tests, debug logs). */
  onTransition: ((t: Transition) => void) | undefined;

  constructor(private readonly o: MachineOptions) {
    this.now = o.nowMs;
    this.helloDeadline = o.nowMs + o.helloTimeoutMs;
  }

  get state(): State {
    return this._state;
  }

  /** The error that closed the machine, if one did. */
  get error(): ProtocolError | undefined {
    return this._error;
  }

  get authFailures(): number {
    return this._authFailures;
  }

  /** Bytes received and not yet parsed into frames. */
  get bufferedBytes(): number {
    return this.buf.length - this.off;
  }

  /** Earliest pending deadline (ms), or undefined when no timer runs (READY has none, §3.1). */
  get nextDeadlineMs(): number | undefined {
    let d: number | undefined;
    for (const x of [this.helloDeadline, this.tlsDeadline, this.authDeadline])
      if (x !== undefined && (d === undefined || x < d)) d = x;
    return d;
  }

  /** Hands received bytes to the machine. Ignored once CLOSED. */
  receive(bytes: Uint8Array): void {
    if (this._state === S.Closed || bytes.length === 0) return;
    if (this.off === this.buf.length) {
      this.buf = bytes;
      this.off = 0;
      return;
    }
    const rest = this.buf.length - this.off;
    const merged = new Uint8Array(rest + bytes.length);
    merged.set(this.buf.subarray(this.off), 0);
    merged.set(bytes, rest);
    this.buf = merged;
    this.off = 0;
  }

  /**
   * Parses the next frame, if the state allows parsing and the bytes are complete.
   * @throws ProtocolError (the machine is CLOSED afterwards)
   */
  nextEvent(): NextEvent {
    const st = this._state;
    if (PAUSED_STATES.has(st) || st === S.Closed) return PAUSED;
    if (this.off >= this.buf.length) return NEED_DATA;
    let f: ClientFrame | undefined;
    try {
      f = readClientFrame(this.buf, this.off, this.buf.length, this.res, (t) =>
        ALLOWED_CLIENT_TYPES[st].has(t) ? undefined : ErrorCode.State,
      );
    } catch (e) {
      throw this.fail(e);
    }
    if (!f) return NEED_DATA;
    this.off += this.res.length;
    if (this.off === this.buf.length) {
      this.buf = new Uint8Array(0);
      this.off = 0;
    }
    switch (f.type) {
      case 'Hello':
        if (f.version === PROTOCOL_VERSION) {
          if (this.bufferedBytes > 0)
            throw this.fail(remoteError(ErrorCode.EarlyData, `${this.bufferedBytes} bytes pipelined after HELLO`));
          this.helloDeadline = undefined;
          this.transition('recv:Hello(v2)');
        } else this.transition('recv:Hello(other)');
        break;
      case 'Authenticate':
        this.transition('recv:Authenticate');
        break;
      case 'SendMessage':
        this.transition('recv:SendMessage');
        break;
      case 'ListChannels':
        this.transition('recv:ListChannels');
        break;
      case 'ListMessages':
        this.transition('recv:ListMessages');
        break;
    }
    return f;
  }

  /**
   * Checks `frame` against the state, applies its transition and returns its bytes. An ACK
   * refusal counts toward maxAuthFailures unless `countFailure` is false (backend unavailable,
   * §3.4); the refusal that reaches the limit closes the machine with IRCB_ERR_AUTH_ATTEMPTS
   * after its bytes (the transport writes them, then closes).
   * @throws ProtocolError (side 'local') when the state does not allow the frame
   */
  send(frame: ServerFrame, opts: { countFailure?: boolean } = {}): Uint8Array {
    let input: Input;
    switch (frame.type) {
      case 'Hello':
        input = frame.usingSsl ? 'send:Hello(tls)' : 'send:Hello(plain)';
        break;
      case 'IncompatibleVersion':
        input = 'send:IncompatibleVersion';
        break;
      case 'AcknowledgeAuthentication':
        if (frame.success) input = 'send:Ack(accepted)';
        else {
          const count = opts.countFailure ?? true;
          const failures = this._authFailures + (count ? 1 : 0);
          input = failures >= this.o.maxAuthFailures ? 'send:Ack(refused,last)' : 'send:Ack(refused)';
        }
        break;
      case 'SendMessage':
        input = 'send:SendMessage';
        break;
      case 'ListChannels':
        input = 'send:ListChannels';
        break;
      case 'ListMessages':
        input = 'send:ListMessages';
        break;
    }
    if (TRANSITIONS[this._state][input] === undefined)
      throw this.fail(localError(`cannot send ${frame.type} in ${this._state}`));
    const bytes = encodeServerFrame(frame);
    switch (input) {
      case 'send:Hello(tls)':
        this.authDeadline = this.now + this.o.authTimeoutMs;
        this.tlsDeadline = this.now + this.o.tlsHandshakeTimeoutMs;
        break;
      case 'send:Hello(plain)':
        this.authDeadline = this.now + this.o.authTimeoutMs;
        break;
      case 'send:Ack(accepted)':
        this.authDeadline = undefined;
        break;
      case 'send:Ack(refused)':
      case 'send:Ack(refused,last)':
        if (opts.countFailure ?? true) this._authFailures++;
        if (input === 'send:Ack(refused,last)')
          this._error = remoteError(ErrorCode.AuthAttempts, `${this._authFailures} refused AUTHENTICATEs`);
        break;
      default:
        break;
    }
    this.transition(input);
    if (this._state === S.Closed) this.clearTimers();
    return bytes;
  }

  /** The TLS handshake finished (§2.8 step 4). */
  tlsEstablished(): void {
    if (TRANSITIONS[this._state]['tls:established'] === undefined)
      throw this.fail(localError(`TLS established in ${this._state}`));
    this.tlsDeadline = undefined;
    this.transition('tls:established');
  }

  /** Records that the TLS handshake failed (§2.8); returns the error the machine closed with. */
  tlsFailed(reason: string): ProtocolError {
    return this.fail(remoteError(ErrorCode.TlsHandshake, reason));
  }

  /**
   * Advances the machine's clock. Returns the timeout error when a timer has expired (the machine
   * is then CLOSED), else undefined.
   */
  tick(nowMs: number): ProtocolError | undefined {
    this.now = nowMs;
    if (this._state === S.Closed) return undefined;
    let code: ErrorCode | undefined;
    if (this.helloDeadline !== undefined && nowMs >= this.helloDeadline) code = ErrorCode.HelloTimeout;
    else if (this.tlsDeadline !== undefined && nowMs >= this.tlsDeadline) code = ErrorCode.TlsTimeout;
    else if (this.authDeadline !== undefined && nowMs >= this.authDeadline) code = ErrorCode.AuthTimeout;
    if (code === undefined) return undefined;
    this._error = remoteError(code, `timer expired in ${this._state}`);
    this.transition('timeout');
    this.clearTimers();
    return this._error;
  }

  /**
   * Hands out the received bytes not parsed yet and forgets them. The transport uses it when the peer
   * finished sending (EOF) in READY, to store the posts still buffered after the connection closed.
   */
  takeUnparsed(): Uint8Array {
    const rest = this.buf.subarray(this.off);
    this.buf = new Uint8Array(0);
    this.off = 0;
    return rest;
  }

  /** Closes the machine (peer closed, shutdown, or a transport-level error such as a slow reader). */
  close(error?: ProtocolError): void {
    if (this._state === S.Closed) return;
    if (error && !this._error) this._error = error;
    this.transition('close');
    this.clearTimers();
    this.buf = new Uint8Array(0);
    this.off = 0;
  }

  private fail(e: unknown): ProtocolError {
    const err = isProtocolError(e) ? e : localError(`unexpected: ${String(e)}`);
    if (this._state !== S.Closed) {
      this._error = err;
      this.transition('error');
      this.clearTimers();
    }
    return err;
  }

  private clearTimers(): void {
    this.helloDeadline = this.tlsDeadline = this.authDeadline = undefined;
  }

  private transition(input: Input): void {
    const from = this._state;
    const to = ALWAYS_CLOSING.has(input) ? S.Closed : TRANSITIONS[from][input];
    if (to === undefined) throw localError(`no transition from ${from} on ${input}`);
    this._state = to;
    this.onTransition?.({ from, input, to });
  }
}

export type { ProtocolError };

/** A Mermaid state diagram of TRANSITIONS (PROTOCOL.md embeds it; a test keeps the two in sync). */
export function transitionsMermaid(): string {
  const lines = ['stateDiagram-v2', `  [*] --> ${S.AwaitingClientHello}`];
  for (const [from, row] of Object.entries(TRANSITIONS))
    for (const [input, to] of Object.entries(row)) lines.push(`  ${from} --> ${to}: ${input}`);
  lines.push(`  note right of ${S.Closed}: timeout / error / close from every state`);
  return lines.join('\n');
}
