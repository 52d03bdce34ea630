/**
 * deploy/nats/hubbub-auth.conf: the whole system runs with each service on its own NATS user and the
 * permissions of that file (a private nats-server, prefix `hubbub`), and the permissions hold: a door
 * cannot forge chat or account events, serve posts or drive admin actions, nobody gets in without a password, and
 * the operator user sees the services (`nats micro`) and the events but not the RPC payloads, kicks accounts,
 * creates channels and broadcasts into them.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { inboxPrefixFor, parseNatsServers } from '@hubbub/nats';
import { nickKey } from '@hubbub/presence';
import { foldName } from '@hubbub/runtime';
import type { NatsConnection } from '@hubbub/nats';
import { identityV1, messagesV1 } from '@hubbub/proto';
import { createClient } from '@hubbub/grpc';
import { createTestDatabase, waitFor } from '@hubbub/testing';
import type { TestDatabase } from '@hubbub/testing';
import { DumDumClient } from '../clients/dumdum';
import { MoreliaClient } from '../clients/morelia';
import { PrivateNats } from '../harness/nats-server';
import { repoRoot } from '../harness/proc';
import { startStack } from '../harness/stack';
import type { Stack } from '../harness/stack';

jest.setTimeout(120_000);

const pw = {
  identity: `pw${randomBytes(12).toString('hex')}`,
  'message-store': `pw${randomBytes(12).toString('hex')}`,
  'ws-messenger': `pw${randomBytes(12).toString('hex')}`,
  'irc-binary': `pw${randomBytes(12).toString('hex')}`,
  operator: `pw${randomBytes(12).toString('hex')}`,
};
const nats = new PrivateNats({
  args: ['-c', join(repoRoot(), 'deploy/nats/hubbub-auth.conf')],
  env: {
    HUBBUB_NATS_IDENTITY_PASSWORD: pw.identity,
    HUBBUB_NATS_MESSAGE_STORE_PASSWORD: pw['message-store'],
    HUBBUB_NATS_WS_MESSENGER_PASSWORD: pw['ws-messenger'],
    HUBBUB_NATS_IRC_BINARY_PASSWORD: pw['irc-binary'],
    HUBBUB_NATS_OPERATOR_PASSWORD: pw.operator,
  },
});
const urlOf = (user: keyof typeof pw): string => `nats://${user}:${pw[user]}@127.0.0.1:${nats.port}`;

let dbs: TestDatabase[] = [];
let stack: Stack;
const conns: NatsConnection[] = [];

beforeAll(async () => {
  await nats.start();
  dbs = [await createTestDatabase(), await createTestDatabase()];
  stack = await startStack({
    natsUrl: `nats://127.0.0.1:${nats.port}`,
    natsPrefix: 'hubbub',
    identityDbUrl: dbs[0]!.url,
    messagesDbUrl: dbs[1]!.url,
    natsUrlFor: (s) => urlOf(s),
    env: { LOG_LEVEL: 'warn' },
  });
});

afterAll(async () => {
  for (const c of conns) await c.close().catch(() => undefined);
  await stack?.stop();
  for (const d of dbs) await d.drop();
  await nats.destroy();
});

async function as(user: keyof typeof pw): Promise<NatsConnection> {
  const { servers, auth } = parseNatsServers(urlOf(user));
  const c = await connect({ servers, ...auth, inboxPrefix: inboxPrefixFor(user), reconnect: false });
  conns.push(c);
  return c;
}

/** Resolves with the permission violations the server reported on this connection. */
function violations(c: NatsConnection): string[] {
  const out: string[] = [];
  void (async () => {
    for await (const s of c.status()) {
      const e = s as { type: string; error?: Error };
      if (e.type === 'error' && e.error) out.push(e.error.message);
    }
  })();
  return out;
}

it('runs the whole system: a dum-dum post reaches a Morelia push subscriber and history', async () => {
  const m = await MoreliaClient.connect(stack.ports.ws);
  await m.register('auth_alice', 'correct horse battery'); // identity + token check over NATS
  expect((await m.subscribe()).errors.code).toBe(200);
  const got: string[] = [];
  m.onPush = (msg) => void (msg.text !== null && got.push(msg.text));
  const dd = await DumDumClient.connect(stack.ports.irc, 'auth_dd'); // guest nick claim in the KV bucket
  try {
    dd.send('general', 'through the locked-down bus');
    await waitFor(() => got.includes('through the locked-down bus'), 10_000, 'push to Morelia');
    await waitFor(() => dd.received.some((x) => x.content === 'through the locked-down bus'), 10_000, 'echo');
    const store = createClient(messagesV1.MessageStoreServiceService, stack.messageStoreAddr, { deadlineMs: 5_000 });
    try {
      const ch = await store.lookupChannel(messagesV1.LookupChannelRequest.fromPartial({ slug: 'general' }));
      expect(ch.channel?.id).toBeDefined();
    } finally {
      store.close();
    }
  } finally {
    await Promise.all([m.close(), dd.close()]);
  }
  // No service ran into a permission it lacks (nats.js reports those as async errors, logged NATS_ERROR).
  for (const p of stack.all()) expect(p.logs.filter((l) => /Permissions Violation/i.test(l))).toEqual([]);
});

it('a door may not forge events, serve posts or token checks; nobody gets in without a password', async () => {
  const door = await as('ws-messenger');
  const v = violations(door);
  door.publish('hubbub.chat.1.posted', '{"kind":"MESSAGE_EVENT_KIND_POSTED"}');
  door.publish('hubbub.identity.user.banned', '{}');
  door.subscribe('hubbub.rpc.messages.post');
  door.subscribe('hubbub.rpc.identity.verify');
  door.publish('hubbub.admin.user.kick', '{"username":"someone"}');
  door.publish('hubbub.admin.broadcast', '{"text":"forged broadcast","channels":["general"]}');
  door.publish('hubbub.admin.channel.create', '{"slug":"forged"}');
  await door.flush().catch(() => undefined);
  await waitFor(() => v.length >= 7, 5_000, 'seven permission violations');
  expect(v.join('\n')).toMatch(/Permissions Violation for Publish to "hubbub\.admin\.user\.kick"/);
  expect(v.join('\n')).toMatch(/Permissions Violation for Publish to "hubbub\.admin\.broadcast"/);
  expect(v.join('\n')).toMatch(/Permissions Violation for Publish to "hubbub\.admin\.channel\.create"/);
  expect(v.join('\n')).toMatch(/Permissions Violation for Publish to "hubbub\.chat\.1\.posted"/);
  expect(v.join('\n')).toMatch(/Permissions Violation for Publish to "hubbub\.identity\.user\.banned"/);
  expect(v.join('\n')).toMatch(/Permissions Violation for Subscription to "hubbub\.rpc\.messages\.post"/);
  expect(v.join('\n')).toMatch(/Permissions Violation for Subscription to "hubbub\.rpc\.identity\.verify"/);
  await expect(connect({ servers: `nats://127.0.0.1:${nats.port}`, reconnect: false })).rejects.toThrow(
    /Authorization/i,
  );
  await expect(
    connect({ servers: `nats://ws-messenger:wrong@127.0.0.1:${nats.port}`, reconnect: false }),
  ).rejects.toThrow(/Authorization/i);
});

it("no user reads or forges another's replies: inboxes are per user, replies only to requests received", async () => {
  const ws = await as('ws-messenger');
  const irc = await as('irc-binary');
  const op = await as('operator');
  const v = { ws: violations(ws), irc: violations(irc), op: violations(op) };
  // Replies to ws-messenger (token checks' principals, its posts) are not readable by the other door or the operator.
  irc.subscribe('_INBOX.>');
  irc.subscribe('_INBOX_ws-messenger.>');
  op.subscribe('_INBOX_ws-messenger.>');
  op.subscribe('_INBOX_identity.>');
  // Nor can a door answer anything it was not asked: a forged reply into another service's inbox.
  ws.publish('_INBOX_irc-binary.forged', 'forged reply');
  ws.publish('_INBOX_ws-messenger.self', 'not a reply either');
  await Promise.all([ws.flush(), irc.flush(), op.flush()].map((p) => p.catch(() => undefined)));
  await waitFor(() => v.ws.length >= 2 && v.irc.length >= 2 && v.op.length >= 2, 5_000, 'six permission violations');
  expect(v.irc.join('\n')).toMatch(/Permissions Violation for Subscription to "_INBOX\.>"/);
  expect(v.irc.join('\n')).toMatch(/Permissions Violation for Subscription to "_INBOX_ws-messenger\.>"/);
  expect(v.op.join('\n')).toMatch(/Permissions Violation for Subscription to "_INBOX_ws-messenger\.>"/);
  expect(v.op.join('\n')).toMatch(/Permissions Violation for Subscription to "_INBOX_identity\.>"/);
  expect(v.ws.join('\n')).toMatch(/Permissions Violation for Publish to "_INBOX_irc-binary\.forged"/);
  expect(v.ws.join('\n')).toMatch(/Permissions Violation for Publish to "_INBOX_ws-messenger\.self"/);
  // Each user's own requests still get their replies: a token check from the ws-messenger user is answered.
  const r = await ws.request(
    'hubbub.rpc.identity.verify',
    identityV1.VerifyTokenRequest.encode(identityV1.VerifyTokenRequest.fromPartial({ token: 'not-a-token' })).finish(),
    { timeout: 5_000 },
  );
  expect(r.headers?.get('Nats-Service-Error-Code')).toBe('16'); // UNAUTHENTICATED: answered, into _INBOX_ws-messenger
});

it("a door writes only the presence keys it owns: guest nicks and its own sessions, never another door's", async () => {
  const ws = await as('ws-messenger');
  const irc = await as('irc-binary');
  const v = { ws: violations(ws), irc: violations(irc) };
  const b64 = (s: string): string => Buffer.from(s).toString('base64url');
  const wsSession = `$KV.hubbub_presence.s.${b64('ws-messenger')}.${b64('forged')}`;
  irc.publish(wsSession, '{}'); // irc-binary forging (or deleting) a ws-messenger session
  ws.publish(`$KV.hubbub_presence.g.${b64('somebody')}`, '{}'); // ws-messenger keeps no presence at all
  await Promise.all([ws.flush(), irc.flush()].map((p) => p.catch(() => undefined)));
  await waitFor(() => v.ws.length >= 1 && v.irc.length >= 1, 5_000, 'two permission violations');
  expect(v.irc.join('\n')).toContain(`Permissions Violation for Publish to "${wsSession}"`);
  expect(v.ws.join('\n')).toMatch(/Permissions Violation for Publish to "\$KV\.hubbub_presence\.g\./);
  // irc-binary's own session key is writable (what its account sessions use).
  irc.publish(`$KV.hubbub_presence.s.${b64('irc-binary')}.${b64('probe')}`, '{}');
  await irc.flush();
  await new Promise((r) => setTimeout(r, 200));
  expect(v.irc).toHaveLength(1);
});

it('the operator sees every service (nats micro) and the events, but not the RPC payloads', async () => {
  const op = await as('operator');
  const v = violations(op);
  const names = new Set<string>();
  const inbox = `_INBOX_operator.${randomBytes(8).toString('hex')}`;
  const sub = op.subscribe(inbox, {
    callback: (_e: unknown, msg: { json<T>(): T }) => void names.add(msg.json<{ name: string }>().name),
  });
  op.publish('$SRV.PING', undefined, { reply: inbox });
  await waitFor(() => names.size >= 4, 5_000, 'four services answer $SRV.PING');
  sub.unsubscribe();
  expect([...names].sort()).toEqual(['identity', 'irc-binary', 'message-store', 'ws-messenger']);
  op.subscribe('hubbub.chat.>');
  op.subscribe('hubbub.rpc.>');
  await op.flush().catch(() => undefined);
  await waitFor(() => v.length >= 1, 5_000, 'a permission violation');
  expect(v.join('\n')).toMatch(/Permissions Violation for Subscription to "hubbub\.rpc\.>"/);
  expect(v.join('\n')).not.toMatch(/hubbub\.chat/);
});

it('the operator reads the KV buckets the way the documented `nats kv ls` / `nats kv get` do', async () => {
  const dd = await DumDumClient.connect(stack.ports.irc, 'op_sees_me');
  try {
    const op = await as('operator');
    const v = violations(op);
    const kvm = new Kvm(op);
    // Key listings are ordered consumers (flow control and heartbeats), as in the NATS CLI.
    const presence = await kvm.open('hubbub_presence');
    const keys: string[] = [];
    for await (const k of await presence.keys()) keys.push(k);
    expect(keys).toContain(nickKey(foldName('op_sees_me')));
    const workers = await kvm.open('hubbub_worker_ids');
    const leased: string[] = [];
    for await (const k of await workers.keys()) leased.push(k);
    expect(leased.length).toBeGreaterThanOrEqual(1);
    const lease = await workers.get(leased[0]!);
    expect(lease?.string()).toMatch(/^\d+-[0-9a-f]+$/);
    // Reading is all: the operator cannot change a lease or a nick claim.
    await expect(workers.put(leased[0]!, 'stolen')).rejects.toThrow();
    await expect(presence.delete(nickKey(foldName('op_sees_me')))).rejects.toThrow();
    expect((await workers.get(leased[0]!))?.string()).toBe(lease?.string());
    await op.flush();
    expect(v.filter((x) => !/Publish to "\$KV\./.test(x))).toEqual([]);
  } finally {
    await dd.close();
  }
});

it('the operator kicks an account over NATS: its Morelia push subscription ends with the final 401 frame', async () => {
  const m = await MoreliaClient.connect(stack.ports.ws);
  try {
    await m.register('auth_kickme', 'correct horse battery');
    expect((await m.subscribe()).errors.code).toBe(200);
    const op = await as('operator');
    const r = await op.request('hubbub.admin.user.kick', JSON.stringify({ username: 'auth_kickme', reason: 'e2e' }), {
      timeout: 5_000,
    });
    expect(r.headers?.get('Nats-Service-Error-Code') ?? '').toBe('');
    expect(r.json<{ user: { username: string }; sessionsRevoked: number }>()).toMatchObject({
      user: { username: 'auth_kickme' },
      sessionsRevoked: 1,
    });
    await waitFor(() => m.updates.some((u) => u.errors.code === 401), 5_000, 'final 401 update frame');
  } finally {
    await m.close();
  }
});

it('the operator creates a channel and broadcasts into general: dum-dum and Morelia both receive it', async () => {
  const m = await MoreliaClient.connect(stack.ports.ws);
  const dd = await DumDumClient.connect(stack.ports.irc, 'auth_dd2');
  try {
    await m.register('auth_listener', 'correct horse battery');
    expect((await m.subscribe()).errors.code).toBe(200);
    const op = await as('operator');
    const v = violations(op);
    const ask = async (subject: string, body: unknown): Promise<unknown> => {
      const r = await op.request(subject, JSON.stringify(body), { timeout: 10_000 });
      expect(r.headers?.get('Nats-Service-Error') ?? '').toBe('');
      return r.json();
    };

    const created = messagesV1.AdminChannelCreateResponse.fromJSON(
      await ask('hubbub.admin.channel.create', { slug: 'ops-news', title: 'Ops news', by: 'e2e-ops' }),
    );
    expect(created.channel).toMatchObject({ slug: 'ops-news', visibility: messagesV1.Visibility.VISIBILITY_PUBLIC });
    // Both doors learn of it from the `created` event: a pushed Morelia flow, the dum-dum channel list.
    await waitFor(
      () => m.updates.some((u) => (u.data?.flow ?? []).some((f) => f.uuid === created.channel!.id)),
      10_000,
      'flow pushed to Morelia',
    );
    await waitFor(async () => (await dd.listChannels()).includes('ops-news'), 10_000, 'dum-dum channel list');

    const text = 'maintenance at 22:00';
    const req = { text, channels: ['general'], client_key: 'e2e-maint' };
    const res = messagesV1.AdminBroadcastResponse.fromJSON(await ask('hubbub.admin.broadcast', req));
    expect(res.messages).toHaveLength(1);
    const sent = res.messages[0]!;
    expect(sent).toMatchObject({ text, authorId: 'system:operator', authorName: 'system', door: 'admin' });

    // Live on both doors.
    await waitFor(() => dd.received.some((x) => x.id === BigInt(sent.id)), 10_000, 'dum-dum receives it');
    expect(dd.received.find((x) => x.id === BigInt(sent.id))).toMatchObject({
      channel: 'general',
      nick: 'system',
      content: text,
    });
    await waitFor(() => m.pushedMessages.some((x) => x.uuid === sent.id), 10_000, 'Morelia push');
    expect(m.pushedMessages.find((x) => x.uuid === sent.id)).toMatchObject({
      text,
      from_user: 'system:operator',
      from_flow: sent.channelId,
    });
    // The author resolves for Morelia clients; history on both doors; get_update lists it.
    const info = await m.request('user_info', {
      user: [{ uuid: m.uuid, auth_id: m.authId }, { uuid: 'system:operator' }],
    });
    expect(info.errors.code).toBe(200);
    expect(info.data?.user).toMatchObject([
      { uuid: 'system:operator', login: null, username: 'system', bio: null, avatar: null, is_bot: true },
    ]);
    const all = await m.allMessages(sent.channelId);
    expect(all.data?.message?.find((x) => x.uuid === sent.id)).toMatchObject({ text, from_user: 'system:operator' });
    const upd = await m.getUpdate(Math.floor(sent.createdAt!.getTime() / 1000));
    expect(upd.data?.message?.some((x) => x.uuid === sent.id)).toBe(true);
    const ddHistory = await dd.listMessages('general');
    expect(ddHistory.find((x) => x.id === BigInt(sent.id))).toMatchObject({ nick: 'system', content: text });

    // A retry (same client_key) returns the same message and nobody receives it twice.
    const again = messagesV1.AdminBroadcastResponse.fromJSON(await ask('hubbub.admin.broadcast', req));
    expect(again.messages.map((x) => x.id)).toEqual([sent.id]);
    expect(dd.received.filter((x) => x.id === BigInt(sent.id))).toHaveLength(1);
    expect(v).toEqual([]);
  } finally {
    await Promise.all([m.close(), dd.close()]);
  }
  for (const p of stack.all()) expect(p.logs.filter((l) => /Permissions Violation/i.test(l))).toEqual([]);
});
