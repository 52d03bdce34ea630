/**
 * PostMessages over NATS request/reply, with gRPC as the fallback (docs/adr/0003).
 *
 * A post over NATS costs a quarter of the CPU of a grpc-js unary call on both ends, so the doors' hot path
 * goes to message-store's `post-messages` endpoint (`<prefix>.rpc.messages.post`, binary protobuf). gRPC
 * stays the contract and the fallback, so posting keeps working whenever NATS cannot carry a call:
 *
 * - NATS disconnected, draining or closed, or no message-store listening (no responders): nothing was
 *   delivered, so the call goes to gRPC as is.
 * - a request too large for a NATS message (over a quarter of the server's max_payload, leaving room for the
 *   reply): gRPC.
 * - no reply in time, or message-store refused the call for its own limits (`BUSY`, `REPLY_TOO_LARGE`) or
 *   was unavailable: the call may have been committed, so it is repeated on gRPC only when it is retry-safe
 *   (every message has a client key: message-store returns the first messages); otherwise the error is
 *   reported to the caller, never hidden.
 * - any other refusal by message-store (authorization, limits) is its answer: thrown as that AppError.
 */
import { AppError, Code, errors } from '@hubbub/errors';
import type { NatsConnection } from '@hubbub/nats';
import { messagesV1, subjects } from '@hubbub/proto';
import type { Logger } from '@hubbub/runtime';
import { DEFAULT_MSG_DEADLINE_MS, isRetrySafe } from './client';
import type { MessageStoreClient, MsgCallOptions } from './client';

/** How a coalescer sends one PostMessages call. */
export type PostSender = (
  req: messagesV1.PostMessagesRequest,
  opts?: MsgCallOptions,
) => Promise<messagesV1.PostMessagesResponse>;

export interface NatsPostOptions {
  readonly nc: NatsConnection;
  readonly prefix: string;
  /** The gRPC client: the fallback, and the contract. */
  readonly grpc: MessageStoreClient;
  /** Per-attempt deadline when the call gives none; default DEFAULT_MSG_DEADLINE_MS. */
  readonly deadlineMs?: number;
  readonly log?: Logger;
}

export interface NatsPostSender extends PostSender {
  /** Calls answered over NATS, and calls sent (or repeated) on gRPC. */
  readonly stats: { nats: number; grpc: number };
  /** Stops following the connection's status. */
  close(): void;
}

const FALLBACK_REASONS = new Set(['BUSY', 'REPLY_TOO_LARGE']);

/** Parses a services-framework error reply: code = gRPC canonical code, description = `REASON: message`. */
function replyError(code: string, description: string): AppError {
  const n = Number(code);
  const c = Number.isInteger(n) && n > 0 && n <= 16 ? (n as Code) : Code.UNKNOWN;
  const i = description.indexOf(': ');
  return i > 0
    ? new AppError(c, description.slice(0, i), description.slice(i + 2))
    : new AppError(c, 'NATS', description);
}

function isNoResponders(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if (e.name === 'NoRespondersError') return true;
  const r = e as Error & { isNoResponders?: () => boolean };
  return typeof r.isNoResponders === 'function' && r.isNoResponders();
}

function isTimeout(e: unknown): boolean {
  return (
    e instanceof Error && (e.name === 'TimeoutError' || (e.cause instanceof Error && e.cause.name === 'TimeoutError'))
  );
}

export function natsPostSender(o: NatsPostOptions): NatsPostSender {
  const subject = subjects(o.prefix).rpcPostMessages;
  const stats = { nats: 0, grpc: 0 };
  let up = !o.nc.isClosed();
  let closed = false;
  const status = o.nc.status() as AsyncIterable<{ type: string }> & { stop?: () => void };
  void (async () => {
    for await (const s of status) {
      if (s.type === 'disconnect') up = false;
      else if (s.type === 'reconnect') up = true;
    }
  })().catch(() => undefined);

  const viaGrpc = (req: messagesV1.PostMessagesRequest, opts: MsgCallOptions, started: number) => {
    stats.grpc++;
    // A caller's budget covers the NATS attempt too; without one, the gRPC client's own budget applies.
    if (opts.budgetMs === undefined) return o.grpc.postMessages(req, opts);
    return o.grpc.postMessages(req, { ...opts, budgetMs: Math.max(1, opts.budgetMs - (Date.now() - started)) });
  };

  const send = async (
    req: messagesV1.PostMessagesRequest,
    opts: MsgCallOptions = {},
  ): Promise<messagesV1.PostMessagesResponse> => {
    const started = Date.now();
    const nc = o.nc;
    if (closed || !up || nc.isClosed() || nc.isDraining()) return viaGrpc(req, opts, started);
    const body = messagesV1.PostMessagesRequest.encode(req).finish();
    if (body.length > (nc.info?.max_payload ?? 1024 * 1024) / 4) return viaGrpc(req, opts, started);
    const safe = isRetrySafe('postMessages', req);
    let reply;
    try {
      reply = await nc.request(subject, body, { timeout: opts.deadlineMs ?? o.deadlineMs ?? DEFAULT_MSG_DEADLINE_MS });
    } catch (e) {
      if (isNoResponders(e) || nc.isClosed()) return viaGrpc(req, opts, started);
      if (safe) {
        o.log?.debug({ err: e, code: 'MSG_NATS_POST_RETRY_GRPC' }, 'post over NATS not answered; repeated on gRPC');
        return viaGrpc(req, opts, started);
      }
      throw isTimeout(e)
        ? new AppError(Code.DEADLINE_EXCEEDED, 'NATS_TIMEOUT', 'message-store did not answer in time')
        : errors.unavailable('NATS_UNAVAILABLE', e instanceof Error ? e.message : 'nats request failed');
    }
    const code = reply.headers?.get('Nats-Service-Error-Code') ?? '';
    if (code !== '') {
      const err = replyError(code, reply.headers?.get('Nats-Service-Error') ?? '');
      const transient =
        err.code === Code.UNAVAILABLE || (err.code === Code.RESOURCE_EXHAUSTED && FALLBACK_REASONS.has(err.reason));
      if (transient && safe) return viaGrpc(req, opts, started);
      throw err;
    }
    stats.nats++;
    return messagesV1.PostMessagesResponse.decode(reply.data);
  };
  return Object.assign(send, {
    stats,
    close: () => {
      closed = true;
      status.stop?.();
    },
  });
}
