/**
 * The doors' chat-event subscription: one NATS subscription for every channel's message events, each event
 * delivered once (message-store publishes at-least-once), and gaps closed from history after a reconnect.
 *
 * Rules:
 * 1. Dedupe key: `posted` events by message id; `edited`/`deleted` by id + kind + changed_at (an edit is a
 *    new fact, its repeat is not). Keys live in a bounded LRU (default 100 000).
 * 2. For every channel seen, the highest posted id is remembered with the channel's routing facts. After a
 *    NATS reconnect (or a `fillGaps()` call) history from a little before that id is fetched page by page and
 *    delivered as `posted` events, through the same dedupe, so what arrived live is never delivered twice.
 *    Events do not arrive in id order (message-store commits up to four batches at once and publishes in
 *    commit order; replicas interleave), so a lower id can still be on its way when the connection drops: the
 *    fill starts `gapMarginMs` of snowflake time before the highest id, but never before the first id seen in
 *    the channel (older messages were never this subscription's to deliver). A fill that could not read
 *    history is repeated with backoff until it could; only then is the point where the connection was lost
 *    forgotten.
 * 3. Edits and deletes made while disconnected are not replayed (ws-messenger's get_update and every
 *    history read show them); only posts are gap-filled.
 * 4. A handler that throws is logged and does not stop the subscription.
 * 5. While `idle()` says nobody consumes events, a posted event is recorded from its bytes (rules 1 and 2: its
 *    id from the payload's head, its channel from the subject) without being decoded or delivered, when the
 *    bytes settle everything: the payload starts as a posted event with a decimal message id, the channel has
 *    been seen, and the payload ends with that channel's routing facts exactly as last decoded. Anything else
 *    is decoded and delivered as usual.
 */
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import { decodeJson } from '@hubbub/nats';
import { messagesV1, subjects } from '@hubbub/proto';
import type { Logger } from '@hubbub/runtime';
import { LruSet } from './lru-set';

type MessageEvent = messagesV1.MessageEvent;
type Message = messagesV1.Message;

/** Fetches the messages of a channel with id > afterId, oldest first (at most one page). */
export type HistoryFetcher = (channelId: string, afterId: string) => Promise<{ messages: Message[]; more: boolean }>;

export interface SubscribeChatOptions {
  readonly nc: NatsConnection;
  readonly prefix: string;
  readonly log: Logger;
  readonly onEvent: (ev: MessageEvent) => void;
  /** Without it, reconnect gaps are not filled. */
  readonly fetchHistory?: HistoryFetcher;
  /** Only these channels (one subscription each); default every channel (`<prefix>.chat.>`). */
  readonly channelIds?: readonly string[];
  /** Dedupe memory; default DEFAULT_DEDUPE_CAPACITY. */
  readonly dedupeCapacity?: number;
  /** Delay of the repeated gap fill after a reconnect; default DEFAULT_REFILL_AFTER_MS. */
  readonly refillAfterMs?: number;
  /** Max history pages fetched per channel per gap fill; default DEFAULT_MAX_GAP_PAGES. */
  readonly maxGapPages?: number;
  /** True while no event would be used (e.g. a door without push subscribers): rule 5. */
  readonly idle?: () => boolean;
  /** How far (snowflake milliseconds) before a channel's highest id a gap fill starts; default DEFAULT_GAP_MARGIN_MS. */
  readonly gapMarginMs?: number;
}

export interface ChatSubscription {
  /** Fills gaps from history for every channel seen (also run automatically after each reconnect). */
  fillGaps(): Promise<number>;
  /**
   * Events delivered / suppressed as duplicates / filled from history / recorded undecoded while idle (rule 5),
   * since start.
   */
  readonly stats: { delivered: number; duplicates: number; filled: number; recorded: number };
  close(): void;
}

export const DEFAULT_DEDUPE_CAPACITY = 100_000;
export const DEFAULT_MAX_GAP_PAGES = 50;
/** The second gap fill after a reconnect runs this long after the first. */
export const DEFAULT_REFILL_AFTER_MS = 2_000;
/**
 * Rule 2: covers batches committed out of id order (milliseconds), events a replica confirms late (NATS flushes
 * time out after 5 s in message-store's outbox) and replicas' clock differences.
 */
export const DEFAULT_GAP_MARGIN_MS = 10_000;
/** Longest wait between repeated gap fills while history cannot be read. */
export const MAX_REFILL_RETRY_MS = 30_000;

/** The dedupe key of an event (rule 1). */
export function eventKey(ev: MessageEvent): string {
  const id = ev.message?.id ?? '';
  if (ev.kind === messagesV1.MessageEventKind.MESSAGE_EVENT_KIND_POSTED) return `p:${id}`;
  return `c:${id}:${ev.kind}:${ev.message?.changedAt?.getTime() ?? 0}`;
}

function idGreater(a: string, b: string): boolean {
  return a.length !== b.length ? a.length > b.length : a > b;
}

const DECIMAL_ID = /^[1-9][0-9]{0,19}$/;

/**
 * Where a channel's gap fill reads after (rule 2): `marginMs` of snowflake time (the bits above bit 19) before
 * `from`, but not before `lowest` (here the first id this subscription saw in the channel; irc-binary's door
 * passes the oldest id it still remembers delivering). Never after `from`.
 */
export function gapFillStart(from: string, lowest: string, marginMs: number): string {
  if (!DECIMAL_ID.test(from) || !DECIMAL_ID.test(lowest) || idGreater(lowest, from)) return from;
  const ms = BigInt(from) >> 19n;
  const margin = BigInt(Math.max(0, Math.floor(marginMs)));
  const floor = ms > margin ? ((ms - margin) << 19n) - 1n : 0n;
  const low = BigInt(lowest);
  return (floor > low ? floor : low).toString();
}

/**
 * The gap fills after a reconnect (rule 2): one now, another after `againMs` (a message committed before the first
 * read can be published after it), and more with doubling waits (at most MAX_REFILL_RETRY_MS) while a fill could
 * not read history. `fill` resolves whether it read everything. Ends early when `stale()` (the connection was lost
 * again: that reconnect's fills take over) or `closed()`. Resolves true when the point where the connection was
 * lost may be forgotten. Shared by subscribeChat and irc-binary's door.
 */
export async function refillAfterReconnect(o: {
  readonly fill: () => Promise<boolean>;
  readonly againMs: number;
  readonly stale: () => boolean;
  readonly closed?: () => boolean;
}): Promise<boolean> {
  await o.fill();
  let wait = o.againMs;
  for (;;) {
    await new Promise((r) => setTimeout(r, wait).unref());
    if (o.closed?.()) return false;
    const read = await o.fill();
    if (o.stale()) return false;
    if (read) return true;
    wait = Math.min(Math.max(1, wait) * 2, MAX_REFILL_RETRY_MS);
  }
}

/**
 * Reads one channel's gap from history, oldest first (rule 2), handing every message to `onMessage`: pages after
 * `start` (gapFillStart's answer) up to `from` are the margin, pages after `from` the gap itself, and each has a
 * budget of `maxPages` pages, so that on a busy channel re-reading the margin cannot use up the pages of the gap
 * (past its budget the rest of the margin is skipped). Resolves `truncated` when the gap had more than its budget
 * (the caller says so in its log: those messages are not delivered). A failed `fetch` rejects. Shared by
 * subscribeChat and irc-binary's door.
 */
export async function readGap<M>(o: {
  readonly from: string;
  readonly start: string;
  readonly maxPages: number;
  readonly fetch: (after: string) => Promise<{ messages: readonly M[]; more: boolean }>;
  readonly idOf: (m: M) => string;
  readonly onMessage: (m: M) => void;
  readonly stop?: () => boolean;
}): Promise<{ truncated: boolean }> {
  let cursor = o.start;
  let pages = 0;
  let marginPages = 0;
  while (!o.stop?.()) {
    if (idGreater(o.from, cursor)) {
      if (marginPages++ >= o.maxPages) {
        cursor = o.from;
        continue;
      }
    } else if (pages++ >= o.maxPages) return { truncated: true };
    const res = await o.fetch(cursor);
    for (const m of res.messages) {
      const id = o.idOf(m);
      if (idGreater(id, cursor)) cursor = id;
      o.onMessage(m);
    }
    if (!res.more || res.messages.length === 0) break;
  }
  return { truncated: false };
}

/** How message-store's proto3 JSON of a posted event begins, up to the message id's first digit. */
const POSTED_HEAD = Buffer.from('{"kind":"MESSAGE_EVENT_KIND_POSTED","message":{"id":"', 'latin1');
const POSTED_SUFFIX = '.posted';

/**
 * The message id of a posted event's payload, read from its head without parsing; undefined when the payload does
 * not start as message-store writes posted events (the caller then decodes it). Doors use it to skip events they
 * have already delivered or do not need.
 */
export function peekPostedId(data: Uint8Array): string | undefined {
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const start = POSTED_HEAD.length;
  if (b.length <= start || b.compare(POSTED_HEAD, 0, start, 0, start) !== 0) return undefined;
  let end = start;
  while (end < b.length && end - start < 20 && b[end]! >= 0x30 && b[end]! <= 0x39) end++;
  if (end === start || b[end] !== 0x22) return undefined;
  return b.toString('latin1', start, end);
}

/**
 * The bytes a posted event of this channel ends with: its last member, the routing facts, then the closing brace
 * of the event. A payload ending with them has exactly these facts (the final brace closes the event, so the
 * member before it is the event's own `channel`).
 */
function channelTail(ref: messagesV1.ChannelRef): Buffer {
  return Buffer.from(`"channel":${JSON.stringify(messagesV1.ChannelRef.toJSON(ref))}}`, 'utf8');
}

export function subscribeChat(o: SubscribeChatOptions): ChatSubscription {
  const seen = new LruSet(o.dedupeCapacity ?? DEFAULT_DEDUPE_CAPACITY);
  const channels = new Map<
    string,
    { lastId: string; readonly firstId: string; ref: messagesV1.ChannelRef; tail?: Buffer | undefined }
  >();
  const stats = { delivered: 0, duplicates: 0, filled: 0, recorded: 0 };
  const subj = subjects(o.prefix);
  let closed = false;

  const deliver = (ev: MessageEvent): boolean => {
    const m = ev.message;
    if (!m) return false;
    if (!seen.add(eventKey(ev))) {
      stats.duplicates++;
      return false;
    }
    if (ev.kind === messagesV1.MessageEventKind.MESSAGE_EVENT_KIND_POSTED && ev.channel) {
      const c = channels.get(m.channelId);
      if (!c) channels.set(m.channelId, { lastId: m.id, firstId: m.id, ref: ev.channel });
      else {
        if (c.ref !== ev.channel) {
          c.ref = ev.channel;
          c.tail = undefined;
        }
        if (idGreater(m.id, c.lastId)) c.lastId = m.id;
      }
    }
    stats.delivered++;
    try {
      o.onEvent(ev);
    } catch (err) {
      o.log.error({ err, code: 'MSG_EVENT_HANDLER_FAILED' }, 'chat event handler failed');
    }
    return true;
  };

  const onBad = (subject: string, err: unknown): void =>
    o.log.warn({ subject, err, code: 'MSG_EVENT_UNDECODABLE' }, 'undecodable chat event');
  // Rule 5: true when the event is recorded (or was a duplicate) without decoding it.
  const recordUndecoded = (subject: string, data: Uint8Array): boolean => {
    if (!subject.endsWith(POSTED_SUFFIX)) return false;
    const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const id = peekPostedId(b);
    if (id === undefined) return false;
    const dot = subject.length - POSTED_SUFFIX.length;
    const c = channels.get(subject.slice(subject.lastIndexOf('.', dot - 1) + 1, dot));
    if (!c) return false;
    const tail = (c.tail ??= channelTail(c.ref));
    if (b.length <= POSTED_HEAD.length + tail.length) return false;
    if (b.compare(tail, 0, tail.length, b.length - tail.length) !== 0) return false;
    if (!seen.add(`p:${id}`)) stats.duplicates++;
    else {
      if (idGreater(id, c.lastId)) c.lastId = id;
      stats.recorded++;
    }
    return true;
  };
  const subs: Subscription[] = (o.channelIds ? o.channelIds.map((c) => subj.chatChannel(c)) : [subj.chatAll]).map((s) =>
    o.nc.subscribe(s, {
      callback: (err, msg) => {
        if (err) return;
        if (o.idle?.() && recordUndecoded(msg.subject, msg.data)) return;
        let ev: MessageEvent;
        try {
          ev = decodeJson(messagesV1.MessageEvent, msg.data);
        } catch (e) {
          onBad(msg.subject, e);
          return;
        }
        deliver(ev);
      },
    }),
  );

  let filling: Promise<number> | undefined;
  let again = false;
  // Whether the last fill could not read some channel's history (rule 2: it is repeated).
  let lastFillFailed = false;
  const fillOnce = async (): Promise<number> => {
    lastFillFailed = false;
    const fetch = o.fetchHistory;
    if (!fetch) return 0;
    let n = 0;
    for (const [channelId, c] of channels) {
      // The page cursor is local: live events arriving during the fill advance c.lastId past messages
      // the fill has not read yet, and must not make it skip them. After a disconnect it starts where
      // the channel stood when the connection was lost (less the margin of rule 2).
      const from = gapFrom?.get(channelId) ?? c.lastId;
      const maxPages = o.maxGapPages ?? DEFAULT_MAX_GAP_PAGES;
      try {
        const { truncated } = await readGap({
          from,
          start: gapFillStart(from, c.firstId, o.gapMarginMs ?? DEFAULT_GAP_MARGIN_MS),
          maxPages,
          fetch: (after) => fetch(channelId, after),
          idOf: (m: Message) => m.id,
          onMessage: (m) => {
            if (idGreater(m.id, c.lastId)) c.lastId = m.id;
            if (deliver({ kind: messagesV1.MessageEventKind.MESSAGE_EVENT_KIND_POSTED, message: m, channel: c.ref }))
              n++;
          },
          stop: () => closed,
        });
        if (truncated)
          o.log.warn(
            { channelId, pages: maxPages, code: 'MSG_GAP_FILL_TRUNCATED' },
            'gap longer than the page budget: the rest is not delivered (readers find it in history)',
          );
      } catch (err) {
        o.log.warn({ err, channelId, code: 'MSG_GAP_FILL_FAILED' }, 'gap fill from history failed');
        lastFillFailed = true;
      }
    }
    stats.filled += n;
    if (n > 0) o.log.info({ filled: n }, 'chat gaps filled from history');
    return n;
  };
  const fillGaps = (): Promise<number> => {
    if (filling) {
      again = true;
      return filling;
    }
    filling = (async () => {
      let total = 0;
      do {
        again = false;
        total += await fillOnce();
      } while (again && !closed);
      return total;
    })().finally(() => {
      filling = undefined;
    });
    return filling;
  };

  // Where every channel stood when NATS was lost. A message can be committed (absent from a fill's
  // read) yet published before this connection is subscribed again, with an id below messages the
  // fill already delivered; so the fill runs again a little later from the same point (dedupe makes
  // repeats free), and again with backoff while history cannot be read. Then the point is forgotten,
  // unless the connection was lost again meanwhile: that reconnect's fills still need it.
  let gapFrom: Map<string, string> | undefined;
  let disconnects = 0;
  const fillAfterReconnect = async (): Promise<void> => {
    const epoch = disconnects;
    const read = await refillAfterReconnect({
      fill: async () => {
        await fillGaps();
        return !lastFillFailed;
      },
      againMs: o.refillAfterMs ?? DEFAULT_REFILL_AFTER_MS,
      stale: () => disconnects !== epoch,
      closed: () => closed,
    });
    if (read) gapFrom = undefined;
  };

  const statusIter = o.nc.status();
  void (async () => {
    for await (const s of statusIter) {
      if (closed) break;
      if (s.type === 'disconnect') {
        disconnects++;
        if (!gapFrom) gapFrom = new Map([...channels].map(([id, c]) => [id, c.lastId]));
      }
      if (s.type === 'reconnect') void fillAfterReconnect();
    }
  })();

  return {
    fillGaps,
    stats,
    close: () => {
      closed = true;
      for (const s of subs) s.unsubscribe();
      // status() is typed AsyncIterable; at run time it is a QueuedIterator with stop().
      (statusIter as Partial<{ stop(): void }>).stop?.();
    },
  };
}
