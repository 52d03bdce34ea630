/**
 * Calls over NATS request/reply with binary protobuf, served as NATS services framework endpoints, with another
 * transport (gRPC, the contract) as the fallback (docs/adr/0003, docs/adr/0004).
 *
 * Wire rules, both directions:
 * - request and reply are binary protobuf (a ts-proto message type encodes and decodes them);
 * - an error reply carries the services-framework headers `Nats-Service-Error-Code` = the gRPC canonical code
 *   and `Nats-Service-Error` = `REASON: message` (one line), and is rebuilt into that AppError by the caller;
 * - a server that refuses a call for its own load answers RESOURCE_EXHAUSTED `BUSY` (nothing was done).
 *
 * `natsRpc` decides per call:
 * - NATS not connected, draining or closed, no responder on the subject, publishing not permitted, or a request
 *   larger than a NATS message: nothing was delivered, so the call goes to the fallback unchanged.
 * - no reply in time, an error reply UNAVAILABLE, or RESOURCE_EXHAUSTED with a load reason (`BUSY`, …): the
 *   server may have done the work, so the call is repeated on the fallback only when it is retry-safe (reads,
 *   idempotent writes); otherwise the caller gets DEADLINE_EXCEEDED `NATS_TIMEOUT` / the error reply.
 * - any other error reply is the server's answer: thrown as that AppError, never retried.
 */
import { AppError, Code, codeName, errors, isCode } from '@hubbub/errors';
import { LogGate } from '@hubbub/runtime';
import type { Logger } from '@hubbub/runtime';
import type { NatsConnection } from '@nats-io/nats-core';
import type { Service } from './service';

export const SERVICE_ERROR_CODE_HEADER = 'Nats-Service-Error-Code';
export const SERVICE_ERROR_HEADER = 'Nats-Service-Error';

/** A ts-proto message type, as far as putting it on the wire and reading it back goes. */
export interface BinaryCodec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
}

/** What a services-framework handler answers through (the part of @nats-io/services ServiceMsg used here). */
export interface Replyable {
  readonly data: Uint8Array;
  respond(data?: Uint8Array): boolean;
  respondError(code: number, description: string): boolean;
}

/** The services-framework description of an AppError: `REASON: message`, one line (it travels in a header). */
export function serviceErrorDescription(e: AppError): string {
  return `${e.reason}: ${e.message}`.replace(/[\r\n]+/g, ' ');
}

/**
 * Answers with an AppError as a services-framework error. Never throws: a reply that cannot be published
 * (connection closed meanwhile, hostile reply subject) is reported as false.
 */
export function respondAppError(m: Replyable, e: AppError): boolean {
  try {
    return m.respondError(e.code, serviceErrorDescription(e));
  } catch {
    return false;
  }
}

/** Answers with bytes; never throws (see respondAppError). */
export function respondBytes(m: Replyable, data: Uint8Array): boolean {
  try {
    return m.respond(data);
  } catch {
    return false;
  }
}

/** Rebuilds the AppError of a services-framework error reply (code = gRPC canonical code, `REASON: message`). */
export function serviceReplyError(code: string, description: string): AppError {
  const n = Number(code);
  const c: Code = Number.isInteger(n) && n > 0 && isCode(n) ? n : Code.UNKNOWN;
  const i = description.indexOf(': ');
  return i > 0
    ? new AppError(c, description.slice(0, i), description.slice(i + 2))
    : new AppError(c, 'NATS', description || 'error reply without a description');
}

/** The AppError of a services-framework error reply, or undefined when the reply is an answer. */
export function replyError(reply: { readonly headers?: { get(k: string): string } | undefined }): AppError | undefined {
  const code = reply.headers?.get(SERVICE_ERROR_CODE_HEADER) ?? '';
  return code === '' ? undefined : serviceReplyError(code, reply.headers?.get(SERVICE_ERROR_HEADER) ?? '');
}

function causeName(e: unknown): string {
  return e instanceof Error && e.cause instanceof Error ? e.cause.name : '';
}

/** nats.js "no responders": nobody subscribes to the subject, nothing was delivered. */
export function isNoResponders(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if (e.name === 'NoResponders' || e.name === 'NoRespondersError' || causeName(e) === 'NoResponders') return true;
  const r = e as Error & { isNoResponders?: () => boolean };
  return typeof r.isNoResponders === 'function' && r.isNoResponders();
}

/** nats.js request timeout (with or without async traces). */
export function isTimeout(e: unknown): boolean {
  return e instanceof Error && (e.name === 'TimeoutError' || causeName(e) === 'TimeoutError');
}

/** The request was refused before anything was delivered (closed, draining, publish not permitted). */
function isNotSent(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const names = ['ClosedConnectionError', 'DrainingConnectionError', 'PermissionViolationError'];
  return names.includes(e.name) || names.includes(causeName(e));
}

/** Follows a connection's status: `up` is false from a disconnect until the reconnect. */
export interface ConnectionWatch {
  readonly up: boolean;
  stop(): void;
}

export function watchConnection(nc: NatsConnection): ConnectionWatch {
  let up = !nc.isClosed();
  const status = nc.status() as AsyncIterable<{ type: string }> & { stop?: () => void };
  void (async () => {
    for await (const s of status) {
      if (s.type === 'disconnect') up = false;
      else if (s.type === 'reconnect') up = true;
    }
  })().catch(() => undefined);
  return {
    get up() {
      return up && !nc.isClosed() && !nc.isDraining();
    },
    stop: () => status.stop?.(),
  };
}

/** Why a call went to the fallback. */
export type FallbackCause =
  'not-connected' | 'no-responders' | 'too-large' | 'timeout' | 'unavailable' | 'refused' | 'closed';

/** Per-call options: the NATS wait, plus whatever the fallback needs (e.g. a caller's budget). */
export type NatsRpcCallOptions<O> = O & { readonly timeoutMs?: number };

export interface NatsRpcOptions<Req, Res, O = object> {
  readonly nc: NatsConnection;
  readonly subject: string;
  readonly request: BinaryCodec<Req>;
  readonly response: BinaryCodec<Res>;
  /** How long to wait for a reply on NATS. */
  readonly timeoutMs: number;
  /** The other transport (gRPC): takes every call NATS cannot carry, and unanswered retry-safe calls. */
  readonly fallback: (req: Req, cause: FallbackCause, opts: NatsRpcCallOptions<O>, startedMs: number) => Promise<Res>;
  /**
   * Whether a call that may have reached the server without a usable answer (timeout, UNAVAILABLE, a load
   * refusal) may be repeated on the fallback: true for reads and idempotent calls.
   */
  readonly retrySafe: boolean | ((req: Req) => boolean);
  /** RESOURCE_EXHAUSTED reasons that mean "refused for load, nothing done" (default `BUSY`). */
  readonly retryReasons?: readonly string[];
  /**
   * Larger requests go to the fallback (default: the server's max_payload). A function gets the server's
   * max_payload (e.g. a quarter of it, leaving room for a larger reply).
   */
  readonly maxRequestBytes?: number | ((maxPayload: number) => number);
  /** Names the call in log lines and errors (e.g. `VerifyToken`). */
  readonly name?: string;
  readonly log?: Logger;
}

export interface NatsRpc<Req, Res, O = object> {
  (req: Req, opts?: NatsRpcCallOptions<O>): Promise<Res>;
  /** Calls answered on NATS (a reply or an error reply), and calls sent to the fallback. */
  readonly stats: { nats: number; fallback: number };
  /** Stops following the connection; later calls go to the fallback. */
  close(): void;
}

export function natsRpc<Req, Res, O = object>(o: NatsRpcOptions<Req, Res, O>): NatsRpc<Req, Res, O> {
  const stats = { nats: 0, fallback: 0 };
  const retryReasons = new Set(o.retryReasons ?? ['BUSY']);
  const name = o.name ?? o.subject;
  const watch = watchConnection(o.nc);
  let closed = false;

  const safe = (req: Req): boolean => (typeof o.retrySafe === 'function' ? o.retrySafe(req) : o.retrySafe);

  const call = async (req: Req, opts: NatsRpcCallOptions<O> = {} as NatsRpcCallOptions<O>): Promise<Res> => {
    const started = Date.now();
    const viaFallback = (r: Req, cause: FallbackCause): Promise<Res> => {
      stats.fallback++;
      return o.fallback(r, cause, opts, started);
    };
    const nc = o.nc;
    if (closed) return viaFallback(req, 'closed');
    if (!watch.up) return viaFallback(req, 'not-connected');
    const body = o.request.encode(req).finish();
    const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
    const limit = o.maxRequestBytes;
    const max = Math.min(typeof limit === 'function' ? limit(maxPayload) : (limit ?? Infinity), maxPayload);
    if (body.length > max) return viaFallback(req, 'too-large');
    let reply;
    try {
      reply = await nc.request(o.subject, body, { timeout: opts.timeoutMs ?? o.timeoutMs });
    } catch (e) {
      if (isNoResponders(e)) return viaFallback(req, 'no-responders');
      if (isNotSent(e) || nc.isClosed()) return viaFallback(req, 'not-connected');
      const timeout = isTimeout(e);
      if (safe(req)) {
        o.log?.debug({ err: e, code: 'NATS_RPC_RETRY_FALLBACK', call: name }, 'call over NATS not answered; repeated');
        return viaFallback(req, timeout ? 'timeout' : 'unavailable');
      }
      throw timeout
        ? new AppError(Code.DEADLINE_EXCEEDED, 'NATS_TIMEOUT', `${name}: no answer in time`)
        : errors.unavailable('NATS_UNAVAILABLE', e instanceof Error ? e.message : 'nats request failed');
    }
    const err = replyError(reply);
    if (err) {
      const refused = err.code === Code.RESOURCE_EXHAUSTED && retryReasons.has(err.reason);
      if ((refused || err.code === Code.UNAVAILABLE) && safe(req))
        return viaFallback(req, refused ? 'refused' : 'unavailable');
      stats.nats++;
      throw err;
    }
    let res: Res;
    try {
      res = o.response.decode(reply.data);
    } catch (e) {
      // A reply we cannot read: a misbehaving responder, not an answer.
      o.log?.warn({ err: e, code: 'NATS_RPC_BAD_REPLY', call: name, bytes: reply.data.length }, 'undecodable reply');
      if (safe(req)) return viaFallback(req, 'unavailable');
      throw errors.unavailable('NATS_BAD_REPLY', `${name}: undecodable reply`);
    }
    stats.nats++;
    return res;
  };
  return Object.assign(call, {
    stats,
    close: () => {
      closed = true;
      watch.stop();
    },
  });
}

// ------------------------------------------------------------------------------------------------ serving

export type EndpointCallResult = 'ok' | 'error' | 'refused';

export interface BinaryEndpointOptions<Req, Res> {
  /** Services-framework endpoint name (`nats micro info` shows it), e.g. `verify-token`. */
  readonly name: string;
  readonly subject: string;
  readonly queue: string;
  readonly request: BinaryCodec<Req>;
  readonly response: BinaryCodec<Res>;
  /** Proto message names, e.g. `VerifyTokenRequest`, and their package, e.g. `hubbub.identity.v1`. */
  readonly types: { readonly package: string; readonly request: string; readonly reply: string };
  /** Names the call in texts: `too many <call> calls in flight`, `<call> over NATS failed`. */
  readonly call: string;
  /** The work; its AppErrors become error replies. */
  readonly handle: (req: Req) => Promise<Res>;
  /**
   * The synchronous path, tried before `handle`: the encoded reply when the work can be done at once (e.g. a cache
   * hit), or undefined to take `handle`. Its AppErrors become error replies like handle's. A hit is answered in the
   * same turn, with no promise and no protobuf encoding on the way (identity's cached VerifyToken).
   */
  readonly fast?: (req: Req) => Uint8Array | undefined;
  readonly log: Logger;
  /** Stable log codes. */
  readonly logCodes: { readonly badRequest: string; readonly internal: string; readonly endpoint: string };
  /** Calls handled at once; more get RESOURCE_EXHAUSTED `BUSY` (callers fall back). 0 refuses all. */
  readonly maxInFlight: number;
  /** Largest reply; a larger one (the work was done) gets RESOURCE_EXHAUSTED `REPLY_TOO_LARGE`. */
  readonly maxReplyBytes?: () => number;
  /** Runs right before every reply, error replies included. */
  readonly beforeReply?: () => void;
  /**
   * Once per call: `refused` (BUSY, undecodable) before the work ran; `ok`/`error` after, with the gRPC code name
   * and the work's time in seconds.
   */
  readonly onCall?: (result: EndpointCallResult, code: string, seconds: number) => void;
  /** Shortest time between two bad-request warnings (the ones in between are counted); default 0: every one. */
  readonly badRequestLogIntervalMs?: number;
}

/**
 * The handler of a binary protobuf endpoint (the server side of natsRpc): bounded in-flight calls, undecodable
 * input refused with INVALID_ARGUMENT `BAD_REQUEST` and logged, AppErrors as services-framework errors. It never
 * throws; a reply that cannot be published is dropped (the caller times out and falls back).
 */
export function binaryEndpointHandler<Req, Res>(
  o: BinaryEndpointOptions<Req, Res>,
): (m: Replyable) => Promise<void> | undefined {
  let inFlight = 0;
  const badLog = new LogGate(o.badRequestLogIntervalMs ?? 0);
  const badRequest = (err: unknown, bytes: number): void => {
    const suppressed = badLog.due();
    if (suppressed === undefined) return;
    o.log.warn({ err, code: o.logCodes.badRequest, bytes, suppressed }, `undecodable ${o.types.request} on NATS`);
  };
  const fail = (m: Replyable, e: AppError): void => {
    o.beforeReply?.();
    respondAppError(m, e);
  };
  const failed = (m: Replyable, e: unknown, started: number): void => {
    const err = AppError.from(e);
    o.onCall?.('error', codeName(err.code), (performance.now() - started) / 1000);
    if (err.code === Code.INTERNAL) o.log.error({ err: e, code: o.logCodes.internal }, `${o.call} over NATS failed`);
    fail(m, err);
  };
  const reply = (m: Replyable, out: Uint8Array, started: number): void => {
    const seconds = (performance.now() - started) / 1000;
    if (o.maxReplyBytes && out.length > o.maxReplyBytes()) {
      o.onCall?.('error', 'RESOURCE_EXHAUSTED', seconds);
      fail(m, errors.resourceExhausted('REPLY_TOO_LARGE', `reply of ${out.length} bytes exceeds max_payload`));
      return;
    }
    o.onCall?.('ok', 'OK', seconds);
    o.beforeReply?.();
    respondBytes(m, out);
  };
  const slow = async (m: Replyable, req: Req, started: number): Promise<void> => {
    inFlight++;
    try {
      reply(m, o.response.encode(await o.handle(req)).finish(), started);
    } catch (e) {
      failed(m, e, started);
    } finally {
      inFlight--;
    }
  };
  const guarded = (p: Promise<void>): Promise<void> =>
    p.catch((e: unknown) => {
      // Only a throwing hook or logger gets here; the caller then times out and falls back.
      o.log.error({ err: e, code: o.logCodes.internal }, `${o.name} handler failed`);
    });

  return (m: Replyable): Promise<void> | undefined => {
    try {
      if (inFlight >= o.maxInFlight) {
        o.onCall?.('refused', 'RESOURCE_EXHAUSTED', 0);
        fail(m, errors.resourceExhausted('BUSY', `too many ${o.call} calls in flight; use gRPC or retry`));
        return undefined;
      }
      let req: Req;
      try {
        req = o.request.decode(m.data);
      } catch (err) {
        o.onCall?.('refused', 'INVALID_ARGUMENT', 0);
        badRequest(err, m.data.length);
        fail(m, errors.invalidArgument('BAD_REQUEST', `not a ${o.types.request}`));
        return undefined;
      }
      const started = performance.now();
      if (o.fast) {
        let out: Uint8Array | undefined;
        try {
          out = o.fast(req);
        } catch (e) {
          failed(m, e, started);
          return undefined;
        }
        if (out !== undefined) {
          reply(m, out, started);
          return undefined;
        }
      }
      return guarded(slow(m, req, started));
    } catch (e) {
      // Only a throwing hook or logger gets here; the caller then times out and falls back.
      o.log.error({ err: e, code: o.logCodes.internal }, `${o.name} handler failed`);
      return undefined;
    }
  };
}

/** Adds the endpoint to a registered NATS service; returns its handler (tests drive it directly). */
export function addBinaryEndpoint<Req, Res>(
  svc: Service,
  o: BinaryEndpointOptions<Req, Res>,
): (m: Replyable) => Promise<void> | undefined {
  const handle = binaryEndpointHandler(o);
  svc.addEndpoint(o.name, {
    subject: o.subject,
    queue: o.queue,
    handler: (err, m) => {
      if (err) {
        o.log.warn({ err, code: o.logCodes.endpoint }, `${o.name} endpoint subscription error`);
        return;
      }
      void handle(m);
    },
    metadata: {
      request: `${o.types.package}.${o.types.request}`,
      reply: `${o.types.package}.${o.types.reply}`,
    },
  });
  return handle;
}
