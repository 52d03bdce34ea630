import { connectNats, drainNats } from '@hubbub/nats';
import type { NatsConnection } from '@hubbub/nats';
import { createLogger } from '@hubbub/runtime';
import { createTestNats, waitFor } from '@hubbub/testing';
import { Presence, PresenceKind, nickKey } from '../../src/index';
import type { NameAuthority, PresenceRecord } from '../../src/index';

jest.setTimeout(30_000);

const log = createLogger({ service: 'presence-test', level: 'silent' });
const tn = createTestNats();
const accounts = new Set(['carol']);
const names: NameAuthority = { isAccountName: (f) => Promise.resolve(accounts.has(f)) };
let nc1: NatsConnection;
let nc2: NatsConnection;
let p1: Presence;
let p2: Presence;

beforeAll(async () => {
  nc1 = await connectNats({ servers: tn.url, name: 'presence-1', log });
  nc2 = await connectNats({ servers: tn.url, name: 'presence-2', log });
  p1 = await Presence.open({ nc: nc1, prefix: tn.prefix, names, log, ttlMs: 3_000 });
  p2 = await Presence.open({ nc: nc2, prefix: tn.prefix, names, log, ttlMs: 3_000 });
});
afterAll(async () => {
  await drainNats(nc1);
  await drainNats(nc2);
  await tn.cleanup();
});

describe('@hubbub/presence', () => {
  it('lets exactly one of many concurrent claims of a nick win, across two instances and any case', async () => {
    const tries = Array.from({ length: 20 }, (_, i) =>
      (i % 2 ? p1 : p2).claimGuestNick(i % 3 ? 'Dave' : 'DAVE', {
        displayNick: `Dave${i}`,
        door: i % 2 ? 'irc-binary' : 'ws-messenger',
        sessionId: `s${i}`,
      }),
    );
    const rs = await Promise.all(tries);
    const winners = rs.filter((r) => r.ok);
    expect(winners).toHaveLength(1);
    expect(rs.filter((r) => !r.ok).every((r) => !r.ok && r.reason === 'taken')).toBe(true);
    const held = await p2.getNick('dave');
    expect(held).toMatchObject({ kind: PresenceKind.Guest, folded: 'dave' });
    if (winners[0]?.ok) await winners[0].lease.release();
    expect(await p1.getNick('dave')).toBeUndefined();
    // Released: claimable again at once.
    const again = await p1.claimGuestNick('dave', { displayNick: 'dave', door: 'irc-binary', sessionId: 'x' });
    expect(again.ok).toBe(true);
    if (again.ok) await again.lease.release();
  });

  it('folds with NFKC + lowercase (full-width letters collide)', async () => {
    const a = await p1.claimGuestNick('ＥＶＥ', { displayNick: 'ＥＶＥ', door: 'ssh-frontend', sessionId: 'a' });
    const b = await p2.claimGuestNick('eve', { displayNick: 'eve', door: 'irc-binary', sessionId: 'b' });
    expect(a.ok).toBe(true);
    expect(b).toEqual({ ok: false, reason: 'taken' });
    if (a.ok) await a.lease.release();
  });

  it('refuses account names and invalid nicks', async () => {
    expect(await p1.claimGuestNick('Carol', { displayNick: 'Carol', door: 'irc-binary', sessionId: 'c' })).toEqual({
      ok: false,
      reason: 'account',
    });
    expect(await p1.claimGuestNick('', { displayNick: '', door: 'irc-binary', sessionId: 'c' })).toEqual({
      ok: false,
      reason: 'invalid',
    });
  });

  it('gives the claim back when the name became an account during the claim', async () => {
    let calls = 0;
    const racing: NameAuthority = {
      isAccountName: (f) => {
        calls++;
        // First check: free. Second check (after the KV create): registered in between.
        return Promise.resolve(f === 'frank' && calls > 1);
      },
    };
    const p = await Presence.open({ nc: nc1, prefix: tn.prefix, names: racing, ttlMs: 3_000 });
    expect(await p.claimGuestNick('frank', { displayNick: 'frank', door: 'irc-binary', sessionId: 'f' })).toEqual({
      ok: false,
      reason: 'account',
    });
    expect(await p1.getNick('frank')).toBeUndefined();
  });

  it('blocks guest claims while identity holds a registration marker', async () => {
    const marker = await p1.reserveName('gina', 'reg-1');
    expect(marker).toBeDefined();
    expect(await p2.claimGuestNick('Gina', { displayNick: 'Gina', door: 'irc-binary', sessionId: 'g' })).toEqual({
      ok: false,
      reason: 'taken',
    });
    expect(await p2.reserveName('gina', 'reg-2')).toBeUndefined();
    await marker!.release();
  });

  it('renews with compare-and-set; a lost claim cannot be renewed or released by its old holder', async () => {
    const r = await p1.claimGuestNick('henry', { displayNick: 'henry', door: 'irc-binary', sessionId: 'h1' });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const rev = r.lease.revision;
    expect(await r.lease.renew({ where: 'lobby' })).toBe(true);
    expect(r.lease.revision).toBeGreaterThan(rev);
    expect((await p2.getNick('henry'))?.extra).toEqual({ where: 'lobby' });
    expect(await r.lease.release()).toBe(true);
    const other = await p2.claimGuestNick('henry', { displayNick: 'Henry', door: 'ws-messenger', sessionId: 'h2' });
    expect(other.ok).toBe(true);
    expect(await r.lease.renew()).toBe(false);
    if (other.ok) await other.lease.release();
  });

  it('expires unrenewed claims after the TTL; auto-renew keeps a claim alive', async () => {
    const dead = await p1.claimGuestNick('ivan', { displayNick: 'ivan', door: 'irc-binary', sessionId: 'i1' });
    const alive = await p1.claimGuestNick('judy', { displayNick: 'judy', door: 'irc-binary', sessionId: 'j1' });
    expect(dead.ok && alive.ok).toBe(true);
    if (!alive.ok) return;
    alive.lease.startAutoRenew(undefined, 500);
    await waitFor(
      async () => (await p2.claimGuestNick('ivan', { displayNick: 'Ivan', door: 'ws-messenger', sessionId: 'i2' })).ok,
      10_000,
      'ivan expiry',
    );
    expect((await p2.claimGuestNick('judy', { displayNick: 'Judy', door: 'ws-messenger', sessionId: 'j2' })).ok).toBe(
      false,
    );
    await alive.lease.release();
    const i2 = await p2.getNick('ivan');
    expect(i2?.door).toBe('ws-messenger');
    await p2['kv'].delete(nickKey('ivan'));
  });

  it('lists who is online per door and watches changes', async () => {
    const seen = new Map<string, PresenceRecord>();
    const stop = await p2.watch(
      (r) => seen.set(r.key, r),
      (k) => seen.delete(k),
    );
    const g = await p1.claimGuestNick('kate', { displayNick: 'Kate', door: 'irc-binary', sessionId: 'k1' });
    const s1 = await p1.enterSession({
      door: 'ssh-frontend',
      sessionId: 'ssh-1',
      userId: '7',
      username: 'Carol',
      extra: { node: 1 },
    });
    const s2 = await p2.enterSession({ door: 'ws-messenger', sessionId: 'ws-1', userId: '7', username: 'Carol' });
    const byDoor = await p2.listByDoor();
    expect(byDoor.get('irc-binary')?.map((r) => r.nick)).toEqual(['Kate']);
    expect(byDoor.get('ssh-frontend')?.[0]).toMatchObject({
      kind: PresenceKind.Account,
      userId: '7',
      extra: { node: 1 },
    });
    expect(byDoor.get('ws-messenger')?.[0]?.nick).toBe('Carol');
    await waitFor(() => seen.size >= 3, 5_000, 'watch puts');
    await s1.release();
    await waitFor(() => seen.size === 2, 5_000, 'watch delete');
    stop();
    await s2.release();
    if (g.ok) await g.lease.release();
  });
});
