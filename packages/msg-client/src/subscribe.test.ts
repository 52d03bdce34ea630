import type { Msg, NatsConnection } from '@nats-io/nats-core';
import { encodeJson } from '@hubbub/nats';
import { messagesV1, subjects } from '@hubbub/proto';
import { createLogger } from '@hubbub/runtime';
import { waitFor } from '@hubbub/testing';
import { gapFillStart, peekPostedId, subscribeChat } from './subscribe';
import type { HistoryFetcher } from './subscribe';

describe('peekPostedId', () => {
  it('finds the message id in the proto3 JSON of a MessageEvent', () => {
    const ev = messagesV1.MessageEvent.fromPartial({
      kind: messagesV1.MessageEventKind.MESSAGE_EVENT_KIND_POSTED,
      message: { id: '941303251838349312', channelId: '7', text: 'has "id":"1" inside' },
      channel: { id: '7', slug: 'general' },
    });
    expect(peekPostedId(encodeJson(messagesV1.MessageEvent, ev))).toBe('941303251838349312');
  });
  it('returns undefined when the shape is unexpected (the caller decodes fully)', () => {
    expect(peekPostedId(Buffer.from('{"kind":"x"}'))).toBeUndefined();
    expect(peekPostedId(Buffer.from('{"message":{"id":"12x"}}'))).toBeUndefined();
  });
});

// ------------------------------------------------------------------------------------------------ gap fill

type Status = { type: string };

/** A NatsConnection as far as subscribeChat uses it: subscriptions that the test feeds, a status stream it drives. */
function fakeNats(prefix: string) {
  const callbacks: ((err: Error | null, msg: Msg) => void)[] = [];
  const queued: Status[] = [];
  const waiters: ((r: IteratorResult<Status>) => void)[] = [];
  let done = false;
  const status = {
    [Symbol.asyncIterator]() {
      return this;
    },
    next(): Promise<IteratorResult<Status>> {
      const s = queued.shift();
      if (s) return Promise.resolve({ value: s, done: false });
      if (done) return Promise.resolve({ value: undefined, done: true });
      return new Promise((r) => waiters.push(r));
    },
    return(): Promise<IteratorResult<Status>> {
      done = true;
      return Promise.resolve({ value: undefined, done: true });
    },
    stop(): void {
      done = true;
      for (const w of waiters.splice(0)) w({ value: undefined, done: true });
    },
  };
  const nc = {
    subscribe: (_subject: string, opts: { callback: (err: Error | null, msg: Msg) => void }) => {
      callbacks.push(opts.callback);
      return { unsubscribe: () => undefined };
    },
    status: () => status,
  } as unknown as NatsConnection;
  return {
    nc,
    publish(m: messagesV1.Message): void {
      const ev = messagesV1.MessageEvent.fromPartial({
        kind: messagesV1.MessageEventKind.MESSAGE_EVENT_KIND_POSTED,
        message: m,
        channel: { id: m.channelId, slug: 'general' },
      });
      const msg = {
        subject: subjects(prefix).chat(m.channelId, 'posted'),
        data: encodeJson(messagesV1.MessageEvent, ev),
      };
      for (const cb of callbacks) cb(null, msg as Msg);
    },
    status(type: 'disconnect' | 'reconnect'): void {
      const w = waiters.shift();
      if (w) w({ value: { type }, done: false });
      else queued.push({ type });
    },
  };
}

/** A snowflake id (dum-dum-irc layout): milliseconds, worker id, sequence. */
const sf = (ms: number, worker: number, seq = 0): string =>
  ((BigInt(ms) << 19n) | (BigInt(worker) << 12n) | BigInt(seq)).toString();
const T = 1_800_000_000_000;
const msgOf = (id: string): messagesV1.Message => messagesV1.Message.fromPartial({ id, channelId: '7', text: id });
const byId = (a: messagesV1.Message, b: messagesV1.Message): number =>
  a.id.length !== b.id.length ? a.id.length - b.id.length : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
const log = createLogger({ service: 'msg-client-test', level: 'silent' });

/** History of channel 7 as message-store answers ListMessages(after): oldest first, pages of 100. */
function historyOf(visible: (call: number) => messagesV1.Message[]) {
  const calls: { channelId: string; after: string }[] = [];
  const fetch: HistoryFetcher = (channelId, after) => {
    calls.push({ channelId, after });
    const all = visible(calls.length)
      .filter((m) => m.channelId === channelId && (after === '' || BigInt(m.id) > BigInt(after)))
      .sort(byId);
    return Promise.resolve({ messages: all.slice(0, 100), more: all.length > 100 });
  };
  return { calls, fetch };
}

describe('gapFillStart', () => {
  it('starts the margin before the highest id, never before the first id seen', () => {
    const top = sf(T, 3, 7);
    expect(BigInt(gapFillStart(top, sf(T - 60_000, 1), 10_000))).toBe(BigInt(sf(T - 10_000, 0)) - 1n);
    expect(gapFillStart(top, sf(T - 5_000, 1), 10_000)).toBe(sf(T - 5_000, 1));
    expect(gapFillStart(top, top, 10_000)).toBe(top);
    expect(gapFillStart(top, sf(T - 60_000, 1), 0)).toBe((BigInt(sf(T, 0)) - 1n).toString());
    expect(gapFillStart('12x', '1', 10_000)).toBe('12x');
  });
});

describe('subscribeChat gap fill', () => {
  it('fills a message whose event came after a higher id and was missed while disconnected', async () => {
    const f = fakeNats('tgap');
    const first = msgOf(sf(T - 5_000, 1));
    const top = msgOf(sf(T, 1));
    // Committed just before `top` (another batch or replica) but published after the door lost NATS.
    const late = msgOf(sf(T - 2, 2));
    // Posted before this subscription saw the channel: not this door's to push.
    const before = msgOf(sf(T - 6_000, 2));
    const h = historyOf(() => [before, first, late, top]);
    const got: string[] = [];
    const chat = subscribeChat({
      nc: f.nc,
      prefix: 'tgap',
      log,
      onEvent: (ev) => got.push(ev.message!.id),
      fetchHistory: h.fetch,
      refillAfterMs: 1,
    });
    try {
      f.publish(first);
      f.publish(top);
      f.status('disconnect');
      f.status('reconnect');
      await waitFor(() => h.calls.length >= 2, 2_000, 'fill and refill');
      await turn();
      expect(got).toEqual([first.id, top.id, late.id]);
      expect(chat.stats.filled).toBe(1);
    } finally {
      chat.close();
    }
  });

  it('on a busy channel the margin cannot use up the pages of the gap itself', async () => {
    const f = fakeNats('tbusy');
    const first = msgOf(sf(T - 9_000, 1));
    const top = msgOf(sf(T, 1));
    // 350 messages in the margin (4 pages) seen live, then two missed after `top` while disconnected.
    const margin = Array.from({ length: 350 }, (_, i) => msgOf(sf(T - 8_000 + i, 1)));
    const missed = [msgOf(sf(T + 10, 1)), msgOf(sf(T + 20, 1))];
    const h = historyOf(() => [first, ...margin, top, ...missed]);
    const got: string[] = [];
    const chat = subscribeChat({
      nc: f.nc,
      prefix: 'tbusy',
      log,
      onEvent: (ev) => got.push(ev.message!.id),
      fetchHistory: h.fetch,
      refillAfterMs: 60_000,
      maxGapPages: 2,
    });
    try {
      for (const m of [first, ...margin, top]) f.publish(m);
      f.status('disconnect');
      f.status('reconnect');
      await waitFor(() => got.length === 354, 2_000, 'the missed messages');
      expect(got.slice(-2)).toEqual(missed.map((m) => m.id));
      expect(chat.stats.filled).toBe(2);
    } finally {
      chat.close();
    }
  });

  it.each([
    [250, 200, true],
    [150, 150, false],
  ])(
    'a gap of %i messages with a budget of 2 pages delivers %i, oldest first; called truncated (MSG_GAP_FILL_TRUNCATED): %s',
    async (length, delivered, truncated) => {
      const f = fakeNats(`ttrunc${length}`);
      const top = msgOf(sf(T, 1));
      const missed = Array.from({ length }, (_, i) => msgOf(sf(T + 10 + i, 1)));
      const h = historyOf(() => [top, ...missed]);
      const lines: Record<string, unknown>[] = [];
      const got: string[] = [];
      const chat = subscribeChat({
        nc: f.nc,
        prefix: `ttrunc${length}`,
        log: createLogger({
          service: 'msg-client-test',
          level: 'warn',
          destination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) },
        }),
        onEvent: (ev) => got.push(ev.message!.id),
        fetchHistory: h.fetch,
        refillAfterMs: 60_000,
        gapMarginMs: 0,
        maxGapPages: 2,
      });
      try {
        f.publish(top);
        f.status('disconnect');
        f.status('reconnect');
        await waitFor(() => got.length === 1 + delivered, 2_000, 'the gap');
        await waitFor(() => h.calls.length === 2, 2_000, 'two pages read');
        await turn();
        expect(got).toEqual([top.id, ...missed.slice(0, delivered).map((m) => m.id)]);
        const warned = lines.filter((l) => l['code'] === 'MSG_GAP_FILL_TRUNCATED');
        expect(warned).toEqual(truncated ? [expect.objectContaining({ channelId: '7', pages: 2 })] : []);
      } finally {
        chat.close();
      }
    },
  );

  it('keeps the disconnect point for the refill of a later reconnect (connection flapping)', async () => {
    const f = fakeNats('tflap');
    const first = msgOf(sf(T - 60_000, 1));
    const m300 = msgOf(sf(T, 1));
    // A lower id that becomes visible in history only after the first reconnect's refill has run.
    const m250 = msgOf(sf(T - 20_000, 1));
    const h = historyOf((call) => (call === 1 ? [first] : call <= 3 ? [first, m300] : [first, m250, m300]));
    const got: string[] = [];
    const chat = subscribeChat({
      nc: f.nc,
      prefix: 'tflap',
      log,
      onEvent: (ev) => got.push(ev.message!.id),
      fetchHistory: h.fetch,
      refillAfterMs: 50,
      gapMarginMs: 0,
    });
    try {
      f.publish(first);
      f.status('disconnect');
      f.status('reconnect');
      await waitFor(() => h.calls.length >= 1, 2_000, 'first fill');
      await turn();
      // Lost again while the first reconnect waits for its refill.
      f.status('disconnect');
      f.status('reconnect');
      await waitFor(() => h.calls.length >= 4, 2_000, 'both refills');
      await turn();
      expect(h.calls.every((c) => c.after === first.id)).toBe(true);
      expect(got).toEqual([first.id, m300.id, m250.id]);
    } finally {
      chat.close();
    }
  });

  it('repeats a gap fill that could not read history until it can', async () => {
    const f = fakeNats('tfail');
    const first = msgOf(sf(T - 60_000, 1));
    const missed = msgOf(sf(T, 1));
    let calls = 0;
    const h = historyOf(() => [first, missed]);
    const fetch: HistoryFetcher = (channelId, after) => {
      calls++;
      // message-store unreachable for the fill right after the reconnect and for the refill
      if (calls <= 2) return Promise.reject(new Error('UNAVAILABLE'));
      return h.fetch(channelId, after);
    };
    const got: string[] = [];
    const chat = subscribeChat({
      nc: f.nc,
      prefix: 'tfail',
      log,
      onEvent: (ev) => got.push(ev.message!.id),
      fetchHistory: fetch,
      refillAfterMs: 1,
    });
    try {
      f.publish(first);
      f.status('disconnect');
      f.status('reconnect');
      await waitFor(() => got.includes(missed.id), 2_000, 'gap filled after history came back');
      expect(got).toEqual([first.id, missed.id]);
      expect(h.calls[0]).toEqual({ channelId: '7', after: first.id });
    } finally {
      chat.close();
    }
  });
});
