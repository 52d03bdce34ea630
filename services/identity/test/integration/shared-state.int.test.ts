/**
 * State every identity instance shares through PostgreSQL: failed-login throttling (the `login_failures` ledger:
 * failures made on different instances count together, a lock made on one holds on the others and on an instance
 * started later, a success on one clears the account everywhere, rows whose window is over are pruned), the
 * registrations-per-address limit, and the pruning of sessions that ended more than 30 days ago.
 */
import { Code } from '@hubbub/errors';
import { createDb } from '@hubbub/db';
import { createLogger } from '@hubbub/runtime';
import { run } from '../../src/cli';
import { LoginFailureLedger } from '../../src/store/login-failures';
import { FAST_THROTTLE_ENV, authReq, registerReq, startHarness } from '../helpers';
import type { Harness, IdentityClient } from '../helpers';

jest.setTimeout(30_000);

const PW = 'correct horse battery';
const fail = (c: IdentityClient, user: string, addr: string): Promise<unknown> =>
  c.authenticate(authReq(user, 'wrong password', addr)).then(
    () => 'accepted',
    (e: unknown) => e,
  );

describe('throttling across identity instances (PostgreSQL + NATS)', () => {
  let h: Harness;
  let b: IdentityClient;

  beforeAll(async () => {
    // Free failures 3, then delays of 200–400 ms; an account locks at 6 failures, an address at 8, for 60 s.
    h = await startHarness({ ...FAST_THROTTLE_ENV });
    b = (await h.startAnother()).client;
    for (const n of ['shared1', 'shared2', 'shared3']) await h.client.register(registerReq(n));
  });
  afterAll(async () => {
    await h.close();
  });

  it("failures on two instances count together, and the account's lock holds on both and on a new instance", async () => {
    // Alternate instances and addresses: no one instance, no one address, sees more than two failures.
    for (let i = 0; i < 3; i++)
      expect(await fail(i % 2 === 0 ? h.client : b, 'shared1', `10.40.0.${i}`)).toMatchObject({
        reason: 'INVALID_CREDENTIALS',
      });
    expect(await fail(b, 'shared1', '10.40.0.9')).toMatchObject({
      code: Code.RESOURCE_EXHAUSTED,
      reason: 'LOGIN_THROTTLED',
    });
    // Keep failing (alternating) after each delay until the account locks at 6.
    let locked: unknown;
    for (let i = 0; i < 40 && locked === undefined; i++) {
      const r = await fail(i % 2 === 0 ? h.client : b, 'shared1', `10.41.0.${i}`);
      if ((r as { details?: Record<string, string> }).details?.['locked'] === 'true') locked = r;
      else await new Promise((res) => setTimeout(res, 100));
    }
    expect(locked).toMatchObject({ code: Code.RESOURCE_EXHAUSTED, details: { locked: 'true' } });
    for (const c of [h.client, b, (await h.startAnother()).client])
      await expect(c.authenticate(authReq('shared1', PW, '10.42.0.1'))).rejects.toMatchObject({
        code: Code.RESOURCE_EXHAUSTED,
        details: { locked: 'true' },
      });
  });

  it('a success on one instance clears the account on the other', async () => {
    for (let i = 0; i < 3; i++) await fail(h.client, 'shared2', `10.43.0.${i}`);
    expect(await fail(b, 'shared2', '10.43.0.9')).toMatchObject({ reason: 'LOGIN_THROTTLED' });
    await new Promise((r) => setTimeout(r, 450)); // past the longest delay
    expect((await h.client.authenticate(authReq('shared2', PW, '10.43.1.1'))).session?.token).toBeTruthy();
    // Instance b had seen three failures: after the success elsewhere a wrong password is a plain refusal again.
    expect(await fail(b, 'shared2', '10.43.2.1')).toMatchObject({ reason: 'INVALID_CREDENTIALS' });
  });

  it("an address's failures on one instance throttle it on the other, also in CheckAddressBan", async () => {
    // Eight failures from one address across accounts, alternating instances, each after the delay: the address locks.
    let locked = false;
    for (let i = 0; i < 40 && !locked; i++) {
      const r = await fail(i % 2 === 0 ? h.client : b, `nosuch${i}`, '10.44.0.7');
      locked = (r as { details?: Record<string, string> }).details?.['locked'] === 'true';
      if (!locked) await new Promise((res) => setTimeout(res, 100));
    }
    expect(locked).toBe(true);
    await expect(h.client.authenticate(authReq('shared3', PW, '10.44.0.7'))).rejects.toMatchObject({
      code: Code.RESOURCE_EXHAUSTED,
    });
    const started = (await h.startAnother()).client;
    expect((await started.checkAddressBan({ address: '10.44.0.7' })).throttledSeconds).toBeGreaterThan(50);
  });

  it('the operator lifts a lock on every instance: `pnpm hubbub user unlock` and `address unlock`', async () => {
    const out: string[] = [];
    // shared1 is locked by the first test, the address 10.44.0.7 by the third.
    await expect(b.authenticate(authReq('shared1', PW, '10.45.0.1'))).rejects.toMatchObject({
      details: { locked: 'true' },
    });
    expect(await run(['user', 'unlock', 'SHARED1'], h.client, (l) => out.push(l))).toBe(0);
    expect(out.pop()).toBe('unlocked SHARED1');
    expect((await b.authenticate(authReq('shared1', PW, '10.45.0.1'))).session?.token).toBeTruthy();
    expect(await run(['user', 'unlock', 'shared1'], h.client, (l) => out.push(l))).toBe(0);
    expect(out.pop()).toBe('shared1 was not throttled');

    expect((await b.checkAddressBan({ address: '10.44.0.7' })).throttledSeconds).toBeGreaterThan(0);
    expect(await run(['address', 'unlock', '10.44.0.7'], h.client, (l) => out.push(l))).toBe(0);
    expect(out.pop()).toBe('unlocked 10.44.0.7');
    expect((await b.checkAddressBan({ address: '10.44.0.7' })).throttledSeconds).toBe(0);
    expect((await b.authenticate(authReq('shared3', PW, '10.44.0.7'))).session?.token).toBeTruthy();
    await expect(h.client.clearLoginFailures({ username: 'x', address: '10.0.0.1' })).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'TARGET_REQUIRED',
    });
    await expect(h.client.clearLoginFailures({ username: '', address: 'nonsense' })).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'ADDRESS_INVALID',
    });
  });

  it('prunes rows whose window is over and that hold no lock', async () => {
    const db = createDb({ databaseUrl: h.db.url, log: createLogger({ service: 't', level: 'silent' }) });
    try {
      const ledger = new LoginFailureLedger(db.knex);
      const s = { windowMs: 1_000, freeFailures: 3, baseDelayMs: 1, maxDelayMs: 1, lockFailures: 2, lockMs: 5_000 };
      await ledger.fail('a:prune-old', 1_000, s);
      await ledger.fail('a:prune-locked', 1_000, s);
      await ledger.fail('a:prune-locked', 1_001, s); // locked until 6,001
      await ledger.fail('a:prune-new', 2_500, s);
      expect(await ledger.prune(3_000, 1_000)).toBe(1); // prune-old: window over, no lock
      expect([...(await ledger.read(['a:prune-old', 'a:prune-locked', 'a:prune-new'])).keys()].sort()).toEqual([
        'a:prune-locked',
        'a:prune-new',
      ]);
      expect(await ledger.prune(7_000, 1_000)).toBe(2);
    } finally {
      await db.close();
    }
  });
});

describe('registrations per address across identity instances (PostgreSQL + NATS)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ IDENTITY_REGISTRATIONS_PER_HOUR: '3' });
  });
  afterAll(async () => {
    await h.close();
  });

  it('one limit for every instance, also for an instance started later', async () => {
    const b = (await h.startAnother()).client;
    const reg = (c: IdentityClient, name: string, addr: string): Promise<unknown> =>
      c.register(registerReq(name, { clientAddress: addr })).then(
        () => 'ok',
        (e: unknown) => e,
      );
    const throttled = { code: Code.RESOURCE_EXHAUSTED, reason: 'REGISTRATION_THROTTLED' };
    expect(await reg(h.client, 'spread1', '192.0.2.50')).toBe('ok');
    expect(await reg(b, 'spread2', '192.0.2.50')).toBe('ok');
    expect(await reg(h.client, 'spread3', '192.0.2.50')).toBe('ok');
    expect(await reg(b, 'spread4', '192.0.2.50')).toMatchObject(throttled);
    expect(await reg((await h.startAnother()).client, 'spread5', '192.0.2.50')).toMatchObject(throttled);
    expect(await reg(b, 'spread6', '192.0.2.51')).toBe('ok');
  });
});

describe('pruning sessions that ended long ago (PostgreSQL + NATS)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it('deletes sessions expired or revoked more than 30 days ago, keeps the rest', async () => {
    const live = (await h.client.register(registerReq('pruned1', { createSession: true }))).session!;
    const revoked = (await h.client.authenticate(authReq('pruned1', PW, '10.50.0.1'))).session!;
    await h.client.revokeToken({ token: revoked.token, sessionId: '', userId: '' });
    const DAY = 24 * 3600 * 1000;
    const db = createDb({ databaseUrl: h.db.url, log: createLogger({ service: 't', level: 'silent' }) });
    const count = async (): Promise<number> =>
      Number((await db.knex('sessions').count<{ n: string }[]>('* as n'))[0]!.n);
    try {
      expect(await count()).toBe(2);
      // 20 days on: the 7-day session expired 13 days ago, the revoked one ended 20 days ago — both kept.
      const at20 = await h.startAnother({ now: () => Date.now() + 20 * DAY });
      expect(await at20.server.app.pruneSessions()).toBe(0);
      // 40 days on: the revoked one ended 40 days ago, the other expired 33 days ago — both go.
      // (An instance prunes when it starts, too: whichever run deletes them, none is left.)
      const at40 = await h.startAnother({ now: () => Date.now() + 40 * DAY });
      await at40.server.app.pruneSessions();
      expect(await count()).toBe(0);
      // A session made now is untouched by a prune now.
      await h.client.authenticate(authReq('pruned1', PW, '10.50.0.2'));
      expect(await h.servers[0]!.app.pruneSessions()).toBe(0);
      expect(await count()).toBe(1);
      expect(live.ttlSeconds).toBe(7 * 24 * 3600);
    } finally {
      await db.close();
    }
  });
});

describe('IDENTITY_STATEMENT_TIMEOUT_MS (PostgreSQL + NATS)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ IDENTITY_STATEMENT_TIMEOUT_MS: '200' });
    await h.client.register(registerReq('waiter'));
  });
  afterAll(async () => {
    await h.close();
  });

  it('a statement stuck behind a lock is cancelled: DEADLINE_EXCEEDED QUERY_TIMEOUT, then all is normal', async () => {
    const db = createDb({ databaseUrl: h.db.url, log: createLogger({ service: 't', level: 'silent' }) });
    try {
      await db.knex.transaction(async (trx) => {
        await trx.raw('LOCK TABLE users IN ACCESS EXCLUSIVE MODE');
        const t0 = Date.now();
        await expect(h.client.getUserByName({ username: 'waiter' })).rejects.toMatchObject({
          code: Code.DEADLINE_EXCEEDED,
          reason: 'QUERY_TIMEOUT',
        });
        expect(Date.now() - t0).toBeLessThan(2_000);
      });
      expect((await h.client.getUserByName({ username: 'waiter' })).user?.username).toBe('waiter');
    } finally {
      await db.close();
    }
  });
});
