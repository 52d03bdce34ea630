/**
 * The push extension (spec §2.8): subscriptions, who may see which change, and the `update` frames.
 *
 * Rules:
 * 1. One subscription per connection, bound to a user and the session that subscribed.
 * 2. Authorization at delivery time: public channels go to every subscriber; private ones to the
 *    subscribers who are members now. Membership comes from channel events, else from one lookup with the
 *    door's system principal, and is cached. Channel events are at-most-once (NATS core), so a cached
 *    member list is trusted only while fresh: for `factsMaxAgeMs` after it was learned, and only until
 *    `forgetChannels()` (called when NATS disconnects or reconnects). The next event of a private flow
 *    with stale facts looks them up again (one lookup per flow, whatever the number of subscribers); if
 *    that lookup fails the stale facts are dropped and the event is not pushed (fail closed; clients
 *    catch up with get_update). Public channels never need a lookup.
 * 3. Each update frame is encoded once per event and the same bytes are written to every recipient.
 * 4. Events of one channel are delivered in arrival order, also while a membership lookup (first or
 *    refresh) is pending.
 * 5. A subscription ends with the final 401 frame when its session is revoked or expires.
 * 6. A channel event older than the facts held (its change time before theirs) is ignored, neither cached nor
 *    pushed: message-store's outbox may publish a change again after newer ones (a sweep, a backlog drain), and
 *    an old member list must not bring back a removed member. Change times of one channel strictly increase.
 */
import type { Logger } from '@hubbub/runtime';
import { encodeEncodedData, encodeEnvelope, encodeFlow, encodeMessage, UPDATE_TYPE } from '../protocol/frames';
import { Detail } from '../protocol/status';
import { fullFlow, fullMessage, isMtpVisible, sec } from './mapping';
import type {
  ChannelInfo,
  ChannelKind,
  Clock,
  MessageChange,
  MessageStorePort,
  StoredMessage,
  TokenInfo,
} from './ports';

/** A connection as the hub sees it. */
export interface PushTarget {
  readonly id: string;
  /** Queues an update frame (held while a request is in progress, bounded by the output limit). */
  push(frame: Buffer): void;
  /** Called when the subscription ended by token (after the final frame was pushed). */
  subscriptionEnded(): void;
}

interface Subscription {
  readonly target: PushTarget;
  readonly userId: string;
  readonly sessionId: string;
  readonly expiresAtMs: number;
  /** The token the subscription was made with (re-verified by `recheck`; never logged). */
  readonly token: string;
}

interface ChannelFacts {
  readonly isPublic: boolean;
  readonly visible: boolean;
  readonly members: ReadonlySet<string>;
  /** When the facts were learned (for a lookup: when it was sent, the read is no older). */
  readonly atMs: number;
  /** `PushHub.epoch` when they were learned: facts of an older epoch are stale (rule 2). */
  readonly epoch: number;
  /** The channel's change time the facts describe (rule 6). */
  readonly changedAtMs: number;
}

export interface PushHubMetrics {
  framesPushed(n: number): void;
  subscriptions(n: number): void;
  /** A channel event older than the facts held was ignored (rule 6). */
  staleChannelEvent?(): void;
}

const MAX_CACHED_CHANNELS = 50_000;

export class PushHub {
  private readonly subs = new Map<PushTarget, Subscription>();
  private readonly byUser = new Map<string, Set<Subscription>>();
  private readonly channels = new Map<string, ChannelFacts>();
  private readonly pending = new Map<string, Promise<void>>();
  /** Bumped by forgetChannels(): O(1) staleness for every cached channel (rule 2). */
  private epoch = 0;

  constructor(
    private readonly deps: {
      msg: MessageStorePort;
      log: Logger;
      clock: Clock;
      /** How long cached channel facts are trusted (rule 2). */
      factsMaxAgeMs: number;
      metrics?: PushHubMetrics;
    },
  ) {}

  get size(): number {
    return this.subs.size;
  }

  /** Active before it returns (spec §2.8). Re-subscribing replaces the previous subscription. */
  subscribe(target: PushTarget, token: TokenInfo, rawToken: string): void {
    this.remove(target);
    const s: Subscription = {
      target,
      userId: token.userId,
      sessionId: token.sessionId,
      expiresAtMs: token.expiresAtMs,
      token: rawToken,
    };
    this.subs.set(target, s);
    let set = this.byUser.get(s.userId);
    if (!set) this.byUser.set(s.userId, (set = new Set()));
    set.add(s);
    this.deps.metrics?.subscriptions(this.subs.size);
  }

  unsubscribe(target: PushTarget): void {
    this.remove(target);
  }

  isSubscribed(target: PushTarget): boolean {
    return this.subs.has(target);
  }

  /** A message was posted, edited or deleted somewhere. */
  onMessage(
    _change: MessageChange,
    m: StoredMessage,
    channel: { id: string; isPublic: boolean; kind: ChannelKind },
  ): void {
    if (this.subs.size === 0) return;
    this.inChannelOrder(channel, (facts) => {
      if (!facts.visible) return;
      const now = this.deps.clock.nowMs();
      const T = sec(now);
      const frame = updateFrame(T, [], [encodeMessage(fullMessage(m))]);
      this.deliver(facts, frame, now);
    });
  }

  /** A channel was created or changed (members included). */
  onChannel(c: ChannelInfo): void {
    const known = this.channels.get(c.id);
    if (known && c.changedAtMs < known.changedAtMs) {
      this.deps.metrics?.staleChannelEvent?.();
      return; // rule 6
    }
    const now = this.deps.clock.nowMs();
    const facts = this.factsOf(c, now, this.epoch);
    this.remember(c.id, facts);
    if (this.subs.size === 0 || !facts.visible) return;
    this.deliver(facts, updateFrame(sec(now), [encodeFlow(fullFlow(c))], []), now);
  }

  /**
   * Channel events may have been lost (NATS disconnected or reconnected): every cached channel fact becomes
   * stale, so the next event of each private flow looks its members up again (rule 2).
   */
  forgetChannels(): void {
    this.epoch++;
  }

  /** identity revoked sessions: their subscriptions end with the final 401 frame. */
  onSessionsRevoked(userId: string, sessionIds: readonly string[], all: boolean): void {
    const set = this.byUser.get(userId);
    if (!set) return;
    const ids = new Set(sessionIds);
    for (const s of [...set]) if (all || ids.size === 0 || ids.has(s.sessionId)) this.end(s);
  }

  /**
   * Asks identity about every subscription's token again and ends (final 401 frame) those it refuses: the
   * safety net for revocations whose NATS event this instance missed. `verify` rejects with `refused(e)`
   * true for a refusal; any other failure stops the round (identity unavailable: the next round retries)
   * and is rethrown. Returns how many subscriptions ended.
   */
  async recheck(
    verify: (token: string, userId: string) => Promise<unknown>,
    refused: (e: unknown) => boolean,
    concurrency = 16,
  ): Promise<number> {
    const byToken = new Map<string, Subscription[]>();
    for (const s of this.subs.values()) {
      const list = byToken.get(s.token);
      if (list) list.push(s);
      else byToken.set(s.token, [s]);
    }
    const work = [...byToken.values()];
    let ended = 0;
    let failure: Error | undefined;
    const worker = async (): Promise<void> => {
      for (let list = work.pop(); list && failure === undefined; list = work.pop()) {
        try {
          await verify(list[0]!.token, list[0]!.userId);
        } catch (e) {
          if (!refused(e)) {
            failure ??= e instanceof Error ? e : new Error('token recheck failed', { cause: e });
            return;
          }
          for (const s of list) {
            if (this.subs.get(s.target) !== s) continue;
            this.end(s);
            ended++;
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
    if (failure !== undefined) throw failure;
    return ended;
  }

  /** Ends subscriptions whose token expired (called periodically by the transport). */
  sweep(nowMs: number): void {
    for (const s of [...this.subs.values()]) if (s.expiresAtMs <= nowMs) this.end(s);
  }

  close(): void {
    this.subs.clear();
    this.byUser.clear();
    this.deps.metrics?.subscriptions(0);
  }

  private deliver(facts: ChannelFacts, frameText: string, nowMs: number): void {
    const recipients: Subscription[] = [];
    if (facts.isPublic) {
      for (const s of this.subs.values()) recipients.push(s);
    } else {
      for (const u of facts.members) {
        const set = this.byUser.get(u);
        if (set) for (const s of set) recipients.push(s);
      }
    }
    if (recipients.length === 0) return;
    const frame = Buffer.from(frameText, 'utf8');
    let n = 0;
    for (const s of recipients) {
      if (s.expiresAtMs <= nowMs) {
        this.end(s);
        continue;
      }
      s.target.push(frame);
      n++;
    }
    this.deps.metrics?.framesPushed(n);
  }

  private end(s: Subscription): void {
    if (this.subs.get(s.target) !== s) return;
    this.remove(s.target);
    const T = sec(this.deps.clock.nowMs());
    s.target.push(Buffer.from(encodeEnvelope(UPDATE_TYPE, 'UNAUTHORIZED', Detail.authFailed, 'null', T), 'utf8'));
    s.target.subscriptionEnded();
  }

  private remove(target: PushTarget): void {
    const s = this.subs.get(target);
    if (!s) return;
    this.subs.delete(target);
    const set = this.byUser.get(s.userId);
    set?.delete(s);
    if (set && set.size === 0) this.byUser.delete(s.userId);
    this.deps.metrics?.subscriptions(this.subs.size);
  }

  private remember(id: string, facts: ChannelFacts): void {
    if (!this.channels.has(id) && this.channels.size >= MAX_CACHED_CHANNELS) {
      const oldest = this.channels.keys().next();
      if (!oldest.done) this.channels.delete(oldest.value);
    }
    this.channels.set(id, facts);
  }

  private factsOf(c: ChannelInfo, atMs: number, epoch: number): ChannelFacts {
    return {
      isPublic: c.isPublic,
      visible: isMtpVisible(c),
      members: new Set(c.memberIds),
      atMs,
      epoch,
      changedAtMs: c.changedAtMs,
    };
  }

  private isFresh(f: ChannelFacts): boolean {
    return f.epoch === this.epoch && this.deps.clock.nowMs() - f.atMs < this.deps.factsMaxAgeMs;
  }

  /** Runs `fn` with the channel's facts, in per-channel arrival order (rule 4). */
  private inChannelOrder(
    ref: { id: string; isPublic: boolean; kind: ChannelKind },
    fn: (f: ChannelFacts) => void,
  ): void {
    const id = ref.id;
    const queued = this.pending.get(id);
    if (queued === undefined) {
      const known = this.channels.get(id);
      if (known && this.isFresh(known)) {
        fn(known);
        return;
      }
      // Public channels need no member list: every subscriber may see them. Stale facts that say public
      // still serve (they only add whether the channel is archived): no lookup.
      if (ref.isPublic) {
        fn(known?.isPublic ? known : publicFacts(ref));
        return;
      }
    }
    // Events queued behind a lookup use what it (or a channel event meanwhile) left: no lookup of their own.
    const next = (queued ?? this.refresh(id)).then(() => {
      const facts = this.channels.get(id) ?? (ref.isPublic ? publicFacts(ref) : undefined);
      if (facts) fn(facts);
    });
    this.pending.set(id, next);
    void next.finally(() => {
      if (this.pending.get(id) === next) this.pending.delete(id);
    });
  }

  /** Looks the channel up and caches the answer; never rejects. */
  private refresh(id: string): Promise<void> {
    const before = this.channels.get(id);
    // Stamped with the time and epoch of the request: if NATS reconnects while it is in flight, the answer
    // may predate events lost meanwhile, so it serves the queued events but is already stale for later ones.
    const atMs = this.deps.clock.nowMs();
    const epoch = this.epoch;
    // A channel event that arrived during the lookup is kept: the answer may have been read before it.
    const replaced = (): boolean => {
      const now = this.channels.get(id);
      return now !== before && now !== undefined;
    };
    return this.deps.msg.lookupChannel(undefined, id).then(
      (c) => {
        if (replaced()) return;
        if (c) this.remember(id, this.factsOf(c, atMs, epoch));
        else this.channels.delete(id);
      },
      (err: unknown) => {
        // Fail closed: stale members must not keep receiving just because message-store is unreachable.
        if (!replaced()) this.channels.delete(id);
        this.deps.log.warn(
          { err, channelId: id, code: 'WSM_ERR_BACKEND_UNAVAILABLE' },
          'channel lookup for push failed',
        );
      },
    );
  }
}

// Facts of public channels nobody told us about: no member list needed, so no lookup and no allocation.
// Never cached (atMs and epoch are never read).
const PUBLIC_VISIBLE: ChannelFacts = {
  isPublic: true,
  visible: true,
  members: new Set(),
  atMs: 0,
  epoch: -1,
  changedAtMs: 0,
};
const PUBLIC_HIDDEN: ChannelFacts = { ...PUBLIC_VISIBLE, visible: false };

function publicFacts(ref: { kind: ChannelKind }): ChannelFacts {
  return ref.kind === 'group' || ref.kind === 'channel' ? PUBLIC_VISIBLE : PUBLIC_HIDDEN;
}

function updateFrame(T: number, flows: string[], messages: string[]): string {
  return encodeEnvelope(
    UPDATE_TYPE,
    'OK',
    undefined,
    encodeEncodedData({ time: T, user: [], flow: flows, message: messages }),
    T,
  );
}
