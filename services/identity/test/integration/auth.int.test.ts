import { Code } from '@hubbub/errors';
import { identityV1 } from '@hubbub/proto';
import { waitFor } from '@hubbub/testing';
import { tokenHashBase64 } from '../../src/app/secrets';
import { FAST_THROTTLE_ENV, authReq, registerReq, startHarness } from '../helpers';
import type { Harness } from '../helpers';

jest.setTimeout(30_000);

const { CredentialKind } = identityV1;
const PW = 'correct horse battery';

describe('identity authentication and tokens (PostgreSQL + NATS)', () => {
  let h: Harness;
  let aliceId: string;

  beforeAll(async () => {
    h = await startHarness({
      ...FAST_THROTTLE_ENV,
    });
    aliceId = (await h.client.register(registerReq('alice'))).user!.id;
    for (const n of ['bob', 'carol', 'dave', 'erin']) await h.client.register(registerReq(n));
  });
  afterAll(async () => {
    await h.close();
  });

  it('logs in with the password (any case of the name) and returns a fresh token each time', async () => {
    const a = await h.client.authenticate(authReq('ALICE', PW, '10.1.0.1'));
    const b = await h.client.authenticate(authReq('alice', PW, '10.1.0.1'));
    expect(a.user!.username).toBe('alice');
    expect(a.session!.token).not.toBe(b.session!.token);
    expect(a.session!.ttlSeconds).toBe(7 * 24 * 3600);
    for (const s of [a.session!, b.session!]) {
      const v = await h.client.verifyToken({ token: s.token, expectedUserId: aliceId, requiredScope: '' });
      expect(v).toMatchObject({ userId: aliceId, username: 'alice', sessionId: s.sessionId, scopes: [] });
      expect(v.ttlSeconds).toBeGreaterThan(7 * 24 * 3600 - 5);
    }
  });

  it('gives the same error text for an unknown user and a wrong password', async () => {
    const e1 = await h.client.authenticate(authReq('nosuchuser', PW, '10.1.0.2')).catch((e: unknown) => e);
    const e2 = await h.client.authenticate(authReq('bob', 'wrong password', '10.1.0.3')).catch((e: unknown) => e);
    expect(e1).toMatchObject({
      code: Code.UNAUTHENTICATED,
      reason: 'INVALID_CREDENTIALS',
      message: 'Invalid username or password',
    });
    expect(e2).toMatchObject({
      code: Code.UNAUTHENTICATED,
      reason: 'INVALID_CREDENTIALS',
      message: 'Invalid username or password',
    });
    await expect(h.client.authenticate(authReq('', PW))).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'USERNAME_REQUIRED',
    });
    await expect(h.client.authenticate(authReq('bob', ''))).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'PASSWORD_REQUIRED',
    });
  });

  it('throttles failures per account: growing delay, then a temporary lock, same text for unknown users', async () => {
    const fail = (user: string, addr: string): Promise<unknown> =>
      h.client.authenticate(authReq(user, 'wrong password', addr)).catch((e: unknown) => e);
    // Different addresses each time: the account counter alone must kick in.
    for (let i = 0; i < 3; i++)
      expect(await fail('carol', `10.2.0.${i}`)).toMatchObject({ reason: 'INVALID_CREDENTIALS' });
    const delayed = await fail('carol', '10.2.0.10');
    expect(delayed).toMatchObject({
      code: Code.RESOURCE_EXHAUSTED,
      reason: 'LOGIN_THROTTLED',
      message: 'Too many attempts, try again later',
    });
    expect(Number((delayed as { details: Record<string, string> }).details['retry_after_ms'])).toBeGreaterThan(0);
    // Even the right password is refused inside the delay.
    await expect(h.client.authenticate(authReq('carol', PW, '10.2.0.11'))).rejects.toMatchObject({
      code: Code.RESOURCE_EXHAUSTED,
    });
    // Unknown accounts are throttled the same way (no way to tell them apart).
    for (let i = 0; i < 3; i++)
      expect(await fail('ghost-user', `10.3.0.${i}`)).toMatchObject({ reason: 'INVALID_CREDENTIALS' });
    expect(await fail('ghost-user', '10.3.0.9')).toMatchObject({
      code: Code.RESOURCE_EXHAUSTED,
      reason: 'LOGIN_THROTTLED',
    });
    // Keep failing after each delay until the lock.
    let last: unknown;
    for (let n = 0; n < 20; n++) {
      await waitFor(async () => {
        last = await fail('carol', '10.2.0.20');
        return (
          !(last as { reason?: string }).reason?.startsWith('LOGIN_THROTTLED') ||
          (last as { details: Record<string, string> }).details['locked'] === 'true'
        );
      }, 5_000);
      if ((last as { details?: Record<string, string> }).details?.['locked'] === 'true') break;
    }
    expect(last).toMatchObject({ code: Code.RESOURCE_EXHAUSTED, details: { locked: 'true' } });
    expect(Number((last as { details: Record<string, string> }).details['retry_after_ms'])).toBeGreaterThan(50_000);
    // Other accounts are unaffected.
    await expect(h.client.authenticate(authReq('dave', PW, '10.2.0.30'))).resolves.toMatchObject({
      user: { username: 'dave' },
    });
  });

  it('does not let strangers lock the owner out: an address the account logged in from passes the lock', async () => {
    await h.client.register(registerReq('owner1'));
    const home = '10.77.0.1';
    await h.client.authenticate(authReq('owner1', PW, home));
    const attempt = (pw: string, addr: string): Promise<unknown> =>
      h.client.authenticate(authReq('owner1', pw, addr)).then(
        () => 'ok',
        (e: unknown) => e,
      );
    const locked = (e: unknown): boolean =>
      (e as { details?: Record<string, string> } | undefined)?.details?.['locked'] === 'true';
    // Strangers guess from a new address each time (no address counter fills) until the account is locked.
    let last: unknown;
    for (let n = 0; n < 30 && !locked(last); n++) {
      await waitFor(async () => {
        last = await attempt('wrong password', `10.77.1.${n}`);
        return !(last as { reason?: string }).reason?.startsWith('LOGIN_THROTTLED') || locked(last);
      }, 5_000);
    }
    expect(last).toMatchObject({ code: Code.RESOURCE_EXHAUSTED, details: { locked: 'true' } });
    // The lock holds for every stranger, right password or not…
    expect(await attempt(PW, '10.77.2.1')).toMatchObject({
      code: Code.RESOURCE_EXHAUSTED,
      details: { locked: 'true' },
    });
    // …but the owner's own address logs in, and that does not lift the lock for the strangers.
    expect(await attempt(PW, home)).toBe('ok');
    expect(await attempt(PW, '10.77.2.2')).toMatchObject({
      code: Code.RESOURCE_EXHAUSTED,
      details: { locked: 'true' },
    });
    // The known address is throttled on its own counter: after the free failures it is delayed too.
    for (let i = 0; i < 3; i++)
      expect(await attempt('wrong password', home)).toMatchObject({ reason: 'INVALID_CREDENTIALS' });
    expect(await attempt(PW, home)).toMatchObject({ code: Code.RESOURCE_EXHAUSTED, reason: 'LOGIN_THROTTLED' });
    // An address that never logged in to this account gets no such pass (only sessions of this account count).
    await h.client.authenticate(authReq('dave', PW, '10.77.3.1'));
    expect(await attempt(PW, '10.77.3.1')).toMatchObject({
      code: Code.RESOURCE_EXHAUSTED,
      details: { locked: 'true' },
    });
  });

  it('throttles failures per source address across accounts', async () => {
    const addr = '10.4.0.1';
    const names = ['u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7', 'u8', 'u9', 'u10', 'u11', 'u12'];
    let throttled = false;
    for (const n of names) {
      const e = await h.client.authenticate(authReq(n, 'wrong password', addr)).catch((x: unknown) => x);
      if ((e as { code?: number }).code === Code.RESOURCE_EXHAUSTED) {
        throttled = true;
        break;
      }
    }
    expect(throttled).toBe(true);
    // The address stays throttled even for a correct password of an untouched account.
    await expect(h.client.authenticate(authReq('erin', PW, addr))).rejects.toMatchObject({
      code: Code.RESOURCE_EXHAUSTED,
    });
    await expect(h.client.authenticate(authReq('erin', PW, '10.4.0.2'))).resolves.toBeDefined();
  });

  it('keeps a failed login under a huge name as a bounded throttle key, and still throttles that name', async () => {
    const app = h.servers[0]!.app as unknown as { accountThrottle: { m: Map<string, unknown> } };
    const huge = 'x'.repeat(1_000_000);
    const fail = (i: number): Promise<unknown> =>
      h.client.authenticate(authReq(huge, 'wrong password', `10.4.1.${i}`)).catch((e: unknown) => e);
    expect(await fail(0)).toMatchObject({ code: Code.UNAUTHENTICATED, reason: 'INVALID_CREDENTIALS' });
    expect(Math.max(...[...app.accountThrottle.m.keys()].map((k) => k.length))).toBeLessThanOrEqual(64);
    for (let i = 1; i < 3; i++) await fail(i);
    expect(await fail(10)).toMatchObject({ code: Code.RESOURCE_EXHAUSTED, reason: 'LOGIN_THROTTLED' });
  });

  it('VerifyPassword checks the account password without creating a session', async () => {
    const r = await h.client.verifyPassword({
      username: 'Alice',
      secret: PW,
      protocol: 'ssh',
      clientAddress: '10.5.0.1',
    });
    expect(r).toMatchObject({ user: { id: aliceId }, kind: CredentialKind.CREDENTIAL_KIND_PASSWORD });
    await expect(
      h.client.verifyPassword({ username: 'alice', secret: 'nope nope', protocol: 'ssh', clientAddress: '10.5.0.1' }),
    ).rejects.toMatchObject({ code: Code.UNAUTHENTICATED, reason: 'INVALID_CREDENTIALS' });
    await expect(
      h.client.verifyPassword({
        username: 'alice',
        secret: 'x'.repeat(1025),
        protocol: 'ssh',
        clientAddress: '10.5.0.1',
      }),
    ).rejects.toMatchObject({ code: Code.UNAUTHENTICATED });
  });

  it('refuses malformed, unknown and other users’ tokens without detail', async () => {
    const s = (await h.client.authenticate(authReq('alice', PW, '10.6.0.1'))).session!;
    const bad = { code: Code.UNAUTHENTICATED, reason: 'TOKEN_INVALID' };
    await expect(h.client.verifyToken({ token: 'x', expectedUserId: '', requiredScope: '' })).rejects.toMatchObject(
      bad,
    );
    await expect(
      h.client.verifyToken({ token: 'A'.repeat(43), expectedUserId: '', requiredScope: '' }),
    ).rejects.toMatchObject(bad);
    await expect(
      h.client.verifyToken({ token: s.token, expectedUserId: '999999', requiredScope: '' }),
    ).rejects.toMatchObject(bad);
  });

  it('expires tokens (short session lifetime) and refresh extends a live one', async () => {
    const s = (await h.client.authenticate(authReq('alice', PW, '10.7.0.1', 1))).session!;
    expect(s.ttlSeconds).toBe(1);
    await expect(
      h.client.verifyToken({ token: s.token, expectedUserId: '', requiredScope: '' }),
    ).resolves.toBeDefined();
    await waitFor(
      async () =>
        await h.client.verifyToken({ token: s.token, expectedUserId: '', requiredScope: '' }).then(
          () => false,
          () => true,
        ),
      5_000,
      'token expiry',
    );
    await expect(h.client.refreshToken({ token: s.token, ttlSeconds: 0 })).rejects.toMatchObject({
      code: Code.UNAUTHENTICATED,
    });

    const t = (await h.client.authenticate(authReq('alice', PW, '10.7.0.1', 60))).session!;
    const r = await h.client.refreshToken({ token: t.token, ttlSeconds: 3600 });
    expect(r.ttlSeconds).toBe(3600);
    const v = await h.client.verifyToken({ token: t.token, expectedUserId: '', requiredScope: '' });
    expect(v.ttlSeconds).toBeGreaterThan(3500);
  });

  it('revokes one token, and all tokens; revocation is seen by another instance at once', async () => {
    const other = await h.startAnother();
    const a = (await h.client.authenticate(authReq('alice', PW, '10.8.0.1'))).session!;
    const b = (await h.client.authenticate(authReq('alice', PW, '10.8.0.1'))).session!;
    // Warm both instances' caches.
    for (const c of [h.client, other.client]) {
      await c.verifyToken({ token: a.token, expectedUserId: '', requiredScope: '' });
      await c.verifyToken({ token: b.token, expectedUserId: '', requiredScope: '' });
    }
    await h.client.revokeToken({ token: a.token, userId: '', sessionId: '' });
    await expect(h.client.verifyToken({ token: a.token, expectedUserId: '', requiredScope: '' })).rejects.toMatchObject(
      {
        code: Code.UNAUTHENTICATED,
      },
    );
    await waitFor(
      () =>
        other.client.verifyToken({ token: a.token, expectedUserId: '', requiredScope: '' }).then(
          () => false,
          () => true,
        ),
      1_000,
      'revocation on the other instance within 1 s',
    );
    await expect(
      other.client.verifyToken({ token: b.token, expectedUserId: '', requiredScope: '' }),
    ).resolves.toBeDefined();
    // Revoking an unknown token is a no-op.
    await h.client.revokeToken({ token: 'B'.repeat(43), userId: '', sessionId: '' });

    const r = await other.client.revokeAllTokens({ userId: aliceId });
    expect(r.revoked).toBeGreaterThanOrEqual(1);
    await waitFor(
      () =>
        h.client.verifyToken({ token: b.token, expectedUserId: '', requiredScope: '' }).then(
          () => false,
          () => true,
        ),
      1_000,
      'revoke-all on the first instance',
    );
  });

  it('announces a refresh: another instance reports the new expiry at once, not after its cache entry ages out', async () => {
    const other = await h.startAnother();
    const s = (await h.client.authenticate(authReq('alice', PW, '10.8.0.6', 60))).session!;
    const req: identityV1.VerifyTokenRequest = { token: s.token, expectedUserId: '', requiredScope: '' };
    expect((await other.client.verifyToken(req)).expiresAt).toEqual(s.expiresAt); // cached with the first expiry
    const r = await h.client.refreshToken({ token: s.token, ttlSeconds: 3600 });
    await waitFor(
      async () => (await other.client.verifyToken(req)).expiresAt?.getTime() === r.expiresAt!.getTime(),
      1_000,
      'the refreshed expiry on the other instance within 1 s',
    );
    expect((await other.client.verifyToken(req)).ttlSeconds).toBeGreaterThan(3500);
  });

  it('never refuses a token refreshed on another instance: a cached entry past its old expiry is read again', async () => {
    let skewMs = 0;
    const other = await h.startAnother({ now: () => Date.now() + skewMs });
    const b = other.server.app;
    const s = (await h.client.authenticate(authReq('alice', PW, '10.8.0.5', 60))).session!;
    const req: identityV1.VerifyTokenRequest = { token: s.token, expectedUserId: '', requiredScope: '' };
    // The second instance caches the session with its first expiry; then the first instance refreshes it.
    expect((await other.client.verifyToken(req)).expiresAt).toEqual(s.expiresAt);
    const stale = b.cache.get(tokenHashBase64(s.token))!;
    expect(stale.expiresAtMs).toBe(s.expiresAt!.getTime());
    const r = await h.client.refreshToken({ token: s.token, ttlSeconds: 3600 });
    // The second instance's clock passes the first expiry between its cache lookup and its expiry check (an
    // entry handed out at the last moment of its life, checked at the next): the cache answers with the old expiry.
    skewMs = 61_000;
    const spy = jest.spyOn(b.cache, 'get').mockReturnValueOnce(stale).mockReturnValueOnce(stale);
    try {
      // NATS fast path: not answered from the stale entry (no TOKEN_INVALID); the endpoint falls back to the read.
      expect(b.verifyTokenCached(req)).toBeUndefined();
      // gRPC (and the NATS endpoint's fallback): the database's refreshed expiry.
      const v = await other.client.verifyToken(req);
      expect(v.expiresAt).toEqual(r.expiresAt);
      expect(v.ttlSeconds).toBeGreaterThan(3500);
    } finally {
      spy.mockRestore();
    }
    // The fresh entry is cached and served on the fast path.
    const bytes = b.verifyTokenCached(req);
    expect(bytes).toBeDefined();
    expect(identityV1.VerifyTokenResponse.decode(bytes!).expiresAt).toEqual(r.expiresAt);
  });

  it('revokes by session id', async () => {
    const s = (await h.client.authenticate(authReq('alice', PW, '10.8.0.2'))).session!;
    await h.client.revokeToken({ token: '', userId: aliceId, sessionId: s.sessionId });
    await expect(h.client.verifyToken({ token: s.token, expectedUserId: '', requiredScope: '' })).rejects.toMatchObject(
      {
        code: Code.UNAUTHENTICATED,
      },
    );
  });

  it('never caches a verification whose database read raced a revocation', async () => {
    const app = h.servers[0]!.app;
    const s = (await h.client.authenticate(authReq('alice', PW, '10.8.0.3'))).session!;
    app.cache.clear();
    // The read of this verification sees the live session; its cache write is held back until the
    // revocation below has committed and invalidated (the interleaving of a slow read and a logout).
    const set = app.cache.set.bind(app.cache);
    let late: (() => void) | undefined;
    const spy = jest.spyOn(app.cache, 'set').mockImplementationOnce((...args: Parameters<typeof set>) => {
      late = () => set(...args);
    });
    try {
      await h.client.verifyToken({ token: s.token, expectedUserId: '', requiredScope: '' });
      await h.client.revokeToken({ token: s.token, userId: '', sessionId: '' });
      late!();
    } finally {
      spy.mockRestore();
    }
    await expect(h.client.verifyToken({ token: s.token, expectedUserId: '', requiredScope: '' })).rejects.toMatchObject(
      { code: Code.UNAUTHENTICATED, reason: 'TOKEN_INVALID' },
    );
  });

  it('never resurrects a session that expired while its refresh was being checked', async () => {
    const app = h.servers[0]!.app;
    const s = (await h.client.authenticate(authReq('alice', PW, '10.8.0.4', 1))).session!;
    // The refresh's verification passes; the session expires before the refresh writes (a slow read, a busy pool).
    const verify = app.verifyToken.bind(app);
    const spy = jest.spyOn(app, 'verifyToken').mockImplementationOnce(async (req) => {
      const v = await verify(req);
      await new Promise((r) => setTimeout(r, Math.max(0, v.expiresAt!.getTime() - Date.now()) + 50));
      return v;
    });
    try {
      await expect(h.client.refreshToken({ token: s.token, ttlSeconds: 3600 })).rejects.toMatchObject({
        code: Code.UNAUTHENTICATED,
        reason: 'TOKEN_INVALID',
      });
    } finally {
      spy.mockRestore();
    }
    await expect(h.client.verifyToken({ token: s.token, expectedUserId: '', requiredScope: '' })).rejects.toMatchObject(
      { code: Code.UNAUTHENTICATED, reason: 'TOKEN_INVALID' },
    );
  });

  it('issues scoped short-lived tokens; scopes are enforced', async () => {
    const s = (await h.client.issueToken({ userId: aliceId, scopes: ['exec'], ttlSeconds: 60 })).session!;
    expect(s.ttlSeconds).toBe(60);
    const v = await h.client.verifyToken({ token: s.token, expectedUserId: aliceId, requiredScope: 'exec' });
    expect(v.scopes).toEqual(['exec']);
    await expect(
      h.client.verifyToken({ token: s.token, expectedUserId: '', requiredScope: 'exec.run_as' }),
    ).rejects.toMatchObject({
      code: Code.PERMISSION_DENIED,
      reason: 'TOKEN_SCOPE',
    });
    await expect(h.client.issueToken({ userId: aliceId, scopes: [], ttlSeconds: 0 })).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
    });
    await expect(h.client.issueToken({ userId: aliceId, scopes: ['exec'], ttlSeconds: 999_999 })).rejects.toMatchObject(
      {
        code: Code.INVALID_ARGUMENT,
      },
    );
    await expect(h.client.refreshToken({ token: s.token, ttlSeconds: 0 })).rejects.toMatchObject({
      code: Code.PERMISSION_DENIED,
    });
  });

  it('changes and resets passwords; reset revokes sessions', async () => {
    const r = await h.client.register(registerReq('pwuser', { createSession: true }));
    const id = r.user!.id;
    await expect(
      h.client.changePassword({
        userId: id,
        currentPassword: 'wrong one!',
        newPassword: 'new password 1',
        clientAddress: '10.9.0.1',
        revokeSessions: false,
      }),
    ).rejects.toMatchObject({ code: Code.UNAUTHENTICATED, message: 'Current password is wrong' });
    await expect(
      h.client.changePassword({
        userId: id,
        currentPassword: PW,
        newPassword: 'short',
        clientAddress: '10.9.0.1',
        revokeSessions: false,
      }),
    ).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, reason: 'PASSWORD_INVALID' });
    await h.client.changePassword({
      userId: id,
      currentPassword: PW,
      newPassword: 'new password 1',
      clientAddress: '10.9.0.1',
      revokeSessions: false,
    });
    await expect(h.client.authenticate(authReq('pwuser', 'new password 1', '10.9.0.1'))).resolves.toBeDefined();
    await expect(
      h.client.verifyToken({ token: r.session!.token, expectedUserId: '', requiredScope: '' }),
    ).resolves.toBeDefined();
    await h.client.resetPassword({ userId: '', username: 'PWUSER', newPassword: 'new password 2' });
    await expect(
      h.client.verifyToken({ token: r.session!.token, expectedUserId: '', requiredScope: '' }),
    ).rejects.toMatchObject({
      code: Code.UNAUTHENTICATED,
    });
    await expect(h.client.authenticate(authReq('pwuser', 'new password 2', '10.9.0.1'))).resolves.toBeDefined();
  });
});
