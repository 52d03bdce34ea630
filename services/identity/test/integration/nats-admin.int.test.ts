/**
 * The operators' NATS request subjects `<prefix>.admin.user.{ban,unban,kick}` (proto3 JSON), against real
 * PostgreSQL and NATS: they act like the gRPC admin calls, publish the user events doors act on, and refuse
 * bad input with a services-framework error.
 */
import { Code } from '@hubbub/errors';
import { connectNats, replyError } from '@hubbub/nats';
import type { NatsConnection } from '@hubbub/nats';
import { identityV1, subjects } from '@hubbub/proto';
import { createLogger } from '@hubbub/runtime';
import { waitFor } from '@hubbub/testing';
import { authReq, registerReq, startHarness } from '../helpers';
import type { Harness } from '../helpers';

jest.setTimeout(30_000);

const log = createLogger({ service: 'identity-admin-test', level: 'silent' });

describe('admin request subjects over NATS', () => {
  let h: Harness;
  let nc: NatsConnection;
  const events: identityV1.UserEvent[] = [];
  const revoked: identityV1.SessionRevokedEvent[] = [];

  const req = async (action: 'ban' | 'unban' | 'kick', body: unknown) => {
    const r = await nc.request(subjects(h.nats.prefix).adminUser(action), JSON.stringify(body), { timeout: 5_000 });
    const err = replyError(r);
    if (err) throw err;
    return identityV1.AdminUserResponse.fromJSON(JSON.parse(r.string()));
  };

  beforeAll(async () => {
    h = await startHarness();
    nc = await connectNats({ servers: h.nats.url, name: 'identity-admin-test', log });
    const subj = subjects(h.nats.prefix);
    nc.subscribe(subj.userAll, {
      callback: (_e, m) => void events.push(identityV1.UserEvent.fromJSON(m.json())),
    });
    nc.subscribe(subj.sessionRevoked, {
      callback: (_e, m) => void revoked.push(identityV1.SessionRevokedEvent.fromJSON(m.json())),
    });
    await nc.flush();
  });
  afterAll(async () => {
    await nc?.close();
    await h?.close();
  });

  it('bans by name (any case) until a time, refuses the account, unbans; events carry the operator', async () => {
    const r = await h.client.register(registerReq('mallory', { createSession: true }));
    const id = r.user!.id;
    const until = new Date(Date.now() + 3_600_000);
    const banned = await req('ban', { username: 'MALLORY', reason: 'spam', until: until.toISOString(), by: 'ops-ann' });
    expect(banned.user).toMatchObject({ id, ban: { reason: 'spam', by: 'ops-ann', until } });
    await waitFor(() => events.some((e) => e.type === identityV1.UserEventType.USER_EVENT_TYPE_BANNED), 3_000);
    expect(events.find((e) => e.type === identityV1.UserEventType.USER_EVENT_TYPE_BANNED)).toMatchObject({
      user: { id },
      by: 'ops-ann',
    });
    await expect(
      h.client.verifyToken({ token: r.session!.token, expectedUserId: '', requiredScope: '' }),
    ).rejects.toMatchObject({ code: Code.UNAUTHENTICATED });
    const unbanned = await req('unban', { user_id: id });
    expect(unbanned.user?.ban).toBeUndefined();
  });

  it('kicks: every session ends now, the account may log in again, doors get user.kicked', async () => {
    const r = await h.client.register(registerReq('trudy', { createSession: true }));
    const id = r.user!.id;
    const kicked = await req('kick', { username: 'trudy', reason: 'cool down' });
    expect(kicked).toMatchObject({ user: { id }, sessionsRevoked: 1 });
    await waitFor(() => events.some((e) => e.type === identityV1.UserEventType.USER_EVENT_TYPE_KICKED), 3_000);
    expect(events.find((e) => e.type === identityV1.UserEventType.USER_EVENT_TYPE_KICKED)).toMatchObject({
      user: { id },
      by: 'nats-operator',
    });
    await waitFor(() => revoked.some((e) => e.userId === id && e.allSessions && e.reason === 'kicked'), 3_000);
    await expect(
      h.client.verifyToken({ token: r.session!.token, expectedUserId: '', requiredScope: '' }),
    ).rejects.toMatchObject({ code: Code.UNAUTHENTICATED });
    const again = await h.client.authenticate(authReq('trudy', registerReq('trudy').password));
    expect(again.user?.id).toBe(id);
  });

  it('refuses unknown accounts, missing names, bad JSON and bad reasons with the right codes, and keeps serving', async () => {
    await expect(req('kick', { username: 'nobody-here' })).rejects.toMatchObject({ code: Code.NOT_FOUND });
    await expect(req('ban', {})).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, reason: 'USER_REQUIRED' });
    const raw = await nc.request(subjects(h.nats.prefix).adminUser('ban'), 'not json', { timeout: 5_000 });
    expect(replyError(raw)).toMatchObject({ code: Code.INVALID_ARGUMENT, reason: 'BAD_REQUEST' });
    await h.client.register(registerReq('victor'));
    await expect(req('ban', { username: 'victor', reason: 'two\nlines' })).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'REASON_INVALID',
    });
    await expect(
      req('ban', { username: 'victor', until: new Date(Date.now() - 1_000).toISOString() }),
    ).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'UNTIL_INVALID',
    });
    // A time JSON parsing turns into an invalid Date, or one past 9999, is refused too (it failed in SQL as INTERNAL).
    for (const until of ['not a time', '+275760-09-13T00:00:00.000Z'])
      await expect(req('ban', { username: 'victor', until })).rejects.toMatchObject({
        code: Code.INVALID_ARGUMENT,
        reason: 'UNTIL_INVALID',
      });
    // A user id past PostgreSQL's bigint failed in SQL as INTERNAL.
    await expect(req('kick', { user_id: '9999999999999999999' })).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'USER_ID_INVALID',
    });
    expect((await req('kick', { username: 'victor' })).user?.username).toBe('victor');
  });

  it('refuses JSON that is not one object, oversize requests and a bad operator name; nothing is done', async () => {
    const r = await h.client.register(registerReq('wendy', { createSession: true }));
    const token = r.session!.token;
    const refusal = async (body: string) => {
      const raw = await nc.request(subjects(h.nats.prefix).adminUser('kick'), body, { timeout: 5_000 });
      return replyError(raw);
    };
    // ts-proto's fromJSON alone would read these as an empty request.
    for (const body of ['[]', '"wendy"', '42', 'null', '  [{"username":"wendy"}]'])
      expect(await refusal(body)).toMatchObject({ code: Code.INVALID_ARGUMENT, reason: 'BAD_REQUEST' });
    expect(await refusal(JSON.stringify({ username: 'wendy', reason: 'x'.repeat(5_000) }))).toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'REQUEST_TOO_LARGE',
    });
    for (const by of ['two\nlines', 'o'.repeat(65)])
      expect(await refusal(JSON.stringify({ username: 'wendy', by }))).toMatchObject({
        code: Code.INVALID_ARGUMENT,
        reason: 'BY_INVALID',
      });
    // Not kicked: the session still verifies.
    expect((await h.client.verifyToken({ token, expectedUserId: '', requiredScope: '' })).username).toBe('wendy');
  });
});
