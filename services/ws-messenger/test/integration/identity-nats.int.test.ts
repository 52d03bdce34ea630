/**
 * VerifyToken over NATS request/reply with gRPC as the fallback (docs/adr/0004), against real identity and
 * message-store processes: the identity adapter alone, then ws-messenger's wiring (WSM_IDENTITY_VERIFY_TRANSPORT).
 */
import { AppError, Code } from '@hubbub/errors';
import { connectNats } from '@hubbub/nats';
import type { NatsConnection } from '@hubbub/nats';
import { subjects } from '@hubbub/proto';
import { createLogger } from '@hubbub/runtime';
import { waitFor } from '@hubbub/testing';
import { createIdentityAdapter } from '../../src/adapters/identity-grpc';
import { hasCode } from '../../src/app/backend';
import { auth, makeUser } from './helpers/fixtures';
import type { U } from './helpers/fixtures';
import { MtpClient, mtp } from './helpers/mtp-client';
import { startStack } from './helpers/stack';
import type { Stack } from './helpers/stack';

jest.setTimeout(30_000);

const log = createLogger({ service: 'wsm-identity-nats-test', level: 'silent' });
let s: Stack;
let nc: NatsConnection;
let alice: U;

beforeAll(async () => {
  s = await startStack();
  nc = await connectNats({ servers: s.nats.url, name: 'wsm-identity-nats-test', log });
  alice = await makeUser(s, 'alice');
}, 60_000);
afterAll(async () => {
  await nc?.close();
  await s?.close();
});

describe('identity adapter: VerifyToken over NATS, gRPC as the fallback', () => {
  it('verifies over NATS when identity listens there', async () => {
    const a = createIdentityAdapter(s.identityAddr, 2_000, { nats: { nc, prefix: s.nats.prefix } });
    try {
      const info = await a.verifyToken(alice.token, alice.uuid);
      expect(info).toMatchObject({ userId: alice.uuid, displayName: 'alice' });
      expect(info.sessionId).not.toBe('');
      expect(info.expiresAtMs).toBeGreaterThan(Date.now());
      expect(a.verifyStats).toEqual({ nats: 1, grpc: 0 });
    } finally {
      a.close();
    }
  });

  it("throws identity's refusal over NATS as the AppError the dispatcher checks, without trying gRPC", async () => {
    const a = createIdentityAdapter(s.identityAddr, 2_000, { nats: { nc, prefix: s.nats.prefix } });
    try {
      const wrongToken = await a.verifyToken('z'.repeat(43), alice.uuid).catch((e: unknown) => e);
      expect(wrongToken).toBeInstanceOf(AppError);
      expect(wrongToken).toMatchObject({ code: Code.UNAUTHENTICATED, reason: 'TOKEN_INVALID' });
      expect(hasCode(wrongToken, Code.UNAUTHENTICATED)).toBe(true);
      // a valid token of another user: the same refusal
      await expect(a.verifyToken(alice.token, '999999')).rejects.toMatchObject({ code: Code.UNAUTHENTICATED });
      expect(a.verifyStats).toEqual({ nats: 2, grpc: 0 });
    } finally {
      a.close();
    }
  });

  it('falls back to gRPC when no identity serves the subject (a prefix nobody serves)', async () => {
    const a = createIdentityAdapter(s.identityAddr, 2_000, { nats: { nc, prefix: `${s.nats.prefix}x` } });
    try {
      expect((await a.verifyToken(alice.token, alice.uuid)).userId).toBe(alice.uuid);
      await expect(a.verifyToken('z'.repeat(43), alice.uuid)).rejects.toMatchObject({
        code: Code.UNAUTHENTICATED,
        reason: 'TOKEN_INVALID',
      });
      expect(a.verifyStats).toEqual({ nats: 0, grpc: 2 });
    } finally {
      a.close();
    }
  });

  it('falls back to gRPC when the NATS connection is closed, and uses gRPC only without one', async () => {
    const own = await connectNats({ servers: s.nats.url, name: 'wsm-identity-nats-closed', log });
    const a = createIdentityAdapter(s.identityAddr, 2_000, { nats: { nc: own, prefix: s.nats.prefix } });
    const g = createIdentityAdapter(s.identityAddr, 2_000);
    try {
      expect((await a.verifyToken(alice.token, alice.uuid)).userId).toBe(alice.uuid);
      await own.close();
      expect((await a.verifyToken(alice.token, alice.uuid)).userId).toBe(alice.uuid);
      expect(a.verifyStats).toEqual({ nats: 1, grpc: 1 });
      expect((await g.verifyToken(alice.token, alice.uuid)).userId).toBe(alice.uuid);
      expect(g.verifyStats).toEqual({ nats: 0, grpc: 1 });
    } finally {
      a.close();
      g.close();
    }
  });

  it('repeats a VerifyToken that NATS does not answer in time on gRPC', async () => {
    const prefix = `${s.nats.prefix}stuck`;
    // Someone listens but never answers (a stuck identity): the request times out, the read is repeated.
    const stuck = nc.subscribe(subjects(prefix).rpcVerifyToken, { callback: () => undefined });
    await nc.flush();
    const a = createIdentityAdapter(s.identityAddr, 200, { nats: { nc, prefix } });
    try {
      expect((await a.verifyToken(alice.token, alice.uuid)).userId).toBe(alice.uuid);
      expect(a.verifyStats).toEqual({ nats: 0, grpc: 1 });
    } finally {
      a.close();
      stuck.unsubscribe();
    }
  });
});

describe('ws-messenger: WSM_IDENTITY_VERIFY_TRANSPORT', () => {
  /** Counts the VerifyToken requests published on NATS (a plain subscriber sees a copy of each). */
  async function spy(): Promise<{ count: () => number; stop: () => void }> {
    let n = 0;
    const sub = nc.subscribe(subjects(s.nats.prefix).rpcVerifyToken, { callback: () => void n++ });
    await nc.flush();
    return { count: () => n, stop: () => sub.unsubscribe() };
  }

  it.each([
    ['nats', {}, true],
    ['grpc', { WSM_IDENTITY_VERIFY_TRANSPORT: 'grpc' }, false],
  ] as const)('authenticates a request with transport %s', async (_name, env, overNats) => {
    const u = await makeUser(s, `user${_name}`);
    const w = await s.wsm({ ...env });
    const c = await MtpClient.connect(`ws://127.0.0.1:${w.port}/ws`);
    const seen = await spy();
    try {
      const f = await c.req(mtp('ping_pong', auth(u)));
      expect(f.errors.code).toBe(200);
      // an unknown token is refused as before (401), whichever transport carried it
      const bad = await c.req(mtp('ping_pong', { uuid: u.uuid, auth_id: 'q'.repeat(43) }));
      expect(bad.errors.code).toBe(401);
      if (overNats) await waitFor(() => seen.count() >= 2, 5_000, 'VerifyToken requests on NATS');
      else {
        await nc.flush();
        expect(seen.count()).toBe(0);
      }
    } finally {
      seen.stop();
      await c.close();
    }
  });
});
