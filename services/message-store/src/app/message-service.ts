/**
 * message-store's application logic: every RPC of hubbub.messages.v1 against the repository, the id
 * generator, the post batcher and the outbox publisher.
 *
 * Hot path (ARCHITECTURE.md "How a message travels"): a post is validated and authorized from the channel
 * cache (no database round trip when warm), queued in the Batcher, and committed with the other posts of
 * its batch in ONE statement (messages + outbox rows + public-channel joins); each caller is answered after
 * COMMIT, and the outbox rows are handed to the publisher right away.
 */
import { AppError, Code, errors, isAppError } from '@hubbub/errors';
import { messagesV1, postedAsSent, storedAsSent, subjects } from '@hubbub/proto';
import { dbError } from '@hubbub/db';
import { Batcher, StampedWrites } from '@hubbub/runtime';
import type { Logger } from '@hubbub/runtime';
import type { OutboxEntry, OutboxRow, ChannelRow, Repo, StoredOutboxRow } from '../store/repo';
import type { Queryable } from '../store/sql';
import { channelToProto } from '../store/repo';
import { UNIQUE_VIOLATION, pgCode } from '../store/sql';
import type { OutboxPublisher } from './outbox-publisher';
import {
  MAX_CLIENT_KEY_BYTES,
  MAX_HISTORY_LIMIT,
  MAX_MEMBERS,
  authorizePost,
  canReadMessage,
  checkContent,
  checkNewMessage,
  checkNoNul,
  checkPrincipal,
  checkSlug,
  checkTags,
  checkTitleInfo,
  isAccountId,
  isGuest,
  isId,
  isOwnerOrSysop,
  isSystem,
  optionalId,
  requireReadable,
  utf8Bytes,
} from './rules';
import type { ChannelView, Limits } from './rules';
import { SnowflakeUnavailableError, composeSnowflake, snowflakeMs } from './snowflake';
import type { SnowflakeGenerator } from './snowflake';

type Principal = messagesV1.Principal;
type Message = messagesV1.Message;
const { ChannelKind, Visibility, MessageEventKind, ChannelEventKind, MessageKind, PrincipalKind } = messagesV1;

/**
 * The author of operators' broadcasts. Built only here: `system:` principals are refused as posters on every
 * door-facing API (checkPrincipal), and identity reserves the name `system`, so no account or guest looks
 * like it.
 */
export const OPERATOR: Principal = Object.freeze({
  userId: 'system:operator',
  displayName: 'system',
  kind: PrincipalKind.PRINCIPAL_KIND_UNSPECIFIED,
  sysop: true,
  door: 'admin',
});
/** Most channels one broadcast reaches. */
export const MAX_BROADCAST_CHANNELS = 1_000;
/** Longest broadcast client key: `<key>:<channel id>` stays within a post's client key limit. */
export const MAX_BROADCAST_KEY_BYTES = MAX_CLIENT_KEY_BYTES - 28;

export interface ServiceLimits extends Limits {
  readonly maxBatchMessages: number;
  readonly maxOnelinerBytes: number;
}

export interface MessageServiceOptions {
  readonly repo: Repo;
  readonly ids: SnowflakeGenerator;
  readonly publisher: OutboxPublisher;
  readonly prefix: string;
  readonly log: Logger;
  readonly limits: ServiceLimits;
  readonly batchWindowMs: number;
  readonly batchMaxMessages: number;
  /** Batches committing at once (their events are still published in id order). */
  readonly batchMaxInFlight?: number;
  readonly cacheTtlMs: number;
  /** Wall clock (ms); injectable for tests. */
  readonly now?: () => number;
  readonly onBatch?: (size: number, ms: number) => void;
  /** Longest a catch-up waits for writes in flight below the ids it would return (docs/adr/0007); default 1 s. */
  readonly catchUpWaitMs?: number;
  /** A catch-up answered while a lower id was still in flight (after catchUpWaitMs). */
  readonly onCatchUpCut?: () => void;
  /** The other replicas' read horizon (docs/adr/0007); absent = this replica alone. */
  readonly peers?: { horizon(): Promise<Horizon | undefined> };
}

/** A read horizon (docs/adr/0007): the lowest id, and the earliest change time, that may still become visible. */
export interface Horizon {
  readonly id: bigint;
  readonly timeMs: number;
}

/** The horizon of two places together: the lower of each. */
export function lowerHorizon(a: Horizon, b: Horizon): Horizon {
  return { id: a.id < b.id ? a.id : b.id, timeMs: a.timeMs < b.timeMs ? a.timeMs : b.timeMs };
}

interface CachedChannel extends ChannelView {
  readonly members: Set<string>;
  readonly loadedAt: number;
}

interface PreparedPost {
  readonly principal: Principal;
  readonly msg: messagesV1.NewMessage;
  readonly channel: ChannelRow;
  readonly join: boolean;
}

interface PostOutcome {
  readonly message: Message;
  readonly duplicate: boolean;
}

const CHAT_EVENT = {
  [MessageEventKind.MESSAGE_EVENT_KIND_POSTED]: 'posted',
  [MessageEventKind.MESSAGE_EVENT_KIND_EDITED]: 'edited',
  [MessageEventKind.MESSAGE_EVENT_KIND_DELETED]: 'deleted',
} as const;

const CHANNEL_EVENT = {
  [ChannelEventKind.CHANNEL_EVENT_KIND_CREATED]: 'created',
  [ChannelEventKind.CHANNEL_EVENT_KIND_UPDATED]: 'updated',
  [ChannelEventKind.CHANNEL_EVENT_KIND_ARCHIVED]: 'archived',
} as const;

const STORE_UNAVAILABLE = { reason: 'STORE_UNAVAILABLE', message: 'message store unavailable; retry' };

/** Store failures become UNAVAILABLE (safe to retry with a client key); bugs stay INTERNAL. */
/** Slugs per EnsurePublicChannels call. */
export const MAX_ENSURED_SLUGS = 100;

export function toStoreError(e: unknown): AppError {
  if (isAppError(e)) return e;
  if (e instanceof SnowflakeUnavailableError)
    return errors.unavailable('WORKER_ID_UNAVAILABLE', 'ids unavailable; retry', e);
  return dbError(e, STORE_UNAVAILABLE) ?? AppError.from(e);
}

function parseSearch(q: string): { text: string; from: string[]; tags: string[] } {
  const from: string[] = [];
  const tags: string[] = [];
  const text = q
    .replace(/(^|\s)(from|tag):("([^"]*)"|\S+)/gi, (_m, pre: string, key: string, raw: string, quoted?: string) => {
      const v = quoted ?? raw;
      if (key.toLowerCase() === 'from') from.push(v);
      else tags.push(v);
      return pre;
    })
    .trim();
  return { text, from, tags };
}

export class MessageService {
  private readonly cache = new Map<string, CachedChannel>();
  private readonly loading = new Map<string, Promise<CachedChannel | undefined>>();
  private readonly batcher: Batcher<PreparedPost, PostOutcome>;
  private readonly subj: ReturnType<typeof subjects>;
  private readonly now: () => number;
  private seedSeq = 0;
  /** Settles when the previous batch has published its events (events leave in id order). */
  private lastBatch: Promise<void> = Promise.resolve();
  /**
   * Writes that stamped a change time (a post's created_at, an edit's or delete's changed_at, a channel's
   * changed_at) and have not committed or failed yet. Readers of changes since a time wait for them (`settled`):
   * a change stamped before such a read but committed after it would otherwise be skipped for good by a client
   * that polls "changed since the time of my last answer" (ws-messenger's get_update). docs/adr/0006.
   */
  private readonly writes: StampedWrites;
  /** The first id of each post batch whose INSERT has not settled: the bottom of this replica's read horizon. */
  private readonly inFlightFirstIds = new Set<bigint>();

  constructor(private readonly o: MessageServiceOptions) {
    this.subj = subjects(o.prefix);
    this.now = o.now ?? Date.now;
    this.writes = new StampedWrites(this.now);
    this.batcher = new Batcher<PreparedPost, PostOutcome>({
      windowMs: o.batchWindowMs,
      maxItems: o.batchMaxMessages,
      maxInFlight: o.batchMaxInFlight ?? 1,
      // commitPostsInOrder stamps the batch (ids, created_at) before its first await, so it is tracked from then;
      // its created_at is read after `t`.
      run: (items) => {
        const t = this.writes.stampNow();
        return this.writes.track(this.commitPostsInOrder(items), t);
      },
    });
  }

  /**
   * The lowest id that may still become visible through this replica: the first id of a batch in flight, or else
   * the lowest id the generator can still assign. Every lower id is committed, failed or never assigned.
   */
  private localHorizon(): bigint {
    let h = this.o.ids.horizon();
    for (const id of this.inFlightFirstIds) if (id < h) h = id;
    return h;
  }

  private localHorizons(): Horizon {
    return { id: this.localHorizon(), timeMs: this.writes.timeHorizon() };
  }

  /**
   * Waits for the writes stamped before the call, here and on the other replicas (docs/adr/0006, 0007), and returns
   * the read horizon: a reader continuing after the ids it was given must be given only ids below `id`; one
   * continuing from a time, only told that changes before `timeMs` are complete.
   */
  private async readBarrier(maxWaitMs?: number): Promise<Horizon> {
    const local = maxWaitMs === undefined ? this.writes.settled() : this.writes.settledWithin(maxWaitMs);
    const [, peers] = await Promise.all([local, this.o.peers?.horizon()]);
    const here = this.localHorizons();
    return peers ? lowerHorizon(peers, here) : here;
  }

  /**
   * This replica's answer to another's horizon request: after the writes stamped before it have settled (at most
   * `waitMs`), or at once if they take longer (the horizon then lies below them, which is just as safe).
   */
  async horizonForPeer(waitMs: number): Promise<Horizon> {
    const now = this.localHorizons();
    if (this.writes.size === 0) return now;
    return (await this.writes.settledWithin(waitMs)) ? this.localHorizons() : now;
  }

  get batchStats(): { batches: number; items: number; maxBatch: number } {
    return this.batcher.stats;
  }

  /** Drains the batcher (shutdown): everything queued is committed and answered. */
  drain(): Promise<void> {
    return this.batcher.close();
  }

  // ------------------------------------------------------------------ channel cache

  private async channel(id: string, fresh = false): Promise<CachedChannel | undefined> {
    if (!isId(id)) return undefined;
    const c = this.cache.get(id);
    if (c && !fresh && this.now() - c.loadedAt <= this.o.cacheTtlMs) return c;
    const inflight = this.loading.get(id);
    if (inflight) return inflight;
    // While this load runs, only remember() replaces the entry `c` (and drops this load from `loading`, so a load
    // started after it reads after it). A change this instance committed while we read is newer than what we read:
    // it wins, or a member removed meanwhile could post and read again for a whole TTL.
    const p: Promise<CachedChannel | undefined> = (async () => {
      // On the post path's own connections: a post needs these facts, and reads must not be able to starve it.
      const posts = this.o.repo.sql.posts;
      const row = await this.o.repo.channelById(id, posts);
      const stale = (): boolean => this.cache.get(id) !== c;
      if (!row) {
        if (stale()) return this.cache.get(id);
        this.cache.delete(id);
        return undefined;
      }
      const members = new Set(await this.o.repo.members(id, posts));
      const v: CachedChannel = { row, members, loadedAt: this.now() };
      if (stale()) return this.cache.get(id) ?? v;
      this.cache.set(id, v);
      return v;
    })().finally(() => {
      if (this.loading.get(id) === p) this.loading.delete(id);
    });
    this.loading.set(id, p);
    return p;
  }

  private remember(row: ChannelRow, members: readonly string[]): CachedChannel {
    const v: CachedChannel = { row, members: new Set(members), loadedAt: this.now() };
    this.cache.set(row.id, v);
    // Loads in flight read before this change: they must not replace it (see channel), nor be joined by later callers.
    this.loading.delete(row.id);
    return v;
  }

  private async channelBySlugOrId(id: string, slug: string): Promise<CachedChannel | undefined> {
    if (id !== '') return this.channel(id);
    if (slug === '') throw errors.invalidArgument('CHANNEL_REQUIRED', 'a channel id or slug is required');
    // No slug holds NUL (checkSlug), and PostgreSQL would refuse the parameter (INTERNAL).
    if (slug.includes('\u0000')) return undefined;
    const row = await this.o.repo.channelBySlug(slug);
    return row ? this.channel(row.id) : undefined;
  }

  // ------------------------------------------------------------------ events

  private chatEvent(kind: messagesV1.MessageEventKind, m: Message, c: ChannelRow): OutboxEntry {
    const ev: messagesV1.MessageEvent = {
      kind,
      message: m,
      channel: { id: c.id, slug: c.slug, kind: c.kind, visibility: c.visibility },
    };
    const name = CHAT_EVENT[kind as keyof typeof CHAT_EVENT];
    return {
      subject: this.subj.chat(c.id, name),
      payload: JSON.stringify(messagesV1.MessageEvent.toJSON(ev)),
      ref: m.id,
    };
  }

  private channelEvent(kind: messagesV1.ChannelEventKind, c: ChannelRow, members: readonly string[]): OutboxEntry {
    const ev: messagesV1.ChannelEvent = { kind, channel: channelToProto(c, members) };
    return {
      subject: this.subj.channel(CHANNEL_EVENT[kind as keyof typeof CHANNEL_EVENT]),
      payload: JSON.stringify(messagesV1.ChannelEvent.toJSON(ev)),
      ref: c.id,
    };
  }

  /** Publishes the queued events of committed post batches now; the APIs call it right before answering. */
  flushEvents(): void {
    this.o.publisher.flushQueued();
  }

  private publish(rows: readonly OutboxRow[]): void {
    this.o.publisher.handOff(rows);
  }

  /**
   * Outbox sweep: the events of rows stored without payload (batches of posts, listed by `message_ids`, or
   * single posted events from migration 0002), rebuilt from the message rows as they are now; by seq.
   */
  async rebuildPostedEvents(
    q: Queryable,
    rows: readonly StoredOutboxRow[],
  ): Promise<Map<string, { subject: string; payload: string }[]>> {
    const idsOf = (r: StoredOutboxRow): string[] => r.message_ids ?? (r.ref === '' ? [] : [r.ref]);
    const messages = new Map((await this.o.repo.messagesByIds(rows.flatMap(idsOf), q)).map((m) => [m.id, m]));
    const channels = new Map(
      (await this.o.repo.channelsByIds([...new Set([...messages.values()].map((m) => m.channelId))], q)).map((c) => [
        c.id,
        c,
      ]),
    );
    const out = new Map<string, { subject: string; payload: string }[]>();
    for (const r of rows) {
      const evs: { subject: string; payload: string }[] = [];
      for (const id of idsOf(r)) {
        const m = messages.get(id);
        const c = m ? channels.get(m.channelId) : undefined;
        if (m && c) evs.push(this.chatEvent(MessageEventKind.MESSAGE_EVENT_KIND_POSTED, m, c));
        else this.o.log.warn({ ref: id, code: 'OUTBOX_REF_MISSING' }, 'outbox row without its message; skipped');
      }
      out.set(r.seq, evs);
    }
    return out;
  }

  // ------------------------------------------------------------------ posts

  async postMessage(req: messagesV1.PostMessageRequest): Promise<messagesV1.PostMessageResponse> {
    const p = checkPrincipal(req.principal, 'poster');
    const prepared = await this.preparePost(p, req.message);
    if ('duplicate' in prepared) return { message: prepared.message, duplicate: true };
    this.requireLease('ids');
    try {
      const r = await this.batcher.submit(prepared);
      return { message: r.message, duplicate: r.duplicate };
    } catch (e) {
      throw toStoreError(e);
    }
  }

  async postMessages(req: messagesV1.PostMessagesRequest): Promise<messagesV1.PostMessagesResponse> {
    if (req.messages.length > this.o.limits.maxBatchMessages)
      throw errors.invalidArgument('BATCH_TOO_LARGE', `at most ${this.o.limits.maxBatchMessages} messages per call`);
    // One author's ordered stream, or a door's coalesced posts with one principal per message.
    const perMessage = req.principals.length > 0;
    if (perMessage && req.principals.length !== req.messages.length)
      throw errors.invalidArgument('PRINCIPALS_MISMATCH', 'principals must have one entry per message');
    const shared = perMessage ? undefined : checkPrincipal(req.principal, 'poster');
    const results = new Array<messagesV1.PostResult>(req.messages.length);
    const ok: { i: number; prepared: PreparedPost }[] = [];
    for (let i = 0; i < req.messages.length; i++) {
      try {
        // A bad principal refuses only its own message.
        const p = shared ?? checkPrincipal(req.principals[i], 'poster');
        const prepared = await this.preparePost(p, req.messages[i]);
        if ('duplicate' in prepared)
          results[i] = {
            message: prepared.message,
            duplicate: true,
            asSent: false,
            errorCode: 0,
            errorReason: '',
            errorMessage: '',
          };
        else ok.push({ i, prepared });
      } catch (e) {
        const err = AppError.from(e);
        results[i] = {
          message: undefined,
          duplicate: false,
          asSent: false,
          errorCode: err.code,
          errorReason: err.reason,
          errorMessage: err.message,
        };
      }
    }
    if (ok.length > 0) {
      this.requireLease('ids');
      let outs: PostOutcome[];
      try {
        outs = await this.batcher.submitMany(ok.map((x) => x.prepared));
      } catch (e) {
        throw toStoreError(e);
      }
      ok.forEach((x, k) => {
        const r = outs[k]!;
        // The lean reply (docs/adr/0005): a post stored exactly as sent goes back as its id alone.
        const asSent =
          req.leanReply && !r.duplicate && storedAsSent(r.message, x.prepared.principal, req.messages[x.i]!);
        results[x.i] = {
          message: asSent ? messagesV1.Message.fromPartial({ id: r.message.id }) : r.message,
          duplicate: r.duplicate,
          asSent,
          errorCode: 0,
          errorReason: '',
          errorMessage: '',
        };
      });
    }
    return { results };
  }

  /**
   * Posts need the worker-id lease, renewed in time, for their ids; every other write that stamps a change time
   * needs it as well (its key may have expired otherwise): once it has lapsed, the other replicas stop counting this
   * one in their read horizons (they find their peers in the lease bucket, ADR 0007), so an edit or channel change
   * committed here could be skipped for good by their pollers. Checked right before the change time is stamped.
   */
  private requireLease(what: 'ids' | 'changes' = 'changes'): void {
    if (!this.o.ids.available)
      throw errors.unavailable(
        'WORKER_ID_UNAVAILABLE',
        `${what} unavailable (no worker id lease renewed in time); retry`,
      );
  }

  /**
   * A post checked and authorized for the batcher, or, when the channel's rules refuse it but the author already
   * stored this client key in this channel, the stored message: a retry whose first answer was lost (ADR 0003) must
   * get the same id (issue #4) even after the channel was archived or the author removed in between; refused, the
   * door would report a failure for a message everyone else sees.
   */
  private async preparePost(p: Principal, raw: messagesV1.NewMessage | undefined): Promise<PreparedPost | PostOutcome> {
    const msg = checkNewMessage(raw, this.o.limits);
    try {
      return await this.authorizedPost(p, msg);
    } catch (e) {
      if (msg.clientKey === '' || !isAppError(e)) throw e;
      let stored: Message | undefined;
      try {
        [stored] = await this.o.repo.messagesByClientKeys([{ authorId: p.userId, clientKey: msg.clientKey }]);
      } catch (err) {
        throw toStoreError(err);
      }
      if (!stored || stored.channelId !== msg.channelId) throw e;
      return { message: stored, duplicate: true };
    }
  }

  private async authorizedPost(p: Principal, msg: messagesV1.NewMessage): Promise<PreparedPost> {
    const c = requireReadable(p, await this.channel(msg.channelId));
    const { join } = authorizePost(p, c, msg);
    if (msg.replyToId !== '') {
      const parent = await this.o.repo.messageById(msg.replyToId);
      if (!parent || parent.channelId !== c.row.id || !canReadMessage(p, parent))
        throw errors.invalidArgument('REPLY_TO_NOT_FOUND', 'the message replied to is not in this channel');
    }
    return { principal: p, msg, channel: c.row, join };
  }

  /**
   * Batches may commit concurrently (maxInFlight), but each hands its outbox rows over only after the batch
   * before it has, so events leave in id order; callers are answered after their batch's hand-off.
   */
  private async commitPostsInOrder(items: readonly PreparedPost[]): Promise<PostOutcome[]> {
    const prev = this.lastBatch;
    let release!: () => void;
    this.lastBatch = new Promise<void>((r) => (release = r));
    // Set once the batch is committed: its events go out even when answering its callers fails afterwards.
    const committed: { rows: readonly OutboxRow[] } = { rows: [] };
    try {
      // commitPosts runs synchronously up to its first await, so ids follow batch start order.
      return await this.commitPosts(items, committed);
    } finally {
      await prev;
      // Events before replies, on the same NATS connection: a door that delivers its own posts when their
      // reply arrives has by then received every earlier post of the channel, so it delivers in id order.
      // Queued, not published yet: the API flushes them right before it answers (flushEvents), so events and
      // reply share one socket write.
      this.o.publisher.queue(committed.rows);
      release();
    }
  }

  /**
   * The batch: ids in batch order, one INSERT statement; returns the answers. The outbox rows go to `committed` as
   * soon as the statement committed.
   */
  private async commitPosts(
    items: readonly PreparedPost[],
    committed: { rows: readonly OutboxRow[] },
  ): Promise<PostOutcome[]> {
    const t0 = performance.now();
    const nowMs = this.writes.stampNow();
    const firstByKey = new Map<string, number>();
    const dupOf = new Array<number | undefined>(items.length);
    const messages = new Array<Message | undefined>(items.length);
    const posts: Message[] = [];
    const joins: { channelId: string; userId: string }[] = [];
    const joinSeen = new Set<string>();
    /** The channel of each of `posts`. */
    const postChannels: ChannelRow[] = [];
    /** Channels someone may join by posting in this batch → the channel and everyone joining it here. */
    const joining = new Map<string, { channel: ChannelRow; userIds: string[] }>();
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      const m = it.msg;
      const p = it.principal;
      if (m.clientKey !== '') {
        const k = `${p.userId}\u0000${m.clientKey}`;
        const first = firstByKey.get(k);
        if (first !== undefined) {
          dupOf[i] = first;
          continue;
        }
        firstByKey.set(k, i);
      }
      // The stored message is the checked request as sent (the lean reply's rebuild, ADR 0005), with the channel's
      // canonical id and kind NORMAL for UNSPECIFIED.
      const message = postedAsSent(p, m, this.o.ids.next().toString());
      message.channelId = it.channel.id;
      if (m.kind === MessageKind.MESSAGE_KIND_UNSPECIFIED) message.kind = MessageKind.MESSAGE_KIND_NORMAL;
      messages[i] = message;
      posts.push(message);
      postChannels.push(it.channel);
      if (it.join) {
        const jk = `${it.channel.id}\u0000${p.userId}`;
        if (!joinSeen.has(jk)) {
          joinSeen.add(jk);
          joins.push({ channelId: it.channel.id, userId: p.userId });
          const j = joining.get(it.channel.id);
          if (j) j.userIds.push(p.userId);
          else joining.set(it.channel.id, { channel: it.channel, userIds: [p.userId] });
        }
      }
    }
    // One `updated` event per channel with everyone who joined it in this batch, published only when a
    // membership turns out to be new (the statement decides; it stamps the time the event carries).
    const joinEvents: { channelId: string; subject: string; payload: string }[] = [];
    for (const [channelId, j] of joining) {
      const members = new Set(this.cache.get(channelId)?.members ?? []);
      for (const u of j.userIds) members.add(u);
      const changed: ChannelRow = { ...j.channel, changedAt: new Date(nowMs) };
      const ev = this.channelEvent(ChannelEventKind.CHANNEL_EVENT_KIND_UPDATED, changed, [...members]);
      joinEvents.push({ channelId, subject: ev.subject, payload: ev.payload });
    }
    // Readers after an id stop below this batch until its INSERT settles (readBarrier).
    const firstId = posts.length > 0 ? BigInt(posts[0]!.id) : undefined;
    if (firstId !== undefined) this.inFlightFirstIds.add(firstId);
    let stored: Awaited<ReturnType<Repo['insertPosts']>>;
    let events: OutboxEntry[];
    try {
      const storing = this.o.repo.insertPosts(posts, joins, joinEvents, new Date(nowMs));
      storing.catch(() => undefined); // handled below: a failure while the events are built is no unhandled rejection
      // The posted events are built while PostgreSQL runs the INSERT (once the pool has written it), not before:
      // a batch of a few hundred posts spends about a millisecond on them.
      await new Promise<void>((ok) => setImmediate(ok));
      try {
        events = posts.map((m, k) => this.chatEvent(MessageEventKind.MESSAGE_EVENT_KIND_POSTED, m, postChannels[k]!));
      } catch (e) {
        // Not before the INSERT has settled: until then its ids count as in flight (readBarrier).
        await storing.catch(() => undefined);
        throw e;
      }
      stored = await storing;
    } finally {
      if (firstId !== undefined) this.inFlightFirstIds.delete(firstId);
    }
    const { seq, inserted, joined } = stored;
    for (const j of joins) this.cache.get(j.channelId)?.members.add(j.userId);
    const rows: OutboxRow[] = [];
    // One outbox row (seq) covers the whole batch; the publisher deletes it once all are out.
    if (seq !== undefined)
      for (let k = 0; k < posts.length; k++)
        if (inserted.has(posts[k]!.id)) rows.push({ seq, subject: events[k]!.subject, payload: events[k]!.payload });
    // Members who joined by posting: the channel's `updated` event, like an explicit JoinChannel.
    rows.push(...joined);
    committed.rows = rows;

    // Posts not inserted repeated a stored (author, client_key): answer with the stored message.
    const existingKeys = posts
      .filter((m) => !inserted.has(m.id))
      .map((m) => ({ authorId: m.authorId, clientKey: m.clientKey }));
    const existing = new Map<string, Message>();
    if (existingKeys.length > 0) {
      for (const m of await this.o.repo.messagesByClientKeys(existingKeys))
        existing.set(`${m.authorId}\u0000${m.clientKey}`, m);
    }
    const out = new Array<PostOutcome>(items.length);
    for (let i = 0; i < items.length; i++) {
      const m = messages[i];
      if (m) {
        if (inserted.has(m.id)) out[i] = { message: m, duplicate: false };
        else {
          const stored = existing.get(`${m.authorId}\u0000${m.clientKey}`);
          if (!stored) throw errors.internal('CLIENT_KEY_CONFLICT_LOST');
          out[i] = { message: stored, duplicate: true };
        }
      }
    }
    for (let i = 0; i < items.length; i++) {
      const d = dupOf[i];
      if (d !== undefined) out[i] = { message: out[d]!.message, duplicate: true };
    }
    this.o.onBatch?.(items.length, performance.now() - t0);
    return out;
  }

  // ------------------------------------------------------------------ edits, deletes, reads

  private async readableMessage(p: Principal | undefined, id: string): Promise<{ m: Message; c: CachedChannel }> {
    const m = isId(id) ? await this.o.repo.messageById(id) : undefined;
    const c = m ? await this.channel(m.channelId) : undefined;
    if (!m || !c || !requireReadableSafe(p, c) || !canReadMessage(p, m))
      throw errors.notFound('MESSAGE_NOT_FOUND', 'no such message');
    return { m, c };
  }

  private changeTime(prev: Date | undefined): Date {
    const now = this.writes.stampNow();
    const p = prev?.getTime() ?? 0;
    return new Date(now > p ? now : p + 1);
  }

  private async change(
    p: Principal,
    id: string,
    kind: messagesV1.MessageEventKind,
    mutate: (m: Message) => Message,
  ): Promise<Message> {
    this.requireLease();
    for (let attempt = 0; attempt < 3; attempt++) {
      const { m, c } = await this.readableMessage(p, id);
      if (m.deleted) throw errors.notFound('MESSAGE_NOT_FOUND', 'no such message');
      if (c.row.archived) throw errors.failedPrecondition('CHANNEL_ARCHIVED', 'the channel is archived');
      this.requireLease(); // again right before the stamp: the reads above may have waited
      const next = mutate(m);
      const ev = this.chatEvent(kind, next, c.row);
      let row: OutboxRow | undefined;
      try {
        row = await this.writes.track(this.o.repo.updateMessage(next, m.changedAt!, ev), next.changedAt!.getTime());
      } catch (e) {
        throw toStoreError(e);
      }
      if (row) {
        this.publish([row]);
        return next;
      }
    }
    throw new AppError(Code.ABORTED, 'CONCURRENT_CHANGE', 'the message changed concurrently; retry');
  }

  async editMessage(req: messagesV1.EditMessageRequest): Promise<messagesV1.EditMessageResponse> {
    const p = checkPrincipal(req.principal, 'actor');
    const tags = req.setTags ? checkTags(req.tags) : undefined;
    const message = await this.change(p, req.messageId, MessageEventKind.MESSAGE_EVENT_KIND_EDITED, (m) => {
      if (m.authorId !== p.userId) throw errors.permissionDenied('NOT_AUTHOR', 'only the author can edit a message');
      const next: Message = {
        ...m,
        text: req.text ?? m.text,
        subject: req.subject ?? m.subject,
        tags: tags ?? m.tags,
        attachments: req.attachments ?? m.attachments,
        changedAt: this.changeTime(m.changedAt),
        edited: true,
      };
      checkContent(next, this.o.limits);
      return next;
    });
    return { message };
  }

  async deleteMessage(req: messagesV1.DeleteMessageRequest): Promise<messagesV1.DeleteMessageResponse> {
    const p = checkPrincipal(req.principal, 'actor');
    const message = await this.change(p, req.messageId, MessageEventKind.MESSAGE_EVENT_KIND_DELETED, (m) => {
      if (m.authorId !== p.userId && !p.sysop)
        throw errors.permissionDenied('NOT_AUTHOR', 'only the author or a sysop can delete a message');
      let attachments = m.attachments;
      if (attachments) {
        attachments = { ...attachments };
        for (const k of ['filePicture', 'fileVideo', 'fileAudio', 'fileDocument', 'emoji'] as const)
          if (attachments[k] !== undefined) attachments[k] = '';
      }
      return { ...m, text: '', attachments, changedAt: this.changeTime(m.changedAt), edited: true, deleted: true };
    });
    return { message };
  }

  async getMessage(req: messagesV1.GetMessageRequest): Promise<messagesV1.GetMessageResponse> {
    const p = req.principal ? checkPrincipal(req.principal, 'reader') : undefined;
    return { message: (await this.readableMessage(p, req.messageId)).m };
  }

  private readerOf(p: messagesV1.Principal | undefined): {
    p: Principal | undefined;
    userId: string;
    seesPrivate: boolean;
  } {
    const pr = p && p.userId !== '' ? checkPrincipal(p, 'reader') : undefined;
    return { p: pr, userId: pr?.userId ?? '', seesPrivate: isSystem(pr) };
  }

  async listMessages(req: messagesV1.ListMessagesRequest): Promise<messagesV1.ListMessagesResponse> {
    const r = this.readerOf(req.principal);
    const c = requireReadable(r.p, await this.channel(req.channelId));
    const before = optionalId(req.before, 'before');
    const after = optionalId(req.after, 'after');
    const limit = req.limit === 0 ? MAX_HISTORY_LIMIT : Math.min(req.limit, MAX_HISTORY_LIMIT);
    checkNoNul(...req.tags);
    if (before !== undefined && after !== undefined && BigInt(before) <= BigInt(after) + 1n)
      return { messages: [], more: false };
    if (req.mailbox && !r.p) return { messages: [], more: false };
    // A catch-up after a seen id (dum-dum's LIST_MESSAGES, the doors' gap fill): ids are assigned before commit and
    // batches commit concurrently (here and on other replicas), so a lower-id batch may still be in flight while a
    // higher one is visible; a reader that only polls would continue after the higher ids and never see it
    // (docs/adr/0007).
    const read = () =>
      this.o.repo.listMessages({
        channelId: c.row.id,
        before,
        after,
        limit,
        includeDeleted: req.includeDeleted,
        tags: req.tags,
        mailbox: req.mailbox,
        userId: r.userId,
        seesPrivate: r.seesPrivate,
      });
    if (after === undefined) return read();
    // Everything committed is returned (a reader that also receives live events must not lose what was published
    // before it subscribed). While a write with an id below one returned is still in flight, here or on another
    // replica, wait for it and read again, for at most catchUpWaitMs; then answer what is there.
    const until = performance.now() + (this.o.catchUpWaitMs ?? 1_000);
    for (let round = 0; ; round++) {
      // The first round waits for what was stamped before the call (ADR 0006); later ones only until `until`.
      const h = await this.readBarrier(round === 0 ? undefined : until - performance.now());
      const page = await read();
      const top = page.messages[page.messages.length - 1]?.id;
      if (top === undefined || BigInt(top) < h.id) return page;
      if (performance.now() >= until) {
        this.o.onCatchUpCut?.();
        return page;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  async sliceMessages(req: messagesV1.SliceMessagesRequest): Promise<messagesV1.SliceMessagesResponse> {
    const r = this.readerOf(req.principal);
    const c = requireReadable(r.p, await this.channel(req.channelId));
    const limit = req.limit === 0 ? MAX_HISTORY_LIMIT : Math.min(req.limit, MAX_HISTORY_LIMIT);
    const res = await this.o.repo.sliceMessages({
      channelId: c.row.id,
      createdSince: req.createdSince,
      start: req.start,
      limit,
      userId: r.userId,
      seesPrivate: r.seesPrivate,
    });
    return { total: String(res.total), start: String(res.start), messages: res.messages };
  }

  /** Ids of the channels a reader can read (archived included: their history stays readable). */
  private async readableChannelIds(p: Principal | undefined, only: readonly string[]): Promise<string[]> {
    const rows = await this.o.repo.listChannels({
      userId: p?.userId,
      all: isSystem(p),
      kind: 0,
      visibility: 0,
      changedSince: undefined,
      includeArchived: true,
      memberOnly: false,
    });
    const ids = rows.map((r) => r.id);
    if (only.length === 0) return ids;
    const set = new Set(ids);
    for (const id of only) if (!set.has(id)) throw errors.notFound('CHANNEL_NOT_FOUND', 'no such channel');
    return [...new Set(only)];
  }

  async listChanges(req: messagesV1.ListChangesRequest): Promise<messagesV1.ListChangesResponse> {
    const r = this.readerOf(req.principal);
    if (!r.p) throw errors.invalidArgument('PRINCIPAL_REQUIRED', 'a principal is required');
    const limit = req.limit === 0 ? 1_000 : Math.min(req.limit, 5_000);
    const channelIds = await this.readableChannelIds(r.p, req.channelIds);
    const h = await this.readBarrier(); // here and on the other replicas (docs/adr/0006, 0007)
    const res = await this.o.repo.listChanges({
      channelIds,
      since: req.since ?? new Date(0),
      afterChangedAt: req.pageAfterChangedAt,
      // A decimal id or nothing: digits beyond bigint failed the query as INTERNAL.
      afterId: optionalId(req.pageAfterId, 'page_after_id'),
      limit,
      userId: r.userId,
      seesPrivate: r.seesPrivate,
    });
    return { ...res, completeBefore: new Date(h.timeMs) };
  }

  async searchMessages(req: messagesV1.SearchMessagesRequest): Promise<messagesV1.SearchMessagesResponse> {
    const r = this.readerOf(req.principal);
    if (!r.p) throw errors.invalidArgument('PRINCIPAL_REQUIRED', 'a principal is required');
    if (utf8Bytes(req.query) > 1_000) throw errors.invalidArgument('QUERY_TOO_LONG', 'query over 1000 bytes');
    // Words, `from:` and `tag:` values all go to PostgreSQL as text parameters.
    checkNoNul(req.query);
    const q = parseSearch(req.query);
    if (q.text === '' && q.from.length === 0 && q.tags.length === 0) return { messages: [], more: false };
    const limit = req.limit === 0 ? 50 : Math.min(req.limit, 100);
    const channelIds = await this.readableChannelIds(r.p, req.channelIds);
    return this.o.repo.searchMessages({
      channelIds,
      text: q.text,
      from: q.from,
      tags: q.tags,
      before: optionalId(req.before, 'before'),
      limit,
      mailbox: req.mailbox,
      userId: r.userId,
      seesPrivate: r.seesPrivate,
    });
  }

  async listTags(req: messagesV1.ListTagsRequest): Promise<messagesV1.ListTagsResponse> {
    const r = this.readerOf(req.principal);
    const c = requireReadable(r.p, await this.channel(req.channelId));
    return { tags: await this.o.repo.listTags(c.row.id, r.userId, r.seesPrivate) };
  }

  // ------------------------------------------------------------------ channels

  private async proto(
    c: CachedChannel,
    p: Principal | undefined,
    includeMembers: boolean,
    includeStats: boolean,
  ): Promise<messagesV1.Channel> {
    const stats = includeStats
      ? (await this.o.repo.channelStats([c.row.id], p?.userId, isSystem(p))).get(c.row.id)
      : undefined;
    return channelToProto(c.row, includeMembers ? await this.o.repo.members(c.row.id) : [], stats);
  }

  async createChannel(req: messagesV1.CreateChannelRequest): Promise<messagesV1.CreateChannelResponse> {
    const p = checkPrincipal(req.principal, 'actor');
    if (isGuest(p)) throw errors.permissionDenied('GUESTS_CANNOT_CREATE', 'guests cannot create channels');
    if (!(req.kind in CHANNEL_KINDS))
      throw errors.invalidArgument('BAD_CHANNEL_KIND', 'kind must be GROUP, CHANNEL, DIRECT or BOARD');
    const visibility =
      req.visibility === Visibility.VISIBILITY_PUBLIC ? Visibility.VISIBILITY_PUBLIC : Visibility.VISIBILITY_PRIVATE;
    if (visibility === Visibility.VISIBILITY_PUBLIC && !p.sysop)
      throw errors.permissionDenied('SYSOP_ONLY', 'only sysops create public channels');
    if (visibility === Visibility.VISIBILITY_PUBLIC && req.kind === ChannelKind.CHANNEL_KIND_DIRECT)
      throw errors.invalidArgument('DIRECT_IS_PRIVATE', 'direct channels are private');
    const slug = req.slug === '' ? '' : checkSlug(req.slug);
    checkTitleInfo(req.title, req.info);
    // A Set, not Array.includes: the list is the caller's (up to a whole gRPC message of ids), and a quadratic
    // dedupe before the limit check blocked the event loop for seconds.
    const members = [...new Set(req.memberIds)];
    if (members.length > MAX_MEMBERS)
      throw errors.invalidArgument('TOO_MANY_MEMBERS', `at most ${MAX_MEMBERS} members`);
    for (const u of members) if (!isAccountId(u)) throw errors.invalidArgument('BAD_MEMBER', 'members are account ids');
    if (req.kind === ChannelKind.CHANNEL_KIND_DIRECT) {
      if (members.length !== 2)
        throw errors.invalidArgument('DIRECT_NEEDS_TWO', 'a direct channel has exactly two members');
      if (!members.includes(p.userId))
        throw errors.permissionDenied('NOT_A_MEMBER', 'the principal must be one of the two');
      // A new channel each time, with its own title and the caller as owner (Morelia's add_flow of a chat, spec
      // ws-messenger §2.9: "uuid = the new channel id"); no pair key. OpenDirect is the one-per-pair path.
    } else if (!members.includes(p.userId)) members.push(p.userId);
    const allowGuests = visibility === Visibility.VISIBILITY_PUBLIC ? (req.allowGuests ?? true) : false;
    const { row } = await this.insertChannel({
      kind: req.kind,
      slug,
      title: req.title,
      info: req.info,
      visibility,
      ownerId: p.userId,
      allowGuests,
      directKey: null,
      members,
    });
    return { channel: channelToProto(row, members) };
  }

  private async insertChannel(c: {
    kind: number;
    slug: string;
    title: string;
    info: string;
    visibility: number;
    ownerId: string;
    allowGuests: boolean;
    directKey: string | null;
    members: readonly string[];
  }): Promise<{ row: ChannelRow }> {
    // A pair key only on direct channels (OpenDirect's).
    if (c.directKey !== null && c.kind !== ChannelKind.CHANNEL_KIND_DIRECT) throw errors.internal('DIRECT_KEY');
    this.requireLease();
    const at = new Date(this.writes.stampNow());
    let out: { row: ChannelRow; ob: OutboxRow[] };
    try {
      out = await this.writes.track(
        this.o.repo.sql.tx(async (q) => {
          const row = await this.o.repo.insertChannel(q, { ...c, at });
          await this.o.repo.addMembers(q, row.id, c.members);
          const ob = await this.o.repo.insertOutbox(q, [
            this.channelEvent(ChannelEventKind.CHANNEL_EVENT_KIND_CREATED, row, c.members),
          ]);
          return { row, ob };
        }),
        at.getTime(),
      );
    } catch (e) {
      if (pgCode(e) === UNIQUE_VIOLATION) throw errors.alreadyExists('SLUG_TAKEN', 'a channel with this slug exists');
      throw toStoreError(e);
    }
    this.remember(out.row, c.members);
    this.publish(out.ob);
    return { row: out.row };
  }

  async ensurePublicChannels(
    req: messagesV1.EnsurePublicChannelsRequest,
  ): Promise<messagesV1.EnsurePublicChannelsResponse> {
    const kind = req.kind === ChannelKind.CHANNEL_KIND_UNSPECIFIED ? ChannelKind.CHANNEL_KIND_GROUP : req.kind;
    if (kind === ChannelKind.CHANNEL_KIND_DIRECT || !(kind in CHANNEL_KINDS))
      throw errors.invalidArgument('BAD_CHANNEL_KIND', 'public channels are GROUP, CHANNEL or BOARD');
    // Callers need no principal and each slug may cost a transaction: a door ensures a handful.
    if (req.slugs.length > MAX_ENSURED_SLUGS)
      throw errors.invalidArgument('TOO_MANY_SLUGS', `at most ${MAX_ENSURED_SLUGS} slugs per call`);
    const slugs = req.slugs.map(checkSlug);
    const out: messagesV1.Channel[] = [];
    for (const slug of slugs) {
      let row = await this.o.repo.channelBySlug(slug);
      if (row && row.visibility !== Visibility.VISIBILITY_PUBLIC) {
        // Someone's private channel already holds the slug. A caller without a principal sees public data only
        // (ADR 0002), and the door must not announce it as public: left out of the answer, for the operator.
        this.o.log.warn({ slug, channelId: row.id, code: 'ENSURE_SLUG_NOT_PUBLIC' }, 'slug held by a private channel');
        continue;
      }
      if (!row) {
        try {
          row = (
            await this.insertChannel({
              kind,
              slug,
              title: slug,
              info: '',
              visibility: Visibility.VISIBILITY_PUBLIC,
              ownerId: '',
              allowGuests: true,
              directKey: null,
              members: [],
            })
          ).row;
        } catch (e) {
          // Another instance created it at the same moment.
          if (!(isAppError(e) && e.reason === 'SLUG_TAKEN')) throw e;
          row = await this.o.repo.channelBySlug(slug);
          if (!row) throw e;
        }
      }
      out.push(channelToProto(row));
    }
    return { channels: out };
  }

  async lookupChannel(req: messagesV1.LookupChannelRequest): Promise<messagesV1.LookupChannelResponse> {
    const r = this.readerOf(req.principal);
    const c = requireReadable(r.p, await this.channelBySlugOrId(req.id, req.slug));
    return { channel: await this.proto(c, r.p, req.includeMembers, req.includeStats) };
  }

  async listChannels(req: messagesV1.ListChannelsRequest): Promise<messagesV1.ListChannelsResponse> {
    const r = this.readerOf(req.principal);
    // Channels changed since a time: the same wait as listChanges.
    const h = req.changedSince ? await this.readBarrier() : undefined;
    const rows = await this.o.repo.listChannels({
      userId: r.p?.userId,
      all: isSystem(r.p),
      kind: req.kind,
      visibility: req.visibility,
      changedSince: req.changedSince,
      includeArchived: req.includeArchived,
      memberOnly: req.memberOnly,
    });
    const ids = rows.map((x) => x.id);
    const members = req.includeMembers ? await this.o.repo.membersOf(ids) : undefined;
    const stats = req.includeStats ? await this.o.repo.channelStats(ids, r.p?.userId, r.seesPrivate) : undefined;
    return {
      channels: rows.map((x) => channelToProto(x, members?.get(x.id) ?? [], stats?.get(x.id))),
      completeBefore: h ? new Date(h.timeMs) : undefined,
    };
  }

  private async changeChannel(
    p: Principal,
    channelId: string,
    kind: messagesV1.ChannelEventKind,
    f: (c: CachedChannel) => {
      slug?: string;
      title?: string;
      info?: string;
      allowGuests?: boolean;
      archived?: boolean;
    },
    members?: (c: CachedChannel) => { add: string[]; remove: string[] },
  ): Promise<messagesV1.Channel> {
    const c = requireReadable(p, await this.channel(channelId, true));
    const fields = f(c);
    const mem = members?.(c);
    this.requireLease();
    const at = new Date(this.writes.stampNow());
    let res: { row: ChannelRow; list: string[]; ob: OutboxRow[] };
    try {
      res = await this.writes.track(
        this.o.repo.sql.tx(async (q) => {
          if (mem) {
            await this.o.repo.addMembers(q, channelId, mem.add);
            for (const u of mem.remove) await this.o.repo.removeMember(q, channelId, u);
          }
          const row = await this.o.repo.updateChannel(q, channelId, { ...fields, at });
          if (!row) throw errors.notFound('CHANNEL_NOT_FOUND', 'no such channel');
          const list = await this.o.repo.members(channelId, q);
          const ob = await this.o.repo.insertOutbox(q, [this.channelEvent(kind, row, list)]);
          return { row, list, ob };
        }),
        at.getTime(),
      );
    } catch (e) {
      if (pgCode(e) === UNIQUE_VIOLATION) throw errors.alreadyExists('SLUG_TAKEN', 'a channel with this slug exists');
      throw toStoreError(e);
    }
    this.remember(res.row, res.list);
    this.publish(res.ob);
    return channelToProto(res.row, res.list);
  }

  private requireOwner(p: Principal, c: CachedChannel): void {
    if (!isOwnerOrSysop(p, c)) throw errors.permissionDenied('NOT_OWNER', 'only the owner or a sysop can do this');
  }

  async updateChannel(req: messagesV1.UpdateChannelRequest): Promise<messagesV1.UpdateChannelResponse> {
    const p = checkPrincipal(req.principal, 'actor');
    const channel = await this.changeChannel(p, req.channelId, ChannelEventKind.CHANNEL_EVENT_KIND_UPDATED, (c) => {
      this.requireOwner(p, c);
      checkTitleInfo(req.title, req.info);
      const out: { slug?: string; title?: string; info?: string; allowGuests?: boolean } = {};
      if (req.slug !== undefined) out.slug = checkSlug(req.slug);
      if (req.title !== undefined) out.title = req.title;
      if (req.info !== undefined) out.info = req.info;
      if (req.allowGuests !== undefined) {
        if (req.allowGuests && c.row.visibility !== Visibility.VISIBILITY_PUBLIC)
          throw errors.invalidArgument('GUESTS_PUBLIC_ONLY', 'only public channels allow guests');
        out.allowGuests = req.allowGuests;
      }
      return out;
    });
    return { channel };
  }

  async archiveChannel(req: messagesV1.ArchiveChannelRequest): Promise<messagesV1.ArchiveChannelResponse> {
    const p = checkPrincipal(req.principal, 'actor');
    const channel = await this.changeChannel(p, req.channelId, ChannelEventKind.CHANNEL_EVENT_KIND_ARCHIVED, (c) => {
      this.requireOwner(p, c);
      return { archived: true };
    });
    return { channel };
  }

  async joinChannel(req: messagesV1.JoinChannelRequest): Promise<messagesV1.JoinChannelResponse> {
    const p = checkPrincipal(req.principal, 'actor');
    if (isGuest(p)) throw errors.permissionDenied('GUESTS_CANNOT_JOIN', 'guests do not join channels');
    const c = requireReadable(p, await this.channel(req.channelId, true));
    if (c.members.has(p.userId)) return { channel: channelToProto(c.row, [...c.members]) };
    if (c.row.archived) throw errors.failedPrecondition('CHANNEL_ARCHIVED', 'the channel is archived');
    const channel = await this.changeChannel(
      p,
      req.channelId,
      ChannelEventKind.CHANNEL_EVENT_KIND_UPDATED,
      () => ({}),
      () => ({ add: [p.userId], remove: [] }),
    );
    return { channel };
  }

  async leaveChannel(req: messagesV1.LeaveChannelRequest): Promise<messagesV1.LeaveChannelResponse> {
    const p = checkPrincipal(req.principal, 'actor');
    const c = requireReadable(p, await this.channel(req.channelId, true));
    if (!c.members.has(p.userId)) return {};
    if (c.row.ownerId === p.userId) throw errors.failedPrecondition('OWNER_CANNOT_LEAVE', 'the owner cannot leave');
    if (c.row.kind === ChannelKind.CHANNEL_KIND_DIRECT)
      throw errors.failedPrecondition('DIRECT_FIXED', 'members of a direct channel are fixed');
    await this.changeChannel(
      p,
      req.channelId,
      ChannelEventKind.CHANNEL_EVENT_KIND_UPDATED,
      () => ({}),
      () => ({ add: [], remove: [p.userId] }),
    );
    return {};
  }

  async addMembers(req: messagesV1.AddMembersRequest): Promise<messagesV1.AddMembersResponse> {
    const p = checkPrincipal(req.principal, 'actor');
    for (const u of req.userIds)
      if (!isAccountId(u)) throw errors.invalidArgument('BAD_MEMBER', 'members are account ids');
    const channel = await this.changeChannel(
      p,
      req.channelId,
      ChannelEventKind.CHANNEL_EVENT_KIND_UPDATED,
      (c) => {
        this.requireOwner(p, c);
        if (c.row.kind === ChannelKind.CHANNEL_KIND_DIRECT)
          throw errors.failedPrecondition('DIRECT_FIXED', 'members of a direct channel are fixed');
        if (c.row.archived) throw errors.failedPrecondition('CHANNEL_ARCHIVED', 'the channel is archived');
        const add = req.userIds.filter((u) => !c.members.has(u));
        if (c.members.size + new Set(add).size > MAX_MEMBERS)
          throw errors.invalidArgument('TOO_MANY_MEMBERS', `at most ${MAX_MEMBERS} members`);
        return {};
      },
      () => ({ add: [...new Set(req.userIds)], remove: [] }),
    );
    return { channel };
  }

  async removeMember(req: messagesV1.RemoveMemberRequest): Promise<messagesV1.RemoveMemberResponse> {
    const p = checkPrincipal(req.principal, 'actor');
    checkNoNul(req.userId);
    const channel = await this.changeChannel(
      p,
      req.channelId,
      ChannelEventKind.CHANNEL_EVENT_KIND_UPDATED,
      (c) => {
        this.requireOwner(p, c);
        if (c.row.kind === ChannelKind.CHANNEL_KIND_DIRECT)
          throw errors.failedPrecondition('DIRECT_FIXED', 'members of a direct channel are fixed');
        if (req.userId === c.row.ownerId)
          throw errors.failedPrecondition('OWNER_CANNOT_LEAVE', 'the owner cannot be removed');
        return {};
      },
      () => ({ add: [], remove: [req.userId] }),
    );
    return { channel };
  }

  async openDirect(req: messagesV1.OpenDirectRequest): Promise<messagesV1.OpenDirectResponse> {
    const p = checkPrincipal(req.principal, 'actor');
    if (isGuest(p)) throw errors.permissionDenied('GUESTS_CANNOT_CREATE', 'guests cannot open direct channels');
    if (!isAccountId(req.otherUserId) || req.otherUserId === p.userId)
      throw errors.invalidArgument('BAD_MEMBER', 'the other member is another account');
    return this.directChannel(p.userId, [p.userId, req.otherUserId], { slug: '', title: '', info: '' });
  }

  /**
   * OpenDirect's channel: gets or creates the one channel of two distinct accounts by their pair key (`direct_key`,
   * unique), so repeated or concurrent calls for the same two get one channel. `fields` apply only when it is
   * created. (CreateChannel DIRECT makes a new keyless channel each time: Morelia's chats.)
   */
  private async directChannel(
    owner: string,
    members: readonly [string, string],
    fields: { slug: string; title: string; info: string },
  ): Promise<{ channel: messagesV1.Channel; created: boolean }> {
    const key = JSON.stringify([members[0], members[1]].sort());
    const existing = await this.o.repo.channelByDirectKey(key);
    if (existing) return { channel: channelToProto(existing, await this.o.repo.members(existing.id)), created: false };
    try {
      const { row } = await this.insertChannel({
        kind: ChannelKind.CHANNEL_KIND_DIRECT,
        ...fields,
        visibility: Visibility.VISIBILITY_PRIVATE,
        ownerId: owner,
        allowGuests: false,
        directKey: key,
        members,
      });
      return { channel: channelToProto(row, members), created: true };
    } catch (e) {
      // Another call created it meanwhile (the pair key refused this one); any other failure stands.
      const again = await this.o.repo.channelByDirectKey(key).catch(() => undefined);
      if (!again) throw e;
      return { channel: channelToProto(again, await this.o.repo.members(again.id)), created: false };
    }
  }

  async markRead(req: messagesV1.MarkReadRequest): Promise<messagesV1.MarkReadResponse> {
    const p = checkPrincipal(req.principal, 'actor');
    const c = requireReadable(p, await this.channel(req.channelId));
    if (!isId(req.messageId)) throw errors.invalidArgument('BAD_ID', 'message_id must be a decimal id');
    await this.o.repo.markRead(c.row.id, p.userId, req.messageId);
    return {};
  }

  // ------------------------------------------------------------------ operators (NATS admin subjects)

  /**
   * An operator creates a channel (`<prefix>.admin.channel.create`): CreateChannel's rules for slug (required
   * here), title and info, without a door principal. Kind UNSPECIFIED = GROUP (DIRECT refused); public unless
   * `private`; the owner, when given, is an account and the only member. The `created` event goes out through
   * the outbox like every channel change.
   */
  async adminCreateChannel(req: messagesV1.AdminChannelCreateRequest): Promise<messagesV1.AdminChannelCreateResponse> {
    const kind = req.kind === ChannelKind.CHANNEL_KIND_UNSPECIFIED ? ChannelKind.CHANNEL_KIND_GROUP : req.kind;
    if (kind === ChannelKind.CHANNEL_KIND_DIRECT || !(kind in CHANNEL_KINDS))
      throw errors.invalidArgument('BAD_CHANNEL_KIND', 'operators create GROUP, CHANNEL or BOARD channels');
    if (req.slug === '') throw errors.invalidArgument('BAD_SLUG', 'a slug is required');
    const slug = checkSlug(req.slug);
    checkTitleInfo(req.title, req.info);
    checkNoNul(req.title, req.info);
    const owner = req.ownerUserId;
    if (owner !== '' && (!isAccountId(owner) || owner.includes('\u0000')))
      throw errors.invalidArgument('BAD_OWNER', 'the owner is an account id (not a guest or system principal)');
    const visibility = req.private ? Visibility.VISIBILITY_PRIVATE : Visibility.VISIBILITY_PUBLIC;
    const allowGuests = visibility === Visibility.VISIBILITY_PUBLIC ? (req.allowGuests ?? true) : false;
    const members = owner === '' ? [] : [owner];
    const { row } = await this.insertChannel({
      kind,
      slug,
      title: req.title,
      info: req.info,
      visibility,
      ownerId: owner,
      allowGuests,
      directKey: null,
      members,
    });
    return { channel: channelToProto(row, members) };
  }

  /**
   * An operator broadcasts (`<prefix>.admin.broadcast`): one message per channel, authored by OPERATOR (never
   * a door's principal), through the post batcher like every post (snowflake ids, outbox `posted` events in id
   * order, answered after COMMIT). Channels by slug in the order given (duplicates once), or every public,
   * non-archived channel. Every channel is checked before anything is stored. With a client key, channel c's
   * message carries `<key>:<c>`, so a retry returns the messages stored first (`duplicates` counts them).
   * `maxReplyBytes` refuses up front a broadcast whose reply (every message with its text) could not be sent.
   */
  async adminBroadcast(
    req: messagesV1.AdminBroadcastRequest,
    o: { maxReplyBytes?: number } = {},
  ): Promise<{ messages: Message[]; duplicates: number }> {
    if (req.text.trim() === '') throw errors.invalidArgument('TEXT_REQUIRED', 'a broadcast needs text');
    checkContent({ text: req.text, subject: '', attachments: undefined }, this.o.limits);
    checkNoNul(req.clientKey);
    if (utf8Bytes(req.clientKey) > MAX_BROADCAST_KEY_BYTES)
      throw errors.invalidArgument('CLIENT_KEY_TOO_LONG', `client key over ${MAX_BROADCAST_KEY_BYTES} bytes`);
    if (req.channels.length > MAX_BROADCAST_CHANNELS)
      throw errors.invalidArgument('TOO_MANY_CHANNELS', `at most ${MAX_BROADCAST_CHANNELS} channels per broadcast`);
    let rows: ChannelRow[];
    try {
      rows = req.channels.length > 0 ? await this.broadcastChannels(req.channels) : await this.publicChannels();
    } catch (e) {
      throw toStoreError(e);
    }
    if (o.maxReplyBytes !== undefined) {
      // Each message of the reply: its text (JSON-escaped), its key, and ~500 bytes of other fields.
      const per = Buffer.byteLength(JSON.stringify(req.text)) + 2 * utf8Bytes(req.clientKey) + 512;
      if (rows.length * per > o.maxReplyBytes)
        throw errors.invalidArgument(
          'BROADCAST_TOO_LARGE',
          `${rows.length} copies of this text do not fit one reply (${o.maxReplyBytes} bytes); name fewer channels`,
        );
    }
    if (rows.length === 0) return { messages: [], duplicates: 0 };
    const items: PreparedPost[] = rows.map((channel) => ({
      principal: OPERATOR,
      msg: checkNewMessage(
        messagesV1.NewMessage.fromPartial({
          channelId: channel.id,
          text: req.text,
          kind: MessageKind.MESSAGE_KIND_NORMAL,
          clientKey: req.clientKey === '' ? '' : `${req.clientKey}:${channel.id}`,
        }),
        this.o.limits,
      ),
      channel,
      // The operator never becomes a member of the channels it broadcasts into.
      join: false,
    }));
    this.requireLease('ids');
    let outs: PostOutcome[];
    try {
      outs = await this.batcher.submitMany(items);
    } catch (e) {
      throw toStoreError(e);
    }
    return { messages: outs.map((x) => x.message), duplicates: outs.filter((x) => x.duplicate).length };
  }

  /** Broadcast targets by slug, in the order given: unknown NOT_FOUND, archived or direct FAILED_PRECONDITION. */
  private async broadcastChannels(slugs: readonly string[]): Promise<ChannelRow[]> {
    const wanted = [...new Set(slugs)];
    const bySlug = new Map((await this.o.repo.channelsBySlugs(wanted)).map((r) => [r.slug, r]));
    return wanted.map((slug) => {
      const row = bySlug.get(slug);
      const name = JSON.stringify(slug.length > 40 ? `${slug.slice(0, 40)}…` : slug);
      if (!row) throw errors.notFound('CHANNEL_NOT_FOUND', `no channel ${name}`);
      if (row.archived) throw errors.failedPrecondition('CHANNEL_ARCHIVED', `the channel ${name} is archived`);
      if (row.kind === ChannelKind.CHANNEL_KIND_DIRECT)
        throw errors.failedPrecondition('DIRECT_CHANNEL', `the channel ${name} is a direct conversation`);
      return row;
    });
  }

  /** Every public, non-archived channel in id order (refused beyond MAX_BROADCAST_CHANNELS). */
  private async publicChannels(): Promise<ChannelRow[]> {
    const rows = await this.o.repo.listChannels({
      userId: undefined,
      all: true,
      kind: 0,
      visibility: Visibility.VISIBILITY_PUBLIC,
      changedSince: undefined,
      includeArchived: false,
      memberOnly: false,
    });
    if (rows.length > MAX_BROADCAST_CHANNELS)
      throw errors.invalidArgument(
        'TOO_MANY_CHANNELS',
        `${rows.length} public channels; a broadcast reaches at most ${MAX_BROADCAST_CHANNELS}: name them`,
      );
    return rows;
  }

  // ------------------------------------------------------------------ oneliners

  async postOneliner(req: messagesV1.PostOnelinerRequest): Promise<messagesV1.PostOnelinerResponse> {
    const p = checkPrincipal(req.principal, 'poster');
    const text = req.text.trim();
    if (text === '') throw errors.invalidArgument('TEXT_REQUIRED', 'a oneliner needs text');
    if (utf8Bytes(text) > this.o.limits.maxOnelinerBytes)
      throw errors.invalidArgument('TEXT_TOO_LARGE', `oneliner over ${this.o.limits.maxOnelinerBytes} bytes`, {
        limit: String(this.o.limits.maxOnelinerBytes),
      });
    this.requireLease('ids');
    try {
      if (req.clientKey !== '') {
        const prev = await this.o.repo.onelinerByClientKey(p.userId, req.clientKey);
        if (prev) return { oneliner: prev, duplicate: true };
      }
      const id = this.o.ids.next();
      const o: messagesV1.Oneliner = {
        id: id.toString(),
        authorId: p.userId,
        authorName: p.displayName,
        authorKind: p.kind,
        door: p.door,
        text,
        createdAt: new Date(snowflakeMs(id)),
        clientKey: req.clientKey,
      };
      const ev: OutboxEntry = {
        subject: this.subj.onelinerPosted,
        payload: JSON.stringify(messagesV1.OnelinerEvent.toJSON({ oneliner: o })),
        ref: o.id,
      };
      const row = await this.o.repo.insertOneliner(o, ev);
      if (!row) {
        const prev = await this.o.repo.onelinerByClientKey(p.userId, req.clientKey);
        if (prev) return { oneliner: prev, duplicate: true };
        throw errors.internal('CLIENT_KEY_CONFLICT_LOST');
      }
      this.publish([row]);
      return { oneliner: o, duplicate: false };
    } catch (e) {
      throw toStoreError(e);
    }
  }

  async listOneliners(req: messagesV1.ListOnelinersRequest): Promise<messagesV1.ListOnelinersResponse> {
    const limit = req.limit === 0 ? 200 : Math.min(req.limit, 1_000);
    return { oneliners: await this.o.repo.listOneliners(limit) };
  }

  // ------------------------------------------------------------------ tests only

  /**
   * Stores messages with chosen times and no events. Reachable only through app/test-seed.ts, which the
   * server registers only with NODE_ENV=test and MESSAGE_STORE_ENABLE_TEST_SEED=1.
   */
  async seedMessagesForTests(req: messagesV1.SeedMessagesRequest): Promise<messagesV1.SeedMessagesResponse> {
    const out: Message[] = [];
    const worker = this.o.ids.workerId ?? 0;
    for (const s of req.messages) {
      const p = checkPrincipal(s.principal, 'poster');
      const msg = checkNewMessage(s.message, this.o.limits);
      const c = requireReadable(p, await this.channel(msg.channelId));
      const createdAt = s.createdAt ?? new Date(this.now());
      this.seedSeq = (this.seedSeq + 1) % 4096;
      const id = composeSnowflake(createdAt.getTime(), worker, this.seedSeq);
      const changedAt = s.changedAt ?? createdAt;
      const m: Message = {
        id: id.toString(),
        channelId: c.row.id,
        authorId: p.userId,
        authorName: p.displayName,
        authorKind: p.kind,
        door: p.door,
        text: s.deleted ? '' : msg.text,
        kind: msg.kind === MessageKind.MESSAGE_KIND_UNSPECIFIED ? MessageKind.MESSAGE_KIND_NORMAL : msg.kind,
        subject: msg.subject,
        tags: msg.tags,
        replyToId: msg.replyToId,
        recipientId: msg.recipientId,
        isPrivate: msg.isPrivate,
        attachments: msg.attachments,
        createdAt: new Date(snowflakeMs(id)),
        changedAt,
        edited: s.deleted || changedAt.getTime() !== createdAt.getTime(),
        deleted: s.deleted,
        clientKey: msg.clientKey,
      };
      await this.o.repo.insertSeeded(m);
      out.push(m);
    }
    return { messages: out };
  }
}

const CHANNEL_KINDS: Record<number, true> = {
  [ChannelKind.CHANNEL_KIND_GROUP]: true,
  [ChannelKind.CHANNEL_KIND_CHANNEL]: true,
  [ChannelKind.CHANNEL_KIND_DIRECT]: true,
  [ChannelKind.CHANNEL_KIND_BOARD]: true,
};

function requireReadableSafe(p: Principal | undefined, c: ChannelView): boolean {
  try {
    requireReadable(p, c);
    return true;
  } catch {
    return false;
  }
}
