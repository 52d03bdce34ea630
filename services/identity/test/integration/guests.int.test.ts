import { Code } from '@hubbub/errors';
import { connectNats, drainNats } from '@hubbub/nats';
import type { NatsConnection } from '@hubbub/nats';
import { Presence, identityNameAuthority } from '@hubbub/presence';
import { identityV1 } from '@hubbub/proto';
import { createLogger } from '@hubbub/runtime';
import type { Logger } from '@hubbub/runtime';
import type { NameReserver } from '../../src/app/identity';
import { registerReq, startHarness } from '../helpers';
import type { Harness } from '../helpers';

jest.setTimeout(30_000);

const { UsernameStatus } = identityV1;

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

  it('CheckUsername answers what Register would decide: folded forms, reserved names, guest nicks', async () => {
    const g = await irc.claimGuestNick('Frankie', { displayNick: 'Frankie', door: 'irc-binary', sessionId: '7' });
    expect(g.ok).toBe(true);
    // A registration in progress holds its name in presence (identity's Register takes this key before inserting).
    const marker = await ws.reserveName('hold-me', 'registration-test');
    expect(marker).toBeDefined();
    try {
      const cases: [string, identityV1.UsernameStatus][] = [
        // Compatibility forms of free names fold to valid names, but Register takes names as typed.
        ['ＺＥＮＯ', UsernameStatus.USERNAME_STATUS_INVALID],
        ['\u{1d42a}\u{1d42e}\u{1d422}\u{1d427}\u{1d427}', UsernameStatus.USERNAME_STATUS_INVALID], // bold "quinn"
        ['\u212aelvin', UsernameStatus.USERNAME_STATUS_INVALID], // KELVIN SIGN
        ['\ufb01ona', UsernameStatus.USERNAME_STATUS_INVALID], // the "fi" ligature
        ['ＣＡＲＯＬ', UsernameStatus.USERNAME_STATUS_TAKEN],
        ['cArOl', UsernameStatus.USERNAME_STATUS_TAKEN],
        ['ｒｏｏｔ', UsernameStatus.USERNAME_STATUS_RESERVED],
        ['Root', UsernameStatus.USERNAME_STATUS_RESERVED],
        ['FRANKIE', UsernameStatus.USERNAME_STATUS_UNSPECIFIED], // a live guest holds it
        ['Hold-Me', UsernameStatus.USERNAME_STATUS_TAKEN], // a registration holds it
        ['zeno', UsernameStatus.USERNAME_STATUS_AVAILABLE],
        ['ZENO', UsernameStatus.USERNAME_STATUS_TAKEN],
      ];
      for (const [i, [name, status]] of cases.entries()) {
        const c = await h.clients[i % 2]!.checkUsername({ username: name });
        expect({ name, status: c.status }).toEqual({ name, status });
        const reg = await h.clients[(i + 1) % 2]!.register(registerReq(name)).then(
          () => undefined,
          (e: unknown) => e,
        );
        // Available exactly when Register accepts the name.
        if (status === UsernameStatus.USERNAME_STATUS_AVAILABLE)
          expect({ name, reg }).toEqual({ name, reg: undefined });
        else expect({ name, refused: reg !== undefined }).toEqual({ name, refused: true });
        if (status === UsernameStatus.USERNAME_STATUS_UNSPECIFIED)
          expect(reg).toMatchObject({ code: Code.ALREADY_EXISTS, reason: 'NAME_IN_USE_BY_GUEST', message: c.message });
        if (name === 'Hold-Me') expect(reg).toMatchObject({ code: Code.ALREADY_EXISTS, reason: 'USERNAME_TAKEN' });
      }
      // Guests keep their nicks: presence's second look after a claim does not take a guest-held nick for an account.
      const again = await ws.claimGuestNick('Gina', { displayNick: 'Gina', door: 'ws-messenger', sessionId: '8' });
      expect(again.ok).toBe(true);
      if (again.ok) await again.lease.release();
    } finally {
      if (g.ok) await g.lease.release();
      await marker?.release();
    }
  });

  it('CheckUsername answers from the database alone when presence cannot be read, and logs it', async () => {
    const app = h.servers[0]!.app as unknown as { names: NameReserver; log: Logger };
    const holder = jest.spyOn(app.names, 'holder').mockRejectedValueOnce(new Error('presence bucket unreachable'));
    const warn = jest.spyOn(app.log, 'warn');
    try {
      const c = await h.client.checkUsername({ username: 'Ivo' });
      expect(c.status).toBe(UsernameStatus.USERNAME_STATUS_AVAILABLE);
      expect(warn).toHaveBeenCalledWith(
        expect.objectContaining({ code: 'IDENTITY_NAME_HOLDER_UNAVAILABLE' }),
        expect.any(String),
      );
    } finally {
      holder.mockRestore();
      warn.mockRestore();
    }
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
