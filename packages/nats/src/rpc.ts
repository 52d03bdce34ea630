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
import { AppError, Code, errors, isCode } from '@hubbub/errors';
import type { Logger } from '@hubbub/runtime';
import type { NatsConnection } from '@nats-io/nats-core';

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
    const code = reply.headers?.get(SERVICE_ERROR_CODE_HEADER) ?? '';
    if (code !== '') {
      const err = serviceReplyError(code, reply.headers?.get(SERVICE_ERROR_HEADER) ?? '');
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
