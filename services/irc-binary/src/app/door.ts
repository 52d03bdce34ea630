/**
 * The application of irc-binary: what happens after the transport has decoded a frame.
 *
 * - AUTHENTICATE → Authenticator (§3.4); accepted connections join the broadcast set.
 * - SEND_MESSAGE → rate limit (§3.5 rule 1), then a per-connection ordered queue. Consecutive posts
 *   in the queue go to message-store as ONE ordered batch (rule 4); one batch per connection is in
 *   flight at a time, so ids follow frame order. A post is broadcast only after message-store
 *   confirmed it (rule 6).
 * - LIST_CHANNELS / LIST_MESSAGES wait in the same queue, so they see the connection's earlier
 *   posts (rule 7) and replies keep request order (§3.8).
 * - Delivery (§3.6): every message is encoded once and the same bytes are queued on every READY
 *   connection; a message id is delivered once per instance (RecentIds), whether it first came
 *   from our own post's confirmation or from NATS.
 */
import { randomBytes } from 'node:crypto';
import { LogGate, PerAddressRate, TokenBucket } from '@hubbub/runtime';
import type { Logger } from '@hubbub/runtime';
import { DEFAULT_GAP_MARGIN_MS, gapFillStart, readGap, refillAfterReconnect } from '@hubbub/msg-client';
import { HISTORY_PAGE } from '../protocol/constants';
import type { ClientFrame, WireMessage } from '../protocol/events';
import { encodeMessageFrame } from '../protocol/frames';
import { fitsWireName, toWireContent, toWireNick } from '../protocol/mapping';
import { withTimeout } from './authenticator';
import type { AuthResult, Authenticator } from './authenticator';
import type { ChannelDirectory } from './channel-directory';
import type {
  AccountRevocation,
  Author,
  ConnectionHandle,
  DoorMetrics,
  IdentityPort,
  MessageStorePort,
  PostRequest,
  PostedEvent,
  PresenceLease,
  PresencePort,
  StoredMessage,
} from './ports';
import { RecentIds } from './recent-ids';

/** Largest batch handed to message-store in one call. */
export const MAX_POST_BATCH = 256;
const UNKNOWN_CHANNEL_LOG_INTERVAL_MS = 10_000;
/** §2.7: ids never have bit 63 set, so 2^63 - 1 is above every id (and the largest bound message-store takes). */
const MAX_ID = (1n << 63n) - 1n;
/** RecentIds' memory, and the slack kept from its edge so the margin only re-reads ids still remembered. */
const RECENT_IDS_TTL_MS = 60_000;
const RECENT_IDS_SLACK_MS = 5_000;
/** How long, and how many, ids given in LIST_MESSAGES replies are kept per connection (Door.listed). */
const LISTED_TTL_MS = 60_000;
const LISTED_MAX = 1_000;

export interface DoorOptions {
  readonly instanceId: string;
  readonly maxPendingFrames: number;
  readonly sendRatePerS: number;
  readonly sendBurst: number;
  /** LIST_MESSAGES bucket (each one is a database query): over it, requests wait in order. */
  readonly historyRatePerS: number;
  readonly historyBurst: number;
  /** The same two limits per client address, over all of its connections (PerAddressRate). */
  readonly ipSendRatePerS: number;
  readonly ipSendBurst: number;
  readonly ipHistoryRatePerS: number;
  readonly ipHistoryBurst: number;
  readonly backendTimeoutMs: number;
}

export interface DoorDeps {
  readonly store: MessageStorePort;
  readonly presence: PresencePort;
  readonly authenticator: Authenticator;
  readonly channels: ChannelDirectory;
  readonly metrics: DoorMetrics;
  readonly log: Logger;
  readonly now?: () => number;
}

type Item =
  | { readonly kind: 'post'; readonly channel: string; readonly content: string; readonly clientKey: string }
  | { readonly kind: 'listChannels' }
  | { readonly kind: 'listMessages'; readonly channel: string; readonly before: bigint; readonly after: bigint };

export class Door {
  /** Connections in READY: the broadcast set. */
  readonly ready = new Set<ConnectionHandle>();
  private readonly recent = new RecentIds(RECENT_IDS_TTL_MS);
  /**
   * Highest id per channel received from the event bus or from history (never from this instance's
   * own post confirmations, which can run ahead of the bus while it is down): gap fill after an
   * event-bus reconnect starts here.
   */
  private readonly lastByChannel = new Map<string, bigint>();
  private readonly now: () => number;
  /** Per client address, over all its connections: posts and history reads. */
  readonly ipSend: PerAddressRate;
  readonly ipHistory: PerAddressRate;

  constructor(
    readonly deps: DoorDeps,
    readonly o: DoorOptions,
  ) {
    this.now = deps.now ?? Date.now;
    this.ipSend = new PerAddressRate(o.ipSendRatePerS, o.ipSendBurst);
    this.ipHistory = new PerAddressRate(o.ipHistoryRatePerS, o.ipHistoryBurst);
    // Gap fill for a channel with no bus traffic yet starts at the first id this instance could have
    // missed: anything created after it started (snowflake = ms << 19).
    this.startWatermark = BigInt(this.now()) << 19n;
    this.postKeyPrefix = `ircb:${o.instanceId}.${randomBytes(4).toString('hex')}`;
  }

  private readonly startWatermark: bigint;

  /**
   * Prefix of every post's idempotency key (§3.5 rule 5). message-store keeps (author, key) for good, and
   * connection ids restart at 1 with the process, so the key also names this run: with a fixed
   * IRCB_INSTANCE_ID, a restarted instance would otherwise repeat old keys and its new posts would be
   * answered with old messages instead of being stored.
   */
  readonly postKeyPrefix: string;

  /** Presence releases still running (awaited at shutdown, §3.11). */
  readonly releasing = new Set<Promise<void>>();

  track(p: Promise<void>): void {
    this.releasing.add(p);
    void p.finally(() => this.releasing.delete(p));
  }

  openSession(conn: ConnectionHandle): Session {
    return new Session(this, conn, this.now);
  }

  /** READY sessions authenticated as an account, by account id (bans and deletions end them). */
  private readonly byAccount = new Map<string, Set<Session>>();

  enterAccount(accountId: string, s: Session): void {
    let set = this.byAccount.get(accountId);
    if (!set) this.byAccount.set(accountId, (set = new Set()));
    set.add(s);
  }

  leaveAccount(accountId: string, s: Session): void {
    const set = this.byAccount.get(accountId);
    if (!set) return;
    set.delete(s);
    if (set.size === 0) this.byAccount.delete(accountId);
  }

  /** Accounts with READY connections here. */
  accountIds(): string[] {
    return [...this.byAccount.keys()];
  }

  /**
   * Asks identity which connected accounts are banned or deleted and ends their connections: the safety
   * net for user events this instance missed (event bus down, identity unable to publish). Returns how many
   * connections it closed.
   */
  async recheckAccounts(identity: Pick<IdentityPort, 'revokedAccounts'>, chunk = 500): Promise<number> {
    const ids = this.accountIds();
    let closed = 0;
    for (let i = 0; i < ids.length; i += chunk) {
      const revoked = await identity.revokedAccounts(ids.slice(i, i + chunk));
      for (const [id, why] of revoked) closed += this.onAccountRevoked(id, why);
    }
    return closed;
  }

  /** identity banned or deleted the account: every connection of it ends now; returns how many. */
  onAccountRevoked(accountId: string, why: AccountRevocation): number {
    const set = this.byAccount.get(accountId);
    if (!set) return 0;
    const sessions = [...set];
    for (const s of sessions) s.revoke(why);
    return sessions.length;
  }

  /** A live event from NATS (any door, any instance). Only public channels with wire-sized names (§3.6). */
  onPosted(ev: PostedEvent): void {
    if (!ev.isPublic || ev.channelName.length === 0 || !fitsWireName(ev.channelName)) return;
    this.deliver(ev.message, ev.channelName, true);
  }

  hasDelivered(id: string): boolean {
    return this.recent.has(id);
  }

  /**
   * Watermarks taken when the event bus disconnected. Gap fills after the reconnect start here, not
   * at the moving watermark: a message can be committed (so absent from a fill's read) yet published
   * while this instance was not yet subscribed again, with an id below messages already delivered, so
   * the fill is repeated a little later from the same point (dedupe makes repeats free), and with
   * backoff while history cannot be read. The point is forgotten only then, and only if the bus was
   * not lost again meanwhile (that reconnect's fills still need it).
   */
  private gapFrom: Map<string, bigint> | undefined;
  private busLosses = 0;

  /** The event bus connection was lost: remember where every channel stood. */
  onBusDisconnected(): void {
    this.busLosses++;
    if (!this.gapFrom) this.gapFrom = new Map(this.lastByChannel);
  }

  /**
   * Fills now and again after `againMs`, repeated with backoff until history could be read (the schedule
   * subscribeChat uses, @hubbub/msg-client refillAfterReconnect), then forgets the disconnect point unless
   * the bus was lost again meanwhile.
   */
  async fillAfterReconnect(againMs = 2_000): Promise<number> {
    const losses = this.busLosses;
    let n = 0;
    const read = await refillAfterReconnect({
      fill: async () => {
        try {
          n += await this.fillGaps();
          return true;
        } catch (err) {
          this.deps.log.warn({ err, code: 'IRCB_GAP_FILL_FAILED' }, 'gap fill failed; will try again');
          return false;
        }
      },
      againMs,
      stale: () => this.busLosses !== losses,
    });
    if (read) this.gapFrom = undefined;
    return n;
  }

  /**
   * Where a channel's gap fill reads after, for watermark `from`: DEFAULT_GAP_MARGIN_MS of id time before it
   * (events of concurrently committed batches and of other message-store replicas arrive out of id
   * order, so a lower id can still have been on its way when the bus was lost), but never before what
   * this instance still remembers delivering (RecentIds: the margin re-delivers nothing) nor before it
   * started.
   */
  private fillStart(from: bigint): bigint {
    const remembered = BigInt(Math.max(0, this.now() - RECENT_IDS_TTL_MS + RECENT_IDS_SLACK_MS)) << 19n;
    const lowest = remembered > this.startWatermark ? remembered : this.startWatermark;
    return BigInt(gapFillStart(from.toString(), lowest.toString(), DEFAULT_GAP_MARGIN_MS));
  }

  /**
   * After the event bus reconnects: deliver what was posted meanwhile in every listed channel seen
   * so far (history after the last delivered id, less the margin of fillStart, oldest first), through
   * the same de-duplication. The margin has a page budget of its own, so that on a busy channel it
   * cannot use up the pages of the gap itself (past its budget the rest of it is skipped).
   */
  async fillGaps(maxPages = 50): Promise<number> {
    let n = 0;
    const from = this.gapFrom ?? this.lastByChannel;
    for (const ch of this.deps.channels.channels) {
      const watermark = from.get(ch.id) ?? this.startWatermark;
      const { truncated } = await readGap({
        from: watermark.toString(),
        start: this.fillStart(watermark).toString(),
        maxPages,
        fetch: async (after) => {
          const ms = await this.deps.store.listMessages({
            channelId: ch.id,
            before: 0n,
            after: BigInt(after),
            limit: HISTORY_PAGE,
          });
          // A short page: everything after `after` is read.
          return { messages: ms, more: ms.length >= HISTORY_PAGE };
        },
        idOf: (m) => m.id.toString(),
        onMessage: (m) => {
          if (!this.recent.has(m.id.toString())) n++;
          this.deliver(m, ch.name, true);
        },
      });
      if (truncated)
        this.deps.log.warn(
          { channel: ch.name, pages: maxPages, code: 'IRCB_GAP_FILL_TRUNCATED' },
          'gap longer than the page budget: the rest is not delivered (LIST_MESSAGES finds it)',
        );
    }
    if (n > 0) this.deps.log.info({ filled: n }, 'delivered messages missed while the event bus was down');
    return n;
  }

  /**
   * Encodes once and queues on every READY connection, at most once per id. `fromBus` marks messages
   * that came in commit order (NATS events, history) and so advance the gap-fill watermark.
   */
  deliver(m: StoredMessage, channelName: string, fromBus = false): void {
    if (fromBus) {
      const last = this.lastByChannel.get(m.channelId);
      if (last === undefined || m.id > last) this.lastByChannel.set(m.channelId, m.id);
    }
    const id = m.id.toString();
    if (!this.recent.add(id, this.now())) return;
    let bytes: Uint8Array;
    try {
      bytes = encodeMessageFrame(toWire(m, channelName));
    } catch (err) {
      this.deps.log.error({ err, id, code: 'IRCB_ERR_ENCODE' }, 'message could not be encoded');
      return;
    }
    let sent = 0;
    for (const c of this.ready) {
      // Given to this connection in a LIST_MESSAGES reply a moment ago: not again (see `listed`).
      if (this.listed.size > 0 && this.listed.get(c)?.delete(id)) continue;
      c.enqueueShared(bytes);
      sent++;
    }
    this.deps.metrics.delivered(sent);
  }

  /**
   * Ids each connection was just given in a LIST_MESSAGES reply, with when. A client catching up (history after
   * the last id it saw) while live messages arrive can read a message in history whose live copy is still on its
   * way (its post's echo, a late event); that copy is not sent to this connection, so the client gets each
   * message once (§3.6). Kept LISTED_TTL_MS (RecentIds' memory: a later live copy is suppressed anyway), at
   * most LISTED_MAX per connection (the newest kept).
   */
  private readonly listed = new Map<ConnectionHandle, Map<string, number>>();

  /** `ids` went to `c` in a LIST_MESSAGES reply. */
  noteListed(c: ConnectionHandle, ids: readonly bigint[]): void {
    if (ids.length === 0) return;
    const now = this.now();
    let l = this.listed.get(c);
    if (!l) this.listed.set(c, (l = new Map<string, number>()));
    for (const [id, at] of l) {
      if (now - at < LISTED_TTL_MS && l.size <= LISTED_MAX) break;
      l.delete(id);
    }
    for (const id of ids) {
      const k = id.toString();
      if (this.recent.has(k)) continue; // its live copy came already, or came from another connection's path
      l.delete(k);
      l.set(k, now);
    }
    while (l.size > LISTED_MAX) l.delete(l.keys().next().value!);
    if (l.size === 0) this.listed.delete(c);
  }

  /** `c` closed. */
  forgetListed(c: ConnectionHandle): void {
    this.listed.delete(c);
  }
}

export function toWire(m: StoredMessage, channelName: string): WireMessage {
  return {
    id: m.id,
    channel: channelName,
    nick: toWireNick(m.authorName),
    content: toWireContent(m.text, m.hasAttachments),
  };
}

/** One connection's application state. */
export class Session {
  private author: Author | undefined;
  private nick: string | undefined;
  private leases: PresenceLease[] = [];
  private readonly queue: Item[] = [];
  private processing = false;
  private seq = 0;
  private readonly bucket: TokenBucket;
  private readonly historyBucket: TokenBucket;
  /** This connection's keys in the door's per-address buckets. */
  private readonly ipSendKey: string;
  private readonly ipHistoryKey: string;
  /** IRCB_HISTORY_THROTTLED, IRCB_DROP_UNKNOWN_CHANNEL, IRCB_DROP_REFUSED: one line per interval each. */
  private readonly historyWaitLog: LogGate;
  private readonly unknownLog: LogGate;
  private readonly refusedLog: LogGate;
  private closed = false;
  /** Posts the peer sent before its EOF, not taken into the queue yet (see drainAfterClose). */
  private rest: Iterator<Extract<ClientFrame, { type: 'SendMessage' }>> | undefined;
  private refilling = false;
  /** Resolves drainAfterClose's promise. */
  private drained: (() => void) | undefined;
  /** The account this connection authenticated as (none for guests). */
  private accountId: string | undefined;

  constructor(
    private readonly door: Door,
    private readonly conn: ConnectionHandle,
    private readonly now: () => number,
  ) {
    this.bucket = new TokenBucket(door.o.sendRatePerS, door.o.sendBurst, now());
    this.historyBucket = new TokenBucket(door.o.historyRatePerS, door.o.historyBurst, now());
    this.historyWaitLog = new LogGate(UNKNOWN_CHANNEL_LOG_INTERVAL_MS, now);
    this.unknownLog = new LogGate(UNKNOWN_CHANNEL_LOG_INTERVAL_MS, now);
    this.refusedLog = new LogGate(UNKNOWN_CHANNEL_LOG_INTERVAL_MS, now);
    this.ipSendKey = door.ipSend.join(conn.peerAddress, now());
    this.ipHistoryKey = door.ipHistory.join(conn.peerAddress, now());
  }

  /** Decoded frames waiting to be handled (§3.2 rule 6). */
  get pendingFrames(): number {
    return this.queue.length;
  }

  get effectiveNick(): string | undefined {
    return this.nick;
  }

  onAuthenticate(nick: string): void {
    const { authenticator, metrics } = this.door.deps;
    void authenticator
      .authenticate(nick, {
        isTls: this.conn.isTls,
        clientCertFingerprint: this.conn.clientCertFingerprint,
        peerAddress: this.conn.peerAddress,
        sessionId: `${this.door.o.instanceId}:${this.conn.id}`,
      })
      .then((r) => this.finishAuth(r))
      .catch((err: unknown) => {
        this.conn.log.error({ err, code: 'IRCB_ERR_INTERNAL' }, 'authentication failed unexpectedly');
        metrics.auth('unavailable');
        if (this.conn.isOpen) this.conn.acknowledge(false, false);
      });
  }

  private finishAuth(r: AuthResult): void {
    const { metrics, presence } = this.door.deps;
    if (!this.conn.isOpen || this.closed) {
      if (r.accepted && r.lease) this.door.track(r.lease.release().catch(() => undefined));
      return;
    }
    if (!r.accepted) {
      metrics.auth(r.countFailure ? 'refused' : 'unavailable');
      this.conn.log.info({ why: r.why, counted: r.countFailure }, 'AUTHENTICATE refused');
      this.conn.acknowledge(false, r.countFailure);
      return;
    }
    metrics.auth('accepted');
    this.author = r.author;
    this.nick = r.nick;
    if (r.account) {
      this.accountId = r.account.id;
      this.door.enterAccount(r.account.id, this);
    }
    if (r.lease) this.hold(r.lease);
    this.conn.log.info({ nick: r.nick, method: r.method }, 'authenticated');
    this.conn.acknowledge(true, false);
    if (!this.conn.isOpen) return;
    this.door.ready.add(this.conn);
    if (r.account) {
      // "Who is online" in other doors (§3.4, SHOULD); best effort, never delays the ACK.
      void presence.enterAccountSession(r.account, `${this.door.o.instanceId}:${this.conn.id}`).then(
        (lease) => (this.closed ? this.door.track(lease.release().catch(() => undefined)) : this.hold(lease)),
        (err: unknown) =>
          this.conn.log.warn({ err, code: 'IRCB_PRESENCE_SESSION_FAILED' }, 'account session not registered'),
      );
    }
  }

  private hold(lease: PresenceLease): void {
    this.leases.push(lease);
  }

  /** A READY frame. SEND_MESSAGE is rate limited here, when it arrives (§3.5 rule 1). */
  onFrame(f: Exclude<ClientFrame, { type: 'Hello' } | { type: 'Authenticate' }>): void {
    switch (f.type) {
      case 'SendMessage':
        if (!this.bucket.take(this.now())) {
          this.door.deps.metrics.dropped('rate_limited');
          return;
        }
        if (this.door.ipSend.wait(this.ipSendKey, this.now()) > 0) {
          this.door.deps.metrics.dropped('rate_limited_address');
          return;
        }
        this.queue.push({
          kind: 'post',
          channel: f.channel,
          content: f.content,
          clientKey: `${this.door.postKeyPrefix}:${this.conn.id}:${++this.seq}`,
        });
        break;
      case 'ListChannels':
        this.queue.push({ kind: 'listChannels' });
        break;
      case 'ListMessages':
        this.queue.push({ kind: 'listMessages', channel: f.channel, before: f.before, after: f.after });
        break;
    }
    if (!this.processing) void this.pump();
  }

  /**
   * The connection closed: leave the broadcast set, release presence at once (§3.9). Posts already
   * decoded still go to message-store (D13: frames before a bad one take effect); replies are dropped.
   */
  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.door.ipSend.leave(this.ipSendKey);
    this.door.ipHistory.leave(this.ipHistoryKey);
    this.door.ready.delete(this.conn);
    this.door.forgetListed(this.conn);
    if (this.accountId !== undefined) this.door.leaveAccount(this.accountId, this);
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i]!.kind !== 'post') this.queue.splice(i, 1);
    const leases = this.leases;
    this.leases = [];
    for (const l of leases)
      this.door.track(
        l
          .release()
          .catch((err: unknown) =>
            this.conn.log.warn({ err, code: 'IRCB_PRESENCE_RELEASE_FAILED' }, 'presence release failed'),
          ),
      );
    if (this.rest) this.refill();
    this.checkDrained();
  }

  /**
   * The peer finished sending (READY; called right before the connection closes): the posts it sent
   * before still go to message-store after the close, in order and rate limited like any other (D13).
   * They are taken from `frames` as the queue makes room, so at most IRCB_MAX_PENDING_FRAMES wait at a
   * time. Resolves once every one is handled (the transport keeps the connection counted until then).
   */
  drainAfterClose(frames: Iterator<Extract<ClientFrame, { type: 'SendMessage' }>>): Promise<void> {
    if (this.closed || !this.author) return Promise.resolve();
    this.rest = frames;
    return new Promise<void>((r) => (this.drained = r));
  }

  private checkDrained(): void {
    const d = this.drained;
    if (d && !this.processing && !this.rest && this.queue.length === 0) {
      this.drained = undefined;
      d();
    }
  }

  private refill(): void {
    if (this.refilling) return;
    this.refilling = true;
    try {
      while (this.rest && this.queue.length < this.door.o.maxPendingFrames) {
        const n = this.rest.next();
        if (n.done) this.rest = undefined;
        else this.onFrame(n.value);
      }
    } finally {
      this.refilling = false;
    }
  }

  /**
   * The account was banned or deleted: nothing more is posted for it (queued frames are dropped, a batch
   * already with message-store still completes) and the connection ends at once.
   */
  revoke(why: AccountRevocation): void {
    if (this.closed) return;
    this.conn.log.info(
      { nick: this.nick, why, code: 'IRCB_ACCOUNT_REVOKED' },
      'account banned, deleted or kicked: closing',
    );
    this.author = undefined;
    this.queue.length = 0;
    this.rest = undefined;
    this.conn.close(`IRCB_CLOSE_ACCOUNT_${why.toUpperCase()}`);
  }

  /** Waits until the queue is empty (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.processing || this.queue.length > 0) await new Promise((r) => setImmediate(r));
  }

  private async pump(): Promise<void> {
    this.processing = true;
    try {
      while (this.queue.length > 0) {
        const head = this.queue[0]!;
        if (head.kind === 'post') {
          let n = 1;
          while (n < this.queue.length && n < MAX_POST_BATCH && this.queue[n]!.kind === 'post') n++;
          const batch = this.queue.splice(0, n) as Extract<Item, { kind: 'post' }>[];
          this.maybeResume();
          await this.post(batch);
        } else {
          if (head.kind === 'listMessages' && !this.closed && (await this.historyTurn())) continue;
          this.queue.shift();
          this.maybeResume();
          if (this.closed) continue;
          if (head.kind === 'listChannels') this.listChannels();
          else await this.listMessages(head);
        }
      }
    } catch (err) {
      this.conn.log.error({ err, code: 'IRCB_ERR_INTERNAL' }, 'frame handling failed');
      if (this.closed) {
        this.queue.length = 0;
        this.rest = undefined;
      }
    } finally {
      this.processing = false;
      this.checkDrained();
    }
  }

  /**
   * LIST_MESSAGES over the connection's history rate waits for its token instead of being dropped: the reply is
   * the protocol's only answer, and every frame behind it keeps its order. While it waits the queue fills and
   * reading pauses (§3.2 rule 6). Returns true after a wait (the caller looks at the queue again).
   */
  private async historyTurn(): Promise<boolean> {
    const ms = this.historyBucket.wait(this.now()) || this.door.ipHistory.wait(this.ipHistoryKey, this.now());
    if (ms === 0) return false;
    this.door.deps.metrics.historyDelayed();
    if (this.historyWaitLog.due() !== undefined)
      this.conn.log.info({ code: 'IRCB_HISTORY_THROTTLED', waitMs: ms }, 'LIST_MESSAGES over the rate waits');
    await new Promise((r) => setTimeout(r, ms));
    return true;
  }

  private maybeResume(): void {
    if (this.queue.length >= this.door.o.maxPendingFrames) return;
    if (!this.closed) this.conn.resumeReading();
    else if (this.rest) this.refill();
  }

  private async post(batch: readonly Extract<Item, { kind: 'post' }>[]): Promise<void> {
    const { channels, store, metrics } = this.door.deps;
    const author = this.author;
    if (!author) return;
    const requests: PostRequest[] = [];
    const names: string[] = [];
    for (const p of batch) {
      const ch = channels.lookup(p.channel) ?? (await channels.resolve(p.channel));
      if (!ch) {
        metrics.dropped('unknown_channel');
        if (this.unknownLog.due() !== undefined) {
          this.conn.log.info(
            { code: 'IRCB_DROP_UNKNOWN_CHANNEL', channel: p.channel },
            'SEND_MESSAGE to an unknown channel dropped',
          );
        }
        continue;
      }
      requests.push({ channelId: ch.id, content: p.content, clientKey: p.clientKey });
      names.push(ch.name);
    }
    if (requests.length === 0) return;
    let outcomes;
    try {
      outcomes = await store.postBatch(author, requests);
    } catch (err) {
      metrics.dropped('store_unavailable', requests.length);
      this.conn.log.warn(
        {
          code: 'IRCB_ERR_STORE_UNAVAILABLE',
          count: requests.length,
          err: err instanceof Error ? err.message : String(err),
        },
        'message-store did not confirm; messages dropped',
      );
      return;
    }
    let posted = 0;
    for (let i = 0; i < outcomes.length; i++) {
      const o = outcomes[i]!;
      if (o.ok) {
        posted++;
        this.door.deliver(o.message, names[i]!);
      } else {
        metrics.dropped('refused');
        // What a peer sends decides this (e.g. a NUL character): logged at most once per interval, like
        // unknown channels, with the number left out since.
        const suppressed = this.refusedLog.due();
        if (suppressed !== undefined)
          this.conn.log.info(
            { code: 'IRCB_DROP_REFUSED', reason: o.reason, suppressed },
            'message-store refused a message',
          );
      }
    }
    metrics.posted(posted);
  }

  /** The reply ChannelDirectory encoded once per change of the list (READY only, like every reply here). */
  private listChannels(): void {
    this.conn.enqueueShared(this.door.deps.channels.listFrame);
  }

  private async listMessages(q: Extract<Item, { kind: 'listMessages' }>): Promise<void> {
    const { channels, store } = this.door.deps;
    // §3.8: unknown, private or over-long channel → empty reply, no side effect.
    const ch = channels.lookup(q.channel);
    let messages: WireMessage[] = [];
    // Any u64 is a legal bound on the wire. `after` ≥ 2^63 leaves no id; `before` > 2^63 - 1 excludes
    // no id, so it is sent as 2^63 - 1 (still a bound: the newest 100 are chosen, as §3.8 says).
    if (ch && !(q.before !== 0n && q.before <= q.after + 1n) && q.after <= MAX_ID) {
      const before = q.before > MAX_ID ? MAX_ID : q.before;
      try {
        const stored = await withTimeout(
          store.listMessages({ channelId: ch.id, before, after: q.after, limit: HISTORY_PAGE }),
          this.door.o.backendTimeoutMs,
          'list messages',
        );
        messages = stored.map((m) => toWire(m, ch.name));
      } catch (err) {
        this.conn.log.warn(
          { code: 'IRCB_ERR_STORE_UNAVAILABLE', err: err instanceof Error ? err.message : String(err) },
          'history unavailable; empty LIST_MESSAGES reply',
        );
      }
    }
    if (this.closed) return;
    this.conn.send({ type: 'ListMessages', messages });
    this.door.noteListed(
      this.conn,
      messages.map((m) => m.id),
    );
  }
}
