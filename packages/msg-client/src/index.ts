/**
 * @hubbub/msg-client: how doors talk to message-store.
 *
 * API summary
 *
 * - `createMessageStoreClient(addr, { deadlineMs?, budgetMs?, attempts?, channels?, log? })` →
 *   `MessageStoreClient`: one promise method per RPC of `hubbub.messages.v1.MessageStoreService`
 *   (`postMessage`, `postMessages`, `editMessage`, `deleteMessage`, `getMessage`, `listMessages`,
 *   `sliceMessages`, `listChanges`, `searchMessages`, `listTags`, `createChannel`, `ensurePublicChannels`,
 *   `lookupChannel`, `listChannels`, `updateChannel`, `archiveChannel`, `joinChannel`, `leaveChannel`,
 *   `addMembers`, `removeMember`, `openDirect`, `markRead`, `postOneliner`, `listOneliners`), each
 *   `(req, { deadlineMs?, budgetMs?, attempts?, metadata? }?) => Promise<Res>`, plus `waitForReady()` and
 *   `close()`. Errors are `AppError`s (gRPC codes + `reason`). Retry-safe calls (reads, idempotent
 *   membership calls, posts whose every message has a `clientKey`) are retried on UNAVAILABLE and
 *   DEADLINE_EXCEEDED within the budget; others never are (`isRetrySafe`).
 * - `subscribeChat({ nc, prefix, log, onEvent, fetchHistory?, channelIds?, dedupeCapacity?, gapMarginMs? })` →
 *   `{ fillGaps(), stats, close() }`: every `MessageEvent` from `<prefix>.chat.>` delivered once (dedupe by
 *   id, and id + change time for edits/deletes, in a bounded LRU); after a NATS reconnect the posts missed
 *   in every channel seen are fetched from history (from `gapMarginMs` before the highest id seen, since
 *   events do not arrive in id order) and delivered as `posted` events.
 * - `peekPostedId(payload)`: the message id at the head of a posted event's JSON, without parsing (undefined: decode).
 * - `historyFetcher(client, principal)` → the `fetchHistory` function for `subscribeChat`, backed by
 *   `listMessages` (use a `system:<door>` principal to gap-fill private channels too).
 * - `new PostCoalescer(client, { maxBatch?, maxInFlight?, callOptions? })`: `post(principal, msg)` and
 *   `postMany(principal, msgs)` → `PostResult`s; the posts of all of a door's connections in one event-loop
 *   turn go out as one `postMessages` call with one principal per message.
 * - `natsPostSender({ nc, prefix, grpc, deadlineMs?, log? })` → a `send` for PostCoalescer: PostMessages over
 *   NATS request/reply (`<prefix>.rpc.messages.post`), falling back to gRPC whenever NATS cannot carry the call.
 * - `principal({ userId, displayName, guest?, sysop?, door })`, `systemPrincipal(door)`: Principal builders.
 * - `snowflakeParts(id)`: `{ ms, worker, seq }` of a message id (the dum-dum-irc layout).
 */
export {
  DEFAULT_MSG_ATTEMPTS,
  DEFAULT_MSG_BUDGET_MS,
  DEFAULT_MSG_DEADLINE_MS,
  createMessageStoreClient,
  isRetrySafe,
} from './client';
export type { MessageStoreClient, MessageStoreClientOptions, MessageStoreMethod, MsgCallOptions } from './client';
export {
  DEFAULT_DEDUPE_CAPACITY,
  DEFAULT_GAP_MARGIN_MS,
  DEFAULT_MAX_GAP_PAGES,
  eventKey,
  gapFillStart,
  peekPostedId,
  readGap,
  refillAfterReconnect,
  subscribeChat,
} from './subscribe';
export type { ChatSubscription, HistoryFetcher, SubscribeChatOptions } from './subscribe';
export { historyFetcher, newMessage, principal, snowflakeParts, systemPrincipal } from './helpers';
export { LruSet } from './lru-set';
export { DEFAULT_COALESCE_MAX_BATCH, DEFAULT_COALESCE_MAX_IN_FLIGHT, PostCoalescer } from './coalescer';
export type { PostCoalescerOptions } from './coalescer';
export { natsPostSender } from './nats-post';
export type { NatsPostOptions, NatsPostSender, PostSender } from './nats-post';
