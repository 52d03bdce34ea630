/**
 * The presence adapter keeps a connection's entry while the connection lives (presence-nats.ts): a guest nick
 * claim or an account session deleted behind its back is written again, and a nick another session claimed
 * meanwhile stays theirs. Real NATS KV (a bucket of this test's prefix, 1.5 s TTL).
 */
import { connectNats, drainNats, openKv } from '@hubbub/nats';
import type { KV, NatsConnection } from '@hubbub/nats';
import { Presence, nickKey, sessionKey } from '@hubbub/presence';
import { subjects } from '@hubbub/proto';
import { createLogger, foldName } from '@hubbub/runtime';
import { createTestNats, waitFor } from '@hubbub/testing';
import type { TestNats } from '@hubbub/testing';
import { presenceAdapter } from '../../src/adapters/presence-nats';
import { DOOR } from '../../src/adapters/message-store-grpc';

jest.setTimeout(30_000);

const TTL_MS = 1_500;
const log = createLogger({ service: 'ircb-presence-test', level: 'silent' });
let nats: TestNats;
let nc: NatsConnection;
let presence: Presence;
let kv: KV;

beforeAll(async () => {
  nats = createTestNats();
  nc = await connectNats({ servers: nats.url, name: 'ircb-presence-test', log });
  presence = await Presence.open({
    nc,
    prefix: nats.prefix,
    log,
    ttlMs: TTL_MS,
    names: { isAccountName: () => Promise.resolve(false) },
  });
  kv = await openKv(nc, subjects(nats.prefix).buckets.presence, TTL_MS);
});

afterAll(async () => {
  await drainNats(nc);
  await nats.cleanup();
});

const sessionOf = async (key: string): Promise<string | undefined> => {
  const e = await kv.get(key);
  return e && e.operation === 'PUT' ? (e.json<{ sessionId: string }>().sessionId ?? undefined) : undefined;
};

it('claims a guest nick again when its entry is deleted behind its back', async () => {
  const port = presenceAdapter(presence, TTL_MS, log);
  const lease = await port.claimGuest('Zed', 's1');
  expect(lease).toBeDefined();
  const key = nickKey(foldName('Zed'));
  await kv.delete(key);
  expect(await sessionOf(key)).toBeUndefined();
  // The next renewal finds the entry changed, and the nick is claimed again for the same session.
  await waitFor(async () => (await sessionOf(key)) === 's1', 5_000, 'the claim written again');
  await lease!.release();
  expect(await sessionOf(key)).toBeUndefined();
});

it('leaves a nick another session claimed meanwhile to that session', async () => {
  const port = presenceAdapter(presence, TTL_MS, log);
  const lease = await port.claimGuest('Yan', 's1');
  const key = nickKey(foldName('Yan'));
  await kv.delete(key);
  const other = await presence.claimGuestNick('Yan', { displayNick: 'Yan', door: 'ssh-frontend', sessionId: 's2' });
  expect(other.ok).toBe(true);
  // Two renewal intervals later the first session has noticed, and has not taken the nick back.
  await new Promise((r) => setTimeout(r, (2 * TTL_MS) / 3 + 200));
  expect(await sessionOf(key)).toBe('s2');
  await lease!.release(); // releases nothing of s2's
  expect(await sessionOf(key)).toBe('s2');
  if (other.ok) await other.lease.release();
});

it('lists an account session again when its entry is deleted behind its back', async () => {
  const port = presenceAdapter(presence, TTL_MS, log);
  const lease = await port.enterAccountSession({ id: '42', name: 'alice' }, 'conn-7');
  const key = sessionKey(DOOR, 'conn-7');
  expect(await sessionOf(key)).toBe('conn-7');
  await kv.delete(key);
  await waitFor(async () => (await sessionOf(key)) === 'conn-7', 5_000, 'the session written again');
  await lease.release();
  expect(await sessionOf(key)).toBeUndefined();
});
