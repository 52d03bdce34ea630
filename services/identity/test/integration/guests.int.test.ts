import { Code } from '@hubbub/errors';
import { connectNats, drainNats } from '@hubbub/nats';
import type { NatsConnection } from '@hubbub/nats';
import { Presence, identityNameAuthority } from '@hubbub/presence';
import { createLogger } from '@hubbub/runtime';
import { registerReq, startHarness } from '../helpers';
import type { Harness } from '../helpers';

jest.setTimeout(30_000);

describe('guest nicks vs accounts (identity + @hubbub/presence)', () => {
  let h: Harness;
  let nc1: NatsConnection;
  let nc2: NatsConnection;
  let irc: Presence;
  let ws: Presence;

  beforeAll(async () => {
    h = await startHarness();
    const second = await h.startAnother();
    const log = createLogger({ service: 't', level: 'silent' });
    nc1 = await connectNats({ servers: h.nats.url, name: 'door-1', log });
    nc2 = await connectNats({ servers: h.nats.url, name: 'door-2', log });
    // Two doors, each talking to a different identity instance.
    irc = await Presence.open({ nc: nc1, prefix: h.nats.prefix, names: identityNameAuthority(h.client) });
    ws = await Presence.open({ nc: nc2, prefix: h.nats.prefix, names: identityNameAuthority(second.client) });
    await h.client.register(registerReq('Carol'));
  });
  afterAll(async () => {
    await drainNats(nc1);
    await drainNats(nc2);
    await h.close();
  });

  it('never lets a guest take a registered, deleted or reserved name', async () => {
    expect(await irc.claimGuestNick('CAROL', { displayNick: 'CAROL', door: 'irc-binary', sessionId: '1' })).toEqual({
      ok: false,
      reason: 'account',
    });
    expect(await ws.claimGuestNick('sysop', { displayNick: 'sysop', door: 'ws-messenger', sessionId: '2' })).toEqual({
      ok: false,
      reason: 'account',
    });
    expect(await ws.claimGuestNick('Guest', { displayNick: 'Guest', door: 'ws-messenger', sessionId: '2' })).toEqual({
      ok: false,
      reason: 'account',
    });
    const d = await h.client.register(registerReq('dora'));
    await h.client.deleteAccount({
      userId: d.user!.id,
      password: 'correct horse battery',
      username: '',
      clientAddress: '',
    });
    expect(await irc.claimGuestNick('dora', { displayNick: 'dora', door: 'irc-binary', sessionId: '3' })).toEqual({
      ok: false,
      reason: 'account',
    });
    // A nick that can never be a username is fine for a guest.
    const z = await irc.claimGuestNick('Zoë!', { displayNick: 'Zoë!', door: 'irc-binary', sessionId: '4' });
    expect(z.ok).toBe(true);
    if (z.ok) await z.lease.release();
  });

  it('refuses to register a name a live guest holds, and allows it once released', async () => {
    const g = await ws.claimGuestNick('Eddie', { displayNick: 'Eddie', door: 'ws-messenger', sessionId: '5' });
    expect(g.ok).toBe(true);
    await expect(h.client.register(registerReq('eddie'))).rejects.toMatchObject({
      code: Code.ALREADY_EXISTS,
      reason: 'NAME_IN_USE_BY_GUEST',
    });
    if (g.ok) await g.lease.release();
    await expect(h.client.register(registerReq('eddie'))).resolves.toBeDefined();
    expect(await irc.claimGuestNick('EDDIE', { displayNick: 'EDDIE', door: 'irc-binary', sessionId: '6' })).toEqual({
      ok: false,
      reason: 'account',
    });
  });

  it('races guest claims against a registration: never both', async () => {
    for (let i = 0; i < 10; i++) {
      const name = `racer${i}`;
      const [claim, reg] = await Promise.allSettled([
        (i % 2 ? irc : ws).claimGuestNick(name, { displayNick: name, door: 'irc-binary', sessionId: `r${i}` }),
        h.clients[i % 2]!.register(registerReq(name)),
      ]);
      const guestWon = claim.status === 'fulfilled' && claim.value.ok;
      const regWon = reg.status === 'fulfilled';
      expect(guestWon && regWon).toBe(false);
      expect(guestWon || regWon).toBe(true);
      if (claim.status === 'fulfilled' && claim.value.ok) await claim.value.lease.release();
    }
  });
});
