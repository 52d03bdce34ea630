/**
 * The publisher's hand-off and cleanup across NATS disconnects, which a real server does not produce at a chosen
 * moment: a fake connection whose `info` object changes per connection (as nats.js replaces it on every connect)
 * and whose flushes the test settles. The happy paths and the sweep after a crash run against PostgreSQL and NATS
 * in test/integration/durability.int.test.ts.
 */
import type { NatsConnection } from '@nats-io/nats-core';
import { createLogger } from '@hubbub/runtime';
import type { Repo, StoredOutboxRow } from '../store/repo';
import { OutboxPublisher } from './outbox-publisher';

interface Deferred {
  resolve(): void;
  reject(e: Error): void;
}

function setup() {
  const table = new Map<string, StoredOutboxRow>();
  const published: string[] = [];
  const flushes: Deferred[] = [];
  const nc = {
    info: { server_id: 'A' } as object | undefined,
    publish: (subject: string) => void published.push(subject),
    flush: () => new Promise<void>((resolve, reject) => void flushes.push({ resolve, reject })),
  };
  const del = (seqs: readonly string[]): void => {
    for (const s of seqs) table.delete(s);
  };
  const repo = {
    deleteOutbox: (seqs: readonly string[]) => Promise.resolve(del(seqs)),
    deleteOutboxIn: (_q: unknown, seqs: readonly string[]) => Promise.resolve(del(seqs)),
    lockOutbox: () => Promise.resolve([...table.values()]),
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
  // The sweep flushes too: answer every flush it asks for.
  const sweep = async (): Promise<number> => {
    const p = pub.sweep(0);
    for (let i = 0; i < 10 && flushes.length === 0; i++) await Promise.resolve();
    flushes.shift()?.resolve();
    return p;
  };
  return { table, published, flushes, nc, pub, commit, sweep };
}

afterEach(() => jest.useRealTimers());

it('keeps rows handed over on a connection that dropped before the flush, and the sweep publishes them (regression)', async () => {
  const t = setup();
  t.pub.handOff([t.commit('1')]);
  // The connection drops with the event still in the socket, and nats.js reconnects before the cleanup runs:
  // the flush goes out (and is answered) on the new connection, which never saw the event.
  t.nc.info = { server_id: 'B' };
  const cleaned = t.pub.cleanup();
  t.flushes.shift()!.resolve();
  await cleaned;
  expect(t.table.has('1')).toBe(true);
  t.published.length = 0;
  expect(await t.sweep()).toBe(1);
  expect(t.published).toEqual(['ev.1']);
  expect(t.table.size).toBe(0);
});

it('leaves rows handed over while a failing flush waited to the sweep, not to a cleanup that never comes (regression)', async () => {
  const t = setup();
  t.pub.handOff([t.commit('1')]);
  const cleaned = t.pub.cleanup();
  // Handed over while the flush waits (the connection is down: nats.js drops these bytes when it redials).
  t.nc.info = undefined;
  t.pub.handOff([t.commit('2')]);
  t.flushes.shift()!.reject(new Error('connection disconnected'));
  await cleaned;
  t.nc.info = { server_id: 'B' };
  t.published.length = 0;
  expect(await t.sweep()).toBe(2);
  expect(t.published).toEqual(['ev.1', 'ev.2']);
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
});
