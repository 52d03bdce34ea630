/**
 * The publisher's hand-off, cleanup, backlog and drain across NATS disconnects, which a real server does not produce
 * at a chosen moment: a fake connection whose `info` object changes per connection (as nats.js replaces it on every
 * connect), whose status events and flushes the test drives, and a fake outbox table. The happy paths, the sweep
 * after a crash and the order across a real outage run against PostgreSQL and NATS in
 * test/integration/durability.int.test.ts.
 */
import type { NatsConnection, Status } from '@nats-io/nats-core';
import { createLogger } from '@hubbub/runtime';
import type { Repo, StoredOutboxRow } from '../store/repo';
import { FLUSH_TIMEOUT_MS, MAX_BACKLOG, OutboxPublisher, inIdOrder } from './outbox-publisher';

interface Deferred {
  resolve(): void;
  reject(e: Error): void;
}

/** A status stream the test pushes events into. */
function statusStream() {
  const items: Status[] = [];
  let wake: (() => void) | undefined;
  return {
    push(s: Status): void {
      items.push(s);
      wake?.();
    },
    iterable: {
      async *[Symbol.asyncIterator](): AsyncGenerator<Status> {
        for (;;) {
          while (items.length > 0) yield items.shift()!;
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
        }
      },
    },
  };
}

/** Polls until `cond` holds (the drain runs on timers and between event-loop turns). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1_000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`never: ${what}`);
}

function setup(o: { autoFlush?: boolean } = {}) {
  const table = new Map<string, StoredOutboxRow>();
  const published: string[] = [];
  /** Events published between two flushes. */
  const chunks: number[] = [0];
  const flushes: Deferred[] = [];
  const refused = new Set<string>();
  const status = statusStream();
  const nc = {
    info: { server_id: 'A' } as object | undefined,
    publish: (subject: string) => {
      if (refused.has(subject)) throw new Error('max_payload size exceeded');
      published.push(subject);
      chunks[chunks.length - 1]!++;
    },
    flush: () => {
      chunks.push(0);
      if (o.autoFlush) return Promise.resolve();
      return new Promise<void>((resolve, reject) => void flushes.push({ resolve, reject }));
    },
    isClosed: () => false,
    isDraining: () => false,
    status: () => status.iterable,
  };
  const del = (seqs: readonly string[]): void => {
    for (const s of seqs) table.delete(s);
  };
  const repo = {
    deleteOutbox: (seqs: readonly string[]) => Promise.resolve(del(seqs)),
    deleteOutboxIn: (_q: unknown, seqs: readonly string[]) => Promise.resolve(del(seqs)),
    tryLockOutbox: () => Promise.resolve(true),
    // Rows are committed in seq order, and a Map keeps insertion order.
    lockOutbox: (_q: unknown, f: { rows: number; exclude: readonly string[] }) => {
      const out: StoredOutboxRow[] = [];
      for (const r of table.values()) {
        if (out.length === f.rows) break;
        if (!f.exclude.includes(r.seq)) out.push(r);
      }
      return Promise.resolve(out);
    },
    lockOutboxSeqs: (_q: unknown, seqs: readonly string[]) =>
      Promise.resolve(seqs.flatMap((s) => (table.has(s) ? [table.get(s)!] : []))),
    sql: { tx: <T>(f: (q: unknown) => Promise<T>) => f({}) },
  };
  const pub = new OutboxPublisher({
    repo: repo as unknown as Repo,
    nc: nc as unknown as NatsConnection,
    log: createLogger({ service: 'outbox-unit', level: 'silent' }),
    cleanupIntervalMs: 60_000,
    sweepIntervalMs: 60_000,
    rebuild: () => Promise.resolve(new Map()),
  });
  const commit = (seq: string) => {
    const row = { seq, subject: `ev.${seq}`, payload: '{}' };
    table.set(seq, { ...row, ref: '', message_ids: null });
    return row;
  };
  // The drain flushes too: answer every flush it asks for.
  const drain = async (): Promise<void> => {
    const p = pub.drain();
    let done = false;
    void p.then(() => (done = true));
    while (!done) {
      flushes.shift()?.resolve();
      await new Promise((r) => setImmediate(r));
    }
  };
  return { table, published, chunks, flushes, refused, status, nc, pub, commit, drain };
}

afterEach(() => jest.useRealTimers());

it('keeps rows handed over on a connection that dropped before the flush, and the drain publishes them (regression)', async () => {
  const t = setup();
  t.pub.handOff([t.commit('1')]);
  // The connection drops with the event still in the socket, and nats.js reconnects before the cleanup runs:
  // the flush goes out (and is answered) on the new connection, which never saw the event.
  t.nc.info = { server_id: 'B' };
  const cleaned = t.pub.cleanup();
  t.flushes.shift()!.resolve();
  await cleaned;
  expect(t.table.has('1')).toBe(true);
  expect(t.pub.backlogged).toBe(true);
  t.published.length = 0;
  await t.drain();
  expect(t.published).toEqual(['ev.1']);
  expect(t.table.size).toBe(0);
  expect(t.pub.backlogged).toBe(false);
});

it('keeps rows handed over while a failing flush waited in the backlog, not for a cleanup that never comes (regression)', async () => {
  const t = setup();
  t.pub.handOff([t.commit('1')]);
  const cleaned = t.pub.cleanup();
  // Handed over while the flush waits (the connection is down: nats.js would drop these bytes when it redials).
  t.nc.info = undefined;
  t.pub.handOff([t.commit('2')]);
  t.flushes.shift()!.reject(new Error('connection disconnected'));
  await cleaned;
  t.nc.info = { server_id: 'B' };
  t.published.length = 0;
  await t.drain();
  expect(t.published).toEqual(['ev.1', 'ev.2']);
  expect(t.table.size).toBe(0);
});

it('gives up a flush that is never answered (half-open connection): the rows become a backlog, nothing waits for good', async () => {
  jest.useFakeTimers({ doNotFake: ['setImmediate'] });
  const t = setup();
  t.pub.handOff([t.commit('1')]);
  const cleaned = t.pub.cleanup();
  expect(t.flushes).toHaveLength(1); // asked, and never answered
  await jest.advanceTimersByTimeAsync(FLUSH_TIMEOUT_MS);
  await cleaned;
  expect(t.pub.backlogged).toBe(true);
  expect(t.table.has('1')).toBe(true);
  // The drain's own flush is bounded the same way: its transaction (lock, pooled connection) does not hang.
  const drained = t.pub.drain();
  await jest.advanceTimersByTimeAsync(FLUSH_TIMEOUT_MS);
  await drained;
  expect(t.table.has('1')).toBe(true); // not deleted: NATS never confirmed it
  jest.useRealTimers();
  t.published.length = 0;
  await t.drain();
  expect(t.published).toEqual(['ev.1']);
  expect(t.table.size).toBe(0);
});

it('deletes rows once a flush on the connection they went out on succeeded', async () => {
  const t = setup();
  t.pub.handOff([t.commit('1'), t.commit('2')]);
  const cleaned = t.pub.cleanup();
  t.flushes.shift()!.resolve();
  await cleaned;
  expect(t.table.size).toBe(0);
  expect(t.published).toEqual(['ev.1', 'ev.2']);
  expect(t.pub.backlogged).toBe(false);
});

it('an INFO update on a live connection (a new info object, same server and client id) is not a new connection', async () => {
  const t = setup();
  t.nc.info = { server_id: 'A', client_id: 7 };
  t.pub.handOff([t.commit('1')]);
  // The server announces a cluster change: nats.js replaces `info` on the same connection.
  t.nc.info = { server_id: 'A', client_id: 7, connect_urls: ['10.0.0.2:4222'] };
  t.pub.handOff([t.commit('2')]);
  const cleaned = t.pub.cleanup();
  t.flushes.shift()!.resolve();
  await cleaned;
  expect(t.pub.backlogged).toBe(false);
  expect(t.published).toEqual(['ev.1', 'ev.2']); // once each: no drain repeated them
  expect(t.table.size).toBe(0);
  // A reconnect, even to the same server, is a new client id: unproven rows become a backlog as before.
  t.pub.handOff([t.commit('3')]);
  t.nc.info = { server_id: 'A', client_id: 8 };
  t.pub.handOff([t.commit('4')]);
  expect(t.pub.backlogged).toBe(true);
  await t.drain();
  expect(t.published).toEqual(['ev.1', 'ev.2', 'ev.3', 'ev.3', 'ev.4']);
});

it('queues rows handed over behind an unproven backlog, and publishes at once again when it is drained', async () => {
  const t = setup();
  t.pub.handOff([t.commit('1')]);
  t.nc.info = { server_id: 'B' }; // reconnected before row 1 was proven
  t.pub.handOff([t.commit('2')]);
  t.pub.handOff([t.commit('3')]);
  expect(t.published).toEqual(['ev.1']); // 2 and 3 did not overtake 1
  await t.drain();
  expect(t.published).toEqual(['ev.1', 'ev.1', 'ev.2', 'ev.3']);
  expect(t.table.size).toBe(0);
  t.pub.handOff([t.commit('4')]);
  expect(t.published.at(-1)).toBe('ev.4');
});

it('holds events while NATS is away and drains them on the reconnect', async () => {
  const t = setup({ autoFlush: true });
  t.status.push({ type: 'disconnect', server: 'x' });
  await until(() => t.pub.backlogged, 'backlog on disconnect');
  t.pub.handOff([t.commit('1')]);
  t.pub.handOff([t.commit('2')]);
  expect(t.published).toEqual([]);
  t.status.push({ type: 'reconnect', server: 'x' });
  await until(() => !t.pub.backlogged, 'drained after the reconnect');
  expect(t.published).toEqual(['ev.1', 'ev.2']);
  expect(t.table.size).toBe(0);
});

it('drains in chunks of bounded size, each flushed before the next', async () => {
  const t = setup({ autoFlush: true });
  t.status.push({ type: 'disconnect', server: 'x' });
  await until(() => t.pub.backlogged, 'backlog on disconnect');
  const seqs = Array.from({ length: 2_500 }, (_, i) => String(i + 1));
  for (const s of seqs) t.pub.handOff([t.commit(s)]);
  t.chunks.length = 0;
  t.chunks.push(0);
  t.status.push({ type: 'reconnect', server: 'x' });
  await until(() => !t.pub.backlogged, 'drained');
  expect(t.published).toEqual(seqs.map((s) => `ev.${s}`));
  expect(Math.max(...t.chunks)).toBeLessThanOrEqual(1_000);
  expect(t.chunks.filter((n) => n > 0).length).toBeGreaterThanOrEqual(3);
});

it('drains the whole outbox in seq order once the backlog outgrew its bound', async () => {
  const t = setup({ autoFlush: true });
  t.status.push({ type: 'disconnect', server: 'x' });
  await until(() => t.pub.backlogged, 'backlog on disconnect');
  const n = MAX_BACKLOG + 10;
  for (let i = 1; i <= n; i++) t.pub.handOff([t.commit(String(i))]);
  t.status.push({ type: 'reconnect', server: 'x' });
  await until(() => !t.pub.backlogged, 'drained');
  expect(t.published).toHaveLength(n);
  expect(t.published[0]).toBe('ev.1');
  expect(t.published[n - 1]).toBe(`ev.${n}`);
  expect(t.table.size).toBe(0);
  t.pub.handOff([t.commit(String(n + 1))]);
  expect(t.published.at(-1)).toBe(`ev.${n + 1}`);
});

it('skips an event NATS refuses and publishes the rest, on the fast path and in a drain (regression)', async () => {
  const t = setup({ autoFlush: true });
  t.refused.add('ev.2');
  t.pub.handOff([t.commit('1'), t.commit('2'), t.commit('3')]);
  expect(t.published).toEqual(['ev.1', 'ev.3']);
  expect(t.pub.backlogged).toBe(false);
  await t.pub.cleanup();
  expect(t.table.size).toBe(0);
  t.status.push({ type: 'disconnect', server: 'x' });
  await until(() => t.pub.backlogged, 'backlog on disconnect');
  t.refused.add('ev.4');
  t.pub.handOff([t.commit('4')]);
  t.pub.handOff([t.commit('5')]);
  t.status.push({ type: 'reconnect', server: 'x' });
  await until(() => !t.pub.backlogged, 'drained past the refused event');
  expect(t.published).toEqual(['ev.1', 'ev.3', 'ev.5']);
  expect(t.table.has('4')).toBe(false);
});

it('orders adjacent batches of posts by id and moves nothing across other rows', () => {
  const row = (seq: string, ids: string[] | null, payload: string | null = null): StoredOutboxRow => ({
    seq,
    subject: '',
    payload,
    ref: '',
    message_ids: ids,
  });
  const rows = [
    row('1', ['110', '111']),
    row('2', ['90', '99']),
    row('3', null, '{"edit"}'),
    row('4', ['1000']),
    row('5', ['200']),
    row('6', ['300']),
  ];
  expect(inIdOrder(rows).map((r) => r.seq)).toEqual(['2', '1', '3', '5', '6', '4']);
});
