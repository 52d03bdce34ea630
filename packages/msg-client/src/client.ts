/**
 * Promise client of hubbub.messages.v1.MessageStoreService for doors.
 *
 * Every call has a per-attempt deadline and an overall budget. Calls that are safe to repeat are retried on
 * UNAVAILABLE and DEADLINE_EXCEEDED with capped exponential backoff: reads, idempotent membership calls, and
 * posts whose every message carries a client_key (message-store stores a (author, client_key) pair once and
 * returns the first message on a repeat). Posts without a client_key, creates, edits and deletes are never
 * retried. Errors arrive as AppError (one mapping, @hubbub/errors).
 *
 * Several gRPC connections (`channels`) can be opened and used round-robin: one HTTP/2 connection is
 * processed by one server thread of control, so a busy door (or a benchmark) spreads its calls.
 */
import { Client, Metadata, credentials } from '@grpc/grpc-js';
import { DEFAULT_CHANNEL_OPTIONS, serviceErrorToAppError } from '@hubbub/grpc';
import { AppError, Code, errors } from '@hubbub/errors';
import { messagesV1 } from '@hubbub/proto';
import type { Logger } from '@hubbub/runtime';

type Def = typeof messagesV1.MessageStoreServiceService;
export type MessageStoreMethod = keyof Def;
type ReqOf<K extends MessageStoreMethod> = Def[K] extends { requestSerialize: (v: infer R) => Buffer } ? R : never;
type ResOf<K extends MessageStoreMethod> = Def[K] extends { responseDeserialize: (b: Buffer) => infer R } ? R : never;

/** Per-call options. */
export interface MsgCallOptions {
  /** Deadline of one attempt. Default: the client's `deadlineMs`. */
  readonly deadlineMs?: number;
  /** Total time for all attempts. Default: the client's `budgetMs`. */
  readonly budgetMs?: number;
  /** Max attempts for a retry-safe call (1 = no retry). Default: the client's `attempts`. */
  readonly attempts?: number;
  readonly metadata?: Metadata;
}

export interface MessageStoreClientOptions {
  /** Per-attempt deadline; default DEFAULT_MSG_DEADLINE_MS. */
  readonly deadlineMs?: number;
  /** Overall budget per call including retries; default DEFAULT_MSG_BUDGET_MS. */
  readonly budgetMs?: number;
  /** Attempts for retry-safe calls; default DEFAULT_MSG_ATTEMPTS. */
  readonly attempts?: number;
  /** Number of gRPC connections used round-robin; default 1. */
  readonly channels?: number;
  readonly log?: Logger;
}

export const DEFAULT_MSG_DEADLINE_MS = 2_000;
export const DEFAULT_MSG_BUDGET_MS = 5_000;
export const DEFAULT_MSG_ATTEMPTS = 4;
const MAX_BACKOFF_MS = 400;

/** One promise method per RPC of MessageStoreService, plus lifecycle helpers. */
export type MessageStoreClient = {
  readonly [K in MessageStoreMethod]: (req: ReqOf<K>, opts?: MsgCallOptions) => Promise<ResOf<K>>;
} & {
  /** Resolves once a connection is up (or rejects with UNAVAILABLE after `deadlineMs`). */
  waitForReady(deadlineMs?: number): Promise<void>;
  close(): void;
};

/** Methods that may be repeated without changing the outcome. */
const ALWAYS_SAFE: ReadonlySet<MessageStoreMethod> = new Set<MessageStoreMethod>([
  'ensurePublicChannels',
  'lookupChannel',
  'listChannels',
  'joinChannel',
  'leaveChannel',
  'addMembers',
  'openDirect',
  'markRead',
  'getMessage',
  'listMessages',
  'sliceMessages',
  'listChanges',
  'searchMessages',
  'listTags',
  'listOneliners',
]);

/** Whether repeating this request is safe (posts: only when every message carries a client key). */
export function isRetrySafe(method: MessageStoreMethod, req: unknown): boolean {
  if (ALWAYS_SAFE.has(method)) return true;
  if (method === 'postMessage') return ((req as messagesV1.PostMessageRequest).message?.clientKey ?? '') !== '';
  if (method === 'postMessages') {
    const ms = (req as messagesV1.PostMessagesRequest).messages;
    return ms.length > 0 && ms.every((m) => m.clientKey !== '');
  }
  if (method === 'postOneliner') return (req as messagesV1.PostOnelinerRequest).clientKey !== '';
  return false;
}

function isRetryableError(e: unknown): boolean {
  return e instanceof AppError && (e.code === Code.UNAVAILABLE || e.code === Code.DEADLINE_EXCEEDED);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function createMessageStoreClient(address: string, o: MessageStoreClientOptions = {}): MessageStoreClient {
  const n = Math.max(1, o.channels ?? 1);
  // A local subchannel pool per client gives each one its own HTTP/2 connection.
  const clients = Array.from(
    { length: n },
    (_, i) =>
      new Client(address, credentials.createInsecure(), {
        ...DEFAULT_CHANNEL_OPTIONS,
        'grpc.use_local_subchannel_pool': 1,
        'grpc.primary_user_agent': `hubbub-msg-client/${i}`,
      }),
  );
  let next = 0;
  const pick = (): Client => clients[next++ % n]!;
  const def = messagesV1.MessageStoreServiceService;

  const out: Record<string, unknown> = {
    close: () => {
      for (const c of clients) c.close();
    },
    waitForReady: (deadlineMs = o.deadlineMs ?? DEFAULT_MSG_DEADLINE_MS) =>
      Promise.all(
        clients.map(
          (c) =>
            new Promise<void>((resolve, reject) =>
              c.waitForReady(Date.now() + deadlineMs, (err) =>
                err ? reject(errors.unavailable('MSG_STORE_NOT_READY', `${address} not ready`, err)) : resolve(),
              ),
            ),
        ),
      ).then(() => undefined),
  };

  for (const [name, m] of Object.entries(def) as [MessageStoreMethod, Def[MessageStoreMethod]][]) {
    const once = (req: unknown, deadlineMs: number, metadata: Metadata | undefined): Promise<unknown> =>
      new Promise((resolve, reject) => {
        pick().makeUnaryRequest(
          m.path,
          m.requestSerialize as (v: unknown) => Buffer,
          m.responseDeserialize,
          req,
          metadata ?? new Metadata(),
          { deadline: Date.now() + deadlineMs },
          (err, res) => (err ? reject(serviceErrorToAppError(err)) : resolve(res)),
        );
      });
    out[name] = async (req: unknown, opts: MsgCallOptions = {}): Promise<unknown> => {
      const perAttempt = opts.deadlineMs ?? o.deadlineMs ?? DEFAULT_MSG_DEADLINE_MS;
      const budget = opts.budgetMs ?? o.budgetMs ?? Math.max(DEFAULT_MSG_BUDGET_MS, perAttempt);
      const attempts = isRetrySafe(name, req) ? Math.max(1, opts.attempts ?? o.attempts ?? DEFAULT_MSG_ATTEMPTS) : 1;
      const end = Date.now() + budget;
      for (let i = 1; ; i++) {
        const remaining = end - Date.now();
        try {
          return await once(req, Math.max(1, Math.min(perAttempt, remaining)), opts.metadata);
        } catch (e) {
          const backoff = Math.min(MAX_BACKOFF_MS, 20 * 2 ** i) * (0.5 + Math.random() / 2);
          if (!isRetryableError(e) || i >= attempts || end - Date.now() <= backoff) throw e;
          o.log?.debug({ method: name, attempt: i, code: (e as AppError).reason }, 'message-store call retried');
          await sleep(backoff);
        }
      }
    };
  }
  return out as MessageStoreClient;
}
