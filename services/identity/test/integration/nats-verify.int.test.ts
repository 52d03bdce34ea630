/**
 * VerifyToken over NATS request/reply (docs/adr/0004): the `verify-token` endpoint of identity's NATS service,
 * against real PostgreSQL and NATS.
 */
import { AppError, Code } from '@hubbub/errors';
import { connectNats, natsRpc, registerNatsService, serviceReplyError } from '@hubbub/nats';
import type { NatsConnection, Replyable } from '@hubbub/nats';
import { identityV1, subjects } from '@hubbub/proto';
import { createLogger } from '@hubbub/runtime';
import { freePort } from '@hubbub/testing';
import { VERIFY_ENDPOINT, addVerifyEndpoint, verifyHandler } from '../../src/api/nats-api';
import { registerReq, startHarness } from '../helpers';
import type { Harness } from '../helpers';

jest.setTimeout(30_000);

const log = createLogger({ service: 'identity-nats-test', level: 'silent' });

/** A reply captured from the handler when it is driven directly. */
interface Captured {
  data?: Uint8Array | undefined;
  code?: number;
  description?: string;
}

function fakeMsg(data: Uint8Array): { m: Replyable; out: Captured } {
  const out: Captured = {};
  const m: Replyable = {
    data,
    respond: (d) => {
      out.data = d;
      return true;
    },
    respondError: (code, description) => {
      out.code = code;
      out.description = description;
      return true;
    },
  };
  return { m, out };
}

const verifyReq = (token: string, expectedUserId = ''): identityV1.VerifyTokenRequest => ({
  token,
  expectedUserId,
  requiredScope: '',
});

describe('VerifyToken over NATS (PostgreSQL + NATS)', () => {
  let h: Harness;
  let nc: NatsConnection;
  let subject: string;
  let metricsPort: number;
  let aliceId: string;
  let token: string;

  const request = (bytes: Uint8Array) => nc.request(subject, bytes, { timeout: 5_000 });
  const replyErr = (r: { headers?: { get(k: string): string } | undefined }): AppError =>
    serviceReplyError(r.headers?.get('Nats-Service-Error-Code') ?? '', r.headers?.get('Nats-Service-Error') ?? '');

  beforeAll(async () => {
    metricsPort = await freePort();
    h = await startHarness({ IDENTITY_METRICS_PORT: String(metricsPort) });
    subject = subjects(h.nats.prefix).rpcVerifyToken;
    nc = await connectNats({ servers: h.nats.url, name: 'identity-nats-test', log });
    const r = await h.client.register(registerReq('alice', { createSession: true }));
    aliceId = r.user!.id;
    token = r.session!.token;
  });
  afterAll(async () => {
    await nc?.close();
    await h?.close();
  });

  it('answers a valid token with the same fields as gRPC VerifyToken', async () => {
    const viaGrpc = await h.client.verifyToken(verifyReq(token, aliceId));
    const r = await request(identityV1.VerifyTokenRequest.encode(verifyReq(token, aliceId)).finish());
    expect(r.headers?.get('Nats-Service-Error-Code') ?? '').toBe('');
    const viaNats = identityV1.VerifyTokenResponse.decode(r.data);
    expect({ ...viaNats, ttlSeconds: 0 }).toEqual({ ...viaGrpc, ttlSeconds: 0 });
    expect(Math.abs(viaNats.ttlSeconds - viaGrpc.ttlSeconds)).toBeLessThanOrEqual(1);
    expect(viaNats).toMatchObject({ userId: aliceId, username: 'alice', role: identityV1.Role.ROLE_USER });
    expect(viaNats.sessionId).not.toBe('');
  });

  it('answers an unknown token with UNAUTHENTICATED and the reason, as gRPC does', async () => {
    const unknown = 'x'.repeat(43);
    const grpcErr = await h.client.verifyToken(verifyReq(unknown)).catch((e: unknown) => e);
    const r = await request(identityV1.VerifyTokenRequest.encode(verifyReq(unknown)).finish());
    expect(r.headers?.get('Nats-Service-Error-Code')).toBe(String(Code.UNAUTHENTICATED));
    const err = replyErr(r);
    expect(err).toMatchObject({ code: Code.UNAUTHENTICATED, reason: 'TOKEN_INVALID' });
    expect(grpcErr).toMatchObject({ code: err.code, reason: err.reason, message: err.message });
    // another user's id: the same refusal
    const other = await request(identityV1.VerifyTokenRequest.encode(verifyReq(token, '999999')).finish());
    expect(replyErr(other)).toMatchObject({ code: Code.UNAUTHENTICATED, reason: 'TOKEN_INVALID' });
  });

  it('refuses undecodable bytes with INVALID_ARGUMENT BAD_REQUEST and keeps serving', async () => {
    for (const bad of [new Uint8Array([0xff, 0xff, 0xff, 0x0f, 1]), new Uint8Array([0x0a, 0x05, 0x61])]) {
      const r = await request(bad);
      expect(r.headers?.get('Nats-Service-Error-Code')).toBe(String(Code.INVALID_ARGUMENT));
      expect(r.headers?.get('Nats-Service-Error')).toMatch(/^BAD_REQUEST: /);
    }
    // empty bytes decode to an empty request: the app's answer, not a crash
    expect(replyErr(await request(new Uint8Array(0)))).toMatchObject({ code: Code.UNAUTHENTICATED });
    const ok = await request(identityV1.VerifyTokenRequest.encode(verifyReq(token)).finish());
    expect(identityV1.VerifyTokenResponse.decode(ok.data).userId).toBe(aliceId);
  });

  it('is reached through natsRpc without the fallback, and its errors arrive as AppErrors', async () => {
    const fallback = jest.fn(async () => Promise.reject(new Error('fallback must not be used')));
    const verify = natsRpc({
      nc,
      subject,
      request: identityV1.VerifyTokenRequest,
      response: identityV1.VerifyTokenResponse,
      timeoutMs: 5_000,
      retrySafe: true,
      fallback,
    });
    expect((await verify(verifyReq(token))).userId).toBe(aliceId);
    const e = await verify(verifyReq('y'.repeat(43))).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AppError);
    expect(e).toMatchObject({ code: Code.UNAUTHENTICATED, reason: 'TOKEN_INVALID' });
    expect(verify.stats).toEqual({ nats: 2, fallback: 0 });
    expect(fallback).not.toHaveBeenCalled();
    verify.close();
  });

  it('counts the calls in hubbub_identity_nats_verify_calls_total and the handler time', async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const count = (result: string): number =>
      Number(
        new RegExp(`hubbub_identity_nats_verify_calls_total\\{[^}]*result="${result}"[^}]*\\} (\\d+)`).exec(text)?.[1],
      );
    expect(count('ok')).toBeGreaterThanOrEqual(3);
    expect(count('error')).toBeGreaterThanOrEqual(3);
    expect(count('refused')).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/hubbub_identity_rpc_seconds_count\{[^}]*method="verifyToken"[^}]*code="UNAUTHENTICATED"/);
  });

  it('answers a cached token in the same turn from memoized bytes, and an uncached one after the database read', async () => {
    const app = h.servers[0]!.app;
    const encoded = identityV1.VerifyTokenRequest.encode(verifyReq(token)).finish();
    const handle = verifyHandler(app, { subject, log, maxInFlight: 8 });
    app.cache.clear();
    const cold = fakeMsg(encoded);
    const pending = handle(cold.m);
    expect(pending).toBeInstanceOf(Promise); // a database read
    expect(cold.out.data).toBeUndefined();
    await pending;
    const first = identityV1.VerifyTokenResponse.decode(cold.out.data!);
    expect(first.userId).toBe(aliceId);
    // now cached: answered before the handler returns, the same bytes as the slow path's, and shared between calls
    const warm = fakeMsg(encoded);
    expect(handle(warm.m)).toBeUndefined();
    expect(identityV1.VerifyTokenResponse.decode(warm.out.data!)).toEqual(first);
    const again = fakeMsg(encoded);
    expect(handle(again.m)).toBeUndefined();
    expect(again.out.data).toBe(warm.out.data);
    // the per-call checks still run on the fast path
    const wrongUser = fakeMsg(
      identityV1.VerifyTokenRequest.encode({ ...verifyReq(token), expectedUserId: '999999' }).finish(),
    );
    expect(handle(wrongUser.m)).toBeUndefined();
    expect(wrongUser.out).toMatchObject({
      code: Code.UNAUTHENTICATED,
      description: expect.stringMatching(/^TOKEN_INVALID: /),
    });
  });

  it('answers a database outage UNAVAILABLE and a statement timeout DEADLINE_EXCEEDED, as gRPC does (not INTERNAL)', async () => {
    const encoded = identityV1.VerifyTokenRequest.encode(verifyReq(token)).finish();
    const failing = (code: string) => ({
      verifyTokenCached: () => undefined,
      verifyToken: () => Promise.reject(Object.assign(new Error(`postgres ${code}`), { code })),
    });
    const down = fakeMsg(encoded);
    await verifyHandler(failing('57P01'), { subject, log, maxInFlight: 8 })(down.m);
    expect(down.out).toMatchObject({
      code: Code.UNAVAILABLE,
      description: expect.stringMatching(/^DATABASE_UNAVAILABLE: /),
    });
    const slow = fakeMsg(encoded);
    await verifyHandler(failing('57014'), { subject, log, maxInFlight: 8 })(slow.m);
    expect(slow.out).toMatchObject({
      code: Code.DEADLINE_EXCEEDED,
      description: expect.stringMatching(/^QUERY_TIMEOUT: /),
    });
  });

  it('refuses calls beyond the in-flight limit with RESOURCE_EXHAUSTED BUSY', async () => {
    const app = h.servers[0]!.app;
    const encoded = identityV1.VerifyTokenRequest.encode(verifyReq(token)).finish();
    // limit 1: the first call is in the app (reading the database: the token is not cached) when the second arrives
    app.cache.clear();
    const one = verifyHandler(app, { subject, log, maxInFlight: 1 });
    const a = fakeMsg(encoded);
    const b = fakeMsg(encoded);
    const pa = one(a.m);
    const pb = one(b.m);
    await Promise.all([pa, pb]);
    expect(identityV1.VerifyTokenResponse.decode(a.out.data!).userId).toBe(aliceId);
    expect(b.out).toMatchObject({ code: Code.RESOURCE_EXHAUSTED, description: expect.stringMatching(/^BUSY: /) });
    // once the first finished, the slot is free again
    const c = fakeMsg(encoded);
    await one(c.m);
    expect(c.out.code).toBeUndefined();

    // limit 0 on a real endpoint: every call is refused on the wire, and natsRpc falls back
    const prefix = `${h.nats.prefix}busy`;
    const svc = await registerNatsService(nc, { name: 'identity-busy-test', version: '0.0.0', description: 'test' });
    try {
      addVerifyEndpoint(svc, app, { subject: subjects(prefix).rpcVerifyToken, log, maxInFlight: 0 });
      const r = await nc.request(subjects(prefix).rpcVerifyToken, encoded, { timeout: 5_000 });
      expect(replyErr(r)).toMatchObject({ code: Code.RESOURCE_EXHAUSTED, reason: 'BUSY' });
      const info = svc.info();
      expect(info.endpoints.map((e) => e.name)).toContain(VERIFY_ENDPOINT);
      const verify = natsRpc({
        nc,
        subject: subjects(prefix).rpcVerifyToken,
        request: identityV1.VerifyTokenRequest,
        response: identityV1.VerifyTokenResponse,
        timeoutMs: 5_000,
        retrySafe: true,
        fallback: (req) => h.client.verifyToken(req),
      });
      expect((await verify(verifyReq(token))).userId).toBe(aliceId);
      expect(verify.stats).toEqual({ nats: 0, fallback: 1 });
      verify.close();
    } finally {
      await svc.stop();
    }
  });
});
