/**
 * Coalesced posts: PostMessages with one principal per message (a door gathering the posts of many
 * connections), driven through @hubbub/msg-client's PostCoalescer against real PostgreSQL and NATS.
 */
import { Code } from '@hubbub/errors';
import { PostCoalescer, natsPostSender } from '@hubbub/msg-client';
import { messagesV1, postedAsSent, subjects } from '@hubbub/proto';
import { createTestDatabase, createTestNats, waitFor } from '@hubbub/testing';
import type { TestDatabase, TestNats } from '@hubbub/testing';
import { connectNats } from '@hubbub/nats';
import { alice, bob, carol, createReq, frank, listReq, natsClient, newMessage, startStore, testLog } from './harness';
import type { Started } from './harness';

let db: TestDatabase;
let nats: TestNats;
let s: Started;
let general: string;

beforeAll(async () => {
  db = await createTestDatabase();
  nats = createTestNats();
  s = await startStore({ databaseUrl: db.url, natsUrl: nats.url, prefix: nats.prefix });
  general = (await s.client.ensurePublicChannels({ slugs: ['general'], kind: 0 })).channels[0]!.id;
});

afterAll(async () => {
  await s?.close();
  await nats?.cleanup();
  await db?.drop();
});

describe('coalesced posts (one principal per message)', () => {
  it('sends the posts of one event-loop turn as one call, each with its own author and outcome', async () => {
    const group = (
      await s.client.createChannel(createReq(alice, messagesV1.ChannelKind.CHANNEL_KIND_GROUP, { memberIds: ['1002'] }))
    ).channel!.id;
    const co = new PostCoalescer(s.client);
    const before = co.stats.batches;
    const rs = await Promise.all([
      co.post(alice, newMessage(general, 'from alice', { clientKey: 'co-a1' })),
      co.postMany(bob, [
        newMessage(group, 'bob 1', { clientKey: 'co-b1' }),
        newMessage(group, 'bob 2', { clientKey: 'co-b2' }),
      ]),
      // carol is not a member of the private group: only her post is refused.
      co.post(carol, newMessage(group, 'carol intrudes', { clientKey: 'co-c1' })),
      co.post(frank, newMessage(general, 'guest hello', { clientKey: 'co-f1' })),
    ]);
    expect(co.stats.batches - before).toBe(1);
    const [a, [b1, b2], c, f] = rs;
    expect(a.message?.authorId).toBe('1001');
    expect(a.message?.authorName).toBe('alice');
    expect(b1!.message?.authorId).toBe('1002');
    expect(b2!.message?.text).toBe('bob 2');
    expect(BigInt(b2!.message!.id) > BigInt(b1!.message!.id)).toBe(true);
    expect(c.message).toBeUndefined();
    expect(c.errorCode).not.toBe(0);
    expect([Code.NOT_FOUND, Code.PERMISSION_DENIED]).toContain(c.errorCode);
    expect(f.message?.authorId).toBe('guest:frank');
    // Every stored post is in history, the refused one is not.
    const hist = await s.client.listMessages(listReq(alice, group));
    expect(hist.messages.map((m) => m.text)).toEqual(['bob 1', 'bob 2']);
    // A retry of the same coalesced posts returns the first messages (idempotent by author + client key).
    const again = await co.post(alice, newMessage(general, 'from alice', { clientKey: 'co-a1' }));
    expect(again.duplicate).toBe(true);
    expect(again.message?.id).toBe(a.message?.id);
    await co.close();
  });

  it('answers a lean request with ids for posts stored as sent, in full otherwise, and the coalescer rebuilds them', async () => {
    const room = (await s.client.ensurePublicChannels({ slugs: ['lean'], kind: 0 })).channels[0]!.id;
    const plain = newMessage(room, 'lean one', { clientKey: 'lean-1', tags: [] });
    const res = await s.client.postMessages({
      principal: undefined,
      principals: [alice, frank, bob, alice],
      leanReply: true,
      messages: [
        plain,
        newMessage(room, 'lean guest', { clientKey: 'lean-2' }),
        // stored otherwise than sent: kind UNSPECIFIED is stored as NORMAL, reply_to_id '0' as ''
        newMessage(room, 'normalized', { clientKey: 'lean-3', kind: 0, replyToId: '0' }),
        plain, // a duplicate within the call
      ],
    });
    const [r1, r2, r3, r4] = res.results;
    expect(r1).toMatchObject({ asSent: true, duplicate: false, errorCode: 0 });
    expect(messagesV1.Message.encode(r1!.message!).finish().length).toBeLessThan(30); // the id alone
    expect(r1!.message!.text).toBe('');
    expect(r2!.asSent).toBe(true);
    expect(r3).toMatchObject({ asSent: false, message: { text: 'normalized', kind: 1, replyToId: '' } });
    expect(r4).toMatchObject({ asSent: false, duplicate: true, message: { id: r1!.message!.id, text: 'lean one' } });
    // The rebuild equals what was stored, field by field.
    for (const [r, p, m] of [
      [r1!, alice, plain],
      [r2!, frank, newMessage(room, 'lean guest', { clientKey: 'lean-2' })],
    ] as const) {
      const stored = await s.client.getMessage({ principal: alice, messageId: r.message!.id });
      expect(postedAsSent(p, m, r.message!.id)).toEqual(stored.message);
    }
    // Without lean_reply every result is in full; a retry is a duplicate in full.
    const full = await s.client.postMessages({
      principal: bob,
      principals: [],
      leanReply: false,
      messages: [newMessage(room, 'not lean', { clientKey: 'lean-4' })],
    });
    expect(full.results[0]).toMatchObject({ asSent: false, message: { text: 'not lean', authorId: '1002' } });
    const retry = await s.client.postMessages({ principal: alice, principals: [], leanReply: true, messages: [plain] });
    expect(retry.results[0]).toMatchObject({ asSent: false, duplicate: true, message: { text: 'lean one' } });
    // The coalescer asks for lean replies and hands the door the same messages as a full reply.
    const lean = new PostCoalescer(s.client);
    const fat = new PostCoalescer(s.client, { leanReply: false });
    const a = await lean.post(bob, newMessage(room, 'via coalescer', { clientKey: 'lean-5' }));
    const b = await fat.post(bob, newMessage(room, 'via coalescer', { clientKey: 'lean-5' }));
    expect(a.asSent).toBe(false);
    expect(b).toMatchObject({ duplicate: true });
    expect(a.message).toEqual(b.message);
    expect(a.message).toEqual((await s.client.getMessage({ principal: bob, messageId: a.message!.id })).message);
    await lean.close();
    await fat.close();
  });

  it('refuses a malformed principal for its own message only, and a length mismatch for the call', async () => {
    const r = await s.client.postMessages({
      leanReply: false,
      principal: undefined,
      principals: [alice, { ...alice, userId: '' }],
      messages: [newMessage(general, 'ok', { clientKey: 'pm-1' }), newMessage(general, 'no author')],
    });
    expect(r.results[0]!.errorCode).toBe(0);
    expect(r.results[1]!.errorCode).toBe(Code.INVALID_ARGUMENT);
    expect(r.results[1]!.errorReason).toBe('PRINCIPAL_REQUIRED');
    await expect(
      s.client.postMessages({ leanReply: false, principal: undefined, principals: [alice], messages: [] }),
    ).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, reason: 'PRINCIPALS_MISMATCH' });
  });
});

describe('posts over NATS request/reply (docs/adr/0003)', () => {
  it('answers coalesced posts on NATS after the commit, with per-message outcomes', async () => {
    const nc = await natsClient(nats.url);
    const send = natsPostSender({ nc, prefix: nats.prefix, grpc: s.client });
    const co = new PostCoalescer(s.client, { send });
    const [a, c] = await Promise.all([
      co.post(alice, newMessage(general, 'over nats', { clientKey: 'nats-a1' })),
      co.post({ ...alice, userId: '' }, newMessage(general, 'nobody')),
    ]);
    expect(send.stats).toEqual({ nats: 1, grpc: 0 });
    expect(a.message?.text).toBe('over nats');
    expect(c.errorCode).toBe(Code.INVALID_ARGUMENT);
    // committed before the answer: history has it
    const hist = await s.client.listMessages(listReq(alice, general));
    expect(hist.messages.map((m) => m.id)).toContain(a.message!.id);
    // a whole-call refusal by message-store arrives as its AppError, not as a fallback
    await expect(
      send({ leanReply: false, principal: undefined, principals: [alice], messages: [] }),
    ).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'PRINCIPALS_MISMATCH',
    });
    expect(send.stats.grpc).toBe(0);
    await co.close();
    send.close();
    await nc.close();
  });

  it('delivers every post event of a batch before the batch reply, on one NATS connection, by both APIs', async () => {
    const nc = await natsClient(nats.url);
    const seen = new Set<string>();
    nc.subscribe(`${nats.prefix}.chat.${general}.posted`, {
      callback: (_e, m) => void seen.add(String(m.json<{ message?: { id?: string } }>().message?.id)),
    });
    await nc.flush();
    const send = natsPostSender({ nc, prefix: nats.prefix, grpc: s.client });
    const early: string[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await send({
        leanReply: false,
        principal: bob,
        principals: [],
        messages: [newMessage(general, `ordered ${i}a`), newMessage(general, `ordered ${i}b`)],
      });
      // The reply arrived: both events must have been received already (same server connection, same order).
      for (const r of res.results) if (!seen.has(r.message!.id)) early.push(r.message!.id);
    }
    expect(early).toEqual([]);
    expect(send.stats).toEqual({ nats: 20, grpc: 0 });
    // The gRPC API publishes the batch's events before it answers too (and they are not held back).
    const g = await s.client.postMessage({ principal: bob, message: newMessage(general, 'over grpc') });
    await waitFor(() => seen.has(g.message!.id), 2_000);
    send.close();
    await nc.close();
  });

  it('refuses undecodable bytes with INVALID_ARGUMENT and keeps serving', async () => {
    const nc = await natsClient(nats.url);
    const r = await nc.request(subjects(nats.prefix).rpcPostMessages, new Uint8Array([0xff, 0xff, 0xff, 0x0f, 1]), {
      timeout: 5_000,
    });
    expect(r.headers?.get('Nats-Service-Error-Code')).toBe(String(Code.INVALID_ARGUMENT));
    expect(r.headers?.get('Nats-Service-Error')).toMatch(/^BAD_REQUEST: /);
    const send = natsPostSender({ nc, prefix: nats.prefix, grpc: s.client });
    const ok = await send({
      leanReply: false,
      principal: alice,
      principals: [],
      messages: [newMessage(general, 'still served', { clientKey: 'nats-after-bad' })],
    });
    expect(ok.results[0]!.message?.text).toBe('still served');
    expect(send.stats.nats).toBe(1);
    send.close();
    await nc.close();
  });

  it('refuses a decodable post with an out-of-range kind for that message only (regression)', async () => {
    const nc = await natsClient(nats.url);
    // Raw bytes on the subject: a door's coalesced call where one connection sent kind 70000 (beyond smallint).
    const req = messagesV1.PostMessagesRequest.encode({
      leanReply: false,
      principal: undefined,
      principals: [alice, bob],
      messages: [
        newMessage(general, 'bystander over nats'),
        newMessage(general, 'hostile over nats', { kind: 70_000 as messagesV1.MessageKind }),
      ],
    }).finish();
    const r = await nc.request(subjects(nats.prefix).rpcPostMessages, req, { timeout: 5_000 });
    expect(r.headers?.get('Nats-Service-Error-Code')).toBeUndefined();
    const res = messagesV1.PostMessagesResponse.decode(r.data);
    expect(res.results.map((x) => [x.message?.text, x.errorCode, x.errorReason])).toEqual([
      ['bystander over nats', 0, ''],
      [undefined, Code.INVALID_ARGUMENT, 'BAD_MESSAGE_KIND'],
    ]);
    await nc.close();
  });

  it('falls back to gRPC when nobody listens on NATS or the connection is closed', async () => {
    // As the doors connect (connectNats): without async traces nats.js wraps errors differently.
    const nc = await connectNats({ servers: nats.url, name: 'fallback-test', log: testLog });
    // A prefix no message-store serves: NATS answers "no responders" at once.
    const lonely = natsPostSender({ nc, prefix: `${nats.prefix}x`, grpc: s.client });
    const r = await lonely({
      leanReply: false,
      principal: bob,
      principals: [],
      messages: [newMessage(general, 'via grpc', { clientKey: 'fb-1' })],
    });
    expect(r.results[0]!.message?.text).toBe('via grpc');
    expect(lonely.stats).toEqual({ nats: 0, grpc: 1 });
    lonely.close();
    const send = natsPostSender({ nc, prefix: nats.prefix, grpc: s.client });
    await nc.close();
    const r2 = await send({
      leanReply: false,
      principal: bob,
      principals: [],
      messages: [newMessage(general, 'nats closed', { clientKey: 'fb-2' })],
    });
    expect(r2.results[0]!.message?.text).toBe('nats closed');
    expect(send.stats).toEqual({ nats: 0, grpc: 1 });
    send.close();
  });

  it('repeats an unanswered call on gRPC only when every message has a client key', async () => {
    const nc = await connectNats({ servers: nats.url, name: 'timeout-test', log: testLog });
    const prefix = `${nats.prefix}y`;
    // Someone listens but never answers (a stuck message-store): the request times out.
    nc.subscribe(subjects(prefix).rpcPostMessages, { callback: () => undefined });
    await nc.flush();
    const send = natsPostSender({ nc, prefix, grpc: s.client, deadlineMs: 200 });
    const keyed = await send({
      leanReply: false,
      principal: bob,
      principals: [],
      messages: [newMessage(general, 'after a timeout', { clientKey: 'to-1' })],
    });
    expect(keyed.results[0]!.message?.text).toBe('after a timeout');
    expect(send.stats).toEqual({ nats: 0, grpc: 1 });
    await expect(
      send({
        leanReply: false,
        principal: bob,
        principals: [],
        messages: [newMessage(general, 'no key, not repeated')],
      }),
    ).rejects.toMatchObject({ code: Code.DEADLINE_EXCEEDED, reason: 'NATS_TIMEOUT' });
    expect(send.stats.grpc).toBe(1);
    send.close();
    await nc.close();
  });

  it('publishes channel.updated when a post makes its author a member, once', async () => {
    const nc = await natsClient(nats.url);
    const updates: messagesV1.ChannelEvent[] = [];
    nc.subscribe(subjects(nats.prefix).channel('updated'), {
      callback: (_e, m) => void updates.push(messagesV1.ChannelEvent.fromJSON(m.json())),
    });
    await nc.flush();
    const room = (await s.client.ensurePublicChannels({ slugs: ['joinbypost'], kind: 0 })).channels[0]!.id;
    const send = natsPostSender({ nc, prefix: nats.prefix, grpc: s.client });
    const post = (text: string, key: string) =>
      send({
        leanReply: false,
        principal: carol,
        principals: [],
        messages: [newMessage(room, text, { clientKey: key })],
      });
    expect((await post('first words', 'jp-1')).results[0]!.errorCode).toBe(0);
    await waitFor(() => updates.some((u) => u.channel?.id === room), 5_000, 'channel.updated');
    const ev = updates.find((u) => u.channel?.id === room)!;
    expect(ev.channel!.memberIds).toContain('1003');
    // Already a member: a second post changes no membership and publishes no second event.
    expect((await post('more words', 'jp-2')).results[0]!.errorCode).toBe(0);
    await nc.flush();
    await new Promise((r) => setTimeout(r, 200));
    expect(updates.filter((u) => u.channel?.id === room)).toHaveLength(1);
    send.close();
    await nc.close();
  });
  it('publishes one channel.updated with every member when two authors join by posting in one batch', async () => {
    const nc = await natsClient(nats.url);
    const updates: messagesV1.ChannelEvent[] = [];
    nc.subscribe(subjects(nats.prefix).channel('updated'), {
      callback: (_e, m) => void updates.push(messagesV1.ChannelEvent.fromJSON(m.json())),
    });
    await nc.flush();
    try {
      const room = (await s.client.ensurePublicChannels({ slugs: ['twojoiners'], kind: 0 })).channels[0]!.id;
      // One call, one principal per message: one batch (ids in call order), two new memberships.
      const r = await s.client.postMessages({
        leanReply: false,
        principal: undefined,
        principals: [carol, bob, carol],
        messages: [newMessage(room, 'hi from carol'), newMessage(room, 'hi from bob'), newMessage(room, 'again')],
      });
      expect(r.results.map((x) => x.errorCode)).toEqual([0, 0, 0]);
      await waitFor(() => updates.some((u) => u.channel?.id === room), 5_000, 'channel.updated');
      await nc.flush();
      await new Promise((ok) => setTimeout(ok, 200));
      const evs = updates.filter((u) => u.channel?.id === room);
      // Before: one event per joiner, with the same time, each list missing the other joiner.
      expect(evs).toHaveLength(1);
      expect(evs[0]!.channel!.memberIds).toEqual(expect.arrayContaining([carol.userId, bob.userId]));
      const stored = (
        await s.client.lookupChannel({
          principal: carol,
          id: room,
          slug: '',
          includeMembers: true,
          includeStats: false,
        })
      ).channel!;
      expect(stored.memberIds).toEqual(expect.arrayContaining([carol.userId, bob.userId]));
      expect(evs[0]!.channel!.changedAt!.getTime()).toBe(stored.changedAt!.getTime());
    } finally {
      await nc.close();
    }
  });
});
