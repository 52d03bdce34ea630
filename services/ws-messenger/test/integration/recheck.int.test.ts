/**
 * The safety net for missed revocations: with no NATS event at all (the session is revoked straight in
 * identity's database, identity's own token cache off), a push subscription still ends with the final
 * 401 frame within WSM_SUBSCRIPTION_RECHECK_MS; other subscriptions continue.
 */
import { queryDatabase } from '@hubbub/testing';
import { auth, makeUser } from './helpers/fixtures';
import { MtpClient, mtp } from './helpers/mtp-client';
import type { Frame } from './helpers/mtp-client';
import { startStack } from './helpers/stack';
import type { Stack } from './helpers/stack';

let s: Stack;
const clients: MtpClient[] = [];

beforeAll(async () => {
  s = await startStack({ identityEnv: { IDENTITY_TOKEN_CACHE_MS: '0' } });
}, 60_000);
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await s?.close();
});

it('a session revoked without any event ends its subscription at the next recheck; others stay', async () => {
  const w = await s.wsm({ WSM_SUBSCRIPTION_RECHECK_MS: '200' });
  const url = `ws://127.0.0.1:${w.port}/ws`;
  const [victim, other] = [await makeUser(s, 'quietly'), await makeUser(s, 'stays')];
  const V = await MtpClient.connect(url);
  const O = await MtpClient.connect(url);
  clients.push(V, O);
  expect((await V.req(mtp('subscribe', auth(victim)))).errors.code).toBe(200);
  expect((await O.req(mtp('subscribe', auth(other)))).errors.code).toBe(200);
  await queryDatabase(s.identityDbUrl, 'UPDATE sessions SET revoked_at = now() WHERE user_id = $1', [victim.uuid]);
  const raw = await V.find((f: Frame) => f.type === 'update' && f.errors.code === 401, 5_000);
  expect(raw).toContain('"detail": "Authentication User failed"');
  // The other subscription is still served after several rounds.
  await new Promise((r) => setTimeout(r, 600));
  expect(O.raw.some((r) => r.includes('"code": 401'))).toBe(false);
  expect((await O.req(mtp('ping_pong', auth(other)))).errors.code).toBe(200);
});
