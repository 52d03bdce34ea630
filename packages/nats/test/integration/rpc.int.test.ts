/**
 * natsRpc's fallback decisions against a real NATS server, with a hand-written responder per case.
 */
import { AppError, Code, errors } from '@hubbub/errors';
import { identityV1 } from '@hubbub/proto';
import { createLogger } from '@hubbub/runtime';
import { createTestNats } from '@hubbub/testing';
import type { FallbackCause, NatsConnection, Replyable } from '../../src/index';
import {
  connectNats,
  drainNats,
  natsRpc,
  registerNatsService,
  respondAppError,
  serviceReplyError,
} from '../../src/index';

type Req = identityV1.VerifyTokenRequest;
type Res = identityV1.VerifyTokenResponse;

const log = createLogger({ service: 'nats-rpc-test', level: 'silent' });
const tn = createTestNats();
let nc: NatsConnection;
let server: NatsConnection;
let seq = 0;

beforeAll(async () => {
  nc = await connectNats({ servers: tn.url, name: 'nats-rpc-client', log });
  server = await connectNats({ servers: tn.url, name: 'nats-rpc-server', log });
});
afterAll(async () => {
  await drainNats(nc);
  await drainNats(server);
  await tn.cleanup();
});

const req = (token: string): Req => ({ token, expectedUserId: '', requiredScope: '' });
const res = (userId: string): Res => identityV1.VerifyTokenResponse.fromPartial({ userId });

/** A fresh subject served by `handler` (undefined = nobody listens). */
async function serve(handler?: (m: Replyable) => void): Promise<string> {
  const subject = `${tn.prefix}.rpc.test.${++seq}`;
  if (handler) {
    const svc = await registerNatsService(server, { name: `rpc-${seq}`, version: '0.0.1', description: 'test' });
    svc.addEndpoint('e', { subject, handler: (_err, m) => handler(m) });
    await server.flush();
  }
  return subject;
}

function client(subject: string, o: { retrySafe?: boolean; timeoutMs?: number; maxRequestBytes?: number } = {}) {
  const causes: FallbackCause[] = [];
  const rpc = natsRpc<Req, Res>({
    nc,
    subject,
    request: identityV1.VerifyTokenRequest,
    response: identityV1.VerifyTokenResponse,
    timeoutMs: o.timeoutMs ?? 2_000,
    retrySafe: o.retrySafe ?? true,
    ...(o.maxRequestBytes === undefined ? {} : { maxRequestBytes: o.maxRequestBytes }),
    fallback: async (r, cause) => {
      causes.push(cause);
      return res(`fallback:${r.token}`);
    },
    log,
  });
  return { rpc, causes };
}

const echo = (m: Replyable): void => {
  m.respond(identityV1.VerifyTokenResponse.encode(res(identityV1.VerifyTokenRequest.decode(m.data).token)).finish());
};

describe('natsRpc', () => {
  it('answers over NATS with binary protobuf', async () => {
    const { rpc, causes } = client(await serve(echo));
    expect((await rpc(req('t1'))).userId).toBe('t1');
    expect(rpc.stats).toEqual({ nats: 1, fallback: 0 });
    expect(causes).toEqual([]);
    rpc.close();
  });

  it("throws a server's refusal as its AppError and does not retry it", async () => {
    const { rpc } = client(await serve((m) => respondAppError(m, errors.unauthenticated('TOKEN_INVALID', 'no: such'))));
    const e = await rpc(req('t')).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AppError);
    expect(e).toMatchObject({ code: Code.UNAUTHENTICATED, reason: 'TOKEN_INVALID', message: 'no: such' });
    expect(rpc.stats).toEqual({ nats: 1, fallback: 0 });
    rpc.close();
  });

  it('sends BUSY and UNAVAILABLE replies to the fallback only when retry-safe', async () => {
    const busy = await serve((m) => respondAppError(m, errors.resourceExhausted('BUSY', 'later')));
    const safe = client(busy);
    expect((await safe.rpc(req('b'))).userId).toBe('fallback:b');
    expect(safe.causes).toEqual(['refused']);
    const unsafe = client(busy, { retrySafe: false });
    await expect(unsafe.rpc(req('b'))).rejects.toMatchObject({ code: Code.RESOURCE_EXHAUSTED, reason: 'BUSY' });
    // RESOURCE_EXHAUSTED for another reason (a quota) is an answer
    const quota = client(await serve((m) => respondAppError(m, errors.resourceExhausted('QUOTA', 'no more'))));
    await expect(quota.rpc(req('q'))).rejects.toMatchObject({ reason: 'QUOTA' });
    const down = client(await serve((m) => respondAppError(m, errors.unavailable('DB_DOWN', 'database down'))));
    expect((await down.rpc(req('u'))).userId).toBe('fallback:u');
    expect(down.causes).toEqual(['unavailable']);
    for (const c of [safe, unsafe, quota, down]) c.rpc.close();
  });

  it('falls back when nobody listens, whether or not the call is retry-safe', async () => {
    const { rpc, causes } = client(await serve(), { retrySafe: false });
    expect((await rpc(req('n'))).userId).toBe('fallback:n');
    expect(causes).toEqual(['no-responders']);
    rpc.close();
  });

  it('repeats an unanswered call on the fallback only when retry-safe', async () => {
    const stuck = await serve(() => undefined);
    const safe = client(stuck, { timeoutMs: 150 });
    expect((await safe.rpc(req('s'))).userId).toBe('fallback:s');
    expect(safe.causes).toEqual(['timeout']);
    const unsafe = client(stuck, { timeoutMs: 150, retrySafe: false });
    await expect(unsafe.rpc(req('s'))).rejects.toMatchObject({ code: Code.DEADLINE_EXCEEDED, reason: 'NATS_TIMEOUT' });
    safe.rpc.close();
    unsafe.rpc.close();
  });

  it('treats an undecodable reply as no answer', async () => {
    const { rpc, causes } = client(await serve((m) => m.respond(new Uint8Array([0xff, 0xff, 0xff, 0x0f, 1]))));
    expect((await rpc(req('x'))).userId).toBe('fallback:x');
    expect(causes).toEqual(['unavailable']);
    rpc.close();
  });

  it('sends requests larger than allowed, and every call after close(), to the fallback', async () => {
    const subject = await serve(echo);
    const big = client(subject, { maxRequestBytes: 8 });
    expect((await big.rpc(req('a much longer token'))).userId).toBe('fallback:a much longer token');
    expect((await big.rpc(req('short'))).userId).toBe('short');
    expect(big.causes).toEqual(['too-large']);
    big.rpc.close();
    expect((await big.rpc(req('after'))).userId).toBe('fallback:after');
    expect(big.causes).toEqual(['too-large', 'closed']);
  });

  it('falls back when the connection is closed', async () => {
    const own = await connectNats({ servers: tn.url, name: 'nats-rpc-closed', log });
    const causes: FallbackCause[] = [];
    const rpc = natsRpc<Req, Res>({
      nc: own,
      subject: await serve(echo),
      request: identityV1.VerifyTokenRequest,
      response: identityV1.VerifyTokenResponse,
      timeoutMs: 1_000,
      retrySafe: false,
      fallback: async (r, cause) => {
        causes.push(cause);
        return res(`fallback:${r.token}`);
      },
    });
    expect((await rpc(req('open'))).userId).toBe('open');
    await own.close();
    expect((await rpc(req('closed'))).userId).toBe('fallback:closed');
    expect(causes).toEqual(['not-connected']);
    rpc.close();
  });

  it('parses services-framework error descriptions', () => {
    expect(serviceReplyError('16', 'TOKEN_INVALID: Invalid or expired token')).toMatchObject({
      code: Code.UNAUTHENTICATED,
      reason: 'TOKEN_INVALID',
      message: 'Invalid or expired token',
    });
    expect(serviceReplyError('500', 'boom')).toMatchObject({ code: Code.UNKNOWN, reason: 'NATS', message: 'boom' });
    expect(serviceReplyError('x', '')).toMatchObject({ code: Code.UNKNOWN, reason: 'NATS' });
  });
});
