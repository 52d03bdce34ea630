/**
 * The doors' chat-event subscription: one NATS subscription for every channel's message events, each event
 * delivered once (message-store publishes at-least-once), and gaps closed from history after a reconnect.
 *
 * Rules:
 * 1. Dedupe key: `posted` events by message id; `edited`/`deleted` by id + kind + changed_at (an edit is a
 *    new fact, its repeat is not). Keys live in a bounded LRU (default 100 000).
 * 2. For every channel seen, the highest posted id is remembered with the channel's routing facts. After a
 *    NATS reconnect (or a `fillGaps()` call) history after that id is fetched page by page and delivered as
 *    `posted` events, through the same dedupe, so what arrived live is never delivered twice.
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

/** The dedupe key of an event (rule 1). */
export function eventKey(ev: MessageEvent): string {
  const id = ev.message?.id ?? '';
  if (ev.kind === messagesV1.MessageEventKind.MESSAGE_EVENT_KIND_POSTED) return `p:${id}`;
  return `c:${id}:${ev.kind}:${ev.message?.changedAt?.getTime() ?? 0}`;
}

function idGreater(a: string, b: string): boolean {
  return a.length !== b.length ? a.length > b.length : a > b;
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
  const channels = new Map<string, { lastId: string; ref: messagesV1.ChannelRef; tail?: Buffer | undefined }>();
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
      if (!c) channels.set(m.channelId, { lastId: m.id, ref: ev.channel });
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
  const fillOnce = async (): Promise<number> => {
    const fetch = o.fetchHistory;
    if (!fetch) return 0;
    let n = 0;
    for (const [channelId, c] of channels) {
      // The page cursor is local: live events arriving during the fill advance c.lastId past messages
      // the fill has not read yet, and must not make it skip them. After a disconnect it starts where
      // the channel stood when the connection was lost.
      let cursor = gapFrom?.get(channelId) ?? c.lastId;
      for (let page = 0; page < (o.maxGapPages ?? DEFAULT_MAX_GAP_PAGES) && !closed; page++) {
        let res: { messages: Message[]; more: boolean };
        try {
          res = await fetch(channelId, cursor);
        } catch (err) {
          o.log.warn({ err, channelId, code: 'MSG_GAP_FILL_FAILED' }, 'gap fill from history failed');
          break;
        }
        for (const m of res.messages) {
          if (idGreater(m.id, cursor)) cursor = m.id;
          if (idGreater(m.id, c.lastId)) c.lastId = m.id;
          if (deliver({ kind: messagesV1.MessageEventKind.MESSAGE_EVENT_KIND_POSTED, message: m, channel: c.ref })) n++;
        }
        if (!res.more || res.messages.length === 0) break;
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
  // repeats free), then the point is forgotten.
  let gapFrom: Map<string, string> | undefined;
  const fillAfterReconnect = async (): Promise<void> => {
    const snapshot = gapFrom;
    await fillGaps();
    await new Promise((r) => setTimeout(r, o.refillAfterMs ?? DEFAULT_REFILL_AFTER_MS).unref());
    if (!closed) await fillGaps();
    if (gapFrom === snapshot) gapFrom = undefined;
  };

  const statusIter = o.nc.status();
  void (async () => {
    for await (const s of statusIter) {
      if (closed) break;
      if (s.type === 'disconnect' && !gapFrom) gapFrom = new Map([...channels].map(([id, c]) => [id, c.lastId]));
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
