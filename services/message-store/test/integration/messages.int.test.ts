/**
 * Messages: post (single, ordered batch, idempotent), edit, delete, get, history paging, slices, changes
 * since, full-text search, board posts, oneliners, limits, authorization and the NATS events.
 */
import { credentials, status } from '@grpc/grpc-js';
import { Code } from '@hubbub/errors';
import { messagesV1 } from '@hubbub/proto';
import { createMessageStoreClient, snowflakeParts, systemPrincipal } from '@hubbub/msg-client';
import { createTestDatabase, createTestNats, waitFor } from '@hubbub/testing';
import type { TestDatabase, TestNats } from '@hubbub/testing';
import type { NatsConnection } from '@nats-io/nats-core';
import { Client } from 'pg';
import { FTS_VECTOR } from '../../src/store/migrations';
import { Repo, postRowsJson } from '../../src/store/repo';
import {
  alice,
  bob,
  carol,
  createReq,
  frank,
  holdClientKey,
  listReq,
  natsClient,
  newMessage,
  refusal,
  startStore,
  sysop,
} from './harness';
import type { Started } from './harness';

const { ChannelKind, MessageEventKind } = messagesV1;

let db: TestDatabase;
let nats: TestNats;
let s: Started;
let nc: NatsConnection;
const events: { subject: string; ev: messagesV1.MessageEvent }[] = [];
const oneliners: messagesV1.OnelinerEvent[] = [];
let general: messagesV1.Channel;

beforeAll(async () => {
  db = await createTestDatabase();
  nats = createTestNats();
  s = await startStore({ databaseUrl: db.url, natsUrl: nats.url, prefix: nats.prefix });
  nc = await natsClient(nats.url);
  nc.subscribe(`${nats.prefix}.chat.>`, {
    callback: (_e, m) => void events.push({ subject: m.subject, ev: messagesV1.MessageEvent.fromJSON(m.json()) }),
  });
  nc.subscribe(`${nats.prefix}.oneliner.posted`, {
    callback: (_e, m) => void oneliners.push(messagesV1.OnelinerEvent.fromJSON(m.json())),
  });
  await nc.flush();
  general = (await s.client.ensurePublicChannels({ slugs: ['general'], kind: 0 })).channels[0]!;
});

afterAll(async () => {
  await nc?.close();
  await s?.close();
  await nats?.cleanup();
  await db?.drop();
});

async function freshPublic(slug: string): Promise<string> {
  return (await s.client.ensurePublicChannels({ slugs: [slug], kind: 0 })).channels[0]!.id;
}

const post = async (
  p: messagesV1.Principal,
  channelId: string,
  text: string,
  more: Partial<messagesV1.NewMessage> = {},
) => (await s.client.postMessage({ principal: p, message: newMessage(channelId, text, more) })).message!;

/** alice posts `text` with a client key (the key a test holds with holdClientKey). */
const postKeyed = (channelId: string, text: string, clientKey: string) =>
  s.client.postMessage({ principal: alice, message: newMessage(channelId, text, { clientKey }) });

describe('posting', () => {
  it('stores every field of a batch row, written short (postRowsJson), as given', async () => {
    const repo = new Repo(s.srv.sql);
    const ch = await freshPublic('short-rows');
    const mk = (over: Partial<messagesV1.Message>): messagesV1.Message => {
      const id = s.srv.ids.next().toString();
      const at = new Date(Number(BigInt(id) >> 19n));
      return messagesV1.Message.fromPartial({
        id,
        channelId: ch,
        authorId: alice.userId,
        authorName: 'alice',
        authorKind: alice.kind,
        door: 'test',
        text: 'plain',
        kind: messagesV1.MessageKind.MESSAGE_KIND_NORMAL,
        createdAt: at,
        changedAt: at,
        ...over,
      });
    };
    const plain = mk({});
    const reply = mk({});
    const full = mk({
      text: 'every "field" \\ \n set',
      subject: 'Re: things',
      tags: ['a', 'b c'],
      replyToId: plain.id,
      recipientId: bob.userId,
      isPrivate: true,
      attachments: { filePicture: 'p.png', emoji: ':)' },
      clientKey: 'short-rows-1',
      kind: messagesV1.MessageKind.MESSAGE_KIND_ACTION,
    });
    // A creation time other than the id's millisecond travels explicitly.
    const late = new Date(full.createdAt!.getTime() + 1234);
    full.createdAt = late;
    full.changedAt = late;
    const posts = [plain, reply, full];
    // Defaults are left out: the plain rows carry eight keys.
    const rows = JSON.parse(postRowsJson(posts)) as Record<string, unknown>[];
    expect(Object.keys(rows[0]!).sort()).toEqual(['a', 'ak', 'c', 'd', 'i', 'k', 'n', 't']);
    const r = await repo.insertPosts(posts, [], [], new Date());
    expect([...r.inserted].sort()).toEqual([plain.id, reply.id, full.id].sort());
    const stored = new Map((await repo.messagesByIds([plain.id, reply.id, full.id])).map((m) => [m.id, m]));
    for (const m of [plain, reply, full]) expect(stored.get(m.id)).toEqual(m);
    await s.srv.sql.query('DELETE FROM outbox WHERE seq = $1::bigint', [r.seq]);
  });

  it('stores a message with the author snapshot, door, snowflake id and times, and publishes posted', async () => {
    const before = Date.now();
    const m = await post(frank, general.id, 'hello from irc');
    expect(m).toMatchObject({
      channelId: general.id,
      authorId: 'guest:frank',
      authorName: 'frank',
      authorKind: messagesV1.PrincipalKind.PRINCIPAL_KIND_GUEST,
      door: 'irc-binary',
      text: 'hello from irc',
      edited: false,
      deleted: false,
    });
    const parts = snowflakeParts(m.id);
    expect(BigInt(m.id) >> 63n).toBe(0n);
    expect(parts.worker).toBe(s.srv.ids.workerId);
    expect(Math.abs(parts.ms - before)).toBeLessThan(1_000);
    expect(m.createdAt!.getTime()).toBe(parts.ms);
    expect(m.changedAt!.getTime()).toBe(parts.ms);
    await waitFor(() => events.some((e) => e.ev.message?.id === m.id));
    const e = events.find((x) => x.ev.message?.id === m.id)!;
    expect(e.subject).toBe(`${nats.prefix}.chat.${general.id}.posted`);
    expect(e.ev.kind).toBe(MessageEventKind.MESSAGE_EVENT_KIND_POSTED);
    expect(e.ev.channel).toEqual({
      id: general.id,
      slug: 'general',
      kind: ChannelKind.CHANNEL_KIND_GROUP,
      visibility: messagesV1.Visibility.VISIBILITY_PUBLIC,
    });
    expect(e.ev.message).toEqual(m);
  });

  it('stores empty text and attachments (Morelia file fields), keeping absent ones absent', async () => {
    const m = await post(alice, general.id, '', { attachments: { filePicture: 'pic', emoji: ':)' } });
    const got = (await s.client.getMessage({ principal: bob, messageId: m.id })).message!;
    expect(got.text).toBe('');
    expect(got.attachments).toEqual({ filePicture: 'pic', emoji: ':)' });
  });

  it('an idempotent retry returns the same id and stores one message', async () => {
    const ch = await freshPublic('idem');
    const a = await s.client.postMessage({
      principal: alice,
      message: newMessage(ch, 'once', { clientKey: 'inst1:conn7:42' }),
    });
    const b = await s.client.postMessage({
      principal: alice,
      message: newMessage(ch, 'once', { clientKey: 'inst1:conn7:42' }),
    });
    expect(a.duplicate).toBe(false);
    expect(b.duplicate).toBe(true);
    expect(b.message!.id).toBe(a.message!.id);
    // the same key of another author is another message
    const c = await s.client.postMessage({
      principal: bob,
      message: newMessage(ch, 'once', { clientKey: 'inst1:conn7:42' }),
    });
    expect(c.message!.id).not.toBe(a.message!.id);
    // concurrent repeats in one batch
    const many = await Promise.all(
      Array.from({ length: 5 }, () =>
        s.client.postMessage({ principal: carol, message: newMessage(ch, 'x', { clientKey: 'same' }) }),
      ),
    );
    expect(new Set(many.map((r) => r.message!.id)).size).toBe(1);
    const all = await s.client.listMessages(listReq(alice, ch));
    expect(all.messages.map((m) => m.text)).toEqual(['once', 'once', 'x']);
    await waitFor(() => events.filter((e) => e.ev.channel?.id === ch).length === 3);
    // A batch mixing new keys and a stored one: the plain insert fails on the stored key and the batch goes again
    // skipping it; the new posts are stored once, in order, and the stored one is answered as a duplicate.
    const mixed = await s.client.postMessages({
      principal: alice,
      principals: [],
      leanReply: false,
      messages: [
        newMessage(ch, 'new 1', { clientKey: 'mix-1' }),
        newMessage(ch, 'again', { clientKey: 'inst1:conn7:42' }),
        newMessage(ch, 'new 2', { clientKey: 'mix-2' }),
      ],
    });
    expect(mixed.results.map((r) => [r.duplicate, r.message?.text])).toEqual([
      [false, 'new 1'],
      [true, 'once'],
      [false, 'new 2'],
    ]);
    expect(mixed.results[1]!.message!.id).toBe(a.message!.id);
    expect(BigInt(mixed.results[2]!.message!.id) > BigInt(mixed.results[0]!.message!.id)).toBe(true);
    const after = await s.client.listMessages(listReq(alice, ch));
    expect(after.messages.map((m) => m.text)).toEqual(['once', 'once', 'x', 'new 1', 'new 2']);
    await waitFor(() => events.filter((e) => e.ev.channel?.id === ch).length === 5);
  });

  it('a retry of a stored post gets the stored message after the author was removed or the channel archived (regression)', async () => {
    const { channel } = await s.client.createChannel(
      createReq(alice, ChannelKind.CHANNEL_KIND_GROUP, { memberIds: [bob.userId] }),
    );
    const ch = channel!.id;
    const post = (p: messagesV1.Principal, key: string) =>
      s.client.postMessage({ principal: p, message: newMessage(ch, 'answer lost', { clientKey: key }) });
    const byBob = await post(bob, 'r-bob');
    const byAlice = await post(alice, 'r-alice');
    // The answers were lost; meanwhile bob is removed and the channel archived. The door retries (ADR 0003).
    await s.client.removeMember({ principal: alice, channelId: ch, userId: bob.userId });
    const bobAgain = await post(bob, 'r-bob');
    expect([bobAgain.duplicate, bobAgain.message!.id]).toEqual([true, byBob.message!.id]);
    await s.client.archiveChannel({ principal: alice, channelId: ch });
    const again = await s.client.postMessages({
      principal: undefined,
      principals: [alice, bob, alice],
      leanReply: true,
      messages: [
        newMessage(ch, 'answer lost', { clientKey: 'r-alice' }),
        newMessage(ch, 'answer lost', { clientKey: 'r-bob' }),
        newMessage(ch, 'never stored', { clientKey: 'r-new' }),
      ],
    });
    expect(again.results.map((r) => [r.duplicate, r.message?.id ?? r.errorReason])).toEqual([
      [true, byAlice.message!.id],
      [true, byBob.message!.id],
      [false, 'CHANNEL_ARCHIVED'],
    ]);
    // Without a stored post, and for another author's key, the refusal stands.
    expect(await refusal(post(bob, 'r-alice'))).toMatchObject({ code: Code.NOT_FOUND });
    expect(await refusal(post(alice, 'r-other'))).toMatchObject({ reason: 'CHANNEL_ARCHIVED' });
  });

  it('keys idempotency on the exact bytes: byte-order columns, and keys differing only in case or form are distinct', async () => {
    // Migration 0005: author ids and client keys compare bytewise (the unique index's cheapest comparisons).
    const c = new Client({ connectionString: db.url });
    await c.connect();
    try {
      const cols = await c.query<{ table_name: string; column_name: string; collation_name: string }>(
        `SELECT table_name, column_name, collation_name FROM information_schema.columns
         WHERE table_name IN ('messages', 'oneliners') AND column_name IN ('author_id', 'client_key')
         ORDER BY table_name, column_name`,
      );
      expect(cols.rows.map((r) => `${r.table_name}.${r.column_name} ${r.collation_name}`)).toEqual([
        'messages.author_id C',
        'messages.client_key C',
        'oneliners.author_id C',
        'oneliners.client_key C',
      ]);
    } finally {
      await c.end();
    }
    const ch = await freshPublic('idem-bytes');
    const keys = ['k-é', 'k-e\u0301', 'K-é', 'k-é '];
    const ids = new Set<string>();
    for (const clientKey of keys) {
      const r = await s.client.postMessage({ principal: alice, message: newMessage(ch, clientKey, { clientKey }) });
      expect(r.duplicate).toBe(false);
      ids.add(r.message!.id);
    }
    expect(ids.size).toBe(keys.length);
    const again = await s.client.postMessage({ principal: alice, message: newMessage(ch, 'x', { clientKey: 'k-é' }) });
    expect(again).toMatchObject({ duplicate: true, message: { text: 'k-é' } });
  });

  it('posts an ordered batch with ids in order, and per-message refusals', async () => {
    const ch = await freshPublic('batch');
    const { channel: priv } = await s.client.createChannel(createReq(bob, ChannelKind.CHANNEL_KIND_GROUP));
    const msgs = Array.from({ length: 120 }, (_, i) => newMessage(ch, `m${i}`, { clientKey: `b${i}` }));
    msgs[50] = newMessage(priv!.id, 'not mine', { clientKey: 'b50' });
    const r = await s.client.postMessages({ leanReply: false, principals: [], principal: alice, messages: msgs });
    expect(r.results).toHaveLength(120);
    expect(r.results[50]).toMatchObject({ errorCode: Code.NOT_FOUND, errorReason: 'CHANNEL_NOT_FOUND' });
    const ids = r.results.filter((x) => x.message).map((x) => BigInt(x.message!.id));
    expect(ids).toHaveLength(119);
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
    // a retry of the whole batch returns the same ids
    const again = await s.client.postMessages({ leanReply: false, principals: [], principal: alice, messages: msgs });
    expect(again.results.map((x) => x.message?.id)).toEqual(r.results.map((x) => x.message?.id));
    expect(again.results[0]!.duplicate).toBe(true);
    expect(
      await refusal(
        s.client.postMessages({
          leanReply: false,
          principals: [],
          principal: alice,
          messages: Array.from({ length: 1001 }, () => newMessage(ch, 'x')),
        }),
      ),
    ).toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'BATCH_TOO_LARGE',
    });
  });

  it('publishes events in id order while batches commit concurrently', async () => {
    const ch = await freshPublic('order');
    const users = [alice, bob, carol];
    await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        s.client.postMessage({ principal: users[i % 3]!, message: newMessage(ch, `o${i}`, { clientKey: `o${i}` }) }),
      ),
    );
    await waitFor(() => events.filter((e) => e.ev.channel?.id === ch).length === 300);
    const ids = events.filter((e) => e.ev.channel?.id === ch).map((e) => BigInt(e.ev.message!.id));
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
    expect(s.srv.service.batchStats.batches).toBeGreaterThan(1);
  });

  it('refuses a message whose event NATS could never take (JSON escaping past max_payload), and stores nothing', async () => {
    // Within every byte limit (64 kB text, 256 kB attachments), but each control character is six bytes in the
    // event's JSON: about 1.9 MB against NATS's 1 MiB. Stored, its event would be refused and skipped.
    const ctl = (n: number): string => '\u0001'.repeat(n);
    const big = newMessage(general.id, ctl(65_000), {
      clientKey: 'escaped-event',
      attachments: { fileVideo: ctl(130_000), fileAudio: ctl(130_000) },
    });
    expect(await refusal(s.client.postMessage({ principal: alice, message: big }))).toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'ATTACHMENTS_TOO_LARGE',
    });
    const noAttachments = newMessage(general.id, ctl(65_000), { clientKey: 'escaped-event-2' });
    const ok = await s.client.postMessage({ principal: alice, message: noAttachments }); // 390 kB of JSON: fits
    expect(ok.message?.text).toHaveLength(65_000);
    const stored = await s.client.listMessages({
      principal: alice,
      channelId: general.id,
      before: '',
      after: '',
      limit: 100,
      includeDeleted: true,
      tags: [],
      mailbox: false,
    });
    expect(stored.messages.filter((m) => m.clientKey === 'escaped-event')).toEqual([]);
  });

  it('enforces limits with their own reasons', async () => {
    expect(
      await refusal(s.client.postMessage({ principal: alice, message: newMessage(general.id, 'x'.repeat(65_537)) })),
    ).toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'TEXT_TOO_LARGE',
    });
    expect(
      await refusal(
        s.client.postMessage({
          principal: alice,
          message: newMessage(general.id, 'x', { attachments: { fileVideo: 'v'.repeat(262_145) } }),
        }),
      ),
    ).toMatchObject({ code: Code.INVALID_ARGUMENT, reason: 'ATTACHMENTS_TOO_LARGE' });
    expect(
      await refusal(
        s.client.postMessage({
          principal: alice,
          message: newMessage(general.id, 'x', { clientKey: 'k'.repeat(129) }),
        }),
      ),
    ).toMatchObject({
      reason: 'CLIENT_KEY_TOO_LONG',
    });
    expect(
      await refusal(
        s.client.postMessage({
          principal: alice,
          message: newMessage(general.id, 'x', { tags: Array.from({ length: 17 }, (_, i) => `t${i}`) }),
        }),
      ),
    ).toMatchObject({
      reason: 'TOO_MANY_TAGS',
    });
    expect(
      await refusal(s.client.postMessage({ principal: alice, message: newMessage(general.id, 'a\u0000b') })),
    ).toMatchObject({ code: Code.INVALID_ARGUMENT, reason: 'NUL_CHARACTER' });
    expect(await refusal(s.client.postMessage({ principal: alice, message: newMessage('999999', 'x') }))).toMatchObject(
      { code: Code.NOT_FOUND },
    );
    expect(await refusal(s.client.postMessage({ principal: alice, message: newMessage('nope', 'x') }))).toMatchObject({
      code: Code.NOT_FOUND,
    });
    expect(
      await refusal(
        s.client.postMessage({ principal: { ...alice, displayName: '' }, message: newMessage(general.id, 'x') }),
      ),
    ).toMatchObject({
      code: Code.INVALID_ARGUMENT,
    });
    expect(
      await refusal(
        s.client.postMessage({
          principal: { ...frank, kind: messagesV1.PrincipalKind.PRINCIPAL_KIND_ACCOUNT },
          message: newMessage(general.id, 'x'),
        }),
      ),
    ).toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'PRINCIPAL_INVALID',
    });
    expect(
      await refusal(s.client.postMessage({ principal: systemPrincipal('x'), message: newMessage(general.id, 'x') })),
    ).toMatchObject({
      code: Code.PERMISSION_DENIED,
    });
    // A guest never holds sysop rights, whatever a (buggy) door claims: not to post, not to moderate.
    const guestSysop = { ...frank, sysop: true };
    expect(
      await refusal(s.client.postMessage({ principal: guestSysop, message: newMessage(general.id, 'x') })),
    ).toMatchObject({ code: Code.INVALID_ARGUMENT, reason: 'PRINCIPAL_INVALID' });
    const posted = (await s.client.postMessage({ principal: alice, message: newMessage(general.id, 'keep me') }))
      .message!;
    expect(await refusal(s.client.deleteMessage({ principal: guestSysop, messageId: posted.id }))).toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'PRINCIPAL_INVALID',
    });
    expect((await s.client.getMessage({ principal: alice, messageId: posted.id })).message!.deleted).toBe(false);
  });

  it('refuses an unknown message kind for its own post only, not the others of its commit batch (regression)', async () => {
    const ch = await freshPublic('kinds');
    // 70000 does not fit the smallint column: it used to fail the whole commit batch with INTERNAL, including
    // posts of other callers gathered into the same batch.
    const [honest, hostile] = await Promise.allSettled([
      s.client.postMessage({ principal: alice, message: newMessage(ch, 'honest') }, { attempts: 1 }),
      s.client.postMessage(
        { principal: bob, message: newMessage(ch, 'hostile', { kind: 70_000 as messagesV1.MessageKind }) },
        { attempts: 1 },
      ),
    ]);
    expect(honest.status).toBe('fulfilled');
    expect(hostile).toMatchObject({
      status: 'rejected',
      reason: { code: Code.INVALID_ARGUMENT, reason: 'BAD_MESSAGE_KIND' },
    });
    const r = await s.client.postMessages({
      leanReply: false,
      principals: [],
      principal: alice,
      messages: [
        newMessage(ch, 'ok'),
        newMessage(ch, 'unknown', { kind: 7 as messagesV1.MessageKind }),
        newMessage(ch, 'negative', { kind: -1 as messagesV1.MessageKind }),
        newMessage(ch, 'action', { kind: messagesV1.MessageKind.MESSAGE_KIND_ACTION }),
      ],
    });
    expect(r.results.map((x) => x.errorReason)).toEqual(['', 'BAD_MESSAGE_KIND', 'BAD_MESSAGE_KIND', '']);
    expect((await s.client.listMessages(listReq(alice, ch))).messages.map((m) => [m.text, m.kind])).toEqual([
      ['honest', messagesV1.MessageKind.MESSAGE_KIND_NORMAL],
      ['ok', messagesV1.MessageKind.MESSAGE_KIND_NORMAL],
      ['action', messagesV1.MessageKind.MESSAGE_KIND_ACTION],
    ]);
  });

  it('guests post only where a public channel allows guests', async () => {
    const { channel } = await s.client.createChannel(
      createReq(sysop, ChannelKind.CHANNEL_KIND_GROUP, {
        visibility: messagesV1.Visibility.VISIBILITY_PUBLIC,
        slug: 'members-only',
        allowGuests: false,
      }),
    );
    expect(
      await refusal(s.client.postMessage({ principal: frank, message: newMessage(channel!.id, 'x') })),
    ).toMatchObject({
      code: Code.PERMISSION_DENIED,
      reason: 'GUESTS_NOT_ALLOWED',
    });
    // guests still read it
    expect((await s.client.listMessages(listReq(frank, channel!.id))).messages).toEqual([]);
    await post(alice, channel!.id, 'accounts welcome');
  });
});

describe('edits and deletes', () => {
  it('only the author edits; the edit keeps files, sets changed time and publishes edited', async () => {
    const m = await post(alice, general.id, 'tpyo', { attachments: { fileAudio: 'a.ogg' } });
    expect(
      await refusal(
        s.client.editMessage({
          principal: bob,
          messageId: m.id,
          text: 'hack',
          tags: [],
          setTags: false,
          attachments: undefined,
        }),
      ),
    ).toMatchObject({
      code: Code.PERMISSION_DENIED,
      reason: 'NOT_AUTHOR',
    });
    expect(
      await refusal(
        s.client.editMessage({
          principal: sysop,
          messageId: m.id,
          text: 'x',
          tags: [],
          setTags: false,
          attachments: undefined,
        }),
      ),
    ).toMatchObject({
      code: Code.PERMISSION_DENIED,
    });
    const e = (
      await s.client.editMessage({
        principal: alice,
        messageId: m.id,
        text: 'typo',
        tags: [],
        setTags: false,
        attachments: undefined,
      })
    ).message!;
    expect(e).toMatchObject({
      id: m.id,
      text: 'typo',
      edited: true,
      deleted: false,
      attachments: { fileAudio: 'a.ogg' },
    });
    expect(e.changedAt!.getTime()).toBeGreaterThan(m.changedAt!.getTime());
    expect(e.createdAt).toEqual(m.createdAt);
    await waitFor(() =>
      events.some((x) => x.subject.endsWith('.edited') && x.ev.message?.id === m.id && x.ev.message.text === 'typo'),
    );
    expect(
      await refusal(
        s.client.editMessage({
          principal: alice,
          messageId: m.id,
          text: 'x'.repeat(65_537),
          tags: [],
          setTags: false,
          attachments: undefined,
        }),
      ),
    ).toMatchObject({
      reason: 'TEXT_TOO_LARGE',
    });
  });

  it('the author or a sysop deletes (soft); deleted messages leave history and cannot be changed again', async () => {
    const m1 = await post(bob, general.id, 'secret', { attachments: { filePicture: 'p.png' } });
    const m2 = await post(bob, general.id, 'spam');
    expect(await refusal(s.client.deleteMessage({ principal: alice, messageId: m1.id }))).toMatchObject({
      code: Code.PERMISSION_DENIED,
    });
    const d1 = (await s.client.deleteMessage({ principal: bob, messageId: m1.id })).message!;
    expect(d1).toMatchObject({ deleted: true, edited: true, text: '', attachments: { filePicture: '' } });
    await s.client.deleteMessage({ principal: sysop, messageId: m2.id });
    expect(await refusal(s.client.deleteMessage({ principal: bob, messageId: m1.id }))).toMatchObject({
      code: Code.NOT_FOUND,
    });
    expect(
      await refusal(
        s.client.editMessage({
          principal: bob,
          messageId: m1.id,
          text: 'x',
          tags: [],
          setTags: false,
          attachments: undefined,
        }),
      ),
    ).toMatchObject({
      code: Code.NOT_FOUND,
    });
    const hist = await s.client.listMessages(listReq(alice, general.id));
    expect(hist.messages.map((x) => x.id)).not.toContain(m1.id);
    const withDeleted = await s.client.listMessages(listReq(alice, general.id, { includeDeleted: true }));
    expect(withDeleted.messages.find((x) => x.id === m1.id)).toMatchObject({ deleted: true });
    // get still answers with the deleted form
    expect((await s.client.getMessage({ principal: alice, messageId: m1.id })).message!.deleted).toBe(true);
    await waitFor(() =>
      events.some((x) => x.subject === `${nats.prefix}.chat.${general.id}.deleted` && x.ev.message?.id === m2.id),
    );
  });

  it('hides messages of unreadable channels as NOT_FOUND', async () => {
    const { channel } = await s.client.createChannel(
      createReq(alice, ChannelKind.CHANNEL_KIND_GROUP, { memberIds: [bob.userId] }),
    );
    const m = await post(bob, channel!.id, 'between us');
    expect(await refusal(s.client.getMessage({ principal: carol, messageId: m.id }))).toMatchObject({
      code: Code.NOT_FOUND,
      reason: 'MESSAGE_NOT_FOUND',
    });
    expect(
      await refusal(s.client.deleteMessage({ principal: { ...carol, sysop: true }, messageId: m.id })),
    ).toMatchObject({ code: Code.NOT_FOUND });
    expect(await refusal(s.client.getMessage({ principal: carol, messageId: 'abc' }))).toMatchObject({
      code: Code.NOT_FOUND,
    });
    expect((await s.client.getMessage({ principal: alice, messageId: m.id })).message!.text).toBe('between us');
  });
});

describe('history paging (irc-binary LIST_MESSAGES, ws all_messages)', () => {
  let ch: string;
  let ids: string[];

  beforeAll(async () => {
    ch = await freshPublic('paging');
    const r = await s.client.postMessages({
      leanReply: false,
      principals: [],
      principal: alice,
      messages: Array.from({ length: 150 }, (_, i) => newMessage(ch, `m${i}`)),
    });
    ids = r.results.map((x) => x.message!.id);
  });

  const page = async (more: Partial<messagesV1.ListMessagesRequest>) =>
    (await s.client.listMessages(listReq(alice, ch, more))).messages.map((m) => m.text);
  const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => `m${a + i}`);

  it('is empty for an empty channel', async () => {
    const empty = await freshPublic('empty');
    expect(await s.client.listMessages(listReq(alice, empty))).toEqual({ messages: [], more: false });
  });

  it('returns the newest 100 ascending without bounds (>100 messages)', async () => {
    expect(await page({})).toEqual(range(50, 149));
    expect((await s.client.listMessages(listReq(alice, ch))).more).toBe(true);
    expect(await page({ limit: 500 })).toEqual(range(50, 149)); // limits above 100 are 100
    expect(await page({ limit: 3 })).toEqual(range(147, 149));
  });

  it('after only: the oldest 100 after the id', async () => {
    expect(await page({ after: ids[9]! })).toEqual(range(10, 109));
    expect(await page({ after: ids[148]! })).toEqual(['m149']);
    expect(await page({ after: ids[149]! })).toEqual([]);
  });

  it('before only: the newest 100 before the id', async () => {
    expect(await page({ before: ids[120]! })).toEqual(range(20, 119));
    expect(await page({ before: ids[1]! })).toEqual(['m0']);
    expect(await page({ before: ids[0]! })).toEqual([]);
  });

  it('both: strict bounds, newest 100 in the range; X <= Y+1 is empty', async () => {
    expect(await page({ before: ids[120]!, after: ids[9]! })).toEqual(range(20, 119));
    expect(await page({ before: ids[2]!, after: ids[0]! })).toEqual(['m1']);
    expect(await page({ before: ids[1]!, after: ids[1]! })).toEqual([]);
    expect(await page({ before: ids[1]!, after: ids[0]! })).toEqual([]);
    expect(await page({ before: ids[0]!, after: ids[5]! })).toEqual([]);
  });

  it('treats 0 and "" as no bound and rejects non-decimal bounds', async () => {
    expect(await page({ before: '0', after: '0' })).toEqual(range(50, 149));
    expect(await refusal(s.client.listMessages(listReq(alice, ch, { before: 'x1' })))).toMatchObject({
      code: Code.INVALID_ARGUMENT,
    });
  });

  it('reads as a guest or without a principal in public channels', async () => {
    expect((await s.client.listMessages(listReq(frank, ch, { limit: 1 }))).messages.map((m) => m.text)).toEqual([
      'm149',
    ]);
    expect((await s.client.listMessages(listReq(undefined, ch, { limit: 1 }))).messages.map((m) => m.text)).toEqual([
      'm149',
    ]);
  });

  it('slices by index with a creation-time filter (ws all_messages)', async () => {
    const slice = (more: Partial<messagesV1.SliceMessagesRequest>) =>
      s.client.sliceMessages({ principal: alice, channelId: ch, createdSince: undefined, limit: 0, ...more });
    const newest = await slice({});
    expect(newest.total).toBe('150');
    expect(newest.start).toBe('50');
    expect(newest.messages.map((m) => m.text)).toEqual(range(50, 149));
    const from10 = await slice({ start: 10, limit: 5 });
    expect(from10.messages.map((m) => m.text)).toEqual(range(10, 14));
    const past = await slice({ start: 200 });
    expect(past.messages).toEqual([]);
    const future = await slice({ createdSince: new Date(Date.now() + 60_000) });
    expect(future.total).toBe('0');
  });
});

describe('changes since and search', () => {
  it("lists creations, edits and deletes after a time in the principal's channels, paged by (changed_at, id)", async () => {
    const ch = await freshPublic('changes');
    const { channel: priv } = await s.client.createChannel(createReq(carol, ChannelKind.CHANNEL_KIND_GROUP));
    const a = await post(alice, ch, 'a');
    const b = await post(alice, ch, 'b');
    await post(carol, priv!.id, 'private');
    const t = new Date(Date.now() + 1);
    await waitFor(() => Date.now() > t.getTime() + 1);
    await s.client.editMessage({
      principal: alice,
      messageId: a.id,
      text: 'a2',
      tags: [],
      setTags: false,
      attachments: undefined,
    });
    await s.client.deleteMessage({ principal: alice, messageId: b.id });
    const c = await post(alice, ch, 'c');
    const r = await s.client.listChanges({
      principal: bob,
      since: t,
      channelIds: [],
      pageAfterChangedAt: undefined,
      pageAfterId: '',
      limit: 0,
    });
    const mine = r.messages.filter((m) => m.channelId === ch);
    expect(mine.map((m) => [m.id, m.text, m.deleted])).toEqual([
      [a.id, 'a2', false],
      [b.id, '', true],
      [c.id, 'c', false],
    ]);
    expect(r.messages.some((m) => m.channelId === priv!.id)).toBe(false);
    // paging
    const p1 = await s.client.listChanges({
      principal: alice,
      since: t,
      channelIds: [ch],
      pageAfterChangedAt: undefined,
      pageAfterId: '',
      limit: 2,
    });
    expect(p1.more).toBe(true);
    const last = p1.messages[1]!;
    const p2 = await s.client.listChanges({
      principal: alice,
      since: t,
      channelIds: [ch],
      pageAfterChangedAt: last.changedAt,
      pageAfterId: last.id,
      limit: 2,
    });
    expect([...p1.messages, ...p2.messages].map((m) => m.id)).toEqual([a.id, b.id, c.id]);
    expect(p2.more).toBe(false);
    // channels the principal cannot read are NOT_FOUND
    expect(
      await refusal(
        s.client.listChanges({
          principal: bob,
          since: t,
          channelIds: [priv!.id],
          pageAfterChangedAt: undefined,
          pageAfterId: '',
          limit: 0,
        }),
      ),
    ).toMatchObject({
      code: Code.NOT_FOUND,
    });
  });

  it('lists changes only after the writes stamped before the read have committed (no change skipped by pollers)', async () => {
    const ch = await freshPublic('barrier');
    const since = new Date(Date.now() - 1_000);
    const changes = () =>
      s.client.listChanges({
        principal: alice,
        since,
        channelIds: [ch],
        pageAfterChangedAt: undefined,
        pageAfterId: '',
        limit: 0,
      });
    // Holds inserts into messages (reads still run) and posts: the post is stamped (id, created_at) and its INSERT
    // waits until `locker` commits.
    const postBehindLock = async (
      locker: Client,
      channelId: string,
      text: string,
    ): Promise<{ posting: Promise<messagesV1.PostMessageResponse> }> => {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE messages IN EXCLUSIVE MODE');
      const posting = s.client.postMessage({ principal: alice, message: newMessage(channelId, text) });
      const waiting = async (): Promise<boolean> =>
        (
          await locker.query<{ n: string }>(
            `SELECT count(*)::text AS n FROM pg_locks WHERE relation = 'messages'::regclass AND NOT granted`,
          )
        ).rows[0]!.n !== '0';
      await waitFor(waiting, 5_000, `the INSERT of "${text}" waits for the lock`);
      return { posting }; // wrapped: an async function returning the promise itself would wait for the post
    };
    const locker = new Client({ connectionString: db.url });
    await locker.connect();
    try {
      const { posting } = await postBehindLock(locker, ch, 'stamped before the read');
      let answered: messagesV1.ListChangesResponse | undefined;
      const reading = changes().then((r) => (answered = r));
      await new Promise((r) => setTimeout(r, 300));
      // A read that answered now would miss the post, and a poller asking "since my last answer" never sees it.
      expect(answered).toBeUndefined();
      await locker.query('COMMIT');
      const posted = (await posting).message!;
      await reading;
      expect(answered!.messages.map((m) => m.id)).toContain(posted.id);
      // The same for a catch-up "after the last id I saw".
      const { posting: second } = await postBehindLock(locker, ch, 'in flight');
      let page: messagesV1.ListMessagesResponse | undefined;
      const paging = s.client.listMessages({ ...listReq(alice, ch), after: posted.id }).then((r) => (page = r));
      await new Promise((r) => setTimeout(r, 300));
      expect(page).toBeUndefined();
      await locker.query('COMMIT');
      const secondId = (await second).message!.id;
      await paging;
      expect(page!.messages.map((m) => m.id)).toEqual([secondId]);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
    }
  });

  it('a catch-up waits for a lower id still in flight when a later batch committed first, then returns both', async () => {
    const ch = await freshPublic('horizon');
    const anchor = await post(alice, ch, 'anchor');
    const first = await holdClientKey(db.url, ch, alice.userId, 'hz-1');
    const second = await holdClientKey(db.url, ch, alice.userId, 'hz-2');
    try {
      // Batch 1 is stamped and waits; the catch-up arrives and waits for it (it was stamped before the call).
      const p1 = postKeyed(ch, 'one', 'hz-1');
      await waitFor(async () => (await first.waiting()) === 1, 5_000, 'batch 1 waits');
      let caughtUp: messagesV1.ListMessagesResponse | undefined;
      const reading = s.client.listMessages({ ...listReq(alice, ch), after: anchor.id }).then((r) => (caughtUp = r));
      await new Promise((r) => setTimeout(r, 200));
      // Batches 2 and 3 are stamped after the call: 2 waits, 3 commits (its answer waits for 2's events).
      const p2 = postKeyed(ch, 'two', 'hz-2');
      await waitFor(async () => (await first.waiting()) === 2, 5_000, 'batch 2 waits');
      const p3 = postKeyed(ch, 'three', 'hz-3');
      const committed = async () =>
        (await s.srv.sql.query(`SELECT 1 FROM messages WHERE client_key = 'hz-3'`)).length === 1;
      await waitFor(committed, 5_000, 'batch 3 committed');
      await first.release();
      // "one" and "three" are committed, "two" (between them) is not: an answer now would let a reader that only
      // polls continue after "three" and never see "two". The catch-up waits.
      await new Promise((r) => setTimeout(r, 200));
      expect(caughtUp).toBeUndefined();
      await second.release();
      await reading;
      const ids = [(await p1).message!.id, (await p2).message!.id, (await p3).message!.id];
      expect(caughtUp!.messages.map((m) => m.id)).toEqual(ids);
    } finally {
      await first.release().catch(() => undefined);
      await second.release().catch(() => undefined);
    }
  });

  it('reports changes complete only before a write still in flight that was stamped after the call', async () => {
    const ch = await freshPublic('time-horizon');
    const first = await holdClientKey(db.url, ch, alice.userId, 'th-1');
    const second = await holdClientKey(db.url, ch, alice.userId, 'th-2');
    try {
      const p1 = postKeyed(ch, 'stamped before the read', 'th-1');
      await waitFor(async () => (await first.waiting()) === 1, 5_000, 'batch 1 waits');
      const reading = s.client.listChanges({
        principal: alice,
        since: new Date(Date.now() - 60_000),
        channelIds: [ch],
        pageAfterChangedAt: undefined,
        pageAfterId: '',
        limit: 0,
      });
      await new Promise((r) => setTimeout(r, 100));
      const p2 = postKeyed(ch, 'stamped after the read began', 'th-2');
      await waitFor(async () => (await first.waiting()) === 2, 5_000, 'batch 2 waits');
      await first.release();
      const r = await reading;
      expect(r.messages.map((m) => m.text)).toEqual(['stamped before the read']);
      await second.release();
      const late = (await p2).message!;
      await p1;
      // The answer may not call "complete" a time at or after the stamp of a change that committed after it.
      expect(r.completeBefore!.getTime()).toBeLessThanOrEqual(late.createdAt!.getTime());
    } finally {
      await first.release().catch(() => undefined);
      await second.release().catch(() => undefined);
    }
  });

  it('finds edited text, not deleted messages, only in readable channels', async () => {
    const ch = await freshPublic('search');
    const { channel: priv } = await s.client.createChannel(createReq(carol, ChannelKind.CHANNEL_KIND_GROUP));
    const m1 = await post(alice, ch, 'the quick brown fox');
    const m2 = await post(bob, ch, 'lazy dog sleeps');
    await post(carol, priv!.id, 'brown bear in private');
    const search = (p: messagesV1.Principal, query: string, channelIds: string[] = []) =>
      s.client.searchMessages({ principal: p, query, channelIds, mailbox: false, before: '', limit: 0 });
    expect((await search(bob, 'brown')).messages.map((m) => m.id)).toEqual([m1.id]);
    expect((await search(carol, 'Brown')).messages.map((m) => m.text).sort()).toEqual([
      'brown bear in private',
      'the quick brown fox',
    ]);
    await s.client.editMessage({
      principal: alice,
      messageId: m1.id,
      text: 'the quick red fox',
      tags: [],
      setTags: false,
      attachments: undefined,
    });
    expect((await search(bob, 'brown')).messages).toEqual([]);
    expect((await search(bob, 'red fox')).messages.map((m) => m.id)).toEqual([m1.id]);
    expect((await search(bob, '"quick red"')).messages.map((m) => m.id)).toEqual([m1.id]);
    expect((await search(bob, '"red quick"')).messages).toEqual([]);
    await s.client.deleteMessage({ principal: bob, messageId: m2.id });
    expect((await search(bob, 'lazy')).messages).toEqual([]);
    expect((await search(bob, 'from:ALICE', [ch])).messages.map((m) => m.id)).toEqual([m1.id]);
    expect((await search(bob, '')).messages).toEqual([]);
  });

  it('answers hostile queries, tags and cursors with results or INVALID_ARGUMENT, never INTERNAL (regression)', async () => {
    const ch = await freshPublic('hostile');
    const m = await post(alice, ch, 'needle in the haystack');
    const search = (query: string) =>
      s.client.searchMessages({ principal: bob, query, channelIds: [ch], mailbox: false, before: '', limit: 0 });
    // tsquery syntax in user text is only text to websearch_to_tsquery
    for (const q of ['needle & !(', "needle ' | :*", '"needle', 'needle -', 'needle OR', 'tag:" from:'])
      expect((await search(q)).messages.every((x) => x.id === m.id)).toBe(true);
    expect((await search('needle & !(')).messages.map((x) => x.id)).toEqual([m.id]);
    for (const q of ['nee\u0000dle', 'from:a\u0000b', 'tag:a\u0000b'])
      expect(await refusal(search(q))).toMatchObject({ code: Code.INVALID_ARGUMENT, reason: 'NUL_CHARACTER' });
    expect(await refusal(s.client.listMessages(listReq(bob, ch, { tags: ['a\u0000b'] })))).toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'NUL_CHARACTER',
    });
    expect(
      await refusal(
        s.client.lookupChannel({
          principal: bob,
          id: '',
          slug: 'a\u0000b',
          includeMembers: false,
          includeStats: false,
        }),
      ),
    ).toMatchObject({ code: Code.NOT_FOUND });
    // a page cursor beyond bigint
    expect(
      await refusal(
        s.client.listChanges({
          principal: bob,
          since: new Date(0),
          channelIds: [ch],
          pageAfterChangedAt: new Date(0),
          pageAfterId: '99999999999999999999999',
          limit: 0,
        }),
      ),
    ).toMatchObject({ code: Code.INVALID_ARGUMENT, reason: 'BAD_ID' });
  });

  it('searches through the expression index messages_fts (the vector is indexed, not stored)', async () => {
    const c = new Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query('BEGIN');
      await c.query('SET LOCAL enable_seqscan = off');
      const plan = await c.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN SELECT id FROM messages WHERE ${FTS_VECTOR} @@ websearch_to_tsquery('simple'::regconfig, 'fox')`,
      );
      await c.query('ROLLBACK');
      expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toContain('messages_fts');
      const cols = await c.query(
        `SELECT 1 FROM information_schema.columns WHERE table_name = 'messages' AND column_name = 'tsv'`,
      );
      expect(cols.rowCount).toBe(0);
    } finally {
      await c.end();
    }
  });
});

describe('boards', () => {
  it('keeps subject, tags and reply-to threads; private posts only for author and recipient', async () => {
    const { channel } = await s.client.createChannel(
      createReq(sysop, ChannelKind.CHANNEL_KIND_BOARD, {
        visibility: messagesV1.Visibility.VISIBILITY_PUBLIC,
        slug: 'bbs',
        title: 'Main board',
      }),
    );
    const b = channel!.id;
    const p1 = await post(alice, b, 'Hello, world!', { subject: 'Hello', tags: ['demo', 'introduction'] });
    const p2 = await post(bob, b, 'welcome', { subject: 'Re: Hello', tags: ['demo'], replyToId: p1.id });
    const dm = await post(alice, b, 'just for bob', { subject: 'psst', recipientId: bob.userId, isPrivate: true });
    expect(p2).toMatchObject({ subject: 'Re: Hello', tags: ['demo'], replyToId: p1.id });
    expect(await refusal(post(alice, b, 'x', { replyToId: '12345' }))).toMatchObject({ reason: 'REPLY_TO_NOT_FOUND' });
    expect(await refusal(post(alice, b, 'x', { isPrivate: true }))).toMatchObject({
      reason: 'PRIVATE_NEEDS_RECIPIENT',
    });
    expect(await refusal(post(alice, general.id, 'x', { isPrivate: true, recipientId: bob.userId }))).toMatchObject({
      reason: 'NOT_A_BOARD',
    });
    const texts = async (p: messagesV1.Principal, more: Partial<messagesV1.ListMessagesRequest> = {}) =>
      (await s.client.listMessages(listReq(p, b, more))).messages.map((m) => m.id);
    expect(await texts(carol)).toEqual([p1.id, p2.id]);
    expect(await texts(bob)).toEqual([p1.id, p2.id, dm.id]);
    expect(await texts(bob, { mailbox: true })).toEqual([dm.id]);
    expect(await texts(carol, { tags: ['introduction'] })).toEqual([p1.id]);
    expect(await refusal(s.client.getMessage({ principal: carol, messageId: dm.id }))).toMatchObject({
      code: Code.NOT_FOUND,
    });
    expect((await s.client.listTags({ principal: carol, channelId: b })).tags).toEqual(['demo', 'introduction']);
    const found = await s.client.searchMessages({
      principal: carol,
      query: 'tag:introduction hello',
      channelIds: [b],
      mailbox: false,
      before: '',
      limit: 0,
    });
    expect(found.messages.map((m) => m.id)).toEqual([p1.id]);
    const psst = await s.client.searchMessages({
      principal: carol,
      query: 'psst',
      channelIds: [b],
      mailbox: false,
      before: '',
      limit: 0,
    });
    expect(psst.messages).toEqual([]);
    const edited = await s.client.editMessage({
      principal: alice,
      messageId: p1.id,
      subject: 'Hello!',
      tags: ['demo'],
      setTags: true,
      attachments: undefined,
    });
    expect(edited.message).toMatchObject({ subject: 'Hello!', tags: ['demo'], text: 'Hello, world!' });
  });
});

describe('oneliners', () => {
  it('posts (idempotently), lists the newest N oldest first and publishes', async () => {
    const a = await s.client.postOneliner({ principal: alice, text: '  first!  ', clientKey: 'o1' });
    const again = await s.client.postOneliner({ principal: alice, text: 'first!', clientKey: 'o1' });
    expect(again).toMatchObject({ duplicate: true, oneliner: { id: a.oneliner!.id } });
    await s.client.postOneliner({ principal: frank, text: 'guest was here', clientKey: '' });
    await s.client.postOneliner({ principal: bob, text: 'third', clientKey: '' });
    expect((await s.client.listOneliners({ limit: 2 })).oneliners.map((o) => o.text)).toEqual([
      'guest was here',
      'third',
    ]);
    expect((await s.client.listOneliners({ limit: 0 })).oneliners.map((o) => o.text)).toEqual([
      'first!',
      'guest was here',
      'third',
    ]);
    expect(await refusal(s.client.postOneliner({ principal: alice, text: '   ', clientKey: '' }))).toMatchObject({
      code: Code.INVALID_ARGUMENT,
    });
    expect(
      await refusal(s.client.postOneliner({ principal: alice, text: 'x'.repeat(481), clientKey: '' })),
    ).toMatchObject({ reason: 'TEXT_TOO_LARGE' });
    await waitFor(() => oneliners.length === 3);
    expect(oneliners[0]!.oneliner).toMatchObject({ text: 'first!', authorName: 'alice' });
  });
});

describe('test seeding', () => {
  it('seeds messages with chosen times through the test-only RPC', async () => {
    const ch = await freshPublic('seeded');
    const t = new Date('2020-01-02T03:04:05.678Z');
    const r = await new Promise<messagesV1.SeedMessagesResponse>((resolve, reject) => {
      const c = new messagesV1.MessageStoreTestingServiceClient(
        `127.0.0.1:${s.srv.port}`,
        credentials.createInsecure(),
      );
      c.seedMessages(
        {
          messages: [
            {
              principal: alice,
              message: newMessage(ch, 'old'),
              createdAt: t,
              changedAt: new Date(t.getTime() + 5_000),
              deleted: false,
            },
          ],
        },
        (err, res) => {
          c.close();
          if (err) reject(err);
          else resolve(res);
        },
      );
    });
    const m = r.messages[0]!;
    expect(m.createdAt).toEqual(t);
    expect(snowflakeParts(m.id).ms).toBe(t.getTime());
    expect(m.edited).toBe(true);
    const hist = await s.client.listMessages(listReq(alice, ch));
    expect(hist.messages.map((x) => x.text)).toEqual(['old']);
  });

  it('is not registered without NODE_ENV=test and the flag (UNIMPLEMENTED)', async () => {
    const prod = await startStore({
      databaseUrl: db.url,
      natsUrl: nats.url,
      prefix: nats.prefix,
      env: { NODE_ENV: 'production' },
    });
    try {
      const err = await new Promise<{ code: number }>((resolve) => {
        const c = new messagesV1.MessageStoreTestingServiceClient(
          `127.0.0.1:${prod.srv.port}`,
          credentials.createInsecure(),
        );
        c.seedMessages({ messages: [] }, (e) => {
          c.close();
          resolve(e as { code: number });
        });
      });
      expect(err.code).toBe(status.UNIMPLEMENTED);
    } finally {
      await prod.close();
    }
  });
});

describe('msg-client', () => {
  it('retries only retry-safe calls and maps refusals to AppError codes', async () => {
    const dead = createMessageStoreClient('127.0.0.1:1', { deadlineMs: 200, budgetMs: 600 });
    const t0 = Date.now();
    const e = await refusal(dead.listMessages(listReq(alice, general.id)));
    expect(e.code).toBe(Code.UNAVAILABLE);
    expect(Date.now() - t0).toBeLessThan(2_000);
    dead.close();
  });
});
