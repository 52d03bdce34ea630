import { AppError, Code } from '@hubbub/errors';
import { createLogger } from '@hubbub/runtime';
import { seededRandom } from '@hubbub/testing';
import { TokenBucket } from '../protocol/rate-limit';
import type { ConnContext, Limits } from './context';
import { Dispatcher } from './dispatcher';
import { PushHub } from './push-hub';
import type { IdentityPort, MessageStorePort, Profile, TokenInfo } from './ports';
import { TokenCache } from './token-cache';

const log = createLogger({ service: 'test', level: 'silent' });
const NOW = 1_700_000_000_000;
const T = NOW / 1000;

const limits: Limits = {
  maxReplyBytes: 8 << 20,
  maxMessageBytes: 65536,
  limitMessages: 100,
  limitUsers: 100,
  updateMaxItems: 1000,
  maxFlowUsers: 1000,
};

const profile = (id: string): Profile => ({
  id,
  username: `u${id}`,
  displayName: `U${id}`,
  bio: '',
  avatar: '',
  isBot: false,
  deleted: false,
  updatedAtMs: NOW,
});

function fakeIdentity(over: Partial<IdentityPort> = {}): IdentityPort & { verifyCalls: number } {
  const f = {
    verifyCalls: 0,
    register: async () => ({ userId: '1', token: 't', ttlSeconds: 60 }),
    authenticate: async () => ({ userId: '1', token: 't', ttlSeconds: 60 }),
    async verifyToken(token: string, userId: string): Promise<TokenInfo> {
      f.verifyCalls++;
      if (token !== `tok${userId}`) throw new AppError(Code.UNAUTHENTICATED, 'TOKEN_INVALID', 'no');
      return { userId, displayName: `U${userId}`, sessionId: 's', expiresAtMs: NOW + 3_600_000 };
    },
    getUser: async (id: string) => (id === '404' ? undefined : profile(id)),
    getUserByName: async () => undefined,
    getUsers: async (ids: readonly string[]) => new Map(ids.map((i) => [i, profile(i)])),
    listUsersChangedSince: async () => ({ users: [], more: false }),
    deleteAccount: async () => undefined,
    ...over,
  };
  return f;
}

const unused = (): never => {
  throw new Error('unused');
};
const fakeMsg = (over: Partial<MessageStorePort> = {}): MessageStorePort => ({
  ensurePublicChannels: unused,
  listVisibleChannels: async () => [],
  listChangedChannels: async () => ({ channels: [], completeBeforeMs: undefined }),
  lookupChannel: async () => undefined,
  createChannel: unused,
  postMessage: unused,
  getMessage: async () => undefined,
  editMessage: unused,
  deleteMessage: unused,
  sliceMessages: async () => undefined,
  listChanges: async () => ({ messages: [], more: false, completeBeforeMs: undefined }),
  visibleFlowIds: async () => new Set<string>(),
  ...over,
});

const conn: ConnContext = {
  id: 'c1',
  clientAddress: '127.0.0.1',
  nextClientKey: () => 'k',
  setSubscribed: () => undefined,
  push: () => undefined,
  subscriptionEnded: () => undefined,
};

function dispatcher(identity: IdentityPort, msg: MessageStorePort = fakeMsg()): Dispatcher {
  const clock = { nowMs: () => NOW };
  return new Dispatcher({
    identity,
    msg,
    hub: new PushHub({ msg, log, clock, factsMaxAgeMs: 60_000 }),
    tokens: new TokenCache(10_000),
    clock,
    log,
    limits,
  });
}

const bucket = (): TokenBucket => new TokenBucket(0, 0);
const req = (type: string, user: Record<string, unknown>, data: Record<string, unknown> = {}): string =>
  JSON.stringify({ type, data: { user: [user], ...data } });
const errFrame = (detail: string, code: number, status: string): string =>
  `{"type": "error", "jsonapi": {"version": "1.0", "revision": "17"}, "meta": null, "data": null, "errors": {"detail": "${detail}", "code": ${code}, "status": "${status}", "time": ${T}}}`;

describe('Dispatcher', () => {
  it('authenticates, then dispatches; caches positive token checks', async () => {
    const id = fakeIdentity();
    const d = dispatcher(id);
    const a = await d.handle(conn, req('ping_pong', { uuid: '7', auth_id: 'tok7' }), bucket());
    expect([a.code, a.label, a.authenticated]).toEqual([200, 'ping_pong', true]);
    await d.handle(conn, req('ping_pong', { uuid: '7', auth_id: 'tok7' }), bucket());
    expect(id.verifyCalls).toBe(1);
  });

  it('401 "User was not authenticated" for unknown/absent/guest ids, "Authentication User failed" for bad tokens', async () => {
    const d = dispatcher(fakeIdentity());
    for (const u of [
      { uuid: '404', auth_id: 'x' },
      { auth_id: 'x' },
      { uuid: 'guest:bob', auth_id: 'x' },
      { uuid: 'abc' },
    ]) {
      expect((await d.handle(conn, req('ping_pong', u), bucket())).text).toBe(
        errFrame('User was not authenticated', 401, 'Unauthorized'),
      );
    }
    expect((await d.handle(conn, req('all_flow', { uuid: '7', auth_id: 'bad' }), bucket())).text).toBe(
      errFrame('Authentication User failed', 401, 'Unauthorized'),
    );
  });

  it('405 for unknown methods and for register/auth when authenticated; 401 for unknown methods otherwise', async () => {
    const d = dispatcher(fakeIdentity());
    const m405 = errFrame('Specified method is invalid for this resource', 405, 'Method Not Allowed');
    expect((await d.handle(conn, req('nope', { uuid: '7', auth_id: 'tok7' }), bucket())).text).toBe(m405);
    expect(
      (await d.handle(conn, req('register_user', { uuid: '7', auth_id: 'tok7', login: 'a', password: 'b' }), bucket()))
        .text,
    ).toBe(m405);
    expect((await d.handle(conn, req('nope', { uuid: '7', auth_id: 'bad' }), bucket())).code).toBe(401);
  });

  it("get_update answers a time no later than the second of message-store's read horizon, never before the asked one", async () => {
    const timeOf = async (
      changesMs: number | undefined,
      channelsMs: number | undefined,
      since = T - 60,
      usersMs: number | undefined = undefined,
    ) => {
      const d = dispatcher(
        fakeIdentity({
          listUsersChangedSince: async () => ({ users: [], more: false, completeBeforeMs: usersMs }),
        }),
        fakeMsg({
          listChanges: async () => ({ messages: [], more: false, completeBeforeMs: changesMs }),
          listChangedChannels: async () => ({ channels: [], completeBeforeMs: channelsMs }),
        }),
      );
      const r = await d.handle(conn, req('get_update', { uuid: '7', auth_id: 'tok7' }, { time: since }), bucket());
      expect(r.code).toBe(200);
      return (JSON.parse(r.text) as { data: { time: number } }).data.time;
    };
    expect(await timeOf(undefined, undefined)).toBe(T); // a server without the horizon: the request's second
    expect(await timeOf(NOW + 400, NOW + 900)).toBe(T); // complete past this second
    // A change stamped in the second before may still commit (a replica's clock behind, a write in flight): the
    // next poll starts there again.
    expect(await timeOf(NOW - 1, NOW + 900)).toBe(T - 1);
    expect(await timeOf(NOW + 900, NOW - 2_500)).toBe(T - 3);
    expect(await timeOf(NOW - 600_000, undefined, T - 60)).toBe(T - 60); // never before the client's own time
    expect(await timeOf(NOW + 900, NOW + 900, T - 60, NOW - 1_200)).toBe(T - 2); // identity's horizon counts too
  });

  it('503 with type "error" when identity is unreachable while authenticating', async () => {
    const d = dispatcher(
      fakeIdentity({
        verifyToken: async () => {
          throw new AppError(Code.UNAVAILABLE, 'DOWN', 'down');
        },
      }),
    );
    const r = await d.handle(conn, req('ping_pong', { uuid: '7', auth_id: 'tok7' }), bucket());
    expect(r.text).toBe(errFrame('Service temporarily unavailable', 503, 'Service Unavailable'));
  });

  it('503 with the method type when a backend fails inside a handler', async () => {
    const d = dispatcher(
      fakeIdentity(),
      fakeMsg({
        listVisibleChannels: async () => {
          throw new AppError(Code.DEADLINE_EXCEEDED, 'SLOW', 'slow');
        },
      }),
    );
    const r = await d.handle(conn, req('all_flow', { uuid: '7', auth_id: 'tok7' }), bucket());
    expect(r.text).toBe(
      `{"type": "all_flow", "jsonapi": {"version": "1.0", "revision": "17"}, "meta": null, "data": null, "errors": {"detail": "Service temporarily unavailable", "code": 503, "status": "Service Unavailable", "time": ${T}}}`,
    );
  });

  it('500 with a correlation id for an unexpected failure; the same id is logged', async () => {
    const d = dispatcher(
      fakeIdentity(),
      fakeMsg({
        listVisibleChannels: async () => {
          throw new TypeError('boom');
        },
      }),
    );
    const r = await d.handle(conn, req('all_flow', { uuid: '7', auth_id: 'tok7' }), bucket());
    expect(r.code).toBe(500);
    expect(r.text).toMatch(
      /^\{"type": "error", "jsonapi": \{"version": "1.0", "revision": "17"\}, "meta": null, "data": null, "errors": \{"detail": "Server got itself in trouble \(ref [0-9a-f]{12}\)", "code": 500, "status": "Internal Server Error", "time": \d+\}\}$/,
    );
    expect(r.error).toBe('WSM_ERR_INTERNAL');
  });

  it('checks the rate before the version, and the version before authentication', async () => {
    const id = fakeIdentity();
    const d = dispatcher(id);
    const b = new TokenBucket(1, 1);
    const v = JSON.stringify({
      type: 'ping_pong',
      jsonapi: { version: '2.0' },
      data: { user: [{ uuid: '7', auth_id: 'tok7' }] },
    });
    expect((await d.handle(conn, v, b)).code).toBe(505);
    expect((await d.handle(conn, v, b)).text).toBe(errFrame('Request rate limit exceeded', 429, 'Too Many Requests'));
    expect(id.verifyCalls).toBe(0);
  });

  it('charges malformed frames to the bucket, still answering 415; flags a flood once the overdraft is used up', async () => {
    const d = dispatcher(fakeIdentity());
    const b = new TokenBucket(1, 2);
    const notJson = errFrame(
      '1 validation error for Request\\n__root__\\n  Invalid JSON (type=value_error.json)',
      415,
      'Unsupported Media Type',
    );
    // 2 tokens, then an overdraft of 2: every one of them answered 415, none a flood
    for (let i = 0; i < 4; i++) {
      const r = await d.handle(conn, 'garbage', b);
      expect([r.text, r.error, r.flood]).toEqual([notJson, 'WSM_ERR_NOT_JSON', undefined]);
    }
    // a valid request now finds the bucket empty (before: the malformed frames cost nothing)
    expect((await d.handle(conn, req('ping_pong', { uuid: '7', auth_id: 'tok7' }), b)).code).toBe(429);
    const flood = await d.handle(conn, '{"type": 5}', b);
    expect([flood.code, flood.error, flood.flood]).toEqual([415, 'WSM_ERR_VALIDATION', true]);
  });

  it('with the rate off, malformed frames are never a flood and cost valid requests nothing', async () => {
    const d = dispatcher(fakeIdentity());
    const b = bucket();
    for (let i = 0; i < 1000; i++) expect((await d.handle(conn, '[', b)).flood).toBeUndefined();
    expect((await d.handle(conn, req('ping_pong', { uuid: '7', auth_id: 'tok7' }), b)).code).toBe(200);
  });

  it('drops cached tokens on revocation', async () => {
    const id = fakeIdentity();
    const tokens = new TokenCache(10_000);
    tokens.put('tok7', { userId: '7', displayName: 'U7', sessionId: 's1', expiresAtMs: NOW + 1000 }, NOW);
    expect(tokens.get('tok7', '7', NOW)).toBeDefined();
    expect(tokens.get('tok7', '8', NOW)).toBeUndefined();
    expect(tokens.get('tok7', '7', NOW + 1000)).toBeUndefined();
    tokens.put('tok7', { userId: '7', displayName: 'U7', sessionId: 's1', expiresAtMs: NOW + 5000 }, NOW);
    tokens.revoke('7', ['s2'], false);
    expect(tokens.get('tok7', '7', NOW)).toBeDefined();
    tokens.revoke('7', ['s1'], false);
    expect(tokens.get('tok7', '7', NOW)).toBeUndefined();
    void id;
  });
});

describe('Dispatcher on hostile frames (randomized)', () => {
  const TYPES = [
    'register_user',
    'auth',
    'get_update',
    'send_message',
    'all_messages',
    'add_flow',
    'all_flow',
    'user_info',
    'delete_user',
    'delete_message',
    'edited_message',
    'ping_pong',
    'subscribe',
    'unsubscribe',
    'x',
  ];
  const VALUES: unknown[] = [
    null,
    true,
    0,
    -1,
    1e308,
    2 ** 63,
    '',
    'x',
    '7',
    'tok7',
    '\u0000',
    '𝄞',
    [],
    {},
    [{}],
    'a'.repeat(70_000),
    [{ uuid: '7' }],
    { uuid: 7 },
  ];
  const FIELDS = [
    'uuid',
    'auth_id',
    'login',
    'password',
    'username',
    'text',
    'title',
    'type',
    'time',
    'owner',
    'users',
    'message_start',
    'message_end',
    'file_picture',
    'emoji',
    'client_id',
    'flow_uuid',
    'version',
  ];

  it('answers every mutated request with one JSON frame carrying a status code, and never throws', async () => {
    const r = seededRandom(11);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const obj = (depth: number): Record<string, unknown> => {
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(r() * 4); i > 0; i--)
        o[pick(FIELDS)] = depth > 0 && r() < 0.3 ? [obj(depth - 1)] : pick(VALUES);
      return o;
    };
    const created = {
      id: '9',
      kind: 1,
      visibility: 2,
      title: 't',
      info: '',
      ownerId: '7',
      memberIds: ['7'],
      changedAtMs: NOW,
      createdAtMs: NOW,
    };
    const d = dispatcher(
      fakeIdentity(),
      fakeMsg({
        lookupChannel: async () => undefined,
        createChannel: async () => created as never,
        postMessage: async () => {
          throw new AppError(Code.UNAVAILABLE, 'DOWN', 'down');
        },
      }),
    );
    const codes = new Set<number>();
    for (let n = 0; n < 3000; n++) {
      const user = r() < 0.7 ? { uuid: '7', auth_id: 'tok7', ...obj(1) } : obj(1);
      const frame: Record<string, unknown> = {
        type: r() < 0.9 ? pick(TYPES) : pick(VALUES),
        data: r() < 0.9 ? { user: [user], flow: [obj(1)], message: [obj(1)], ...obj(1) } : pick(VALUES),
        jsonapi: r() < 0.8 ? { version: pick(['1.0', '1.9', '2.0', 1, null]) } : pick(VALUES),
        ...obj(0),
      };
      let text = JSON.stringify(frame);
      if (r() < 0.2) text = text.slice(0, Math.floor(r() * text.length)); // cut off
      const res = await d.handle(conn, text, bucket());
      const reply = JSON.parse(res.text) as { type?: unknown; data?: unknown; errors?: { code?: unknown } | null };
      expect(typeof reply.type).toBe('string');
      expect(typeof res.code).toBe('number');
      expect(res.code).toBeGreaterThanOrEqual(200);
      expect(res.code).toBeLessThan(600);
      codes.add(res.code);
    }
    // The frames reached handlers, not only the parser: successes and refusals of several kinds.
    expect([...codes].sort()).toEqual(expect.arrayContaining([200, 400, 401, 405, 415]));
  });
});
