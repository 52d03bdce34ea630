/**
 * The operators' NATS request subjects `<prefix>.admin.channel.create` and `<prefix>.admin.broadcast` (proto3
 * JSON), against real PostgreSQL and NATS: they create channels and post through the same paths as the gRPC
 * API (rows, outbox events, batcher), answer refusals with services-framework errors and stable reasons, log
 * every action, and leave the door-facing APIs refusing `system:` principals as posters.
 */
import { Code } from '@hubbub/errors';
import { replyError } from '@hubbub/nats';
import { systemPrincipal } from '@hubbub/msg-client';
import { messagesV1, subjects } from '@hubbub/proto';
import { createLogger } from '@hubbub/runtime';
import { createTestDatabase, createTestNats, waitFor } from '@hubbub/testing';
import type { TestDatabase, TestNats } from '@hubbub/testing';
import type { NatsConnection } from '@nats-io/nats-core';
import { Client } from 'pg';
import { MAX_CHANNEL_CREATE_REQUEST_BYTES } from '../../src/api/nats-admin';
import { OPERATOR } from '../../src/app/message-service';
import { alice, bob, listReq, natsClient, newMessage, refusal, startStore } from './harness';
import type { Started } from './harness';

jest.setTimeout(30_000);

const { ChannelKind, Visibility, PrincipalKind, MessageEventKind, ChannelEventKind } = messagesV1;

interface LogLine {
  level: string;
  code?: string;
  action?: string;
  by?: string;
  reason?: string;
  channelId?: string;
  channelIds?: string[];
  messageIds?: string[];
  duplicates?: number;
}

let db: TestDatabase;
let nats: TestNats;
let s: Started;
let nc: NatsConnection;
let pg: Client;
const logs: LogLine[] = [];
const chat: { subject: string; ev: messagesV1.MessageEvent }[] = [];
const channelEvents: { subject: string; ev: messagesV1.ChannelEvent }[] = [];
let general: messagesV1.Channel;

beforeAll(async () => {
  db = await createTestDatabase();
  nats = createTestNats();
  const log = createLogger({
    service: 'message-store-admin-test',
    level: 'info',
    destination: { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) },
  });
  s = await startStore({ databaseUrl: db.url, natsUrl: nats.url, prefix: nats.prefix }, { log });
  nc = await natsClient(nats.url);
  nc.subscribe(`${nats.prefix}.chat.>`, {
    callback: (_e, m) => void chat.push({ subject: m.subject, ev: messagesV1.MessageEvent.fromJSON(m.json()) }),
  });
  nc.subscribe(`${nats.prefix}.channel.>`, {
    callback: (_e, m) =>
      void channelEvents.push({ subject: m.subject, ev: messagesV1.ChannelEvent.fromJSON(m.json()) }),
  });
  await nc.flush();
  pg = new Client({ connectionString: db.url });
  await pg.connect();
  general = (await s.client.ensurePublicChannels({ slugs: ['general'], kind: 0 })).channels[0]!;
});

afterAll(async () => {
  await pg?.end();
  await nc?.close();
  await s?.close();
  await nats?.cleanup();
  await db?.drop();
});

/** Sends raw bytes; resolves with the JSON reply or rejects with the services-framework error. */
async function raw(subject: string, body: string | Uint8Array): Promise<unknown> {
  const r = await nc.request(subject, body, { timeout: 10_000 });
  const err = replyError(r);
  if (err) throw err;
  return r.json();
}

const create = async (body: unknown) =>
  messagesV1.AdminChannelCreateResponse.fromJSON(
    await raw(subjects(nats.prefix).adminChannelCreate, JSON.stringify(body)),
  );
const broadcast = async (body: unknown) =>
  messagesV1.AdminBroadcastResponse.fromJSON(await raw(subjects(nats.prefix).adminBroadcast, JSON.stringify(body)));

const history = async (channelId: string, p: messagesV1.Principal = systemPrincipal('test')) =>
  (await s.client.listMessages(listReq(p, channelId))).messages;

async function messageCount(): Promise<number> {
  const r = await pg.query<{ n: string }>('SELECT count(*)::text AS n FROM messages');
  return Number(r.rows[0]!.n);
}

describe('admin.channel.create', () => {
  it('creates a public group by default: reply, row, members, `created` event and an audit log line', async () => {
    const res = await create({ slug: 'announcements', title: 'News', info: 'from the operators', by: 'ops-ann' });
    const c = res.channel!;
    expect(c).toMatchObject({
      slug: 'announcements',
      title: 'News',
      info: 'from the operators',
      kind: ChannelKind.CHANNEL_KIND_GROUP,
      visibility: Visibility.VISIBILITY_PUBLIC,
      allowGuests: true,
      ownerId: '',
      archived: false,
      memberIds: [],
    });
    const row = await pg.query<{ slug: string; kind: number; visibility: number; owner_id: string }>(
      'SELECT slug, kind, visibility, owner_id FROM channels WHERE id = $1::bigint',
      [c.id],
    );
    expect(row.rows).toEqual([
      {
        slug: 'announcements',
        kind: ChannelKind.CHANNEL_KIND_GROUP,
        visibility: Visibility.VISIBILITY_PUBLIC,
        owner_id: '',
      },
    ]);
    const looked = await s.client.lookupChannel({
      principal: alice,
      id: '',
      slug: 'announcements',
      includeMembers: true,
      includeStats: false,
    });
    expect(looked.channel?.id).toBe(c.id);
    await waitFor(() => channelEvents.some((e) => e.ev.channel?.id === c.id), 5_000, 'created event');
    const ev = channelEvents.find((e) => e.ev.channel?.id === c.id)!;
    expect(ev.subject).toBe(`${nats.prefix}.channel.created`);
    expect(ev.ev.kind).toBe(ChannelEventKind.CHANNEL_EVENT_KIND_CREATED);
    expect(ev.ev.channel).toMatchObject({ slug: 'announcements', visibility: Visibility.VISIBILITY_PUBLIC });
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: 'info',
        code: 'MESSAGE_STORE_ADMIN_ACTION',
        action: 'channel-create',
        by: 'ops-ann',
        channelId: c.id,
      }),
    );
  });

  it('creates a private channel with its owner as only member (no guests), and a CHANNEL without owner', async () => {
    const priv = (
      await create({
        slug: 'staff-room',
        kind: 'CHANNEL_KIND_GROUP',
        private: true,
        allow_guests: true,
        owner_user_id: '1001',
      })
    ).channel!;
    expect(priv).toMatchObject({
      visibility: Visibility.VISIBILITY_PRIVATE,
      allowGuests: false,
      ownerId: '1001',
      memberIds: ['1001'],
    });
    // Private: bob (not a member) cannot see it, alice (the owner) posts in it.
    expect(
      await refusal(
        s.client.lookupChannel({ principal: bob, id: priv.id, slug: '', includeMembers: false, includeStats: false }),
      ),
    ).toMatchObject({ code: Code.NOT_FOUND });
    await s.client.postMessage({ principal: alice, message: newMessage(priv.id, 'owner here') });

    const news = (await create({ slug: 'news', kind: 'CHANNEL_KIND_CHANNEL', allowGuests: false })).channel!;
    expect(news).toMatchObject({
      kind: ChannelKind.CHANNEL_KIND_CHANNEL,
      visibility: Visibility.VISIBILITY_PUBLIC,
      allowGuests: false,
      ownerId: '',
    });
    // No owner: only sysops post in a CHANNEL.
    expect(
      await refusal(s.client.postMessage({ principal: alice, message: newMessage(news.id, 'may I?') })),
    ).toMatchObject({ code: Code.PERMISSION_DENIED, reason: 'ONLY_OWNER_POSTS' });
  });

  it('refuses a taken slug with ALREADY_EXISTS and bad slugs, kinds and owners with INVALID_ARGUMENT', async () => {
    expect(await refusal(create({ slug: 'general' }))).toEqual({ code: Code.ALREADY_EXISTS, reason: 'SLUG_TAKEN' });
    expect(await refusal(create({ slug: '' }))).toEqual({ code: Code.INVALID_ARGUMENT, reason: 'BAD_SLUG' });
    expect(await refusal(create({ title: 'no slug' }))).toEqual({ code: Code.INVALID_ARGUMENT, reason: 'BAD_SLUG' });
    expect(await refusal(create({ slug: 'Has Space' }))).toEqual({ code: Code.INVALID_ARGUMENT, reason: 'BAD_SLUG' });
    expect(await refusal(create({ slug: 'x'.repeat(33) }))).toEqual({
      code: Code.INVALID_ARGUMENT,
      reason: 'BAD_SLUG',
    });
    expect(await refusal(create({ slug: 'c42' }))).toEqual({ code: Code.INVALID_ARGUMENT, reason: 'SLUG_RESERVED' });
    expect(await refusal(create({ slug: 'dm', kind: 'CHANNEL_KIND_DIRECT' }))).toEqual({
      code: Code.INVALID_ARGUMENT,
      reason: 'BAD_CHANNEL_KIND',
    });
    expect(await refusal(create({ slug: 'odd', kind: 'CHANNEL_KIND_NONSENSE' }))).toEqual({
      code: Code.INVALID_ARGUMENT,
      reason: 'BAD_CHANNEL_KIND',
    });
    expect(await refusal(create({ slug: 'odd', kind: 77 }))).toEqual({
      code: Code.INVALID_ARGUMENT,
      reason: 'BAD_CHANNEL_KIND',
    });
    for (const owner of ['guest:frank', 'system:operator', 'x'.repeat(129), 'a\u0000b'])
      expect(await refusal(create({ slug: 'owned', owner_user_id: owner }))).toEqual({
        code: Code.INVALID_ARGUMENT,
        reason: 'BAD_OWNER',
      });
    expect(await refusal(create({ slug: 'long', title: 't'.repeat(257) }))).toEqual({
      code: Code.INVALID_ARGUMENT,
      reason: 'TITLE_TOO_LONG',
    });
    expect(await refusal(create({ slug: 'nul', info: 'a\u0000b' }))).toEqual({
      code: Code.INVALID_ARGUMENT,
      reason: 'NUL_CHARACTER',
    });
    expect(await refusal(create({ slug: 'who', by: 'two\nlines' }))).toEqual({
      code: Code.INVALID_ARGUMENT,
      reason: 'BY_INVALID',
    });
    // Nothing of the refused ones was stored.
    const slugs = await pg.query<{ slug: string }>(
      `SELECT slug FROM channels WHERE slug IN ('dm', 'odd', 'owned', 'long', 'nul', 'who')`,
    );
    expect(slugs.rows).toEqual([]);
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        code: 'MESSAGE_STORE_ADMIN_REFUSED',
        action: 'channel-create',
        reason: 'SLUG_TAKEN',
      }),
    );
  });

  it('answers undecodable and oversized requests with an error and keeps serving', async () => {
    const subject = subjects(nats.prefix).adminChannelCreate;
    for (const body of ['not json', '', '[]', '"announcements"', 'null', '{"slug":'])
      expect(await refusal(raw(subject, body))).toEqual({ code: Code.INVALID_ARGUMENT, reason: 'BAD_REQUEST' });
    const big = JSON.stringify({ slug: 'big', info: ' '.repeat(MAX_CHANNEL_CREATE_REQUEST_BYTES) });
    expect(await refusal(raw(subject, big))).toEqual({ code: Code.INVALID_ARGUMENT, reason: 'REQUEST_TOO_LARGE' });
    expect(await refusal(raw(subjects(nats.prefix).adminBroadcast, '{"text":'))).toEqual({
      code: Code.INVALID_ARGUMENT,
      reason: 'BAD_REQUEST',
    });
    expect((await create({ slug: 'still-serving' })).channel?.slug).toBe('still-serving');
  });
});

describe('admin.broadcast', () => {
  const postedOf = (id: string) => chat.filter((e) => e.ev.message?.id === id);

  it('posts one message per named channel as system:operator, with one `posted` event each', async () => {
    const news = (
      await s.client.lookupChannel({
        principal: alice,
        id: '',
        slug: 'news',
        includeMembers: false,
        includeStats: false,
      })
    ).channel!;
    const priv = (
      await s.client.lookupChannel({
        principal: alice,
        id: '',
        slug: 'staff-room',
        includeMembers: false,
        includeStats: false,
      })
    ).channel!;
    const res = await broadcast({
      text: 'maintenance at 22:00',
      channels: ['general', 'news', 'staff-room', 'general'],
      by: 'ops-bob',
    });
    expect(res.messages.map((m) => m.channelId)).toEqual([general.id, news.id, priv.id]);
    const ids = res.messages.map((m) => BigInt(m.id));
    expect(ids[1]! > ids[0]! && ids[2]! > ids[1]!).toBe(true);
    for (const m of res.messages)
      expect(m).toMatchObject({
        text: 'maintenance at 22:00',
        authorId: 'system:operator',
        authorName: 'system',
        authorKind: PrincipalKind.PRINCIPAL_KIND_UNSPECIFIED,
        door: 'admin',
        clientKey: '',
        kind: messagesV1.MessageKind.MESSAGE_KIND_NORMAL,
      });
    // In history (the private one too, for its member), one posted event each.
    expect((await history(general.id)).map((m) => m.id)).toContain(res.messages[0]!.id);
    expect((await history(news.id, alice)).map((m) => m.id)).toContain(res.messages[1]!.id);
    expect((await history(priv.id, alice)).map((m) => m.id)).toContain(res.messages[2]!.id);
    await waitFor(() => res.messages.every((m) => postedOf(m.id).length === 1), 5_000, 'posted events');
    for (const m of res.messages) {
      const ev = postedOf(m.id)[0]!;
      expect(ev.subject).toBe(`${nats.prefix}.chat.${m.channelId}.posted`);
      expect(ev.ev.kind).toBe(MessageEventKind.MESSAGE_EVENT_KIND_POSTED);
      expect(ev.ev.message).toMatchObject({ authorId: 'system:operator', authorName: 'system', door: 'admin' });
    }
    // The operator joined nothing by posting.
    const members = await pg.query('SELECT 1 FROM channel_members WHERE user_id = $1', ['system:operator']);
    expect(members.rows).toEqual([]);
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: 'info',
        code: 'MESSAGE_STORE_ADMIN_ACTION',
        action: 'broadcast',
        by: 'ops-bob',
        channelIds: [general.id, news.id, priv.id],
        messageIds: res.messages.map((m) => m.id),
        duplicates: 0,
      }),
    );
  });

  it('without channels reaches every public, non-archived channel, in id order', async () => {
    const archived = (await create({ slug: 'old-stuff' })).channel!;
    await s.client.archiveChannel({
      principal: { ...alice, sysop: true },
      channelId: archived.id,
    });
    const expected = (
      await s.client.listChannels({
        principal: undefined,
        kind: 0,
        visibility: Visibility.VISIBILITY_PUBLIC,
        changedSince: undefined,
        includeArchived: false,
        includeMembers: false,
        includeStats: false,
        memberOnly: false,
      })
    ).channels.map((c) => c.id);
    expect(expected).toContain(general.id);
    expect(expected).not.toContain(archived.id);
    const res = await broadcast({ text: 'to everyone' });
    expect(res.messages.map((m) => m.channelId)).toEqual(expected);
    const staff = (await pg.query<{ id: string }>(`SELECT id::text FROM channels WHERE slug = 'staff-room'`)).rows[0]!;
    expect(res.messages.map((m) => m.channelId)).not.toContain(staff.id);
    await waitFor(() => res.messages.every((m) => postedOf(m.id).length === 1), 5_000, 'posted events');
    expect((await history(general.id)).map((m) => m.text)).toContain('to everyone');
    expect(logs).toContainEqual(
      expect.objectContaining({ code: 'MESSAGE_STORE_ADMIN_ACTION', action: 'broadcast', by: 'nats-operator' }),
    );
  });

  it('a retry with the same client_key returns the same messages and stores nothing new', async () => {
    const req = { text: 'once only', channels: ['general', 'announcements'], client_key: 'maint-2026-01' };
    const first = await broadcast(req);
    expect(first.messages.map((m) => m.clientKey)).toEqual(first.messages.map((m) => `maint-2026-01:${m.channelId}`));
    await waitFor(() => first.messages.every((m) => postedOf(m.id).length === 1), 5_000, 'posted events');
    const before = await messageCount();
    const again = await broadcast(req);
    expect(again.messages.map((m) => m.id)).toEqual(first.messages.map((m) => m.id));
    expect(await messageCount()).toBe(before);
    // The same key on a further channel adds only that channel's message.
    const more = await broadcast({ ...req, channels: ['general', 'announcements', 'news'] });
    expect(more.messages.slice(0, 2).map((m) => m.id)).toEqual(first.messages.map((m) => m.id));
    expect(await messageCount()).toBe(before + 1);
    await waitFor(() => postedOf(more.messages[2]!.id).length === 1, 5_000, 'posted event of the new one');
    expect(first.messages.map((m) => postedOf(m.id).length)).toEqual([1, 1]);
    expect(logs).toContainEqual(
      expect.objectContaining({ code: 'MESSAGE_STORE_ADMIN_ACTION', action: 'broadcast', duplicates: 2 }),
    );
  });

  it('refuses unknown, archived and direct channels, bad text and keys, and stores nothing', async () => {
    const before = await messageCount();
    expect(await refusal(broadcast({ text: 'x', channels: ['general', 'no-such-channel'] }))).toEqual({
      code: Code.NOT_FOUND,
      reason: 'CHANNEL_NOT_FOUND',
    });
    expect(await refusal(broadcast({ text: 'x', channels: ['general', 'old-stuff'] }))).toEqual({
      code: Code.FAILED_PRECONDITION,
      reason: 'CHANNEL_ARCHIVED',
    });
    const dm = (await s.client.openDirect({ principal: alice, otherUserId: '1002' })).channel!;
    expect(await refusal(broadcast({ text: 'x', channels: [dm.slug] }))).toEqual({
      code: Code.FAILED_PRECONDITION,
      reason: 'DIRECT_CHANNEL',
    });
    for (const text of ['', '   \n '])
      expect(await refusal(broadcast({ text, channels: ['general'] }))).toEqual({
        code: Code.INVALID_ARGUMENT,
        reason: 'TEXT_REQUIRED',
      });
    expect(await refusal(broadcast({ channels: ['general'] }))).toEqual({
      code: Code.INVALID_ARGUMENT,
      reason: 'TEXT_REQUIRED',
    });
    expect(await refusal(broadcast({ text: 'x'.repeat(65_537), channels: ['general'] }))).toEqual({
      code: Code.INVALID_ARGUMENT,
      reason: 'TEXT_TOO_LARGE',
    });
    expect(await refusal(broadcast({ text: 'a\u0000b', channels: ['general'] }))).toEqual({
      code: Code.INVALID_ARGUMENT,
      reason: 'NUL_CHARACTER',
    });
    expect(await refusal(broadcast({ text: 'x', channels: ['general'], client_key: 'k'.repeat(101) }))).toEqual({
      code: Code.INVALID_ARGUMENT,
      reason: 'CLIENT_KEY_TOO_LONG',
    });
    const many = Array.from({ length: 1_001 }, (_, i) => `ch${i}`);
    expect(await refusal(broadcast({ text: 'x', channels: many }))).toEqual({
      code: Code.INVALID_ARGUMENT,
      reason: 'TOO_MANY_CHANNELS',
    });
    expect(await refusal(broadcast({ text: 'x', channels: ['general'], by: 'b'.repeat(65) }))).toEqual({
      code: Code.INVALID_ARGUMENT,
      reason: 'BY_INVALID',
    });
    // More copies of 60 kB than one NATS reply holds: refused before anything is stored.
    const slugs: string[] = [];
    const copies = Math.ceil((nc.info?.max_payload ?? 1024 * 1024) / 60_000) + 1;
    for (let i = 0; i < copies; i++) slugs.push((await create({ slug: `wide-${i}` })).channel!.slug);
    expect(await refusal(broadcast({ text: 'y'.repeat(60_000), channels: slugs }))).toEqual({
      code: Code.INVALID_ARGUMENT,
      reason: 'BROADCAST_TOO_LARGE',
    });
    expect(await messageCount()).toBe(before);
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        code: 'MESSAGE_STORE_ADMIN_REFUSED',
        action: 'broadcast',
        reason: 'CHANNEL_NOT_FOUND',
      }),
    );
    // Still serving.
    expect((await broadcast({ text: 'after the refusals', channels: ['general'] })).messages).toHaveLength(1);
  });

  it('door-facing APIs still refuse system: principals as posters, the operator one included', async () => {
    for (const p of [systemPrincipal('x'), { ...systemPrincipal('x'), sysop: true }, OPERATOR]) {
      expect(await refusal(s.client.postMessage({ principal: p, message: newMessage(general.id, 'forged') }))).toEqual({
        code: Code.PERMISSION_DENIED,
        reason: 'SYSTEM_PRINCIPAL_READ_ONLY',
      });
      const batch = await s.client.postMessages({
        leanReply: false,
        principal: undefined,
        messages: [newMessage(general.id, 'forged'), newMessage(general.id, 'honest')],
        principals: [p, alice],
      });
      expect(batch.results[0]).toMatchObject({
        message: undefined,
        errorCode: Code.PERMISSION_DENIED,
        errorReason: 'SYSTEM_PRINCIPAL_READ_ONLY',
      });
      expect(batch.results[1]!.message?.authorId).toBe('1001');
      // The doors' NATS post subject applies the same rule.
      const req = messagesV1.PostMessagesRequest.encode({
        leanReply: false,
        principal: p,
        messages: [newMessage(general.id, 'forged over nats')],
        principals: [],
      }).finish();
      expect(await refusal(raw(subjects(nats.prefix).rpcPostMessages, req))).toEqual({
        code: Code.PERMISSION_DENIED,
        reason: 'SYSTEM_PRINCIPAL_READ_ONLY',
      });
    }
    expect((await history(general.id)).map((m) => m.text)).not.toContain('forged');
    expect((await history(general.id)).map((m) => m.text)).not.toContain('forged over nats');
  });

  it('is listed by the NATS services framework with request and reply types, queue group message-store', async () => {
    // Other test files' message-stores may share this NATS server: pick the instance serving our prefix.
    type Info = {
      endpoints: { name: string; subject: string; queue_group: string; metadata: Record<string, string> }[];
    };
    const infos: Info[] = [];
    const inbox = nc.subscribe(`_INBOX.admin-test.${nats.prefix}`, {
      callback: (_e, m) => void infos.push(m.json<Info>()),
    });
    const ours = () => infos.find((i) => i.endpoints.some((e) => e.subject.startsWith(`${nats.prefix}.`)));
    try {
      await nc.flush();
      nc.publish('$SRV.INFO.message-store', undefined, { reply: `_INBOX.admin-test.${nats.prefix}` });
      await waitFor(() => ours() !== undefined, 5_000, 'our instance answers $SRV.INFO');
    } finally {
      inbox.unsubscribe();
    }
    expect(ours()!.endpoints).toEqual(
      expect.arrayContaining([
        {
          name: 'admin-channel-create',
          subject: subjects(nats.prefix).adminChannelCreate,
          queue_group: 'message-store',
          metadata: {
            request: 'hubbub.messages.v1.AdminChannelCreateRequest',
            reply: 'hubbub.messages.v1.AdminChannelCreateResponse',
          },
        },
        {
          name: 'admin-broadcast',
          subject: subjects(nats.prefix).adminBroadcast,
          queue_group: 'message-store',
          metadata: {
            request: 'hubbub.messages.v1.AdminBroadcastRequest',
            reply: 'hubbub.messages.v1.AdminBroadcastResponse',
          },
        },
      ]),
    );
  });
});
