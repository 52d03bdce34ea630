/**
 * Lease edge cases: renewals that overlap, a holder that can no longer reach NATS, entries that expire
 * under a watcher. A short bucket TTL keeps the expiry cases quick.
 */
import { connectNats, drainNats } from '@hubbub/nats';
import type { NatsConnection } from '@hubbub/nats';
import { createLogger } from '@hubbub/runtime';
import { createTestNats, natsLink, waitFor } from '@hubbub/testing';
import { Presence, nickKey } from '../../src/index';
import type { NameAuthority } from '../../src/index';

jest.setTimeout(30_000);

const TTL_MS = 3_000;
const log = createLogger({ service: 'presence-lease-test', level: 'silent' });
const tn = createTestNats();
const names: NameAuthority = { isAccountName: () => Promise.resolve(false) };
let nc1: NatsConnection;
let nc2: NatsConnection;
let p1: Presence;
let p2: Presence;

beforeAll(async () => {
  nc1 = await connectNats({ servers: tn.url, name: 'presence-lease-1', log });
  nc2 = await connectNats({ servers: tn.url, name: 'presence-lease-2', log });
  p1 = await Presence.open({ nc: nc1, prefix: tn.prefix, names, log, ttlMs: TTL_MS });
  p2 = await Presence.open({ nc: nc2, prefix: tn.prefix, names, log, ttlMs: TTL_MS });
});
afterAll(async () => {
  await drainNats(nc1);
  await drainNats(nc2);
  await tn.cleanup();
});

const info = (sessionId: string, door = 'irc-binary') => ({ displayNick: sessionId, door, sessionId });

describe('@hubbub/presence leases', () => {
  it('keeps the claim when two renewals overlap (each one compares and sets after the other)', async () => {
    const r = await p1.claimGuestNick('lena', info('l1'));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    try {
      // e.g. auto-renew's tick while the door renews with new extra fields
      const oks = await Promise.all([r.lease.renew({ where: 'a' }), r.lease.renew({ where: 'b' })]);
      expect(oks).toEqual([true, true]);
      expect((await p2.getNick('lena'))?.extra).toEqual({ where: 'b' });
      expect(await r.lease.renew()).toBe(true);
    } finally {
      expect(await r.lease.release()).toBe(true);
    }
    expect(await p2.getNick('lena')).toBeUndefined();
  });

  it("auto-renew reports the loss no later than the moment another session can take the holder's nick", async () => {
    const link = await natsLink(tn.url);
    const nc3 = await connectNats({ servers: link.url, name: 'presence-lease-cut', log });
    let lost = 0;
    try {
      const holder = await Presence.open({ nc: nc3, prefix: tn.prefix, names, log, ttlMs: TTL_MS });
      const r = await holder.claimGuestNick('mona', info('m1'));
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      r.lease.startAutoRenew(() => lost++, TTL_MS / 3);
      // Renewals go through once, then the holder's link to NATS is gone: they hang until they time out.
      const rev = r.lease.revision;
      await waitFor(() => r.lease.revision > rev, 5_000, 'a renewal');
      link.cut();
      await waitFor(async () => (await p2.claimGuestNick('mona', info('m2', 'ws-messenger'))).ok, 15_000, 'takeover');
      // The other session holds the nick now: the first holder must have been told.
      expect(lost).toBe(1);
    } finally {
      await nc3.close();
      await link.close();
      await p2['kv'].delete(nickKey('mona'));
    }
  });

  it('auto-renew with failing renewals gives up at the bucket TTL, not at the library default', async () => {
    const nc3 = await connectNats({ servers: tn.url, name: 'presence-lease-closed', log });
    const holder = await Presence.open({ nc: nc3, prefix: tn.prefix, names, log, ttlMs: TTL_MS });
    const r = await holder.claimGuestNick('nina', info('n1'));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    let lost = 0;
    r.lease.startAutoRenew(() => lost++, 200);
    await nc3.close(); // every renewal now fails at once
    try {
      await waitFor(async () => (await p2.claimGuestNick('nina', info('n2', 'ws-messenger'))).ok, 15_000, 'takeover');
      expect(lost).toBe(1);
    } finally {
      await r.lease.release().catch(() => undefined);
      await p2['kv'].delete(nickKey('nina'));
    }
  });

  it('tells a watcher when an entry expires (the holder vanished without releasing)', async () => {
    const deleted: string[] = [];
    const put: string[] = [];
    const stop = await p2.watch(
      (r) => put.push(r.key),
      (k) => deleted.push(k),
    );
    try {
      const r = await p1.claimGuestNick('olga', info('o1'));
      expect(r.ok).toBe(true);
      const key = nickKey('olga');
      await waitFor(() => put.includes(key), 5_000, 'watch put');
      // never renewed, never released
      await waitFor(() => deleted.includes(key), 15_000, 'watch delete on expiry');
      expect(await p2.getNick('olga')).toBeUndefined();
    } finally {
      stop();
    }
  });
});
