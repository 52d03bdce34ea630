import { Code } from '@hubbub/errors';
import { createClient } from '@hubbub/grpc';
import { connectNats, drainNats, subscribeJson } from '@hubbub/nats';
import type { NatsConnection } from '@hubbub/nats';
import { identityV1, subjects } from '@hubbub/proto';
import { createLogger } from '@hubbub/runtime';
import { createDb } from '@hubbub/db';
import { waitFor } from '@hubbub/testing';
import { registerReq, startHarness } from '../helpers';
import type { Harness } from '../helpers';
import { HORIZON_MAX_LAG_MS } from '../../src/app/identity';

jest.setTimeout(30_000);

const { Role, UsernameStatus, UserEventType } = identityV1;

function varint(v: bigint): number[] {
  const out: number[] = [];
  let x = BigInt.asUintN(64, v);
  while (x >= 0x80n) {
    out.push(Number(x & 0x7fn) | 0x80);
    x >>= 7n;
  }
  out.push(Number(x));
  return out;
}

/**
 * A gRPC client whose Ban, BanAddress and ListUsers requests carry until / changed_since as a raw
 * google.protobuf.Timestamp with `seconds`, as a non-JS client can send it: ts-proto only encodes a Date, and
 * cannot encode an invalid one (it throws), so an out-of-range `seconds` is appended to the encoded request
 * (the last occurrence of a field wins).
 */
function rawTimestampClient(port: number, seconds: bigint) {
  const d = identityV1.IdentityServiceService;
  const withTimestamp = <T>(m: { requestSerialize: (r: T) => Buffer }, field: number) => ({
    requestSerialize: (r: T): Buffer => {
      const ts = [0x08, ...varint(seconds)];
      return Buffer.concat([m.requestSerialize(r), Buffer.from([(field << 3) | 2, ts.length, ...ts])]);
    },
  });
  return createClient(
    {
      ban: { ...d.ban, ...withTimestamp(d.ban, 3) },
      banAddress: { ...d.banAddress, ...withTimestamp(d.banAddress, 3) },
      listUsers: { ...d.listUsers, ...withTimestamp(d.listUsers, 4) },
    },
    `127.0.0.1:${port}`,
  );
}

describe('identity accounts (PostgreSQL + NATS)', () => {
  let h: Harness;
  let nc: NatsConnection;
  const userEvents: identityV1.UserEvent[] = [];
  const revocations: identityV1.SessionRevokedEvent[] = [];

  beforeAll(async () => {
    h = await startHarness();
    nc = await connectNats({
      servers: h.nats.url,
      name: 'accounts-test',
      log: createLogger({ service: 't', level: 'silent' }),
    });
    const s = subjects(h.nats.prefix);
    subscribeJson(nc, s.userAll, identityV1.UserEvent, (ev) => userEvents.push(ev));
    subscribeJson(nc, s.sessionRevoked, identityV1.SessionRevokedEvent, (ev) => revocations.push(ev));
    await nc.flush();
  });
  afterAll(async () => {
    await drainNats(nc);
    await h.close();
  });

  it('registers an account and returns no secret', async () => {
    const r = await h.client.register(
      registerReq('Alice', { email: 'alice@example.org', bio: 'hi', createSession: true, displayName: 'Alice A.' }),
    );
    expect(r.user).toMatchObject({
      username: 'Alice',
      displayName: 'Alice A.',
      bio: 'hi',
      role: Role.ROLE_USER,
      deleted: false,
    });
    expect(r.user!.id).toMatch(/^\d+$/);
    expect(r.session!.token).toHaveLength(43);
    expect(r.session!.ttlSeconds).toBe(7 * 24 * 3600);
    const json = JSON.stringify(identityV1.User.toJSON(r.user!));
    expect(json).not.toMatch(/scrypt|password|alice@example/);
    await waitFor(() =>
      userEvents.some((e) => e.type === UserEventType.USER_EVENT_TYPE_CREATED && e.user?.username === 'Alice'),
    );
  });

  it('refuses case-insensitive collisions and reserved or malformed names with clear reasons', async () => {
    await expect(h.client.register(registerReq('ALICE'))).rejects.toMatchObject({
      code: Code.ALREADY_EXISTS,
      reason: 'USERNAME_TAKEN',
    });
    await expect(h.client.register(registerReq('Ａｌｉｃｅ'))).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'USERNAME_INVALID',
    });
    await expect(h.client.register(registerReq('Root'))).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'USERNAME_RESERVED',
      message: 'That name is reserved',
    });
    await expect(h.client.register(registerReq('bad#name'))).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'USERNAME_INVALID',
    });
    await expect(h.client.register(registerReq('bob', { password: 'short' }))).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'PASSWORD_INVALID',
      message: 'Password must be at least 8 characters',
    });
    await expect(
      h.client.register(registerReq('bob', { password: 'BOBBOBBOB', username: 'bobbobbob' })),
    ).rejects.toMatchObject({
      reason: 'PASSWORD_INVALID',
    });
    await expect(h.client.register(registerReq('bob', { email: 'nope' }))).rejects.toMatchObject({
      reason: 'EMAIL_INVALID',
    });
    await expect(h.client.register(registerReq('bob', { displayName: 'x\u202ey' }))).rejects.toMatchObject({
      reason: 'DISPLAY_NAME_INVALID',
    });
    await expect(h.client.register(registerReq('bob', { sshPublicKey: 'ssh-ed25519 garbage' }))).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'SSH_KEY_INVALID',
    });
  });

  it('lets exactly one of many concurrent registrations of the same name win', async () => {
    const names = ['race', 'RACE', 'Race', 'rAce', 'racE', 'RaCe', 'race', 'RACE'];
    const results = await Promise.allSettled(names.map((n) => h.client.register(registerReq(n))));
    const ok = results.filter((r) => r.status === 'fulfilled');
    expect(ok).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: Code.ALREADY_EXISTS });
    }
  });

  it('reports name availability (CheckUsername)', async () => {
    const c = (username: string): Promise<identityV1.CheckUsernameResponse> => h.client.checkUsername({ username });
    expect((await c('ALICE')).status).toBe(UsernameStatus.USERNAME_STATUS_TAKEN);
    expect((await c('ALICE')).canonicalUsername).toBe('Alice');
    expect((await c('sysop')).status).toBe(UsernameStatus.USERNAME_STATUS_RESERVED);
    expect((await c('guest')).status).toBe(UsernameStatus.USERNAME_STATUS_RESERVED);
    expect((await c('Zoë!')).status).toBe(UsernameStatus.USERNAME_STATUS_INVALID);
    expect((await c('nobody-yet')).status).toBe(UsernameStatus.USERNAME_STATUS_AVAILABLE);
  });

  it('gets users by id, by name (fold) and in batches; private fields only on request', async () => {
    const a = (await h.client.getUserByName({ username: 'aLiCe' })).user!;
    expect(a.username).toBe('Alice');
    const g = await h.client.getUser({ userId: a.id, includePrivate: true });
    expect(g.private?.email).toBe('alice@example.org');
    expect((await h.client.getUser({ userId: a.id, includePrivate: false })).private).toBeUndefined();
    await expect(h.client.getUser({ userId: '999999', includePrivate: false })).rejects.toMatchObject({
      code: Code.NOT_FOUND,
      reason: 'USER_NOT_FOUND',
    });
    await expect(h.client.getUser({ userId: 'abc', includePrivate: false })).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'USER_ID_INVALID',
    });
    await expect(h.client.getUserByName({ username: 'nobody-here' })).rejects.toMatchObject({ code: Code.NOT_FOUND });
    const b = await h.client.batchGetUsers({ userIds: ['999998', a.id, 'x', a.id] });
    expect(b.users.map((u) => u.id)).toEqual([a.id]);
    expect(b.notFoundIds).toEqual(['999998', 'x']);
    await expect(
      h.client.batchGetUsers({ userIds: Array.from({ length: 1001 }, (_, i) => String(i + 1)) }),
    ).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
    });
  });

  it('lists and searches users with paging', async () => {
    for (const n of ['carol', 'dave', 'erin', 'frank']) await h.client.register(registerReq(n));
    const all: string[] = [];
    let token = '';
    do {
      const page = await h.client.listUsers({
        query: '',
        pageSize: 2,
        pageToken: token,
        changedSince: undefined,
        includeDeleted: false,
      });
      expect(page.users.length).toBeLessThanOrEqual(2);
      all.push(...page.users.map((u) => u.username));
      token = page.nextPageToken;
    } while (token !== '');
    expect(all).toEqual([...all].sort((x, y) => x.toLowerCase().localeCompare(y.toLowerCase())));
    expect(all).toEqual(expect.arrayContaining(['Alice', 'carol', 'dave', 'erin', 'frank']));
    expect(all).not.toContain('guest');
    const s = await h.client.listUsers({
      query: 'RO',
      pageSize: 0,
      pageToken: '',
      changedSince: undefined,
      includeDeleted: false,
    });
    expect(s.users.map((u) => u.username)).toEqual(['carol']);
    await expect(
      h.client.listUsers({
        query: '',
        pageSize: 1,
        pageToken: 'garbage',
        changedSince: undefined,
        includeDeleted: false,
      }),
    ).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, reason: 'PAGE_TOKEN_INVALID' });
  });

  it('updates profiles, bumps updated_at and reports changes since a time, tombstones included', async () => {
    const dave = (await h.client.getUserByName({ username: 'dave' })).user!;
    const before = new Date(Date.now() - 1);
    await new Promise((r) => setTimeout(r, 5));
    const u = await h.client.updateProfile({ userId: dave.id, displayName: 'Dave D', bio: 'new bio', isBot: true });
    expect(u.user).toMatchObject({ displayName: 'Dave D', bio: 'new bio', isBot: true });
    expect(u.user!.updatedAt!.getTime()).toBeGreaterThan(dave.updatedAt!.getTime());
    await expect(h.client.updateProfile({ userId: dave.id, email: 'bad' })).rejects.toMatchObject({
      reason: 'EMAIL_INVALID',
    });

    const erin = (await h.client.getUserByName({ username: 'erin' })).user!;
    await h.client.deleteAccount({
      userId: erin.id,
      password: 'correct horse battery',
      username: 'ERIN',
      clientAddress: '10.0.0.2',
    });

    const seen: identityV1.User[] = [];
    let token = '';
    do {
      const p = await h.client.listUsers({
        query: '',
        pageSize: 1,
        pageToken: token,
        changedSince: before,
        includeDeleted: false,
      });
      seen.push(...p.users);
      token = p.nextPageToken;
    } while (token !== '');
    expect(seen.map((x) => x.username)).toEqual(['dave', 'erin']);
    expect(seen[1]).toMatchObject({ deleted: true, displayName: '' });
    const times = seen.map((x) => x.updatedAt!.getTime());
    expect(times).toEqual([...times].sort((a, b) => a - b));
    await waitFor(() =>
      userEvents.some((e) => e.type === UserEventType.USER_EVENT_TYPE_UPDATED && e.user?.id === dave.id),
    );
  });

  it.each([
    ['this instance', false],
    ['another instance', true],
  ])(
    'says up to when a listing of changes is complete: a change in flight on %s is reported by the next poll',
    async (_where, other) => {
      const r = await h.client.register(registerReq(other ? 'hank2' : 'hank'));
      const id = r.user!.id;
      const writer = other ? (await h.startAnother()).client : h.client;
      const changes = (since: Date) =>
        h.client.listUsers({ query: '', pageSize: 100, pageToken: '', changedSince: since, includeDeleted: true });
      const all = await h.client.listUsers({
        query: '',
        pageSize: 1,
        pageToken: '',
        changedSince: undefined,
        includeDeleted: false,
      });
      expect(all.completeBefore).toBeUndefined();
      // A profile change whose UPDATE waits on a row lock: its transaction starts, it commits only when released.
      const db = createDb({ databaseUrl: h.db.url, log: createLogger({ service: 't', level: 'silent' }) });
      const dbNow = async (): Promise<number> =>
        (await db.knex.raw<{ rows: { t: Date }[] }>('SELECT clock_timestamp() AS t')).rows[0]!.t.getTime();
      // No transaction of this database is open before `before` (a new instance prunes sessions when it starts).
      await waitFor(async () => {
        const open = await db.knex.raw<{ rows: unknown[] }>(
          `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND xact_start IS NOT NULL
             AND pid <> pg_backend_pid()`,
        );
        return open.rows.length === 0;
      });
      const before = await dbNow();
      let release!: () => void;
      const released = new Promise<void>((ok) => (release = ok));
      let locked!: () => void;
      const isLocked = new Promise<void>((ok) => (locked = ok));
      const holding = db.knex.transaction(async (trx) => {
        await trx('users').where({ id }).forUpdate().select('id');
        locked();
        await released;
      });
      try {
        await isLocked;
        const newName = other ? 'Hank from afar' : 'Hank the Late';
        const updating = writer.updateProfile({ userId: id, displayName: newName });
        await waitFor(async () => {
          const n = await db.knex.raw<{ rows: unknown[] }>(
            `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
          );
          return n.rows.length > 0;
        });
        // The poll does not wait for the change, and does not claim to be complete past its transaction's start
        // (nor the lock holder's: any open transaction of this database and role bounds it).
        const first = await changes(new Date(before - 60_000));
        expect(first.users.find((u) => u.id === id)?.displayName).not.toBe(newName);
        const cb = first.completeBefore!.getTime();
        expect(cb).toBeGreaterThanOrEqual(before);
        expect(cb).toBeLessThanOrEqual(await dbNow());
        release();
        await holding;
        const done = await updating;
        // Stamped no earlier than that: the poller continuing from complete_before gets it.
        expect(done.user!.updatedAt!.getTime()).toBeGreaterThanOrEqual(cb);
        const next = await changes(first.completeBefore!);
        expect(next.users.find((u) => u.id === id)?.displayName).toBe(newName);
        expect(next.completeBefore!.getTime()).toBeGreaterThan(done.user!.updatedAt!.getTime());
      } finally {
        release();
        await holding.catch(() => undefined);
        await db.close();
      }
    },
  );

  it('answers a minute back when PostgreSQL does not publish transaction starts (track_activities off)', async () => {
    const db = createDb({ databaseUrl: h.db.url, log: createLogger({ service: 't', level: 'silent' }) });
    const name = (await db.knex.raw<{ rows: { n: string }[] }>('SELECT current_database() AS n')).rows[0]!.n;
    try {
      await db.knex.raw(`ALTER DATABASE "${name}" SET track_activities = off`);
      // A new instance: its connections start with the database's setting.
      const late = (await h.startAnother()).client;
      const t0 = Date.now();
      const r = await late.listUsers({
        query: '',
        pageSize: 1,
        pageToken: '',
        changedSince: new Date(t0 - 3_600_000),
        includeDeleted: true,
      });
      const lag = t0 - r.completeBefore!.getTime();
      expect(lag).toBeGreaterThanOrEqual(HORIZON_MAX_LAG_MS - 1_000);
      expect(lag).toBeLessThanOrEqual(HORIZON_MAX_LAG_MS + 5_000);
    } finally {
      await db.knex.raw(`ALTER DATABASE "${name}" RESET track_activities`);
      await db.close();
    }
  });

  it('soft-deletes only with the own password; the tombstone keeps the name, tokens die', async () => {
    const r = await h.client.register(registerReq('gina', { createSession: true }));
    const id = r.user!.id;
    const token = r.session!.token;
    await expect(h.client.verifyToken({ token, expectedUserId: id, requiredScope: '' })).resolves.toMatchObject({
      userId: id,
    });
    await expect(
      h.client.deleteAccount({ userId: id, password: 'wrong password', username: '', clientAddress: '10.0.0.3' }),
    ).rejects.toMatchObject({ code: Code.UNAUTHENTICATED, reason: 'INVALID_CREDENTIALS' });
    await expect(
      h.client.deleteAccount({
        userId: id,
        password: 'correct horse battery',
        username: 'someoneelse',
        clientAddress: '10.0.0.3',
      }),
    ).rejects.toMatchObject({ code: Code.UNAUTHENTICATED, reason: 'INVALID_CREDENTIALS' });
    await h.client.deleteAccount({
      userId: id,
      password: 'correct horse battery',
      username: 'Gina',
      clientAddress: '10.0.0.3',
    });
    await expect(h.client.verifyToken({ token, expectedUserId: '', requiredScope: '' })).rejects.toMatchObject({
      code: Code.UNAUTHENTICATED,
      reason: 'TOKEN_INVALID',
    });
    const t = (await h.client.getUser({ userId: id, includePrivate: true })).user!;
    expect(t).toMatchObject({ deleted: true, username: 'gina' });
    expect(t.deletedAt).toBeInstanceOf(Date);
    await expect(h.client.register(registerReq('GINA'))).rejects.toMatchObject({ code: Code.ALREADY_EXISTS });
    expect((await h.client.checkUsername({ username: 'gina' })).status).toBe(UsernameStatus.USERNAME_STATUS_TAKEN);
    await expect(
      h.client.authenticate({
        username: 'gina',
        password: 'correct horse battery',
        clientAddress: '10.0.0.3',
        sessionTtlSeconds: 0,
      }),
    ).rejects.toMatchObject({
      code: Code.UNAUTHENTICATED,
    });
    await waitFor(() => userEvents.some((e) => e.type === UserEventType.USER_EVENT_TYPE_DELETED && e.user?.id === id));
    await waitFor(() => revocations.some((e) => e.userId === id && e.allSessions && e.reason === 'deleted'));
  });

  it('sets roles; refuses unknown roles', async () => {
    const carol = (await h.client.getUserByName({ username: 'carol' })).user!;
    const r = await h.client.setRole({ userId: carol.id, role: Role.ROLE_SYSOP, by: 'test' });
    expect(r.user!.role).toBe(Role.ROLE_SYSOP);
    await expect(h.client.setRole({ userId: carol.id, role: Role.ROLE_GUEST, by: 'test' })).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'ROLE_INVALID',
    });
  });

  it('bans with reason and expiry: event on NATS, sessions revoked, logins refused; unban restores', async () => {
    const r = await h.client.register(registerReq('mallory', { createSession: true }));
    const id = r.user!.id;
    const until = new Date(Date.now() + 3_600_000);
    const b = await h.client.ban({ userId: id, reason: 'spam', until, by: 'carol' });
    expect(b.user!.ban).toMatchObject({ reason: 'spam', by: 'carol' });
    expect(b.user!.ban!.until!.getTime()).toBe(until.getTime());
    await waitFor(
      () =>
        userEvents.some(
          (e) => e.type === UserEventType.USER_EVENT_TYPE_BANNED && e.user?.id === id && e.user.ban?.reason === 'spam',
        ),
      5_000,
      'banned event',
    );
    await waitFor(() => revocations.some((e) => e.userId === id && e.reason === 'banned'));
    await expect(
      h.client.verifyToken({ token: r.session!.token, expectedUserId: '', requiredScope: '' }),
    ).rejects.toMatchObject({
      code: Code.UNAUTHENTICATED,
    });
    await expect(
      h.client.authenticate({
        username: 'mallory',
        password: 'correct horse battery',
        clientAddress: '10.0.0.4',
        sessionTtlSeconds: 0,
      }),
    ).rejects.toMatchObject({ code: Code.PERMISSION_DENIED, reason: 'ACCOUNT_BANNED' });
    const vp = await h.client.verifyPassword({
      username: 'mallory',
      secret: 'correct horse battery',
      protocol: 'ssh',
      clientAddress: '10.0.0.4',
    });
    expect(vp.user!.ban?.reason).toBe('spam');
    const list = await h.client.listBans({});
    expect(list.users.map((u) => u.id)).toContain(id);
    await expect(
      h.client.ban({ userId: id, reason: 'x', until: new Date(Date.now() - 1000), by: 'c' }),
    ).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'UNTIL_INVALID',
    });
    const u = await h.client.unban({ userId: id, by: 'carol' });
    expect(u.user!.ban).toBeUndefined();
    await expect(
      h.client.authenticate({
        username: 'mallory',
        password: 'correct horse battery',
        clientAddress: '10.0.0.4',
        sessionTtlSeconds: 0,
      }),
    ).resolves.toMatchObject({ user: { id } });
  });

  it('records logins, stores preferences, serves the guest account', async () => {
    const frank = (await h.client.getUserByName({ username: 'frank' })).user!;
    const first = await h.client.recordLogin({ userId: frank.id, clientAddress: '::ffff:10.9.9.9', protocol: 'ssh' });
    expect(first.previousAt).toBeUndefined();
    const second = await h.client.recordLogin({ userId: frank.id, clientAddress: '10.9.9.8', protocol: 'ws' });
    expect(second).toMatchObject({ previousAddress: '10.9.9.9', previousProtocol: 'ssh' });
    const p = await h.client.setPreferences({ userId: frank.id, preferences: { 'term.encoding': 'utf-8', tz: 'UTC' } });
    expect(p.preferences).toEqual({ 'term.encoding': 'utf-8', tz: 'UTC' });
    await h.client.setPreferences({ userId: frank.id, preferences: { tz: '' } });
    expect((await h.client.getPreferences({ userId: frank.id })).preferences).toEqual({ 'term.encoding': 'utf-8' });
    await expect(h.client.setPreferences({ userId: frank.id, preferences: { 'BAD KEY': 'x' } })).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
    });
    const g = await h.client.getGuestAccount({});
    expect(g.user).toMatchObject({ username: 'guest', role: Role.ROLE_GUEST });
  });

  it('bans addresses and CIDRs', async () => {
    await h.client.banAddress({ cidr: '192.0.2.0/24', reason: 'abuse', until: undefined, by: 'carol' });
    expect((await h.client.checkAddressBan({ address: '192.0.2.77' })).banned).toBe(true);
    expect((await h.client.checkAddressBan({ address: '::ffff:192.0.2.77' })).ban?.cidr).toBe('192.0.2.0/24');
    expect((await h.client.checkAddressBan({ address: '198.51.100.1' })).banned).toBe(false);
    expect((await h.client.listBans({})).addresses.map((a) => a.cidr)).toContain('192.0.2.0/24');
    await expect(
      h.client.banAddress({ cidr: '300.1.1.1', reason: '', until: undefined, by: '' }),
    ).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'CIDR_INVALID',
    });
    await h.client.unbanAddress({ cidr: '192.0.2.0/24' });
    expect((await h.client.checkAddressBan({ address: '192.0.2.77' })).banned).toBe(false);
    await expect(h.client.unbanAddress({ cidr: '192.0.2.0/24' })).rejects.toMatchObject({ code: Code.NOT_FOUND });
  });

  it('answers hostile text (NUL bytes, forged page tokens) with its canonical code, never INTERNAL', async () => {
    const frank = (await h.client.getUserByName({ username: 'frank' })).user!;
    const nul = 'fr\u0000ank';
    const list = (over: Partial<identityV1.ListUsersRequest>): Promise<identityV1.ListUsersResponse> =>
      h.client.listUsers({
        query: '',
        pageSize: 1,
        pageToken: '',
        changedSince: undefined,
        includeDeleted: false,
        ...over,
      });
    const bad = (reason: string): object => ({ code: Code.INVALID_ARGUMENT, reason });
    // Names: nobody can have a name PostgreSQL cannot store, so lookups find nobody and logins fail as usual.
    await expect(h.client.getUserByName({ username: nul })).rejects.toMatchObject({ code: Code.NOT_FOUND });
    expect((await h.client.checkUsername({ username: nul })).status).toBe(UsernameStatus.USERNAME_STATUS_INVALID);
    await expect(
      h.client.authenticate({
        username: nul,
        password: 'x'.repeat(10),
        clientAddress: '10.77.0.1',
        sessionTtlSeconds: 0,
      }),
    ).rejects.toMatchObject({ code: Code.UNAUTHENTICATED, reason: 'INVALID_CREDENTIALS' });
    await expect(h.client.getE2EKey({ username: nul, fingerprint: '' })).rejects.toMatchObject({
      code: Code.NOT_FOUND,
    });
    // Page tokens that decode to the right shape but hold values the query cannot use.
    const forged = (...parts: string[]): string => Buffer.from(parts.join('\n')).toString('base64url');
    await expect(list({ pageToken: forged('n', 'frank', 'abc') })).rejects.toMatchObject(bad('PAGE_TOKEN_INVALID'));
    await expect(list({ pageToken: forged('n', nul, '1') })).rejects.toMatchObject(bad('PAGE_TOKEN_INVALID'));
    await expect(list({ pageToken: forged('c', 'soon', '1'), changedSince: new Date(0) })).rejects.toMatchObject(
      bad('PAGE_TOKEN_INVALID'),
    );
    await expect(list({ query: nul })).rejects.toMatchObject(bad('QUERY_INVALID'));
    await expect(h.client.setPreferences({ userId: frank.id, preferences: { tz: 'U\u0000TC' } })).rejects.toMatchObject(
      bad('PREFERENCE_VALUE_INVALID'),
    );
    await expect(h.client.revokeAppPassword({ userId: frank.id, appPassword: nul })).rejects.toMatchObject(
      bad('APP_PASSWORD_REF_INVALID'),
    );
    await expect(
      h.client.ban({ userId: frank.id, reason: 'spam', until: undefined, by: 'op\u0000' }),
    ).rejects.toMatchObject(bad('BY_INVALID'));
    await expect(
      h.client.banAddress({ cidr: '192.0.2.1', reason: '', until: undefined, by: 'x'.repeat(65) }),
    ).rejects.toMatchObject(bad('BY_INVALID'));
    // Nothing was changed by the refused calls.
    expect((await h.client.getUser({ userId: frank.id, includePrivate: false })).user!.ban).toBeUndefined();
    expect((await h.client.checkAddressBan({ address: '192.0.2.1' })).banned).toBe(false);
  });

  it('refuses client addresses and protocols it cannot store (NUL bytes, megabytes) up front, never INTERNAL', async () => {
    const frank = (await h.client.getUserByName({ username: 'frank' })).user!;
    const bad = (reason: string): object => ({ code: Code.INVALID_ARGUMENT, reason });
    for (const clientAddress of ['10.0.0.1\u0000', 'x'.repeat(65), '10.0.0.1'.repeat(100_000)]) {
      // A good password: the address was stored with the new session (a NUL byte failed there as INTERNAL).
      await expect(
        h.client.authenticate({
          username: 'frank',
          password: 'correct horse battery',
          clientAddress,
          sessionTtlSeconds: 0,
        }),
      ).rejects.toMatchObject(bad('CLIENT_ADDRESS_INVALID'));
      await expect(
        h.client.register(registerReq('hostile-addr', { clientAddress, createSession: true })),
      ).rejects.toMatchObject(bad('CLIENT_ADDRESS_INVALID'));
      await expect(h.client.recordLogin({ userId: frank.id, clientAddress, protocol: 'ssh' })).rejects.toMatchObject(
        bad('CLIENT_ADDRESS_INVALID'),
      );
    }
    await expect(
      h.client.recordLogin({ userId: frank.id, clientAddress: '10.9.9.7', protocol: 'ss\u0000h' }),
    ).rejects.toMatchObject(bad('PROTOCOL_INVALID'));
    // A malformed fingerprint is nobody's certificate.
    await expect(h.client.removeClientCertificate({ userId: frank.id, fingerprint: 'ab\u0000' })).rejects.toMatchObject(
      { code: Code.NOT_FOUND, reason: 'CERTIFICATE_NOT_FOUND' },
    );
    // Nothing was stored by the refused calls; the longest address accepted is stored as given.
    await expect(h.client.getUserByName({ username: 'hostile-addr' })).rejects.toMatchObject({ code: Code.NOT_FOUND });
    const longest = 'y'.repeat(64);
    await h.client.recordLogin({ userId: frank.id, clientAddress: longest, protocol: 'ssh' });
    const r = await h.client.recordLogin({ userId: frank.id, clientAddress: '10.9.9.7', protocol: 'ssh' });
    expect(r.previousAddress).toBe(longest);
  });

  it('refuses ids beyond PostgreSQL bigint as INVALID_ARGUMENT or not found, never INTERNAL', async () => {
    const frank = (await h.client.getUserByName({ username: 'frank' })).user!;
    // 19 digits, but past 2^63-1: the id columns are bigint.
    const huge = '9999999999999999999';
    const bad = (reason: string): object => ({ code: Code.INVALID_ARGUMENT, reason });
    await expect(h.client.getUser({ userId: huge, includePrivate: false })).rejects.toMatchObject(
      bad('USER_ID_INVALID'),
    );
    await expect(h.client.revokeAllTokens({ userId: huge })).rejects.toMatchObject(bad('USER_ID_INVALID'));
    await expect(h.client.revokeToken({ token: '', userId: huge, sessionId: '1' })).rejects.toMatchObject(
      bad('USER_ID_INVALID'),
    );
    await expect(h.client.revokeToken({ token: '', userId: frank.id, sessionId: huge })).rejects.toMatchObject(
      bad('SESSION_ID_INVALID'),
    );
    await expect(h.client.removeSshKey({ userId: frank.id, key: huge })).rejects.toMatchObject(
      bad('SSH_KEY_REF_INVALID'),
    );
    await expect(h.client.revokeAppPassword({ userId: frank.id, appPassword: huge })).rejects.toMatchObject({
      code: Code.NOT_FOUND,
    });
    expect(await h.client.batchGetUsers({ userIds: [frank.id, huge] })).toMatchObject({
      users: [{ id: frank.id }],
      notFoundIds: [huge],
    });
    const forged = Buffer.from(['n', 'frank', huge].join('\n')).toString('base64url');
    await expect(
      h.client.listUsers({ query: '', pageSize: 1, pageToken: forged, changedSince: undefined, includeDeleted: false }),
    ).rejects.toMatchObject(bad('PAGE_TOKEN_INVALID'));
    // the largest bigint is a valid id that nobody has
    await expect(h.client.getUser({ userId: '9223372036854775807', includePrivate: false })).rejects.toMatchObject({
      code: Code.NOT_FOUND,
    });
  });

  it("refuses timestamps off google.protobuf.Timestamp's range (ban until, changed_since) as INVALID_ARGUMENT", async () => {
    const frank = (await h.client.getUserByName({ username: 'frank' })).user!;
    const bad = (reason: string): object => ({ code: Code.INVALID_ARGUMENT, reason });
    const listReq = (changedSince: Date | undefined): identityV1.ListUsersRequest => ({
      query: '',
      pageSize: 1,
      pageToken: '',
      changedSince,
      includeDeleted: false,
    });
    // The largest Date there is (year 275760): the client sends seconds = 8.64e12, and the service decodes it into a
    // valid Date that neither proto3 JSON nor (in the past direction) PostgreSQL can hold.
    const farFuture = new Date(8.64e15);
    const farPast = new Date(-8.64e15);
    await expect(h.client.ban({ userId: frank.id, reason: 'x', until: farFuture, by: 'op' })).rejects.toMatchObject(
      bad('UNTIL_INVALID'),
    );
    await expect(
      h.client.banAddress({ cidr: '203.0.113.9', reason: 'x', until: farFuture, by: 'op' }),
    ).rejects.toMatchObject(bad('UNTIL_INVALID'));
    await expect(h.client.listUsers(listReq(farPast))).rejects.toMatchObject(bad('CHANGED_SINCE_INVALID'));
    await expect(h.client.listUsers(listReq(farFuture))).rejects.toMatchObject(bad('CHANGED_SINCE_INVALID'));
    // Beyond that, `seconds` decodes to an invalid Date (NaN), which got past "must be in the future" and failed
    // in SQL as INTERNAL.
    for (const seconds of [10n ** 13n, -(10n ** 13n), 2n ** 63n - 1n]) {
      const raw = rawTimestampClient(h.servers[0]!.port, seconds);
      try {
        await expect(raw.ban({ userId: frank.id, reason: 'x', until: undefined, by: 'op' })).rejects.toMatchObject({
          ...bad('UNTIL_INVALID'),
          message: 'until must be a time between 0001-01-01 and 9999-12-31 UTC',
        });
        await expect(
          raw.banAddress({ cidr: '203.0.113.9', reason: 'x', until: undefined, by: 'op' }),
        ).rejects.toMatchObject(bad('UNTIL_INVALID'));
        await expect(raw.listUsers(listReq(undefined))).rejects.toMatchObject(bad('CHANGED_SINCE_INVALID'));
      } finally {
        raw.close();
      }
    }
    // Nothing was changed by the refused calls.
    expect((await h.client.getUser({ userId: frank.id, includePrivate: false })).user!.ban).toBeUndefined();
    expect((await h.client.checkAddressBan({ address: '203.0.113.9' })).banned).toBe(false);
    // The ends of the range are accepted.
    const last = new Date('9999-12-31T23:59:59.999Z');
    const b = await h.client.banAddress({ cidr: '203.0.113.9', reason: 'x', until: last, by: 'op' });
    expect(b.ban!.ban!.until).toEqual(last);
    await h.client.unbanAddress({ cidr: '203.0.113.9' });
    await expect(h.client.listUsers(listReq(new Date('0001-01-01T00:00:00Z')))).resolves.toMatchObject({
      users: [expect.anything()],
    });
  });
});
