/**
 * Channels: create/lookup/list/update/archive, kinds, slugs, membership, public vs private listing,
 * direct channels, read marks, channel events, and the refusal codes.
 */
import { Code } from '@hubbub/errors';
import { messagesV1 } from '@hubbub/proto';
import { principal, systemPrincipal } from '@hubbub/msg-client';
import { createTestDatabase, createTestNats, waitFor } from '@hubbub/testing';
import type { TestDatabase, TestNats } from '@hubbub/testing';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  alice,
  bob,
  carol,
  createReq,
  frank,
  listReq,
  natsClient,
  newMessage,
  refusal,
  startStore,
  sysop,
} from './harness';
import type { Started } from './harness';
import { Repo } from '../../src/store/repo';

const { ChannelKind, Visibility } = messagesV1;

let db: TestDatabase;
let nats: TestNats;
let s: Started;
let nc: NatsConnection;
const channelEvents: { subject: string; ev: messagesV1.ChannelEvent }[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  nats = createTestNats();
  s = await startStore({ databaseUrl: db.url, natsUrl: nats.url, prefix: nats.prefix });
  nc = await natsClient(nats.url);
  nc.subscribe(`${nats.prefix}.channel.>`, {
    callback: (_e, m) =>
      void channelEvents.push({ subject: m.subject, ev: messagesV1.ChannelEvent.fromJSON(m.json()) }),
  });
  await nc.flush();
});

afterAll(async () => {
  await nc?.close();
  await s?.close();
  await nats?.cleanup();
  await db?.drop();
});

const lookup = (p: messagesV1.Principal | undefined, id: string, more: Partial<messagesV1.LookupChannelRequest> = {}) =>
  s.client.lookupChannel({ principal: p, id, slug: '', includeMembers: true, includeStats: false, ...more });

const list = (p: messagesV1.Principal | undefined, more: Partial<messagesV1.ListChannelsRequest> = {}) =>
  s.client.listChannels({
    principal: p,
    kind: 0,
    visibility: 0,
    changedSince: undefined,
    includeArchived: false,
    includeMembers: false,
    includeStats: false,
    memberOnly: false,
    ...more,
  });

describe('public channels', () => {
  it('ensures public channels by slug in order, idempotently, as guest-friendly groups', async () => {
    const a = await s.client.ensurePublicChannels({ slugs: ['a', 'b'], kind: 0 });
    const b = await s.client.ensurePublicChannels({ slugs: ['a', 'c', 'b'], kind: 0 });
    expect(a.channels.map((c) => c.slug)).toEqual(['a', 'b']);
    expect(b.channels.map((c) => c.slug)).toEqual(['a', 'c', 'b']);
    expect(b.channels[0]!.id).toBe(a.channels[0]!.id);
    expect(b.channels[2]!.id).toBe(a.channels[1]!.id);
    const c = b.channels[0]!;
    expect(c).toMatchObject({
      kind: ChannelKind.CHANNEL_KIND_GROUP,
      visibility: Visibility.VISIBILITY_PUBLIC,
      allowGuests: true,
      title: 'a',
      ownerId: '',
    });
    // listed in creation order, to callers without a principal too (irc-binary's LIST_CHANNELS)
    const pub = await list(undefined, { visibility: Visibility.VISIBILITY_PUBLIC });
    expect(pub.channels.map((x) => x.slug).slice(0, 3)).toEqual(['a', 'b', 'c']);
    await waitFor(() =>
      channelEvents.some((e) => e.subject === `${nats.prefix}.channel.created` && e.ev.channel?.slug === 'c'),
    );
  });

  it('never hands out a private channel that holds a slug to ensure, nor ensures unbounded lists', async () => {
    const { channel: squat } = await s.client.createChannel(
      createReq(alice, ChannelKind.CHANNEL_KIND_GROUP, { slug: 'squatted', title: 'secret title', info: 'secret' }),
    );
    expect(squat!.visibility).toBe(Visibility.VISIBILITY_PRIVATE);
    const r = await s.client.ensurePublicChannels({ slugs: ['squatted', 'free-slug'], kind: 0 });
    expect(r.channels.map((c) => c.slug)).toEqual(['free-slug']);
    expect(JSON.stringify(r)).not.toContain('secret');
    // the private channel is untouched
    expect((await lookup(alice, squat!.id)).channel).toMatchObject({
      visibility: Visibility.VISIBILITY_PRIVATE,
      title: 'secret title',
    });
    const many = Array.from({ length: 101 }, (_, i) => `many-${i}`);
    expect(await refusal(s.client.ensurePublicChannels({ slugs: many, kind: 0 }))).toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'TOO_MANY_SLUGS',
    });
  });

  it('rejects bad slugs with INVALID_ARGUMENT', async () => {
    for (const slug of ['Upper', 'has space', 'x'.repeat(33), '', 'c12']) {
      expect(await refusal(s.client.ensurePublicChannels({ slugs: [slug], kind: 0 }))).toMatchObject({
        code: Code.INVALID_ARGUMENT,
      });
    }
    // 32 bytes of UTF-8 is fine
    const ok = await s.client.ensurePublicChannels({ slugs: ['é'.repeat(16)], kind: 0 });
    expect(ok.channels[0]!.slug).toBe('é'.repeat(16));
  });

  it('makes a poster a member of a public channel, but never a guest', async () => {
    const [ch] = (await s.client.ensurePublicChannels({ slugs: ['lobby'], kind: 0 })).channels;
    expect((await lookup(alice, ch!.id)).channel!.memberIds).toEqual([]);
    await s.client.postMessage({ principal: bob, message: newMessage(ch!.id, 'hi') });
    await s.client.postMessage({ principal: frank, message: newMessage(ch!.id, 'hi from irc') });
    await s.client.postMessage({ principal: alice, message: newMessage(ch!.id, 'hello') });
    expect((await lookup(alice, ch!.id)).channel!.memberIds).toEqual([bob.userId, alice.userId]);
  });

  it('lets an account join and leave a public channel; guests cannot join', async () => {
    const [ch] = (await s.client.ensurePublicChannels({ slugs: ['joinme'], kind: 0 })).channels;
    const j = await s.client.joinChannel({ principal: carol, channelId: ch!.id });
    expect(j.channel!.memberIds).toEqual([carol.userId]);
    await s.client.joinChannel({ principal: carol, channelId: ch!.id }); // no-op
    expect(await refusal(s.client.joinChannel({ principal: frank, channelId: ch!.id }))).toMatchObject({
      code: Code.PERMISSION_DENIED,
      reason: 'GUESTS_CANNOT_JOIN',
    });
    await s.client.leaveChannel({ principal: carol, channelId: ch!.id });
    expect((await lookup(carol, ch!.id)).channel!.memberIds).toEqual([]);
  });

  it('creates public channels only for sysops', async () => {
    expect(
      await refusal(
        s.client.createChannel(
          createReq(alice, ChannelKind.CHANNEL_KIND_GROUP, { visibility: Visibility.VISIBILITY_PUBLIC, slug: 'news' }),
        ),
      ),
    ).toMatchObject({ code: Code.PERMISSION_DENIED, reason: 'SYSOP_ONLY' });
    const r = await s.client.createChannel(
      createReq(sysop, ChannelKind.CHANNEL_KIND_CHANNEL, {
        visibility: Visibility.VISIBILITY_PUBLIC,
        slug: 'news',
        title: 'News',
        info: 'official',
      }),
    );
    expect(r.channel).toMatchObject({
      slug: 'news',
      allowGuests: true,
      ownerId: sysop.userId,
      kind: ChannelKind.CHANNEL_KIND_CHANNEL,
    });
    expect(
      await refusal(
        s.client.createChannel(
          createReq(sysop, ChannelKind.CHANNEL_KIND_GROUP, { visibility: Visibility.VISIBILITY_PUBLIC, slug: 'news' }),
        ),
      ),
    ).toMatchObject({
      code: Code.ALREADY_EXISTS,
      reason: 'SLUG_TAKEN',
    });
  });
});

describe('private channels', () => {
  it('creates a private group with the members in order and the creator appended', async () => {
    const r = await s.client.createChannel(
      createReq(alice, ChannelKind.CHANNEL_KIND_GROUP, {
        title: 'friends',
        info: 'x',
        memberIds: [bob.userId, bob.userId, carol.userId],
      }),
    );
    const ch = r.channel!;
    expect(ch.memberIds).toEqual([bob.userId, carol.userId, alice.userId]);
    expect(ch).toMatchObject({
      visibility: Visibility.VISIBILITY_PRIVATE,
      allowGuests: false,
      ownerId: alice.userId,
      title: 'friends',
    });
    expect(ch.slug).toBe(`c${ch.id}`);
    await waitFor(() =>
      channelEvents.some(
        (e) => e.ev.channel?.id === ch.id && e.ev.kind === messagesV1.ChannelEventKind.CHANNEL_EVENT_KIND_CREATED,
      ),
    );
  });

  it('hides a private channel from non-members as NOT_FOUND (lookup, list, history, post)', async () => {
    const { channel } = await s.client.createChannel(
      createReq(alice, ChannelKind.CHANNEL_KIND_GROUP, { memberIds: [bob.userId] }),
    );
    const id = channel!.id;
    expect(await refusal(lookup(carol, id))).toMatchObject({ code: Code.NOT_FOUND, reason: 'CHANNEL_NOT_FOUND' });
    expect(await refusal(lookup(undefined, id))).toMatchObject({ code: Code.NOT_FOUND });
    expect(await refusal(s.client.listMessages(listReq(carol, id)))).toMatchObject({ code: Code.NOT_FOUND });
    expect(await refusal(s.client.postMessage({ principal: carol, message: newMessage(id, 'x') }))).toMatchObject({
      code: Code.NOT_FOUND,
    });
    expect(await refusal(s.client.postMessage({ principal: frank, message: newMessage(id, 'x') }))).toMatchObject({
      code: Code.NOT_FOUND,
    });
    expect((await list(carol)).channels.map((c) => c.id)).not.toContain(id);
    expect((await list(bob)).channels.map((c) => c.id)).toContain(id);
    // a door's system principal reads everything
    expect((await lookup(systemPrincipal('ws-messenger'), id)).channel!.id).toBe(id);
  });

  it('channel kind: only the owner and sysops post, members read', async () => {
    const { channel } = await s.client.createChannel(
      createReq(alice, ChannelKind.CHANNEL_KIND_CHANNEL, { memberIds: [bob.userId] }),
    );
    const id = channel!.id;
    await s.client.postMessage({ principal: alice, message: newMessage(id, 'announcement') });
    expect(await refusal(s.client.postMessage({ principal: bob, message: newMessage(id, 'reply') }))).toMatchObject({
      code: Code.PERMISSION_DENIED,
      reason: 'ONLY_OWNER_POSTS',
    });
    expect((await s.client.listMessages(listReq(bob, id))).messages.map((m) => m.text)).toEqual(['announcement']);
  });

  it('direct channels have exactly two members including the creator', async () => {
    expect(
      await refusal(
        s.client.createChannel(createReq(alice, ChannelKind.CHANNEL_KIND_DIRECT, { memberIds: [bob.userId] })),
      ),
    ).toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'DIRECT_NEEDS_TWO',
    });
    expect(
      await refusal(
        s.client.createChannel(
          createReq(alice, ChannelKind.CHANNEL_KIND_DIRECT, { memberIds: [bob.userId, carol.userId] }),
        ),
      ),
    ).toMatchObject({
      code: Code.PERMISSION_DENIED,
    });
    const r = await s.client.createChannel(
      createReq(alice, ChannelKind.CHANNEL_KIND_DIRECT, { memberIds: [bob.userId, alice.userId] }),
    );
    expect(r.channel!.memberIds).toEqual([bob.userId, alice.userId]);
    expect(
      await refusal(s.client.addMembers({ principal: alice, channelId: r.channel!.id, userIds: [carol.userId] })),
    ).toMatchObject({
      code: Code.FAILED_PRECONDITION,
    });
  });

  it('opens one direct channel per pair (get or create)', async () => {
    const a = await s.client.openDirect({ principal: alice, otherUserId: carol.userId });
    const b = await s.client.openDirect({ principal: carol, otherUserId: alice.userId });
    expect(a.created).toBe(true);
    expect(b.created).toBe(false);
    expect(b.channel!.id).toBe(a.channel!.id);
    expect(
      (await list(carol, { kind: ChannelKind.CHANNEL_KIND_DIRECT, memberOnly: true })).channels.map((c) => c.id),
    ).toContain(a.channel!.id);
    expect(await refusal(s.client.openDirect({ principal: frank, otherUserId: alice.userId }))).toMatchObject({
      code: Code.PERMISSION_DENIED,
    });
  });

  it('OpenDirect makes one channel per pair, repeated or at once; CreateChannel DIRECT a new chat each time', async () => {
    const p1 = principal({ userId: '2001', displayName: 'p1', door: 'test' });
    const p2 = principal({ userId: '2002', displayName: 'p2', door: 'test' });
    const at = await Promise.all([
      s.client.openDirect({ principal: p2, otherUserId: p1.userId }),
      s.client.openDirect({ principal: p1, otherUserId: p2.userId }),
      s.client.openDirect({ principal: p1, otherUserId: p2.userId }),
      s.client.openDirect({ principal: p2, otherUserId: p1.userId }),
    ]);
    const id = at[0].channel!.id;
    expect(at.map((r) => r.channel!.id)).toEqual(at.map(() => id));
    expect(at.filter((r) => r.created)).toHaveLength(1);
    // Morelia's add_flow of a chat (spec ws-messenger §2.9): a new channel with the given title, owned by the caller.
    const create = (p: messagesV1.Principal, memberIds: string[], title: string) =>
      s.client.createChannel(createReq(p, ChannelKind.CHANNEL_KIND_DIRECT, { memberIds, title }));
    const c1 = (await create(p1, [p1.userId, p2.userId], 'plans')).channel!;
    const c2 = (await create(p2, [p2.userId, p1.userId], 'more plans')).channel!;
    expect(new Set([id, c1.id, c2.id]).size).toBe(3);
    expect(c1).toMatchObject({ title: 'plans', ownerId: p1.userId });
    expect(c2).toMatchObject({ title: 'more plans', ownerId: p2.userId });
    expect(await s.client.openDirect({ principal: p1, otherUserId: p2.userId })).toMatchObject({
      created: false,
      channel: { id },
    });
    for (const c of [c1, c2]) expect([...c.memberIds].sort()).toEqual([p1.userId, p2.userId]);
    // Two distinct accounts, always.
    expect(await refusal(create(p1, [p1.userId, p1.userId], ''))).toMatchObject({ reason: 'DIRECT_NEEDS_TWO' });
    expect(await refusal(s.client.openDirect({ principal: p1, otherUserId: p1.userId }))).toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'BAD_MEMBER',
    });
    expect(await refusal(create(p1, [p1.userId, 'guest:x'], ''))).toMatchObject({ reason: 'BAD_MEMBER' });
    // The other creating paths make no direct channels (the operators' one: nats-admin.int.test.ts).
    expect(
      await refusal(s.client.ensurePublicChannels({ slugs: ['dm-public'], kind: ChannelKind.CHANNEL_KIND_DIRECT })),
    ).toMatchObject({ code: Code.INVALID_ARGUMENT, reason: 'BAD_CHANNEL_KIND' });
  });

  it('owner adds and removes members; others are refused', async () => {
    const { channel } = await s.client.createChannel(createReq(alice, ChannelKind.CHANNEL_KIND_GROUP));
    const id = channel!.id;
    const added = await s.client.addMembers({ principal: alice, channelId: id, userIds: [bob.userId, carol.userId] });
    expect(added.channel!.memberIds).toEqual([alice.userId, bob.userId, carol.userId]);
    expect(await refusal(s.client.addMembers({ principal: bob, channelId: id, userIds: ['1009'] }))).toMatchObject({
      code: Code.PERMISSION_DENIED,
      reason: 'NOT_OWNER',
    });
    expect(await refusal(s.client.addMembers({ principal: alice, channelId: id, userIds: ['guest:x'] }))).toMatchObject(
      {
        code: Code.INVALID_ARGUMENT,
      },
    );
    const removed = await s.client.removeMember({ principal: alice, channelId: id, userId: carol.userId });
    expect(removed.channel!.memberIds).toEqual([alice.userId, bob.userId]);
    expect(await refusal(lookup(carol, id))).toMatchObject({ code: Code.NOT_FOUND });
    expect(
      await refusal(s.client.removeMember({ principal: alice, channelId: id, userId: alice.userId })),
    ).toMatchObject({
      code: Code.FAILED_PRECONDITION,
    });
    await s.client.leaveChannel({ principal: bob, channelId: id });
    expect((await lookup(alice, id)).channel!.memberIds).toEqual([alice.userId]);
  });

  it('refuses guests creating channels and rejects bad input', async () => {
    expect(await refusal(s.client.createChannel(createReq(frank, ChannelKind.CHANNEL_KIND_GROUP)))).toMatchObject({
      code: Code.PERMISSION_DENIED,
    });
    expect(await refusal(s.client.createChannel(createReq(alice, ChannelKind.CHANNEL_KIND_UNSPECIFIED)))).toMatchObject(
      {
        code: Code.INVALID_ARGUMENT,
      },
    );
    expect(
      await refusal(
        s.client.createChannel(createReq(alice, ChannelKind.CHANNEL_KIND_GROUP, { title: 'x'.repeat(257) })),
      ),
    ).toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'TITLE_TOO_LONG',
    });
    expect(
      await refusal(
        s.client.createChannel(createReq(alice, ChannelKind.CHANNEL_KIND_GROUP, { info: 'x'.repeat(4097) })),
      ),
    ).toMatchObject({
      code: Code.INVALID_ARGUMENT,
    });
    const many = Array.from({ length: 1001 }, (_, i) => String(5000 + i));
    expect(
      await refusal(s.client.createChannel(createReq(alice, ChannelKind.CHANNEL_KIND_GROUP, { memberIds: many }))),
    ).toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'TOO_MANY_MEMBERS',
    });
    expect(
      await refusal(
        s.client.createChannel({ ...createReq(alice, ChannelKind.CHANNEL_KIND_GROUP), principal: undefined }),
      ),
    ).toMatchObject({
      code: Code.INVALID_ARGUMENT,
      reason: 'PRINCIPAL_REQUIRED',
    });
    expect(
      await refusal(s.client.createChannel(createReq(systemPrincipal('x'), ChannelKind.CHANNEL_KIND_GROUP))),
    ).toMatchObject({
      code: Code.PERMISSION_DENIED,
    });
  });

  it('refuses a huge member list at once, without blocking the event loop (regression)', async () => {
    // A hostile member list (ws-messenger passes the Morelia client's `users`) is refused at once: deduplicating
    // it with Array.includes before the limit check took seconds of the one event loop per 50,000 ids.
    const huge = Array.from({ length: 60_000 }, (_, i) => String(1_000_000 + i));
    const t0 = Date.now();
    expect(
      await refusal(s.client.createChannel(createReq(alice, ChannelKind.CHANNEL_KIND_GROUP, { memberIds: huge }))),
    ).toMatchObject({ code: Code.INVALID_ARGUMENT, reason: 'TOO_MANY_MEMBERS' });
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it('refuses NUL characters in titles, infos and member ids with INVALID_ARGUMENT (regression)', async () => {
    // NUL cannot be stored in PostgreSQL text: INVALID_ARGUMENT, not INTERNAL.
    for (const more of [{ title: 'a\u0000b' }, { info: 'a\u0000b' }, { memberIds: ['10\u00001'] }])
      expect(
        await refusal(s.client.createChannel(createReq(alice, ChannelKind.CHANNEL_KIND_GROUP, more))),
      ).toMatchObject({ code: Code.INVALID_ARGUMENT });
    const { channel: mine } = await s.client.createChannel(createReq(alice, ChannelKind.CHANNEL_KIND_GROUP));
    expect(
      await refusal(s.client.updateChannel({ principal: alice, channelId: mine!.id, title: 'a\u0000b' })),
    ).toMatchObject({ code: Code.INVALID_ARGUMENT, reason: 'NUL_CHARACTER' });
    expect(
      await refusal(s.client.addMembers({ principal: alice, channelId: mine!.id, userIds: ['10\u00002'] })),
    ).toMatchObject({ code: Code.INVALID_ARGUMENT });
    expect(await refusal(s.client.openDirect({ principal: alice, otherUserId: '10\u00002' }))).toMatchObject({
      code: Code.INVALID_ARGUMENT,
    });
  });
});

describe('update and archive', () => {
  it('lets the owner or a sysop update title, info, slug and guests; events follow', async () => {
    const { channel } = await s.client.createChannel(
      createReq(alice, ChannelKind.CHANNEL_KIND_GROUP, { memberIds: [bob.userId] }),
    );
    const id = channel!.id;
    const u = await s.client.updateChannel({
      principal: alice,
      channelId: id,
      title: 'New title',
      info: 'about',
      slug: 'renamed',
    });
    expect(u.channel).toMatchObject({ title: 'New title', info: 'about', slug: 'renamed' });
    expect(u.channel!.changedAt!.getTime()).toBeGreaterThanOrEqual(channel!.changedAt!.getTime());
    expect(await refusal(s.client.updateChannel({ principal: bob, channelId: id, title: 'mine' }))).toMatchObject({
      code: Code.PERMISSION_DENIED,
      reason: 'NOT_OWNER',
    });
    expect(await refusal(s.client.updateChannel({ principal: alice, channelId: id, allowGuests: true }))).toMatchObject(
      {
        code: Code.INVALID_ARGUMENT,
      },
    );
    const bySlug = await s.client.lookupChannel({
      principal: bob,
      id: '',
      slug: 'renamed',
      includeMembers: false,
      includeStats: false,
    });
    expect(bySlug.channel!.id).toBe(id);
    await waitFor(() =>
      channelEvents.some((e) => e.subject === `${nats.prefix}.channel.updated` && e.ev.channel?.slug === 'renamed'),
    );
  });

  it('archives: no more posts (FAILED_PRECONDITION), hidden from lists, history kept', async () => {
    const [ch] = (await s.client.ensurePublicChannels({ slugs: ['old'], kind: 0 })).channels;
    await s.client.postMessage({ principal: alice, message: newMessage(ch!.id, 'before') });
    expect(await refusal(s.client.archiveChannel({ principal: alice, channelId: ch!.id }))).toMatchObject({
      code: Code.PERMISSION_DENIED,
    });
    const a = await s.client.archiveChannel({ principal: sysop, channelId: ch!.id });
    expect(a.channel!.archived).toBe(true);
    expect(
      await refusal(s.client.postMessage({ principal: alice, message: newMessage(ch!.id, 'after') })),
    ).toMatchObject({
      code: Code.FAILED_PRECONDITION,
      reason: 'CHANNEL_ARCHIVED',
    });
    expect((await list(alice)).channels.map((c) => c.id)).not.toContain(ch!.id);
    expect((await list(alice, { includeArchived: true })).channels.map((c) => c.id)).toContain(ch!.id);
    expect((await s.client.listMessages(listReq(alice, ch!.id))).messages.map((m) => m.text)).toEqual(['before']);
    await waitFor(() =>
      channelEvents.some((e) => e.subject === `${nats.prefix}.channel.archived` && e.ev.channel?.id === ch!.id),
    );
  });

  it("a channel's change times strictly increase, within a millisecond and on a replica whose clock is behind; events carry them", async () => {
    // A replica a minute behind (its clock only: same database and NATS).
    const behind = await startStore(
      { databaseUrl: db.url, natsUrl: nats.url, prefix: nats.prefix },
      { now: () => Date.now() - 60_000 },
    );
    try {
      const { channel } = await s.client.createChannel(createReq(alice, ChannelKind.CHANNEL_KIND_GROUP));
      const id = channel!.id;
      const times = [channel!.changedAt!.getTime()];
      for (const title of ['a', 'b', 'c'])
        times.push(
          (await s.client.updateChannel({ principal: alice, channelId: id, title })).channel!.changedAt!.getTime(),
        );
      const late = await behind.client.updateChannel({ principal: alice, channelId: id, title: 'from behind' });
      times.push(late.channel!.changedAt!.getTime());
      for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThan(times[i - 1]!);
      const evTimes = () =>
        channelEvents.filter((e) => e.ev.channel?.id === id).map((e) => e.ev.channel!.changedAt!.getTime());
      await waitFor(() => evTimes().length === times.length, 5_000, 'every change published');
      expect(evTimes()).toEqual(times);
      // Joining a public channel by posting, on the replica behind: the event carries the stored time.
      const [pub] = (await s.client.ensurePublicChannels({ slugs: ['monotonic'], kind: 0 })).channels;
      await s.client.updateChannel({ principal: sysop, channelId: pub!.id, info: 'now' });
      const before = (await lookup(sysop, pub!.id)).channel!.changedAt!.getTime();
      await behind.client.postMessage({ principal: carol, message: newMessage(pub!.id, 'joining') });
      const after = (await lookup(sysop, pub!.id)).channel!;
      expect(after.changedAt!.getTime()).toBeGreaterThan(before);
      await waitFor(
        () => channelEvents.some((e) => e.ev.channel?.id === pub!.id && e.ev.channel.memberIds.includes(carol.userId)),
        5_000,
        'the join event',
      );
      const join = channelEvents.find(
        (e) => e.ev.channel?.id === pub!.id && e.ev.channel.memberIds.includes(carol.userId),
      )!;
      expect(join.ev.channel!.changedAt!.getTime()).toBe(after.changedAt!.getTime());
    } finally {
      await behind.close();
    }
  });

  it('lists channels changed since a time', async () => {
    const t = new Date(Date.now() - 1);
    const { channel } = await s.client.createChannel(createReq(bob, ChannelKind.CHANNEL_KIND_GROUP));
    const r = await list(bob, { changedSince: t });
    expect(r.channels.map((c) => c.id)).toContain(channel!.id);
    const later = await list(bob, { changedSince: new Date(Date.now() + 60_000) });
    expect(later.channels).toEqual([]);
  });
});

describe('boards, stats and read marks', () => {
  it('counts total and unread per principal and moves the read mark forward only', async () => {
    const { channel } = await s.client.createChannel(
      createReq(alice, ChannelKind.CHANNEL_KIND_BOARD, { memberIds: [bob.userId] }),
    );
    const id = channel!.id;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push(
        (await s.client.postMessage({ principal: alice, message: newMessage(id, `post ${i}`, { subject: `t${i}` }) }))
          .message!.id,
      );
    const stats = async () =>
      (await s.client.lookupChannel({ principal: bob, id, slug: '', includeMembers: false, includeStats: true }))
        .channel!.stats!;
    expect(await stats()).toMatchObject({ total: '3', unread: '3', lastMessageId: ids[2] });
    await s.client.markRead({ principal: bob, channelId: id, messageId: ids[1]! });
    expect(await stats()).toMatchObject({ total: '3', unread: '1' });
    await s.client.markRead({ principal: bob, channelId: id, messageId: ids[0]! });
    expect((await stats()).unread).toBe('1');
    const listed = await list(bob, { kind: ChannelKind.CHANNEL_KIND_BOARD, includeStats: true });
    expect(listed.channels.find((c) => c.id === id)!.stats!.unread).toBe('1');
  });
});

describe('channel cache', () => {
  it('a load that read the members before a removal never replaces the fresher entry (regression)', async () => {
    // An instance that caches (the others run with a TTL of 0) and whose clock the test moves.
    let offset = 0;
    const t = await startStore(
      { databaseUrl: db.url, natsUrl: nats.url, prefix: nats.prefix, env: { MESSAGE_STORE_CACHE_TTL_MS: '5000' } },
      { now: () => Date.now() + offset },
    );
    const origRemove = Repo.prototype.removeMember;
    const origMembers = Repo.prototype.members;
    const removeSpy = jest.spyOn(Repo.prototype, 'removeMember');
    const membersSpy = jest.spyOn(Repo.prototype, 'members');
    try {
      const { channel } = await t.client.createChannel(
        createReq(alice, ChannelKind.CHANNEL_KIND_GROUP, { memberIds: [carol.userId] }),
      );
      const id = channel!.id;
      // Hold the removal inside its transaction (membership not yet changed).
      let removing!: () => void;
      const inRemoval = new Promise<void>((r) => (removing = r));
      let commitRemoval!: () => void;
      const removalGate = new Promise<void>((r) => (commitRemoval = r));
      removeSpy.mockImplementation(async function (this: Repo, ...args) {
        removing();
        await removalGate;
        return origRemove.apply(this, args);
      });
      const removed = t.client.removeMember({ principal: alice, channelId: id, userId: carol.userId });
      await inRemoval;
      // The entry the removal loaded expires; carol's read loads the channel again, reading the old members, and
      // finishes only after the removal has committed and updated the cache.
      offset += 10_000;
      let loaded!: () => void;
      const inLoad = new Promise<void>((r) => (loaded = r));
      let finishLoad!: () => void;
      const loadGate = new Promise<void>((r) => (finishLoad = r));
      membersSpy.mockImplementationOnce(async function (this: Repo, ...args) {
        const m = await origMembers.apply(this, args);
        loaded();
        await loadGate;
        return m;
      });
      const read = t.client.listMessages(listReq(carol, id)).catch(() => undefined);
      await inLoad;
      commitRemoval();
      expect((await removed).channel!.memberIds).toEqual([alice.userId]);
      finishLoad();
      await read;
      // Within the TTL, the removed member can neither post nor read.
      expect(
        await refusal(t.client.postMessage({ principal: carol, message: newMessage(id, 'still here?') })),
      ).toMatchObject({
        code: Code.NOT_FOUND,
      });
      expect(await refusal(t.client.listMessages(listReq(carol, id)))).toMatchObject({ code: Code.NOT_FOUND });
    } finally {
      removeSpy.mockRestore();
      membersSpy.mockRestore();
      await t.close();
    }
  });
});
