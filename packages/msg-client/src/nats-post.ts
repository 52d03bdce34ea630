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
import { natsRpc } from '@hubbub/nats';
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
  readonly stats: { readonly nats: number; readonly grpc: number };
  /** Stops following the connection's status. */
  close(): void;
}

/** The NATS side of a post: @hubbub/nats natsRpc with message-store's rules (this file's header). */
export function natsPostSender(o: NatsPostOptions): NatsPostSender {
  const rpc = natsRpc<messagesV1.PostMessagesRequest, messagesV1.PostMessagesResponse, MsgCallOptions>({
    nc: o.nc,
    subject: subjects(o.prefix).rpcPostMessages,
    request: messagesV1.PostMessagesRequest,
    response: messagesV1.PostMessagesResponse,
    timeoutMs: o.deadlineMs ?? DEFAULT_MSG_DEADLINE_MS,
    // A quarter of max_payload: the reply repeats the messages and must fit too.
    maxRequestBytes: (maxPayload) => maxPayload / 4,
    retrySafe: (req) => isRetrySafe('postMessages', req),
    retryReasons: ['BUSY', 'REPLY_TOO_LARGE'],
    name: 'PostMessages',
    ...(o.log ? { log: o.log } : {}),
    fallback: (req, _cause, opts, started) => {
      const { timeoutMs: _t, ...grpcOpts } = opts;
      // A caller's budget covers the NATS attempt too; without one, the gRPC client's own budget applies.
      if (grpcOpts.budgetMs === undefined) return o.grpc.postMessages(req, grpcOpts);
      return o.grpc.postMessages(req, {
        ...grpcOpts,
        budgetMs: Math.max(1, grpcOpts.budgetMs - (Date.now() - started)),
      });
    },
  });
  const send = (req: messagesV1.PostMessagesRequest, opts: MsgCallOptions = {}) =>
    rpc(req, opts.deadlineMs === undefined ? opts : { ...opts, timeoutMs: opts.deadlineMs });
  return Object.assign(send, {
    stats: {
      get nats() {
        return rpc.stats.nats;
      },
      get grpc() {
        return rpc.stats.fallback;
      },
    },
    close: () => rpc.close(),
  });
}
