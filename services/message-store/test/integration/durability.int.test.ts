/**
 * Durability and ids: outbox published after a crash between commit and publish, in commit order across a NATS
 * outage (through a relay the test cuts), past events NATS refuses and after a failed answer; worker-id leases
 * (distinct per instance, lost → ids stop), monotonic ids when the clock steps back, and the doors'
 * subscription helper (dedupe + gap fill after a NATS reconnect).
 */
import { Code } from '@hubbub/errors';
import { connectNats, drainNats, openKv } from '@hubbub/nats';
import { messagesV1, subjects } from '@hubbub/proto';
import { historyFetcher, subscribeChat, systemPrincipal } from '@hubbub/msg-client';
import { createTestDatabase, createTestNats, waitFor } from '@hubbub/testing';
import type { TestDatabase, TestNats } from '@hubbub/testing';
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import { Repo } from '../../src/store/repo';
import { natsLink } from '@hubbub/testing';
import type { NatsLink } from '@hubbub/testing';
import {
  alice,
  bob,
  createReq,
  holdClientKey,
  listReq,
  natsClient,
  newMessage,
  nextReconnect,
  startStore,
  sysop,
  testLog,
} from './harness';
import type { Started } from './harness';

let db: TestDatabase;
let nats: TestNats;
let nc: NatsConnection;
const posted: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  nats = createTestNats();
  nc = await natsClient(nats.url);
  nc.subscribe(`${nats.prefix}.chat.*.posted`, {
    callback: (_e, m) => void posted.push(messagesV1.MessageEvent.fromJSON(m.json()).message!.id),
  });
  await nc.flush();
});

afterAll(async () => {
  await nc?.close();
  await nats?.cleanup();
  await db?.drop();
});

const opts = () => ({ databaseUrl: db.url, natsUrl: nats.url, prefix: nats.prefix });

async function outboxCount(s: { srv: { sql: { query<R>(t: string): Promise<R[]> } } }): Promise<number> {
  const [r] = await s.srv.sql.query<{ n: string }>('SELECT count(*)::text AS n FROM outbox');
  return Number(r!.n);
}

it('publishes after a restart what a crashed publisher left between commit and publish', async () => {
  const a = await startStore(opts(), { publisherPaused: true });
  let ids: string[];
  try {
    const [ch] = (await a.client.ensurePublicChannels({ slugs: ['crash'], kind: 0 })).channels;
    const r = await a.client.postMessages({
      leanReply: false,
      principals: [],
      principal: alice,
      messages: [newMessage(ch!.id, '1'), newMessage(ch!.id, '2')],
    });
    ids = r.results.map((x) => x.message!.id);
    // acknowledged = committed: readable from the database
    expect((await a.client.listMessages(listReq(alice, ch!.id))).messages.map((m) => m.id)).toEqual(ids);
    await nc.flush();
    expect(posted.filter((id) => ids.includes(id))).toEqual([]);
    expect(await outboxCount(a)).toBeGreaterThanOrEqual(1); // one row per committed batch
  } finally {
    await a.close();
  }
  const b = await startStore(opts());
  try {
    await waitFor(() => ids.every((id) => posted.includes(id)), 5_000, 'swept events');
    expect(posted.filter((id) => ids.includes(id))).toEqual(ids); // in commit order
    await waitFor(async () => (await outboxCount(b)) === 0, 5_000, 'outbox emptied');
  } finally {
    await b.close();
  }
});

interface ChannelRun {
  readonly s: Started;
  readonly channelId: string;
  /** Texts of the channel's posted events in arrival order, on the test's own NATS connection. */
  readonly texts: string[];
  post(text: string): Promise<unknown>;
}

/** A store (behind `link` when given) with a fresh public channel, closed afterwards. */
async function withChannel(
  slug: string,
  o: { link?: NatsLink; env?: Record<string, string> },
  f: (r: ChannelRun) => Promise<void>,
): Promise<void> {
  const s = await startStore({
    ...opts(),
    ...(o.link ? { natsUrl: o.link.url } : {}),
    ...(o.env ? { env: o.env } : {}),
  });
  let sub: Subscription | undefined;
  try {
    const [ch] = (await s.client.ensurePublicChannels({ slugs: [slug], kind: 0 })).channels;
    const channelId = ch!.id;
    const texts: string[] = [];
    sub = nc.subscribe(subjects(nats.prefix).chat(channelId, 'posted'), {
      callback: (_e, m) => void texts.push(messagesV1.MessageEvent.fromJSON(m.json()).message!.text),
    });
    await nc.flush();
    const post = (text: string) => s.client.postMessage({ principal: alice, message: newMessage(channelId, text) });
    await f({ s, channelId, texts, post });
  } finally {
    sub?.unsubscribe();
    await s.close();
  }
}

/** Cuts the store's link to NATS, posts `during` (committed meanwhile), restores the link, waits for the reconnect. */
async function outage(r: ChannelRun, link: NatsLink, during: readonly string[]): Promise<void> {
  const reconnected = nextReconnect(r.s.srv.nc);
  link.cut();
  for (const t of during) await r.post(t);
  link.restore();
  await reconnected;
}

it('publishes what was committed during a NATS outage before the posts that follow it (regression)', async () => {
  // Before, posts after the reconnect were published at once and the outage's backlog by the next sweep, seconds
  // later: subscribers got newer ids before older ones of the same channel.
  const link = await natsLink(nats.url);
  try {
    await withChannel('outage-order', { link }, async (r) => {
      await r.post('before');
      await waitFor(() => r.texts.includes('before'), 5_000, 'the first event');
      await outage(r, link, ['during-1', 'during-2', 'during-3']);
      await r.post('after-1');
      await r.s.client.postMessages({
        leanReply: true,
        principals: [],
        principal: alice,
        messages: [newMessage(r.channelId, 'after-2'), newMessage(r.channelId, 'after-3')],
      });
      const all = ['before', 'during-1', 'during-2', 'during-3', 'after-1', 'after-2', 'after-3'];
      await waitFor(() => all.every((t) => r.texts.includes(t)), 10_000, 'every event');
      // At-least-once: a repeat may follow, but what a deduping subscriber delivers is in commit order.
      expect([...new Set(r.texts)]).toEqual(all);
      await waitFor(async () => (await outboxCount(r.s)) === 0, 5_000, 'outbox emptied');
    });
  } finally {
    await link.close();
  }
}, 20_000);

it('drains the backlog of a NATS outage as soon as NATS is back, not on the periodic sweep (regression)', async () => {
  const link = await natsLink(nats.url);
  try {
    await withChannel(
      'outage-drain',
      { link, env: { MESSAGE_STORE_OUTBOX_SWEEP_INTERVAL_MS: '600000' } },
      async (r) => {
        await outage(r, link, ['lost-1', 'lost-2']);
        await waitFor(() => r.texts.includes('lost-2'), 10_000, 'the backlog published');
        expect([...new Set(r.texts)]).toEqual(['lost-1', 'lost-2']);
        await waitFor(async () => (await outboxCount(r.s)) === 0, 5_000, 'outbox emptied');
      },
    );
  } finally {
    await link.close();
  }
}, 20_000);

it('refuses a post whose event NATS would refuse (over max_payload), and the events after it flow (regression)', async () => {
  // Before, such a post was stored and its outbox row failed every later sweep; then (the publisher's rule 5) its
  // event was skipped, so no door saw it live. Now it is refused before anything is stored. The publisher's
  // skipping of an event NATS refuses all the same is covered by outbox-publisher.test.ts.
  const maxPayload = nc.info!.max_payload;
  await withChannel('too-large', { env: { MESSAGE_STORE_MAX_TEXT_BYTES: String(2 * maxPayload) } }, async (r) => {
    await expect(
      r.s.client.postMessage({ principal: alice, message: newMessage(r.channelId, 'x'.repeat(maxPayload)) }),
    ).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, reason: 'TEXT_TOO_LARGE' });
    await r.post('next');
    await waitFor(() => r.texts.includes('next'), 5_000, 'the next event');
    await waitFor(async () => (await outboxCount(r.s)) === 0, 5_000, 'outbox emptied');
    expect(r.texts).toEqual(['next']);
  });
}, 20_000);

it('publishes the events of a committed batch whose answer failed (regression)', async () => {
  // Only the fast path can deliver them here (no periodic sweep): before, a failure after the COMMIT (reading the
  // stored messages of repeated client keys) dropped the batch's outbox rows from memory until a sweep.
  const spy = jest.spyOn(Repo.prototype, 'messagesByClientKeys');
  try {
    await withChannel('answer-failed', { env: { MESSAGE_STORE_OUTBOX_SWEEP_INTERVAL_MS: '600000' } }, async (r) => {
      const keyed = (text: string, clientKey: string) => newMessage(r.channelId, text, { clientKey });
      await r.s.client.postMessage({ principal: alice, message: keyed('first', 'k1') });
      spy.mockRejectedValueOnce(new Error('Connection terminated unexpectedly'));
      const failed = r.s.client.postMessages(
        { leanReply: false, principals: [], principal: alice, messages: [keyed('first', 'k1'), keyed('second', 'k2')] },
        { attempts: 1 },
      );
      await expect(failed).rejects.toMatchObject({ code: Code.UNAVAILABLE });
      await r.post('third');
      await waitFor(() => r.texts.includes('third'), 5_000, 'the next event');
      await waitFor(() => r.texts.includes('second'), 5_000, 'the event of the committed post');
      expect([...new Set(r.texts)]).toEqual(['first', 'second', 'third']);
    });
  } finally {
    spy.mockRestore();
  }
}, 20_000);

it('gives two instances different worker ids from the KV bucket', async () => {
  const [a, b] = await Promise.all([startStore(opts()), startStore(opts())]);
  try {
    expect(a.srv.ids.workerId).toBeDefined();
    expect(b.srv.ids.workerId).toBeDefined();
    expect(a.srv.ids.workerId).not.toBe(b.srv.ids.workerId);
    const kv = await openKv(nc, subjects(nats.prefix).buckets.workerIds, 15_000);
    const keys: string[] = [];
    for await (const k of await kv.keys()) keys.push(k);
    expect(keys.sort()).toEqual([String(a.srv.ids.workerId), String(b.srv.ids.workerId)].sort());
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

it('never continues a catch-up on one replica past a post still in flight on another (read horizon)', async () => {
  // a waits up to 3 s for b; b answers after at most 1 s of waiting for its writes in flight.
  const a = await startStore({ ...opts(), env: { MESSAGE_STORE_HORIZON_TIMEOUT_MS: '3000' } });
  const b = await startStore({ ...opts(), env: { MESSAGE_STORE_HORIZON_TIMEOUT_MS: '2000' } });
  let hold: Awaited<ReturnType<typeof holdClientKey>> | undefined;
  try {
    await waitFor(() => a.srv.peers.size === 1 && b.srv.peers.size === 1, 5_000, 'each replica knows the other');
    const [ch] = (await a.client.ensurePublicChannels({ slugs: ['horizon'], kind: 0 })).channels;
    const anchor = (await a.client.postMessage({ principal: alice, message: newMessage(ch!.id, 'anchor') })).message!;
    const after = () => a.client.listMessages({ ...listReq(alice, ch!.id), after: anchor.id });
    // b stamps a post whose INSERT waits; a then commits a later one.
    hold = await holdClientKey(db.url, ch!.id, alice.userId, 'held-on-b');
    const onB = b.client.postMessage({
      principal: alice,
      message: newMessage(ch!.id, 'on b', { clientKey: 'held-on-b' }),
    });
    await waitFor(async () => (await hold!.waiting()) === 1, 5_000, "b's INSERT waits");
    await new Promise((r) => setTimeout(r, 3));
    const onA = (await a.client.postMessage({ principal: alice, message: newMessage(ch!.id, 'on a') })).message!;
    // While b's post is in flight, a's catch-up must not answer with a's later post alone: a reader that only polls
    // would continue after it. It waits; released, b's post commits and the catch-up returns both in id order.
    let answered: messagesV1.ListMessagesResponse | undefined;
    const reading = after().then((r) => (answered = r));
    await new Promise((r) => setTimeout(r, 300));
    expect(answered).toBeUndefined();
    await hold.release();
    const both = await reading;
    const bId = (await onB).message!.id;
    expect(BigInt(bId) < BigInt(onA.id)).toBe(true);
    expect(both.messages.map((m) => m.id)).toEqual([bId, onA.id]);
    // Concurrent catch-ups share rounds (at most one in flight, the callers meanwhile share the next).
    const rounds = a.srv.peers.stats.rounds;
    const many = await Promise.all(Array.from({ length: 20 }, () => after()));
    for (const r of many) expect(r.messages.map((m) => m.id)).toEqual([bId, onA.id]);
    expect(a.srv.peers.stats.rounds - rounds).toBeLessThanOrEqual(10);
    // A stopped replica is not waited for.
    await b.close();
    await waitFor(() => a.srv.peers.size === 0, 5_000, 'b is no longer a peer');
    const t1 = Date.now();
    expect((await after()).messages.map((m) => m.text)).toEqual(['on b', 'on a']);
    expect(Date.now() - t1).toBeLessThan(1_000);
  } finally {
    await hold?.release().catch(() => undefined);
    await b.close();
    await a.close();
  }
});

/** How far in the past `s` reports changes complete (measured after its answer). */
const completeLag = async (s: Started): Promise<number> => {
  const at = (await recentChanges(s)).completeBefore!.getTime();
  return Date.now() - at;
};

/** ListChanges of alice over the last minute, through `s`. */
const recentChanges = (s: Started) =>
  s.client.listChanges({
    principal: alice,
    since: new Date(Date.now() - 60_000),
    channelIds: [],
    pageAfterChangedAt: undefined,
    pageAfterId: '',
    limit: 0,
  });

it('while a replica does not answer: changes complete only up to a conservative past, catch-ups not held', async () => {
  // Timeout 200 ms; statement timeout 750 ms, so a silent peer's changes count as complete up to 1.5 s ago.
  const a = await startStore({
    ...opts(),
    env: { MESSAGE_STORE_HORIZON_TIMEOUT_MS: '200', MESSAGE_STORE_STATEMENT_TIMEOUT_MS: '750' },
  });
  const kv = await openKv(nc, subjects(nats.prefix).buckets.workerIds, 15_000);
  const key = String(((a.srv.lease.workerId ?? 0) + 1) % 128);
  // A replica that holds a lease and subscribes, but never answers (its event loop stalled).
  const silent = nc.subscribe(subjects(nats.prefix).rpcHorizon('silent-peer'), { callback: () => undefined });
  try {
    await nc.flush();
    await kv.put(key, 'silent-peer');
    await waitFor(() => a.srv.peers.size === 1, 5_000, 'a knows the silent replica');
    const [ch] = (await a.client.ensurePublicChannels({ slugs: ['silent'], kind: 0 })).channels;
    const post = async (text: string) =>
      (await a.client.postMessage({ principal: alice, message: newMessage(ch!.id, text) })).message!;
    const zero = await post('zero');
    const one = await post('one');
    // Everything committed is returned, after the one timeout: nobody's ids are waited for.
    const t0 = Date.now();
    const page = await a.client.listMessages({ ...listReq(alice, ch!.id), after: zero.id });
    expect(page.messages.map((m) => m.id)).toEqual([one.id]);
    expect(Date.now() - t0).toBeLessThan(1_000);
    const lag = await completeLag(a);
    expect(lag).toBeGreaterThanOrEqual(1_500);
    expect(lag).toBeLessThan(2_500);
    // Once the replica is gone (its lease released), changes are complete up to now again.
    await kv.delete(key);
    await waitFor(() => a.srv.peers.size === 0, 5_000, 'the silent replica is gone');
    expect(await completeLag(a)).toBeLessThan(500);
  } finally {
    silent.unsubscribe();
    await kv.delete(key).catch(() => undefined);
    await a.close();
  }
});

it('while its own NATS connection is down: nobody is asked, changes complete only up to a conservative past', async () => {
  const link = await natsLink(nats.url);
  const env = { MESSAGE_STORE_HORIZON_TIMEOUT_MS: '3000', MESSAGE_STORE_STATEMENT_TIMEOUT_MS: '750' };
  const a = await startStore({ ...opts(), natsUrl: link.url, env });
  const b = await startStore({ ...opts(), env });
  try {
    await waitFor(() => a.srv.peers.size === 1, 5_000, 'a knows b');
    const [ch] = (await a.client.ensurePublicChannels({ slugs: ['cut-off'], kind: 0 })).channels;
    const post = async (text: string) =>
      (await a.client.postMessage({ principal: alice, message: newMessage(ch!.id, text) })).message!;
    const zero = await post('zero');
    const reconnected = nextReconnect(a.srv.nc);
    link.cut();
    const fresh = await post('during the outage'); // gRPC; the lease is still valid
    const t0 = Date.now();
    const page = await a.client.listMessages({ ...listReq(alice, ch!.id), after: zero.id });
    expect(page.messages.map((m) => m.id)).toEqual([fresh.id]);
    const lag = await completeLag(a);
    expect(Date.now() - t0).toBeLessThan(1_500); // not the 3 s timeout: nobody is asked
    expect(lag).toBeGreaterThanOrEqual(1_500);
    link.restore();
    await reconnected;
    await waitFor(async () => (await completeLag(a)) < 500, 10_000, 'complete up to now again after the reconnect');
  } finally {
    link.restore(); // so that a releases its lease: a leftover lease is a silent peer to the next tests
    await b.close();
    await a.close();
    await link.close();
  }
}, 20_000);

it('reports changes complete only up to the clock of the replica furthest behind (read horizon in time)', async () => {
  const a = await startStore(opts());
  const b = await startStore(opts(), { now: () => Date.now() - 5_000 });
  try {
    await waitFor(() => a.srv.peers.size === 1, 5_000, 'a knows b');
    const changes = () => recentChanges(a);
    const channels = () =>
      a.client.listChannels({
        principal: alice,
        kind: 0,
        visibility: 0,
        changedSince: new Date(Date.now() - 60_000),
        includeArchived: false,
        memberOnly: false,
        includeMembers: false,
        includeStats: false,
      });
    // b stamps changes 5 s in the past: a poller told "complete up to now" would skip one b commits after the read.
    for (const r of [await changes(), await channels()]) {
      const lag = Date.now() - r.completeBefore!.getTime();
      expect(lag).toBeGreaterThanOrEqual(5_000);
      expect(lag).toBeLessThan(6_000);
    }
    await b.close();
    await waitFor(() => a.srv.peers.size === 0, 5_000, 'b is gone');
    const t0 = Date.now();
    const alone = (await changes()).completeBefore!.getTime();
    expect(alone).toBeGreaterThanOrEqual(t0);
    expect(alone).toBeLessThanOrEqual(Date.now());
    // Without changed_since there is no horizon to give.
    const all = await a.client.listChannels({
      principal: alice,
      kind: 0,
      visibility: 0,
      changedSince: undefined,
      includeArchived: false,
      memberOnly: false,
      includeMembers: false,
      includeStats: false,
    });
    expect(all.completeBefore).toBeUndefined();
  } finally {
    await b.close();
    await a.close();
  }
});

it('claims another worker id at once when its lease is taken', async () => {
  const s = await startStore(opts());
  try {
    const [ch] = (await s.client.ensurePublicChannels({ slugs: ['lease-swap'], kind: 0 })).channels;
    const w = s.srv.ids.workerId!;
    const kv = await openKv(nc, subjects(nats.prefix).buckets.workerIds, 15_000);
    await kv.put(String(w), 'intruder');
    await s.srv.lease.renewNow();
    expect(s.srv.ids.workerId).toBeDefined();
    expect(s.srv.ids.workerId).not.toBe(w);
    await s.client.postMessage({ principal: alice, message: newMessage(ch!.id, 'still posting') });
    await kv.delete(String(w));
  } finally {
    await s.close();
  }
});

it('stops assigning ids when the lease is lost and no id is free, and resumes with a new lease', async () => {
  const s = await startStore(opts());
  const kv = await openKv(nc, subjects(nats.prefix).buckets.workerIds, 15_000);
  const others: string[] = [];
  try {
    const [ch] = (await s.client.ensurePublicChannels({ slugs: ['lease'], kind: 0 })).channels;
    const before = (await s.client.postMessage({ principal: alice, message: newMessage(ch!.id, 'before') })).message!;
    const edit = {
      principal: alice,
      messageId: before.id,
      text: 'edited',
      tags: [],
      setTags: false,
      attachments: undefined,
    };
    const w = s.srv.ids.workerId!;
    // Every other id is held elsewhere; then someone takes ours (e.g. after our lease expired while
    // we were partitioned).
    for (let i = 0; i <= 127; i++) {
      if (i === w) continue;
      const k = String(i);
      if ((await kv.get(k))?.operation === 'PUT') continue;
      await kv.put(k, 'other');
      others.push(k);
    }
    await kv.put(String(w), 'intruder');
    await s.srv.lease.renewNow();
    expect(s.srv.ids.workerId).toBeUndefined();
    await expect(
      s.client.postMessage({ principal: alice, message: newMessage(ch!.id, 'x') }, { attempts: 1 }),
    ).rejects.toMatchObject({
      code: Code.UNAVAILABLE,
      reason: 'WORKER_ID_UNAVAILABLE',
    });
    // Edits and channel changes stamp change times the other replicas no longer wait for: refused as well.
    const refused = { code: Code.UNAVAILABLE, reason: 'WORKER_ID_UNAVAILABLE' };
    await expect(s.client.editMessage(edit)).rejects.toMatchObject(refused);
    await expect(s.client.joinChannel({ principal: bob, channelId: ch!.id })).rejects.toMatchObject(refused);
    await expect(
      s.client.createChannel(createReq(alice, messagesV1.ChannelKind.CHANNEL_KIND_GROUP, { slug: 'no-lease' })),
    ).rejects.toMatchObject(refused);
    await kv.delete(others.pop()!);
    await s.srv.lease.renewNow();
    expect(s.srv.ids.workerId).toBeDefined();
    expect(s.srv.ids.workerId).not.toBe(w);
    await s.client.postMessage({ principal: alice, message: newMessage(ch!.id, 'y') });
    await s.client.editMessage(edit);
    await s.client.joinChannel({ principal: bob, channelId: ch!.id });
  } finally {
    for (const k of others) await kv.delete(k);
    await s.close();
  }
});

it('assigns no ids after the event loop stalled past the lease TTL, until the lease is renewed', async () => {
  // A stall (GC, a CPU-starved node) longer than the TTL: the key may have expired and been claimed by another
  // replica, and the first thing to run after the stall can be a batch, before the renewal timer.
  const s = await startStore({ ...opts(), env: { MESSAGE_STORE_WORKER_LEASE_TTL_MS: '1200' } });
  try {
    const [ch] = (await s.client.ensurePublicChannels({ slugs: ['stall'], kind: 0 })).channels;
    const m = (await s.client.postMessage({ principal: alice, message: newMessage(ch!.id, 'before') })).message!;
    await s.srv.lease.renewNow();
    expect(s.srv.ids.next()).toBeGreaterThan(0n);
    const until = Date.now() + 1_100;
    while (Date.now() < until) {
      /* the stall: no timer, no I/O */
    }
    expect(() => s.srv.ids.next()).toThrow('worker id lease not renewed in time');
    // Nor are change times stamped (edits), though the worker id is still held.
    expect(s.srv.ids.workerId).toBeDefined();
    const edit = s.srv.service.editMessage({
      principal: alice,
      messageId: m.id,
      text: 'after the stall',
      tags: [],
      setTags: false,
      attachments: undefined,
    });
    await expect(edit).rejects.toMatchObject({ reason: 'WORKER_ID_UNAVAILABLE' });
    await s.srv.lease.renewNow();
    expect(s.srv.ids.next()).toBeGreaterThan(0n);
  } finally {
    await s.close();
  }
});

it('claims a worker id again when the database failed while it re-leased one (regression)', async () => {
  const s = await startStore(opts());
  const kv = await openKv(nc, subjects(nats.prefix).buckets.workerIds, 15_000);
  const spy = jest.spyOn(Repo.prototype, 'maxIdMs');
  let w: number | undefined;
  try {
    const [ch] = (await s.client.ensurePublicChannels({ slugs: ['lease-db'], kind: 0 })).channels;
    w = s.srv.ids.workerId!;
    // Our lease is taken; the new claim succeeds in NATS, but reading the id floor from the database fails.
    spy.mockRejectedValueOnce(new Error('Connection terminated unexpectedly'));
    await kv.put(String(w), 'intruder');
    await s.srv.lease.renewNow();
    expect(s.srv.ids.workerId).toBeUndefined();
    // The next tick must end with ids again: before, the lease kept renewing an id the generator never got,
    // and every post was refused with WORKER_ID_UNAVAILABLE until a restart.
    await s.srv.lease.renewNow();
    expect(s.srv.ids.workerId).toBeDefined();
    expect(s.srv.lease.workerId).toBe(s.srv.ids.workerId);
    await s.client.postMessage({ principal: alice, message: newMessage(ch!.id, 'ids again') }, { attempts: 1 });
    // The id claimed while the database failed was given back, not left to expire.
    const held: string[] = [];
    for await (const k of await kv.keys()) if ((await kv.get(k))?.string() !== 'intruder') held.push(k);
    expect(held).toEqual([String(s.srv.ids.workerId)]);
  } finally {
    spy.mockRestore();
    if (w !== undefined) await kv.delete(String(w));
    await s.close();
  }
});

it('keeps its lease when a renewal applied but its reply was lost (regression)', async () => {
  const s = await startStore(opts());
  try {
    const w = s.srv.ids.workerId!;
    // Simulate a renewal that reached the server while its reply was lost: the key's revision moves on
    // but still names this instance as holder.
    const kv = await openKv(nc, subjects(nats.prefix).buckets.workerIds, 15_000);
    const e = await kv.get(String(w));
    await kv.update(String(w), e!.string(), e!.revision);
    await s.srv.lease.renewNow();
    expect(s.srv.ids.workerId).toBe(w);
  } finally {
    await s.close();
  }
});

it('keeps ids increasing when the clock goes backwards', async () => {
  let clock = Date.now();
  const s = await startStore(opts(), { now: () => clock });
  try {
    const [ch] = (await s.client.ensurePublicChannels({ slugs: ['clock'], kind: 0 })).channels;
    const first = await s.client.postMessage({ principal: alice, message: newMessage(ch!.id, 'before') });
    clock -= 60_000; // NTP steps the clock back a minute
    const ids = [BigInt(first.message!.id)];
    for (let i = 0; i < 5; i++)
      ids.push(
        BigInt((await s.client.postMessage({ principal: alice, message: newMessage(ch!.id, `back${i}`) })).message!.id),
      );
    const batch = await s.client.postMessages({
      leanReply: false,
      principals: [],
      principal: alice,
      messages: Array.from({ length: 10 }, (_, i) => newMessage(ch!.id, `b${i}`)),
    });
    ids.push(...batch.results.map((r) => BigInt(r.message!.id)));
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
    expect(s.srv.ids.clockBackwards).toBeGreaterThan(0);
    const hist = await s.client.listMessages(listReq(alice, ch!.id));
    expect(hist.messages.map((m) => m.text)).toEqual([
      'before',
      'back0',
      'back1',
      'back2',
      'back3',
      'back4',
      ...Array.from({ length: 10 }, (_, i) => `b${i}`),
    ]);
  } finally {
    await s.close();
  }
});

it('continues above the stored ids after a restart with a slow clock', async () => {
  const a = await startStore(opts());
  let last: bigint;
  let ch: string;
  try {
    ch = (await a.client.ensurePublicChannels({ slugs: ['restart'], kind: 0 })).channels[0]!.id;
    last = BigInt((await a.client.postMessage({ principal: alice, message: newMessage(ch, 'a') })).message!.id);
  } finally {
    await a.close();
  }
  const b = await startStore(opts(), { now: () => Date.now() - 3_600_000 });
  try {
    const next = BigInt((await b.client.postMessage({ principal: alice, message: newMessage(ch, 'b') })).message!.id);
    expect(next > last).toBe(true);
  } finally {
    await b.close();
  }
});

it('subscribeChat delivers each event once and fills gaps from history after a reconnect', async () => {
  const live = await startStore(opts());
  const gapMaker = await startStore(opts(), { publisherPaused: true });
  const sub = await connectNats({ servers: nats.url, name: 'door', log: testLog });
  const got: messagesV1.MessageEvent[] = [];
  const chat = subscribeChat({
    nc: sub,
    prefix: nats.prefix,
    log: testLog,
    onEvent: (ev) => got.push(ev),
    fetchHistory: historyFetcher(live.client, systemPrincipal('test-door')),
  });
  try {
    await sub.flush();
    const [ch] = (await live.client.ensurePublicChannels({ slugs: ['gaps'], kind: 0 })).channels;
    const m1 = (await live.client.postMessage({ principal: alice, message: newMessage(ch!.id, 'live') })).message!;
    await waitFor(() => got.some((e) => e.message?.id === m1.id));
    // a duplicate on the wire (at-least-once) is suppressed
    const dupPayload = JSON.stringify(messagesV1.MessageEvent.toJSON(got[0]!));
    nc.publish(subjects(nats.prefix).chat(ch!.id, 'posted'), dupPayload);
    await nc.flush();
    // posts whose events never arrive (the other instance's publisher is down)
    const missed = await gapMaker.client.postMessages({
      leanReply: false,
      principals: [],
      principal: alice,
      messages: [newMessage(ch!.id, 'missed1'), newMessage(ch!.id, 'missed2')],
    });
    const missedIds = missed.results.map((r) => r.message!.id);
    await sub.reconnect();
    await waitFor(() => missedIds.every((id) => got.some((e) => e.message?.id === id)), 5_000, 'gap filled');
    expect(got.map((e) => e.message!.text)).toEqual(['live', 'missed1', 'missed2']);
    expect(chat.stats.duplicates).toBeGreaterThanOrEqual(1);
    expect(chat.stats.filled).toBe(2);
    // filling again delivers nothing new
    expect(await chat.fillGaps()).toBe(0);
    expect(got).toHaveLength(3);
  } finally {
    chat.close();
    await drainNats(sub);
    await gapMaker.close();
    await live.close();
  }
});

it('subscribeChat records posted events undecoded while idle, and keeps dedupe and gap fill exact', async () => {
  const live = await startStore(opts());
  const gapMaker = await startStore(opts(), { publisherPaused: true });
  const sub = await connectNats({ servers: nats.url, name: 'door', log: testLog });
  const got: string[] = [];
  let idle = false;
  const chat = subscribeChat({
    nc: sub,
    prefix: nats.prefix,
    log: testLog,
    onEvent: (ev) => got.push(ev.message!.text),
    fetchHistory: historyFetcher(live.client, systemPrincipal('test-door')),
    idle: () => idle,
  });
  const seenAll = async (): Promise<void> => {
    // A marker on a channel of its own, decoded (first event of that channel): everything published before
    // it on this connection has been handled.
    const [m] = (await live.client.ensurePublicChannels({ slugs: [`mark-${got.length}-${Date.now() % 1e6}`], kind: 0 }))
      .channels;
    const text = `marker-${m!.id}`;
    await live.client.postMessage({ principal: alice, message: newMessage(m!.id, text) });
    await waitFor(() => got.includes(text), 5_000, 'marker delivered');
  };
  try {
    await sub.flush();
    const [ch] = (await live.client.ensurePublicChannels({ slugs: ['idle'], kind: 0 })).channels;
    const chId = ch!.id;
    const post = async (text: string) =>
      (await live.client.postMessage({ principal: alice, message: newMessage(chId, text) })).message!;
    await post('first');
    await waitFor(() => got.includes('first'));

    // idle: posts of a known, unchanged channel are recorded, not decoded or delivered
    idle = true;
    const quiet = [await post('quiet1'), await post('quiet2')];
    await seenAll();
    expect(got.filter((t) => t.startsWith('quiet'))).toEqual([]);
    expect(chat.stats.recorded).toBe(2);

    // a repeat of a recorded event is a duplicate, idle or not
    const repeat = JSON.stringify(
      messagesV1.MessageEvent.toJSON({
        kind: messagesV1.MessageEventKind.MESSAGE_EVENT_KIND_POSTED,
        message: quiet[1],
        channel: { id: chId, slug: 'idle', kind: ch!.kind, visibility: ch!.visibility },
      }),
    );
    const dups = chat.stats.duplicates;
    idle = false;
    nc.publish(subjects(nats.prefix).chat(chId, 'posted'), repeat);
    await seenAll();
    expect(got.filter((t) => t.startsWith('quiet'))).toEqual([]);
    expect(chat.stats.duplicates).toBe(dups + 1);

    // changed routing facts (a new slug) are never taken on trust: the event is decoded and delivered
    idle = true;
    await live.client.updateChannel({ principal: sysop, channelId: chId, slug: 'idle-renamed' });
    await post('after-rename');
    await waitFor(() => got.includes('after-rename'), 5_000, 'changed channel decoded');
    await post('quiet3');
    await seenAll();
    expect(got).not.toContain('quiet3');
    expect(chat.stats.recorded).toBe(3);

    // the gap fill after a reconnect starts after the recorded posts: only what was missed comes
    idle = false;
    const missed = await gapMaker.client.postMessages({
      leanReply: false,
      principals: [],
      principal: alice,
      messages: [newMessage(chId, 'missed1'), newMessage(chId, 'missed2')],
    });
    expect(missed.results.every((r) => r.message)).toBe(true);
    await sub.reconnect();
    await waitFor(() => got.includes('missed2'), 5_000, 'gap filled');
    await chat.fillGaps();
    expect(got.filter((t) => !t.startsWith('marker-'))).toEqual(['first', 'after-rename', 'missed1', 'missed2']);
  } finally {
    chat.close();
    await drainNats(sub);
    await gapMaker.close();
    await live.close();
  }
});

it('subscribeChat gap fill reads every page even when live events overtake it (regression)', async () => {
  // A gap of more than one history page; while the fill reads its first page, a newer post arrives
  // live. The fill must keep paging from its own cursor, not jump to the live watermark.
  // No periodic outbox sweep: only the gap fill can deliver the gap.
  const live = await startStore({ ...opts(), env: { MESSAGE_STORE_OUTBOX_SWEEP_INTERVAL_MS: '600000' } });
  const gapMaker = await startStore(opts(), { publisherPaused: true });
  const sub = await connectNats({ servers: nats.url, name: 'door', log: testLog });
  const got: string[] = [];
  const fetchBase = historyFetcher(live.client, systemPrincipal('test-door'));
  let overtaken = false;
  let chId = '';
  const chat = subscribeChat({
    nc: sub,
    prefix: nats.prefix,
    log: testLog,
    onEvent: (ev) => got.push(ev.message!.text),
    fetchHistory: async (channelId, after) => {
      const page = await fetchBase(channelId, after);
      if (!overtaken) {
        overtaken = true;
        const m = await live.client.postMessage({ principal: alice, message: newMessage(chId, 'overtaker') });
        await waitFor(() => got.includes('overtaker'), 5_000, 'live event during the fill');
        expect(m.message).toBeDefined();
      }
      return page;
    },
  });
  try {
    await sub.flush();
    const [ch] = (await live.client.ensurePublicChannels({ slugs: ['overtake'], kind: 0 })).channels;
    chId = ch!.id;
    await live.client.postMessage({ principal: alice, message: newMessage(chId, 'first') });
    await waitFor(() => got.includes('first'));
    const texts = Array.from({ length: 250 }, (_, i) => `gap-${i}`);
    await gapMaker.client.postMessages({
      leanReply: false,
      principals: [],
      principal: alice,
      messages: texts.map((t) => newMessage(chId, t)),
    });
    await sub.reconnect();
    await waitFor(() => texts.every((t) => got.includes(t)), 10_000, 'every page of the gap filled');
    expect(got.filter((t) => t.startsWith('gap-'))).toEqual(texts);
  } finally {
    chat.close();
    await drainNats(sub);
    await gapMaker.close();
    await live.close();
  }
});
