/**
 * Acceptance cases of spec §7.1 (the original's cases), §7.3 (authorization) and §7.4 (get_update),
 * against real identity and message-store processes. Replies are compared as exact JSON text
 * (key order included) wherever the spec fixes a frame.
 */
import { identityV1, messagesV1 } from '@hubbub/proto';
import { Client } from 'pg';
import { auth, ensurePublic, makeFlow, makeUser, principalOf, seed } from './helpers/fixtures';
import type { U } from './helpers/fixtures';
import { frameText, MtpClient, mtp } from './helpers/mtp-client';
import type { Frame } from './helpers/mtp-client';
import { startStack } from './helpers/stack';
import type { Stack } from './helpers/stack';
import type { WsmServer } from '../../src/server';

let s: Stack;
let w: WsmServer;
let c: MtpClient;
const B = Math.floor(Date.now() / 1000) - 100_000;
let n = 0;
/** Unique logins per test (one identity per file). */
const L = (base: string): string => `${base}${++n}`;

beforeAll(async () => {
  s = await startStack();
  w = await s.wsm();
  c = await MtpClient.connect(`ws://127.0.0.1:${w.port}/ws`);
}, 60_000);
afterAll(async () => {
  await c?.close();
  await s?.close();
});

const OK = ['Request fulfilled, document follows', 200, 'OK'] as const;
/** The 415 for a NUL character in stored fields (PostgreSQL text cannot hold U+0000), at these locations. */
const nulFrame = (locs: string[], t: number): string =>
  frameText(
    'error',
    'null',
    `${locs.length} validation error${locs.length === 1 ? '' : 's'} for Request\n` +
      locs.map((l) => `${l}\n  string must not contain the NUL character U+0000 (type=value_error.str.nul)`).join('\n'),
    415,
    'Unsupported Media Type',
    t,
  );
const U_SHORT = (uuid: string, token: string, ttl: number): string =>
  `{"uuid": ${JSON.stringify(uuid)}, "login": null, "username": null, "bio": null, "avatar": null, "password": null, "is_bot": null, "auth_id": ${JSON.stringify(token)}, "token_ttl": ${ttl}, "email": null}`;
const data = (time: number, parts: { user?: string; flow?: string; message?: string } = {}): string =>
  `{"time": ${time}, "user": ${parts.user ?? 'null'}, "meta": null, "flow": ${parts.flow ?? 'null'}, "message": ${parts.message ?? 'null'}}`;

async function ping(u: { uuid: string; auth_id: string }): Promise<Frame> {
  return c.req(mtp('ping_pong', u));
}

describe('7.1 register_user and authentication', () => {
  it('#1 register_user → 201 with the exact frame; the token works; no plaintext password stored', async () => {
    const login = L('login');
    const raw = await c.reqRaw(
      mtp('register_user', { login, password: 'password', email: 'querty@querty.com', username: 'username' }),
    );
    const f = JSON.parse(raw) as Frame;
    const u = f.data!.user![0] as { uuid: string; auth_id: string; token_ttl: number };
    expect(u.token_ttl).toBeGreaterThan(0);
    expect(raw).toBe(
      frameText(
        'register_user',
        data(f.errors.time, { user: `[${U_SHORT(u.uuid, u.auth_id, u.token_ttl)}]` }),
        'Document created, URL follows',
        201,
        'Created',
        f.errors.time,
      ),
    );
    expect(f.data!.time).toBe(f.errors.time);
    expect((await ping({ uuid: u.uuid, auth_id: u.auth_id })).errors.code).toBe(200);
    // token_ttl = identity's session lifetime
    const v = await s.idClient.verifyToken(identityV1.VerifyTokenRequest.fromPartial({ token: u.auth_id }));
    expect(Math.abs(v.ttlSeconds - u.token_ttl)).toBeLessThanOrEqual(2);
    // identity's store holds no plaintext password
    const db = new Client({ connectionString: s.identityDbUrl });
    await db.connect();
    try {
      const tables = await db.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
      );
      for (const { table_name } of tables.rows) {
        const rows = await db.query<{ t: string }>(`SELECT t::text AS t FROM "${table_name}" t`);
        expect(rows.rows.some((r) => /(^|[,(])password([,)]|$)/.test(r.t))).toBe(false);
      }
    } finally {
      await db.end();
    }
  });

  it('#2 register_user with an existing login → 409 Conflict, data null', async () => {
    const login = L('login');
    await makeUser(s, login);
    const raw = await c.reqRaw(mtp('register_user', { login, password: 'password', username: 'username' }));
    const t = (JSON.parse(raw) as Frame).errors.time;
    expect(raw).toBe(frameText('register_user', 'null', 'Request conflict', 409, 'Conflict', t));
  });

  it('register_user without login or password → 401 default detail', async () => {
    const raw = await c.reqRaw(mtp('register_user', { login: L('x') }));
    const t = (JSON.parse(raw) as Frame).errors.time;
    expect(raw).toBe(
      frameText('register_user', 'null', 'No permission -- see authorization schemes', 401, 'Unauthorized', t),
    );
  });

  it('register_user with a login identity refuses → 400 login rules; weak password → 400 password rules', async () => {
    const bad = await c.req(mtp('register_user', { login: 'a b c', password: 'password' }));
    expect([bad.errors.code, bad.errors.detail, bad.type]).toEqual([
      400,
      'Login does not meet the server rules',
      'register_user',
    ]);
    const weak = await c.req(mtp('register_user', { login: L('weak'), password: '1' }));
    expect([weak.errors.code, weak.errors.detail]).toEqual([400, 'Password does not meet the server rules']);
  });

  it('register_user with a NUL character in login, username or email → 415 naming it; no account made', async () => {
    const login = L('nul');
    // before: identity refused them and the reply was 400 "Login does not meet the server rules"
    for (const [user, loc] of [
      [{ login, password: 'password', username: 'a\u0000b' }, 'username'],
      [{ login, password: 'password', email: 'a\u0000@b.cd' }, 'email'],
      [{ login: `${login}\u0000`, password: 'password' }, 'login'],
    ] as const) {
      const raw = await c.reqRaw(mtp('register_user', user));
      expect(raw).toBe(nulFrame([`data -> user -> 0 -> ${loc}`], (JSON.parse(raw) as Frame).errors.time));
    }
    expect((await c.req(mtp('authentication', { login, password: 'password' }))).errors.code).toBe(404);
    expect((await c.req(mtp('register_user', { login, password: 'password' }))).errors.code).toBe(201);
  });

  it('#3 authentication → 200 with a new working token; auth alias with jsonapi null (R18)', async () => {
    const u = await makeUser(s, L('login'));
    const raw = await c.reqRaw(mtp('authentication', { login: u.login, password: u.password }));
    const f = JSON.parse(raw) as Frame;
    const v = f.data!.user![0] as { uuid: string; auth_id: string; token_ttl: number };
    expect(v.uuid).toBe(u.uuid);
    expect(v.auth_id).not.toBe(u.token);
    expect(raw).toBe(
      frameText(
        'authentication',
        data(f.errors.time, { user: `[${U_SHORT(u.uuid, v.auth_id, v.token_ttl)}]` }),
        ...OK,
        f.errors.time,
      ),
    );
    expect((await ping({ uuid: u.uuid, auth_id: v.auth_id })).errors.code).toBe(200);
    const r18 = await c.req({
      type: 'auth',
      jsonapi: null,
      data: { user: [{ login: u.login, password: u.password }] },
    });
    expect([r18.type, r18.errors.code]).toEqual(['auth', 200]);
    expect((await ping({ uuid: u.uuid, auth_id: r18.data!.user![0]!['auth_id'] as string })).errors.code).toBe(200);
    // Z9: both tokens work and differ
    expect((await ping(auth(u))).errors.code).toBe(200);
  });

  it('#4 authentication of a deleted user → 404 with data {time, user: []}', async () => {
    const u = await makeUser(s, L('login'));
    const del = await c.req(mtp('delete_user', { ...auth(u), login: u.login, password: u.password }));
    expect(del.errors.code).toBe(200);
    const raw = await c.reqRaw(mtp('authentication', { login: u.login, password: u.password }));
    const t = (JSON.parse(raw) as Frame).errors.time;
    expect(raw).toBe(
      frameText('authentication', data(t, { user: '[]' }), 'Nothing matches the given URI', 404, 'Not Found', t),
    );
  });

  it('#5 wrong password → 401 with data {time, user: []}; unknown login → 404', async () => {
    const u = await makeUser(s, L('login'));
    const raw = await c.reqRaw(mtp('authentication', { login: u.login, password: 'wrong_password' }));
    const t = (JSON.parse(raw) as Frame).errors.time;
    expect(raw).toBe(
      frameText(
        'authentication',
        data(t, { user: '[]' }),
        'No permission -- see authorization schemes',
        401,
        'Unauthorized',
        t,
      ),
    );
    const unknown = await c.req(mtp('authentication', { login: L('nobody'), password: 'x' }));
    expect(unknown.errors.code).toBe(404);
    const noPassword = await c.req(mtp('authentication', { login: u.login }));
    expect(noPassword.errors.code).toBe(401);
    const noLogin = await c.req(mtp('authentication', { password: 'x' }));
    expect(noLogin.errors.code).toBe(404);
  });

  it('register_user / authentication while authenticated → 405 (kept from the original)', async () => {
    const u = await makeUser(s, L('login'));
    for (const type of ['register_user', 'authentication', 'auth']) {
      const raw = await c.reqRaw(mtp(type, { ...auth(u), login: 'x', password: 'y' }));
      const t = (JSON.parse(raw) as Frame).errors.time;
      expect(raw).toBe(
        frameText('error', 'null', 'Specified method is invalid for this resource', 405, 'Method Not Allowed', t),
      );
    }
  });
});

describe('7.1 get_update (#6, #7)', () => {
  let U1: U, U2: U, U3: U, F1: string, F2: string;
  const ids: Record<string, string> = {};
  beforeAll(async () => {
    U1 = await makeUser(s, L('u'));
    U2 = await makeUser(s, L('u'));
    U3 = await makeUser(s, L('u'));
    F1 = await makeFlow(s, 'chat', U1, [U1, U2]);
    F2 = await makeFlow(s, 'group', U2, [U2, U3]);
    const m1 = await seed(s, F1, [
      { author: U1, sec: B + 111 },
      { author: U2, sec: B + 222 },
    ]);
    const m2 = await seed(s, F2, [
      { author: U2, sec: B + 111 },
      { author: U3, sec: B + 222 },
      { author: U3, sec: B + 333 },
    ]);
    ids['M111'] = m1[0]!.id;
    ids['M112'] = m1[1]!.id;
    ids['M113'] = m2[0]!.id;
  });

  it('#6 get_update time B+111 → 200, M111 and M112, F1, the users; nothing of F2', async () => {
    const f = await c.req(mtp('get_update', auth(U1), { time: B + 111 }));
    expect(f.errors.code).toBe(200);
    expect(f.data!.time).toBe(f.errors.time);
    expect(f.data!.message!.map((m) => m['uuid'])).toEqual([ids['M111'], ids['M112']]);
    expect(f.data!.message![1]!['client_id']).toBeNull();
    expect(f.data!.flow!.map((x) => x['uuid'])).toEqual([F1]);
    expect(f.data!.flow![0]).toEqual({
      time: expect.any(Number),
      type: 'chat',
      title: null,
      info: null,
      owner: U1.uuid,
      users: [U1.uuid, U2.uuid],
      message_start: null,
      message_end: null,
      uuid: F1,
    });
    const users = f.data!.user!.map((u) => u['uuid']);
    for (const u of [U1, U2, U3]) expect(users).toContain(u.uuid);
    const u1 = f.data!.user!.find((u) => u['uuid'] === U1.uuid)!;
    expect(u1).toEqual({
      uuid: U1.uuid,
      login: null,
      username: U1.username,
      bio: null,
      avatar: null,
      password: null,
      is_bot: false,
      auth_id: null,
      token_ttl: null,
      email: null,
    });
    // exact key order of a full message
    const raw = await c.reqRaw(mtp('get_update', auth(U1), { time: B + 111 }));
    expect(raw).toContain(
      `{"uuid": "${ids['M111']}", "text": "m0", "from_user": "${U1.uuid}", "time": ${B + 111}, "from_flow": "${F1}", "file_picture": null, "file_video": null, "file_audio": null, "file_document": null, "emoji": null, "edited_time": null, "edited_status": false, "client_id": null}`,
    );
  });

  it('#7 get_update time B+444 → 200 (never 404) with empty flow/message lists', async () => {
    const f = await c.req(mtp('get_update', auth(U1), { time: B + 444 }));
    expect(f.errors.code).toBe(200);
    expect(f.data!.message).toEqual([]);
    // F1 was created now (after B+444), so it is listed as changed; F2 never
    expect(f.data!.flow!.map((x) => x['uuid'])).not.toContain(F2);
    const users = f.data!.user!.map((u) => u['uuid']);
    for (const u of [U1, U2, U3]) expect(users).toContain(u.uuid);
  });

  it('a data.time far in the future (any int, §2.2) → 200 with empty lists, not 500', async () => {
    // Seconds past 8.64e12 made no valid Date and failed the backends' timestamp encoding (500).
    for (const time of [9007199254740991, 10 ** 13, 17592186045]) {
      const f = await c.req(mtp('get_update', auth(U1), { time }));
      expect([f.type, f.errors.code]).toEqual(['get_update', 200]);
      expect(f.data!.time).toBe(f.errors.time);
      expect([f.data!.user, f.data!.flow, f.data!.message]).toEqual([[], [], []]);
      const a = await c.req(mtp('all_messages', auth(U1), { time, flow: [{ uuid: F1 }] }));
      expect([a.type, a.errors.code, a.data!.flow, a.data!.message]).toEqual([
        'all_messages',
        200,
        [expect.objectContaining({ uuid: F1, message_start: null })],
        [],
      ]);
    }
  });

  it('Z3: get_update time 0 and all_flow never show an invisible flow', async () => {
    const g = await c.req(mtp('get_update', auth(U1), { time: 0 }));
    expect(g.data!.flow!.map((x) => x['uuid'])).not.toContain(F2);
    expect(g.data!.message!.map((x) => x['uuid'])).not.toContain(ids['M113']);
    const a = await c.req(mtp('all_flow', auth(U1)));
    expect(a.data!.flow!.map((x) => x['uuid'])).toEqual([F1]);
  });
});

describe('7.1 send_message (#8, #9) and all_messages (#10–#13)', () => {
  let U1: U, U2: U, U4: U, G: string;
  beforeAll(async () => {
    U1 = await makeUser(s, L('u'));
    U2 = await makeUser(s, L('u'));
    U4 = await makeUser(s, L('u'));
    G = await makeFlow(s, 'group', U1, [U1]);
  });

  it('#8 send_message stores every field; reply has the snowflake, client_id echo, text/time null (exact frame)', async () => {
    const raw = await c.reqRaw(
      mtp('send_message', auth(U1), {
        flow: [{ uuid: G }],
        message: [
          {
            uuid: '999666',
            text: 'Hello!',
            client_id: 123,
            file_picture: 'cGljdHVyZQ==',
            file_video: 'dmlkZW8=',
            file_audio: 'YXVkaW8=',
            file_document: 'ZG9j',
            emoji: 'ZW1vamk=',
          },
        ],
      }),
    );
    const f = JSON.parse(raw) as Frame;
    const id = f.data!.message![0]!['uuid'] as string;
    expect(id).toMatch(/^\d{10,20}$/);
    expect(id).not.toBe('999666');
    expect(raw).toBe(
      frameText(
        'send_message',
        data(f.errors.time, {
          message: `[{"uuid": "${id}", "text": null, "from_user": "${U1.uuid}", "time": null, "from_flow": "${G}", "file_picture": null, "file_video": null, "file_audio": null, "file_document": null, "emoji": null, "edited_time": null, "edited_status": null, "client_id": 123}]`,
        }),
        ...OK,
        f.errors.time,
      ),
    );
    const all = await c.req(mtp('all_messages', auth(U1), { flow: [{ uuid: G }] }));
    const m = all.data!.message!.find((x) => x['uuid'] === id)!;
    expect(m['text']).toBe('Hello!');
    expect(Math.abs((m['time'] as number) - Date.now() / 1000)).toBeLessThanOrEqual(2);
    expect([m['file_picture'], m['file_video'], m['file_audio'], m['file_document'], m['emoji']]).toEqual([
      'cGljdHVyZQ==',
      'dmlkZW8=',
      'YXVkaW8=',
      'ZG9j',
      'ZW1vamk=',
    ]);
    expect([m['edited_status'], m['edited_time'], m['client_id']]).toEqual([false, null, null]);
  });

  it('#9 send_message to an unknown flow → 404 Flow, data null (exact frame)', async () => {
    const raw = await c.reqRaw(mtp('send_message', auth(U1), { flow: [{ uuid: '666666' }], message: [{ text: 'x' }] }));
    const t = (JSON.parse(raw) as Frame).errors.time;
    expect(raw).toBe(frameText('send_message', 'null', 'No results matched the query for Flow', 404, 'Not Found', t));
  });

  it('R17 without message.uuid and client_id → 200, client_id null; R19 byte arrays → base64', async () => {
    const r = await c.req(mtp('send_message', auth(U1), { flow: [{ uuid: G }], message: [{ text: 'no ids' }] }));
    expect([r.errors.code, r.data!.message![0]!['client_id']]).toEqual([200, null]);
    const p = await c.req(
      mtp('send_message', auth(U1), { flow: [{ uuid: G }], message: [{ file_picture: [104, 105] }] }),
    );
    expect(p.errors.code).toBe(200);
    const all = await c.req(mtp('all_messages', auth(U1), { flow: [{ uuid: G }] }));
    const m = all.data!.message!.find((x) => x['uuid'] === p.data!.message![0]!['uuid'])!;
    expect([m['file_picture'], m['text']]).toEqual(['aGk=', '']);
  });

  it('R31 70 000 bytes of text → 400 Message too large', async () => {
    const raw = await c.reqRaw(
      mtp('send_message', auth(U1), { flow: [{ uuid: G }], message: [{ text: 'x'.repeat(70_000) }] }),
    );
    const t = (JSON.parse(raw) as Frame).errors.time;
    expect(raw).toBe(frameText('send_message', 'null', 'Message too large (max 65536 bytes)', 400, 'Bad Request', t));
  });

  it('a NUL character in the text or a file field → 415 naming each (not 400 Message too large); nothing stored', async () => {
    const count = async () =>
      (await c.req(mtp('all_messages', auth(U1), { flow: [{ uuid: G }] }))).data!.message!.length;
    const before = await count();
    const text = await c.reqRaw(
      mtp('send_message', auth(U1), { flow: [{ uuid: G }], message: [{ text: 'Hello\u0000!', client_id: 1 }] }),
    );
    expect(text).toBe(nulFrame(['data -> message -> 0 -> text'], (JSON.parse(text) as Frame).errors.time));
    const files = await c.reqRaw(
      mtp('send_message', auth(U1), {
        flow: [{ uuid: G }],
        message: [{ text: '\u0000', file_picture: 'cA==', file_audio: '\u0000', emoji: 'x\u0000' }],
      }),
    );
    expect(files).toBe(
      nulFrame(
        ['data -> message -> 0 -> text', 'data -> message -> 0 -> file_audio', 'data -> message -> 0 -> emoji'],
        (JSON.parse(files) as Frame).errors.time,
      ),
    );
    // the same for a flow the caller cannot see: nothing to probe
    const hidden = await c.req(
      mtp('send_message', auth(U1), { flow: [{ uuid: '666666' }], message: [{ text: '\u0000' }] }),
    );
    expect([hidden.errors.code, hidden.type]).toEqual([415, 'error']);
    expect(await count()).toBe(before);
  });

  describe('paging', () => {
    let F1: string, F2: string;
    const privet: { id?: string } = {};
    beforeAll(async () => {
      F1 = await makeFlow(s, 'chat', U1, [U1, U2]);
      F2 = await makeFlow(s, 'group', U1, [U1, U4]);
      await seed(
        s,
        F1,
        Array.from({ length: 110 }, (_, i) => ({ author: i % 2 ? U2 : U1, sec: B + i })),
      );
      await seed(
        s,
        F2,
        Array.from({ length: 90 }, (_, i) => ({ author: U1, sec: B + i })),
      );
      privet.id = (await seed(s, F2, [{ author: U4, sec: B + 666, text: 'Privet' }]))[0]!.id;
    });

    it('#10 time B+2 on 110 messages → 206, message_start 8, message_end 108, times B+10..B+109', async () => {
      const f = await c.req(mtp('all_messages', auth(U1), { time: B + 2, flow: [{ uuid: F1 }] }));
      expect([f.errors.code, f.errors.status]).toEqual([206, 'Partial Content']);
      expect(f.data!.flow).toEqual([
        {
          time: null,
          type: null,
          title: null,
          info: null,
          owner: null,
          users: null,
          message_start: 8,
          message_end: 108,
          uuid: F1,
        },
      ]);
      const times = f.data!.message!.map((m) => m['time']);
      expect(times).toEqual(Array.from({ length: 100 }, (_, i) => B + 10 + i));
      expect(f.data!.message![0]!['client_id']).toBeNull();
      expect(f.data!.user).toBeNull();
    });

    it('#11 time B+2 on 91 messages → 200 with 89 including Privet; flow {uuid} only', async () => {
      const f = await c.req(mtp('all_messages', auth(U1), { time: B + 2, flow: [{ uuid: F2 }] }));
      expect(f.errors.code).toBe(200);
      expect(f.data!.flow![0]).toMatchObject({ uuid: F2, message_start: null, message_end: null });
      expect(f.data!.message).toHaveLength(89);
      expect(f.data!.message).toContainEqual(
        expect.objectContaining({ uuid: privet.id, text: 'Privet', from_user: U4.uuid, from_flow: F2 }),
      );
    });

    it('#12 message_end 256 → 403 with message_start 0, message_end 108, message []', async () => {
      const raw = await c.reqRaw(
        mtp('all_messages', auth(U1), { time: B + 2, flow: [{ uuid: F1, message_end: 256 }] }),
      );
      const t = (JSON.parse(raw) as Frame).errors.time;
      expect(raw).toBe(
        frameText(
          'all_messages',
          data(t, {
            flow: `[{"time": null, "type": null, "title": null, "info": null, "owner": null, "users": null, "message_start": 0, "message_end": 108, "uuid": "${F1}"}]`,
            message: '[]',
          }),
          'Requested more messages than server limit (100)',
          403,
          'Forbidden',
          t,
        ),
      );
    });

    it('#13 unknown flow → 404 with data {time, flow: [], message: []}', async () => {
      const raw = await c.reqRaw(mtp('all_messages', auth(U1), { flow: [{ uuid: '666666' }] }));
      const t = (JSON.parse(raw) as Frame).errors.time;
      expect(raw).toBe(
        frameText(
          'all_messages',
          data(t, { flow: '[]', message: '[]' }),
          'No results matched the query for Flow',
          404,
          'Not Found',
          t,
        ),
      );
    });

    it('R6 time null → all; R7 empty flow → 200 with flow [{uuid}] and message []', async () => {
      const small = await makeFlow(s, 'group', U1, [U1]);
      await seed(
        s,
        small,
        [0, 1, 2].map((i) => ({ author: U1, sec: B + i })),
      );
      const r6 = await c.req(mtp('all_messages', auth(U1), { time: null, flow: [{ uuid: small }] }));
      expect([r6.errors.code, r6.data!.message!.length]).toEqual([200, 3]);
      const empty = await makeFlow(s, 'group', U1, [U1]);
      const raw = await c.reqRaw(mtp('all_messages', auth(U1), { flow: [{ uuid: empty }] }));
      const t = (JSON.parse(raw) as Frame).errors.time;
      expect(raw).toBe(
        frameText(
          'all_messages',
          data(t, {
            flow: `[{"time": null, "type": null, "title": null, "info": null, "owner": null, "users": null, "message_start": null, "message_end": null, "uuid": "${empty}"}]`,
            message: '[]',
          }),
          ...OK,
          t,
        ),
      );
    });

    describe('R8–R12 on 130 messages', () => {
      let F: string;
      beforeAll(async () => {
        F = await makeFlow(s, 'group', U1, [U1]);
        await seed(
          s,
          F,
          Array.from({ length: 130 }, (_, i) => ({ author: U1, sec: B + i, text: `n${i}` })),
        );
      });
      const texts = (f: Frame) => f.data!.message!.map((m) => m['text']);
      const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => `n${a + i}`);
      it.each([
        ['R8 no range', {}, 206, 30, range(30, 130)],
        ['R9 message_start 120', { message_start: 120 }, 206, 120, range(120, 130)],
        ['R10 start 20, end 120', { message_start: 20, message_end: 120 }, 206, 20, range(20, 120)],
        ['R12 message_end 30', { message_end: 30 }, 206, 0, range(0, 30)],
        ['R11 start 0, end 101', { message_start: 0, message_end: 101 }, 403, 0, []],
        ['negative start counts as 0', { message_start: -5, message_end: 10 }, 206, 0, range(0, 10)],
        // message_start is any int (§2.2); past 2^32-1 it used to fail the uint32 encoding (500)
        ['message_start 2^32 → nothing', { message_start: 2 ** 32 }, 206, 2 ** 32, []],
        [
          'start 2^32, end 2^32 + 10 → nothing',
          { message_start: 2 ** 32, message_end: 2 ** 32 + 10 },
          206,
          2 ** 32,
          [],
        ],
      ])('%s', async (_n, range_, code, start, expected) => {
        const f = await c.req(mtp('all_messages', auth(U1), { flow: [{ uuid: F, ...range_ }] }));
        expect(f.errors.code).toBe(code);
        expect(f.data!.flow![0]).toMatchObject({ uuid: F, message_start: start, message_end: 130 });
        expect(texts(f)).toEqual(expected);
      });
    });
  });
});

describe('7.1 add_flow (#14–#18), all_flow (#19, #20), R13–R16', () => {
  let U1: U, U2: U, U3: U;
  beforeAll(async () => {
    U1 = await makeUser(s, L('u'));
    U2 = await makeUser(s, L('u'));
    U3 = await makeUser(s, L('u'));
  });

  it('#20 no public channels, U1 in no flow → all_flow 404 with data {time, flow: []}', async () => {
    const raw = await c.reqRaw(mtp('all_flow', auth(U1)));
    const t = (JSON.parse(raw) as Frame).errors.time;
    expect(raw).toBe(
      frameText('all_flow', data(t, { flow: '[]' }), 'Nothing matches the given URI', 404, 'Not Found', t),
    );
  });

  it('#14 group → 200 with the full flow (exact frame); all_flow lists it (#19 info kept)', async () => {
    const raw = await c.reqRaw(
      mtp('add_flow', auth(U1), {
        flow: [{ type: 'group', title: 'title', info: 'info', owner: U1.uuid, users: [U1.uuid] }],
      }),
    );
    const f = JSON.parse(raw) as Frame;
    const fl = f.data!.flow![0]!;
    const t = f.errors.time;
    expect(Math.abs((fl['time'] as number) - t)).toBeLessThanOrEqual(1);
    expect(raw).toBe(
      frameText(
        'add_flow',
        data(t, {
          flow: `[{"time": ${fl['time'] as number}, "type": "group", "title": "title", "info": "info", "owner": "${U1.uuid}", "users": ["${U1.uuid}"], "message_start": null, "message_end": null, "uuid": "${fl['uuid'] as string}"}]`,
        }),
        ...OK,
        t,
      ),
    );
    const all = await c.req(mtp('all_flow', auth(U1)));
    expect(all.errors.code).toBe(200);
    expect(all.data!.flow).toContainEqual(expect.objectContaining({ uuid: fl['uuid'], info: 'info', title: 'title' }));
  });

  it('#15 channel → 200; R13 users null → [caller]; members appended and deduplicated', async () => {
    const ch = await c.req(mtp('add_flow', auth(U1), { flow: [{ type: 'channel', title: 'ch' }] }));
    expect([ch.errors.code, ch.data!.flow![0]!['type'], ch.data!.flow![0]!['users']]).toEqual([
      200,
      'channel',
      [U1.uuid],
    ]);
    const g = await c.req(mtp('add_flow', auth(U1), { flow: [{ type: 'group', users: [U2.uuid, U2.uuid, U3.uuid] }] }));
    expect(g.data!.flow![0]!['users']).toEqual([U2.uuid, U3.uuid, U1.uuid]);
    expect(g.data!.flow![0]!['title']).toBeNull();
  });

  const bad = (detail: string, code: number, status: string) => async (flow: Record<string, unknown>) => {
    const raw = await c.reqRaw(mtp('add_flow', auth(U1), { flow: [flow] }));
    const t = (JSON.parse(raw) as Frame).errors.time;
    expect(raw).toBe(frameText('add_flow', data(t, { flow: '[]' }), detail, code, status, t));
  };

  it('#16 unknown type → 400 Wrong flow type (also null type)', async () => {
    await bad('Wrong flow type', 400, 'Bad Request')({ type: 'unknown' });
    await bad('Wrong flow type', 400, 'Bad Request')({ title: 'no type' });
  });

  it('#17/#18 chat without exactly two users → 400 Must be two users only', async () => {
    await bad('Must be two users only', 400, 'Bad Request')({ type: 'chat', users: [U1.uuid] });
    await bad('Must be two users only', 400, 'Bad Request')({ type: 'chat', users: [U1.uuid, U2.uuid, U3.uuid] });
  });

  it('R14 unknown user → 404 UserConfig and nothing written; R15 chat without caller; R16 foreign owner', async () => {
    const before = (await c.req(mtp('all_flow', auth(U1)))).data!.flow!.length;
    await bad(
      'No results matched the query for UserConfig',
      404,
      'Not Found',
    )({ type: 'group', users: [U1.uuid, 'nobody'] });
    await bad(
      'No results matched the query for UserConfig',
      404,
      'Not Found',
    )({ type: 'group', users: [U1.uuid, '99999999'] });
    expect((await c.req(mtp('all_flow', auth(U1)))).data!.flow!.length).toBe(before);
    await bad(
      'Requesting user must be a member of the chat',
      403,
      'Forbidden',
    )({ type: 'chat', users: [U2.uuid, U3.uuid] });
    await bad('Owner must be the requesting user', 403, 'Forbidden')({ type: 'group', owner: U2.uuid });
    await bad('Flow title or info too long', 400, 'Bad Request')({ type: 'group', title: 'é'.repeat(129) });
  });

  it('NUL in title/info (PostgreSQL cannot hold it) → 415 naming the field, not 400 too long nor 500; nothing written', async () => {
    const before = (await c.req(mtp('all_flow', auth(U1)))).data!.flow!.length;
    for (const [flow, locs] of [
      [{ type: 'group', title: 'a\u0000b' }, ['title']],
      [{ type: 'group', info: '\u0000' }, ['info']],
      [{ type: 'group', title: '\u0000', info: 'x\u0000' }, ['title', 'info']],
    ] as const) {
      const raw = await c.reqRaw(mtp('add_flow', auth(U1), { flow: [flow] }));
      expect(raw).toBe(
        nulFrame(
          locs.map((l) => `data -> flow -> 0 -> ${l}`),
          (JSON.parse(raw) as Frame).errors.time,
        ),
      );
    }
    expect((await c.req(mtp('all_flow', auth(U1)))).data!.flow!.length).toBe(before);
  });

  it('a user id beyond int64 is unknown (404 UserConfig / 401 / 520), not 500', async () => {
    const huge = '9223372036854775808';
    await bad('No results matched the query for UserConfig', 404, 'Not Found')({ type: 'group', users: [huge] });
    const p = await c.req(mtp('ping_pong', { uuid: huge, auth_id: U1.token }));
    expect([p.type, p.errors.code, p.errors.detail]).toEqual(['error', 401, 'User was not authenticated']);
    const i = await c.req({
      type: 'user_info',
      jsonapi: { version: '1.0' },
      data: { user: [auth(U1), { uuid: huge }] },
    });
    expect([i.errors.code, i.data!.user]).toEqual([520, []]);
  });

  it('add_flow with more users than WSM_MAX_FLOW_USERS → 400 Too many users', async () => {
    const users = Array.from({ length: 1001 }, (_, i) => String(1_000_000 + i));
    await bad('Too many users in flow (max 1000)', 400, 'Bad Request')({ type: 'group', users });
  });

  it('a chat flow appears for both users with type chat', async () => {
    const r = await c.req(mtp('add_flow', auth(U2), { flow: [{ type: 'chat', users: [U2.uuid, U3.uuid] }] }));
    expect(r.errors.code).toBe(200);
    const a = await c.req(mtp('all_flow', auth(U3)));
    expect(a.data!.flow).toContainEqual(
      expect.objectContaining({ uuid: r.data!.flow![0]!['uuid'], type: 'chat', owner: U2.uuid }),
    );
  });
});

describe('7.1 user_info (#21, #22) and delete_user (#23, #24)', () => {
  it('#21 user_info of 5 → the 4 others in order with login; guests; unknown → 520 with the found ones', async () => {
    const us: U[] = [];
    for (let i = 0; i < 5; i++) us.push(await makeUser(s, L('info'), { bio: 'bio' }));
    const f = await c.req(mtp('user_info', auth(us[0]!), {}));
    expect([f.errors.code, f.data!.user]).toEqual([200, []]);
    const req = {
      type: 'user_info',
      jsonapi: { version: '1.0' },
      data: { user: [auth(us[0]!), ...us.slice(1).map((u) => ({ uuid: u.uuid }))] },
    };
    const r = await c.req(req);
    expect(r.errors.code).toBe(200);
    expect(r.data!.user!.map((u) => u['uuid'])).toEqual(us.slice(1).map((u) => u.uuid));
    expect(r.data!.user![0]).toEqual({
      uuid: us[1]!.uuid,
      login: us[1]!.login,
      username: us[1]!.username,
      bio: 'bio',
      avatar: null,
      password: null,
      is_bot: false,
      auth_id: null,
      token_ttl: null,
      email: null,
    });
    const guest = await c.req({
      type: 'user_info',
      data: { user: [auth(us[0]!), { uuid: 'guest:frank' }, { uuid: '424242424' }, { uuid: us[2]!.uuid }] },
    });
    expect([guest.errors.code, guest.errors.detail, guest.errors.status]).toEqual([
      520,
      'No results matched the query for UserConfig',
      'Unknown Error',
    ]);
    expect(guest.data!.user).toEqual([
      {
        uuid: 'guest:frank',
        login: null,
        username: 'frank (guest)',
        bio: null,
        avatar: null,
        password: null,
        is_bot: false,
        auth_id: null,
        token_ttl: null,
        email: null,
      },
      expect.objectContaining({ uuid: us[2]!.uuid }),
    ]);
  });

  it('#22 125 entries → 429 with data {time, user: []}', async () => {
    const u = await makeUser(s, L('info'));
    const raw = await c.reqRaw({
      type: 'user_info',
      data: { user: [auth(u), ...Array.from({ length: 124 }, () => ({ uuid: u.uuid }))] },
    });
    const t = (JSON.parse(raw) as Frame).errors.time;
    expect(raw).toBe(
      frameText(
        'user_info',
        data(t, { user: '[]' }),
        'Requested more 100 users than server limit',
        429,
        'Too Many Requests',
        t,
      ),
    );
  });

  it('#23 delete_user → 200 data null; then 401 Authentication User failed; tombstone; login 404', async () => {
    const u = await makeUser(s, L('del'));
    const v = await makeUser(s, L('del'));
    const raw = await c.reqRaw(mtp('delete_user', { ...auth(u), login: u.login, password: u.password }));
    const t = (JSON.parse(raw) as Frame).errors.time;
    expect(raw).toBe(frameText('delete_user', 'null', ...OK, t));
    const p = await c.reqRaw(mtp('ping_pong', auth(u)));
    const pt = (JSON.parse(p) as Frame).errors.time;
    expect(p).toBe(frameText('error', 'null', 'Authentication User failed', 401, 'Unauthorized', pt));
    const info = await c.req({ type: 'user_info', data: { user: [auth(v), { uuid: u.uuid }] } });
    expect(info.data!.user![0]).toMatchObject({
      uuid: u.uuid,
      login: 'User deleted',
      username: 'User deleted',
      bio: 'deleted',
      avatar: '',
    });
    const a = await c.req(mtp('authentication', { login: u.login, password: u.password }));
    expect(a.errors.code).toBe(404);
  });

  it("#24 delete_user with a wrong login, wrong password, or another user's credentials → 404, both intact", async () => {
    const u1 = await makeUser(s, L('del'));
    const u2 = await makeUser(s, L('del'), { password: 'other-password' });
    for (const creds of [
      { login: 'wrong_login', password: u1.password },
      { login: u1.login, password: 'wrong_password' },
      { login: u2.login, password: u2.password },
    ]) {
      const raw = await c.reqRaw(mtp('delete_user', { ...auth(u1), ...creds }));
      const t = (JSON.parse(raw) as Frame).errors.time;
      expect(raw).toBe(
        frameText('delete_user', 'null', 'No results matched the query for UserConfig', 404, 'Not Found', t),
      );
    }
    expect((await ping(auth(u1))).errors.code).toBe(200);
    expect((await ping(auth(u2))).errors.code).toBe(200);
  });
});

describe('7.1 delete_message / edited_message (#25–#27), R26, R30, Z6, Z7', () => {
  let U1: U, U2: U, U3: U, F: string;
  beforeAll(async () => {
    U1 = await makeUser(s, L('e'));
    U2 = await makeUser(s, L('e'));
    U3 = await makeUser(s, L('e'));
    F = await makeFlow(s, 'group', U1, [U1, U2]);
  });
  const send = async (u: U, text: string): Promise<string> =>
    (await c.req(mtp('send_message', auth(u), { flow: [{ uuid: F }], message: [{ text, file_picture: 'cA==' }] })))
      .data!.message![0]!['uuid'] as string;

  it('#25 delete_message → 200 data null; listed as deleted form exactly once', async () => {
    const M = await send(U1, 'Hello');
    const raw = await c.reqRaw(mtp('delete_message', auth(U1), { message: [{ uuid: M, client_id: 123 }] }));
    const t = (JSON.parse(raw) as Frame).errors.time;
    expect(raw).toBe(frameText('delete_message', 'null', ...OK, t));
    const all = await c.req(mtp('all_messages', auth(U1), { flow: [{ uuid: F }] }));
    const ms = all.data!.message!.filter((m) => m['uuid'] === M);
    expect(ms).toHaveLength(1);
    expect(ms[0]).toMatchObject({
      text: 'Message deleted',
      file_picture: '',
      file_video: '',
      file_audio: '',
      file_document: '',
      emoji: '',
      edited_status: true,
    });
    expect(Math.abs((ms[0]!['edited_time'] as number) - Date.now() / 1000)).toBeLessThanOrEqual(2);
    const again = await c.req(mtp('delete_message', auth(U1), { message: [{ uuid: M }] }));
    expect(again.errors.code).toBe(404);
  });

  it('#26 delete_message of uuid "2" → 404 Message (exact frame)', async () => {
    const raw = await c.reqRaw(mtp('delete_message', auth(U1), { message: [{ uuid: '2', client_id: 123 }] }));
    const t = (JSON.parse(raw) as Frame).errors.time;
    expect(raw).toBe(
      frameText('delete_message', 'null', 'No results matched the query for Message', 404, 'Not Found', t),
    );
  });

  it('#27 edited_message → 200; stored text, edited_status true; uuid "3" → 404; R30 no text → 400', async () => {
    const M = await send(U1, 'Hello');
    const r = await c.req(
      mtp('edited_message', auth(U1), { message: [{ uuid: M, client_id: 123, text: 'New_Hello' }] }),
    );
    expect([r.errors.code, r.data]).toEqual([200, null]);
    const all = await c.req(mtp('all_messages', auth(U1), { flow: [{ uuid: F }] }));
    expect(all.data!.message!.find((m) => m['uuid'] === M)).toMatchObject({
      text: 'New_Hello',
      edited_status: true,
      file_picture: 'cA==',
    });
    expect((await c.req(mtp('edited_message', auth(U1), { message: [{ uuid: '3', text: 'x' }] }))).errors.code).toBe(
      404,
    );
    const raw = await c.reqRaw(mtp('edited_message', auth(U1), { message: [{ uuid: M }] }));
    const t = (JSON.parse(raw) as Frame).errors.time;
    expect(raw).toBe(frameText('edited_message', 'null', 'Message text is required', 400, 'Bad Request', t));
    const after = await c.req(mtp('all_messages', auth(U1), { flow: [{ uuid: F }] }));
    expect(after.data!.message!.find((m) => m['uuid'] === M)!['text']).toBe('New_Hello');
    const big = await c.req(mtp('edited_message', auth(U1), { message: [{ uuid: M, text: 'y'.repeat(70_000) }] }));
    expect([big.errors.code, big.errors.detail]).toEqual([400, 'Message too large (max 65536 bytes)']);
  });

  it('edited_message with a NUL character in the text → 415 (not 400 Message too large); text unchanged', async () => {
    const M = await send(U1, 'Hello');
    const raw = await c.reqRaw(mtp('edited_message', auth(U1), { message: [{ uuid: M, text: 'New\u0000' }] }));
    expect(raw).toBe(nulFrame(['data -> message -> 0 -> text'], (JSON.parse(raw) as Frame).errors.time));
    const all = await c.req(mtp('all_messages', auth(U1), { flow: [{ uuid: F }] }));
    expect(all.data!.message!.find((m) => m['uuid'] === M)).toMatchObject({ text: 'Hello', edited_status: false });
  });

  it('R26 a message uuid sent as a JSON number keeps its exact 64-bit digits', async () => {
    const M = await send(U1, 'num');
    expect(BigInt(M) > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
    c.send(
      `{"type": "edited_message", "data": {"user": [{"uuid": "${U1.uuid}", "auth_id": "${U1.token}"}], "message": [{"uuid": ${M}, "text": "by number"}]}}`,
    );
    expect((await c.next()).errors.code).toBe(200);
    const all = await c.req(mtp('all_messages', auth(U1), { flow: [{ uuid: F }] }));
    expect(all.data!.message!.find((m) => m['uuid'] === M)!['text']).toBe('by number');
  });

  it('Z6 another member edits or deletes → 403 author only; Z7 outsider → 404', async () => {
    const M = await send(U1, 'mine');
    for (const type of ['edited_message', 'delete_message']) {
      const raw = await c.reqRaw(mtp(type, auth(U2), { message: [{ uuid: M, text: 'theirs' }] }));
      const t = (JSON.parse(raw) as Frame).errors.time;
      expect(raw).toBe(frameText(type, 'null', 'Only the author can edit or delete a message', 403, 'Forbidden', t));
    }
    const z7 = await c.req(mtp('delete_message', auth(U3), { message: [{ uuid: M }] }));
    expect([z7.errors.code, z7.errors.detail]).toEqual([404, 'No results matched the query for Message']);
  });
});

describe('7.1 ping_pong (#28, #31), dispatcher replies (#29, #32, #33)', () => {
  let U1: U, U2: U;
  beforeAll(async () => {
    U1 = await makeUser(s, L('p'));
    U2 = await makeUser(s, L('p'));
  });

  it('#28 ping_pong → the exact frame; #31 ping-pong keeps its type', async () => {
    for (const type of ['ping_pong', 'ping-pong']) {
      const raw = await c.reqRaw(mtp(type, auth(U1)));
      const t = (JSON.parse(raw) as Frame).errors.time;
      expect(raw).toBe(
        `{"type": "${type}", "jsonapi": {"version": "1.0", "revision": "17"}, "meta": null, "data": null, "errors": {"detail": "Request fulfilled, document follows", "code": 200, "status": "OK", "time": ${t}}}`,
      );
    }
  });

  it('#29 unknown type when authenticated → 405 exact frame; unauthenticated → 401', async () => {
    for (const type of ['wrong type', 'Ping_Pong', 'update', 'send-message']) {
      const raw = await c.reqRaw(mtp(type, auth(U1)));
      const t = (JSON.parse(raw) as Frame).errors.time;
      expect(raw).toBe(
        `{"type": "error", "jsonapi": {"version": "1.0", "revision": "17"}, "meta": null, "data": null, "errors": {"detail": "Specified method is invalid for this resource", "code": 405, "status": "Method Not Allowed", "time": ${t}}}`,
      );
    }
    const un = await c.req(mtp('wrong type', { uuid: '123456789', auth_id: 'x' }));
    expect([un.type, un.errors.code, un.errors.detail]).toEqual(['error', 401, 'User was not authenticated']);
  });

  it('#32 versions 0.1 and 2.0 → 505; R21 1, 1.10, 1.05, 1.0 (number) → 200; R22 abc → 505', async () => {
    for (const version of ['0.1', '2.0', 'abc']) {
      const raw = await c.reqRaw({ type: 'ping_pong', jsonapi: { version }, data: { user: [auth(U1)] } });
      const t = (JSON.parse(raw) as Frame).errors.time;
      expect(raw).toBe(
        `{"type": "error", "jsonapi": {"version": "1.0", "revision": "17"}, "meta": null, "data": null, "errors": {"detail": "Cannot fulfill request", "code": 505, "status": "Version Not Supported", "time": ${t}}}`,
      );
    }
    for (const version of ['1', '1.10', '1.05', '1.9']) {
      const f = await c.req({ type: 'ping_pong', jsonapi: { version, revision: '99' }, data: { user: [auth(U1)] } });
      expect(f.errors.code).toBe(200);
      expect(f.jsonapi).toEqual({ version: '1.0', revision: '17' });
    }
    c.send(`{"type": "ping_pong", "jsonapi": {"version": 1.0}, "data": {"user": [${JSON.stringify(auth(U1))}]}}`);
    expect((await c.next()).errors.code).toBe(200);
  });

  it("#33 ping_pong with valid / unknown user / wrong token / expired token / other user's token", async () => {
    expect((await ping(auth(U1))).errors.code).toBe(200);
    const cases: [Record<string, unknown>, string][] = [
      [{ uuid: 'nonexistent-id', auth_id: U1.token }, 'User was not authenticated'],
      [{ uuid: '987654321987', auth_id: U1.token }, 'User was not authenticated'],
      [{ auth_id: U1.token }, 'User was not authenticated'],
      [{ uuid: 'guest:frank', auth_id: U1.token }, 'User was not authenticated'],
      [{ uuid: U1.uuid, auth_id: 'wrong_auth_id' }, 'Authentication User failed'],
      [{ uuid: U1.uuid, auth_id: U2.token }, 'Authentication User failed'],
      [{ uuid: U1.uuid }, 'Authentication User failed'],
    ];
    for (const [u, detail] of cases) {
      const raw = await c.reqRaw(mtp('ping_pong', u));
      const t = (JSON.parse(raw) as Frame).errors.time;
      expect(raw).toBe(frameText('error', 'null', detail, 401, 'Unauthorized', t));
    }
  });

  it('Z8 a token with a 2 s lifetime is refused after 3 s', async () => {
    const a = await s.idClient.authenticate(
      identityV1.AuthenticateRequest.fromPartial({ username: U1.login, password: U1.password, sessionTtlSeconds: 2 }),
    );
    const short = { uuid: U1.uuid, auth_id: a.session!.token };
    expect((await ping(short)).errors.code).toBe(200);
    await new Promise((r) => setTimeout(r, 3_000));
    const f = await ping(short);
    expect([f.errors.code, f.errors.detail]).toEqual([401, 'Authentication User failed']);
  }, 10_000);
});

describe('7.3 authorization (Z1, Z2, Z4, Z5) and public channels (Z10, Z11)', () => {
  let U1: U, U2: U, U3: U;
  beforeAll(async () => {
    U1 = await makeUser(s, L('z'));
    U2 = await makeUser(s, L('z'));
    U3 = await makeUser(s, L('z'));
  });

  it('Z1/Z2 a group of others looks unknown: send_message 404, all_messages 404', async () => {
    const F = await makeFlow(s, 'group', U2, [U2, U3]);
    const send = await c.req(mtp('send_message', auth(U1), { flow: [{ uuid: F }], message: [{ text: 'x' }] }));
    expect([send.errors.code, send.errors.detail]).toEqual([404, 'No results matched the query for Flow']);
    const big = await c.req(
      mtp('send_message', auth(U1), { flow: [{ uuid: F }], message: [{ text: 'x'.repeat(70_000) }] }),
    );
    expect(big.errors.code).toBe(404);
    const all = await c.req(mtp('all_messages', auth(U1), { flow: [{ uuid: F }] }));
    expect(all.errors.code).toBe(404);
  });

  it('Z4 a member who is not the owner cannot post in a channel but reads it; Z5 the owner posts', async () => {
    const C = await makeFlow(s, 'channel', U1, [U1, U2]);
    const raw = await c.reqRaw(mtp('send_message', auth(U2), { flow: [{ uuid: C }], message: [{ text: 'x' }] }));
    const t = (JSON.parse(raw) as Frame).errors.time;
    expect(raw).toBe(frameText('send_message', 'null', 'Only the owner can post in a channel', 403, 'Forbidden', t));
    expect((await c.req(mtp('all_messages', auth(U2), { flow: [{ uuid: C }] }))).errors.code).toBe(200);
    expect(
      (await c.req(mtp('send_message', auth(U1), { flow: [{ uuid: C }], message: [{ text: 'ok' }] }))).errors.code,
    ).toBe(200);
  });

  it('Z10/Z11 a public channel is a group titled by its name for everyone; posting joins', async () => {
    const [ch] = await ensurePublic(s, ['lobby']);
    const all = await c.req(mtp('all_flow', auth(U3)));
    const f = all.data!.flow!.find((x) => x['uuid'] === ch!.id)!;
    expect(f).toMatchObject({ type: 'group', title: 'lobby', owner: null, users: [] });
    const p = await c.req(
      mtp('send_message', auth(U3), { flow: [{ uuid: ch!.id }], message: [{ text: 'hello lobby' }] }),
    );
    expect(p.errors.code).toBe(200);
    const again = await c.req(mtp('all_flow', auth(U3)));
    expect(again.data!.flow!.find((x) => x['uuid'] === ch!.id)!['users']).toEqual([U3.uuid]);
    const read = await c.req(mtp('all_messages', auth(U1), { flow: [{ uuid: ch!.id }] }));
    expect(read.data!.message!.map((m) => m['text'])).toContain('hello lobby');
  });
});

describe('7.4 get_update', () => {
  let U1: U;
  beforeAll(async () => {
    U1 = await makeUser(s, L('g'));
  });

  it('G1/G2 edits and deletes after T are reported in their changed form', async () => {
    const F = await makeFlow(s, 'group', U1, [U1]);
    const [m1, m2] = await seed(s, F, [
      { author: U1, sec: B + 10, text: 'new text', changedSec: B + 500 },
      { author: U1, sec: B + 10, changedSec: B + 600, deleted: true },
    ]);
    const g1 = await c.req(mtp('get_update', auth(U1), { time: B + 400 }));
    expect(g1.data!.message!.find((m) => m['uuid'] === m1!.id)).toMatchObject({
      text: 'new text',
      edited_status: true,
      edited_time: B + 500,
      time: B + 10,
    });
    const g2 = await c.req(mtp('get_update', auth(U1), { time: B + 550 }));
    // (public channels of other tests in this file are visible to everyone: look at F only)
    const inF = g2.data!.message!.filter((m) => m['from_flow'] === F);
    expect(inF.map((m) => m['uuid'])).toEqual([m2!.id]);
    expect(inF[0]).toMatchObject({
      text: 'Message deleted',
      file_picture: '',
      emoji: '',
      edited_status: true,
      edited_time: B + 600,
    });
  });

  it('reports messages of flows only: not of a readable board, nor of an archived flow (§2.9 #3, D6)', async () => {
    const visible = await makeFlow(s, 'group', U1, [U1]);
    const archived = await makeFlow(s, 'group', U1, [U1]);
    const board = (
      await s.msgClient.ensurePublicChannels(
        messagesV1.EnsurePublicChannelsRequest.fromPartial({
          slugs: [L('board').toLowerCase()],
          kind: messagesV1.ChannelKind.CHANNEL_KIND_BOARD,
        }),
      )
    ).channels[0]!.id;
    const [inVisible] = await seed(s, visible, [{ author: U1, sec: B + 30_000 }]);
    const [inArchived] = await seed(s, archived, [{ author: U1, sec: B + 30_000 }]);
    const [onBoard] = await seed(s, board, [{ author: U1, sec: B + 30_000 }]);
    await s.msgClient.archiveChannel(
      messagesV1.ArchiveChannelRequest.fromPartial({ principal: principalOf(U1), channelId: archived }),
    );
    const g = await c.req(mtp('get_update', auth(U1), { time: B + 30_000 }));
    const uuids = g.data!.message!.map((m) => m['uuid']);
    expect(uuids).toContain(inVisible!.id);
    expect(uuids).not.toContain(inArchived!.id);
    expect(uuids).not.toContain(onBoard!.id);
    // the same flows all_flow shows
    const a = await c.req(mtp('all_flow', auth(U1)));
    const flows = a.data!.flow!.map((f) => f['uuid']);
    expect(flows).toContain(visible);
    expect(flows).not.toContain(archived);
    expect(flows).not.toContain(board);
  });

  it('G3 a profile change at X is reported at X; unchanged users are not', async () => {
    const X = Math.floor(Date.now() / 1000) + 1;
    await new Promise((r) => setTimeout(r, X * 1000 - Date.now() + 20));
    const u2 = await makeUser(s, L('g'));
    await s.idClient.updateProfile(identityV1.UpdateProfileRequest.fromPartial({ userId: u2.uuid, bio: 'changed' }));
    const g = await c.req(mtp('get_update', auth(U1), { time: X }));
    const ids = g.data!.user!.map((u) => u['uuid']);
    expect(ids).toContain(u2.uuid);
    expect(ids).not.toContain(U1.uuid);
    expect(g.data!.user!.find((u) => u['uuid'] === u2.uuid)).toMatchObject({ login: null, bio: 'changed' });
  }, 10_000);

  it('G4 1500 messages one per second → 206 with the first 1000 and data.time B+1000, then the rest', async () => {
    const u = await makeUser(s, L('g4'));
    const F = await makeFlow(s, 'group', u, [u]);
    await seed(
      s,
      F,
      Array.from({ length: 1500 }, (_, i) => ({ author: u, sec: B + 20_000 + i })),
    );
    const g = await c.req(mtp('get_update', auth(u), { time: B + 20_000 }));
    expect([g.errors.code, g.data!.message!.length, g.data!.user, g.data!.flow, g.data!.time]).toEqual([
      206,
      1000,
      [],
      [],
      B + 21_000,
    ]);
    expect(g.data!.message!.map((m) => m['time'])).toEqual(Array.from({ length: 1000 }, (_, i) => B + 20_000 + i));
    const g2 = await c.req(mtp('get_update', auth(u), { time: B + 21_000 }));
    expect(g2.errors.code).toBe(200);
    expect(g2.data!.message!.filter((m) => m['from_flow'] === F).length).toBe(500);
    expect(g2.data!.flow!.map((f) => f['uuid'])).toContain(F);
    expect(g2.data!.user!.map((x) => x['uuid'])).toContain(u.uuid);
    expect(g2.data!.time).toBe(g2.errors.time);
  }, 30_000);

  it('G5 1500 messages in one second → 206 with 1000 in id order and data.time = that second + 1', async () => {
    const u = await makeUser(s, L('g5'));
    const F = await makeFlow(s, 'group', u, [u]);
    const seeded = await seed(
      s,
      F,
      Array.from({ length: 1500 }, () => ({ author: u, sec: B + 5 })),
    );
    const g = await c.req(mtp('get_update', auth(u), { time: B }));
    expect([g.errors.code, g.data!.message!.length, g.data!.time]).toEqual([206, 1000, B + 6]);
    const ids = seeded.map((m) => m.id).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
    expect(g.data!.message!.map((m) => m['uuid'])).toEqual(ids.slice(0, 1000));
  }, 30_000);
});
