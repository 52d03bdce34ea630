/**
 * The push extension (spec §2.8, acceptance §7.5 P1–P11) with real identity, message-store and
 * NATS; posts from "another door" go straight to message-store over gRPC, as irc-binary does.
 */
import { identityV1, messagesV1 } from '@hubbub/proto';
import { queryDatabase, waitFor } from '@hubbub/testing';
import { auth, ensurePublic, makeFlow, makeUser, post, principalOf } from './helpers/fixtures';
import type { U } from './helpers/fixtures';
import { MtpClient, mtp } from './helpers/mtp-client';
import type { Frame } from './helpers/mtp-client';
import { startStack } from './helpers/stack';
import type { Stack } from './helpers/stack';
import type { WsmServer } from '../../src/server';

let s: Stack;
let w: WsmServer;
let url: string;
let U1: U, U2: U, U3: U;
let X: MtpClient, X2: MtpClient, Y: MtpClient, Z: MtpClient;
let G: string; // group(U1, U2)
let general: string;
const clients: MtpClient[] = [];

const connect = async (u = url): Promise<MtpClient> => {
  const c = await MtpClient.connect(u);
  clients.push(c);
  return c;
};
const hasMessage = (id: string) => (f: Frame) =>
  f.type === 'update' && (f.data?.message ?? []).some((m) => m['uuid'] === id);

const fullMessage = (m: messagesV1.Message, text = m.text): string =>
  `{"uuid": "${m.id}", "text": ${JSON.stringify(text)}, "from_user": "${m.authorId}", "time": ${Math.floor(m.createdAt!.getTime() / 1000)}, "from_flow": "${m.channelId}", "file_picture": null, "file_video": null, "file_audio": null, "file_document": null, "emoji": null, "edited_time": null, "edited_status": false, "client_id": null}`;

beforeAll(async () => {
  s = await startStack();
  w = await s.wsm({ WSM_PUBLIC_CHANNELS: 'general' });
  url = `ws://127.0.0.1:${w.port}/ws`;
  [U1, U2, U3] = [await makeUser(s, 'alice'), await makeUser(s, 'bob'), await makeUser(s, 'carol')];
  G = await makeFlow(s, 'group', U1, [U1, U2]);
  general = (await ensurePublic(s, ['general']))[0]!.id;
  X = await connect();
  X2 = await connect();
  Y = await connect();
  Z = await connect(); // never subscribes (P10)
  expect((await Z.req(mtp('ping_pong', auth(U1)))).errors.code).toBe(200);
}, 60_000);
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await s?.close();
});

describe('push', () => {
  it('P1 subscribe → 200 with data {time} only (exact frame)', async () => {
    for (const c of [X, X2]) {
      const raw = await c.reqRaw(mtp('subscribe', auth(U1)));
      const t = (JSON.parse(raw) as Frame).errors.time;
      expect(raw).toBe(
        `{"type": "subscribe", "jsonapi": {"version": "1.0", "revision": "17"}, "meta": null, "data": {"time": ${t}, "user": null, "meta": null, "flow": null, "message": null}, "errors": {"detail": "Request fulfilled, document follows", "code": 200, "status": "OK", "time": ${t}}}`,
      );
    }
    expect((await Y.req(mtp('subscribe', auth(U2)))).errors.code).toBe(200);
    expect(w.subscriptionCount()).toBe(3);
  });

  it('a post from another door and its edit reach both subscribed sockets within milliseconds (exact frame)', async () => {
    const t0 = Date.now();
    const m = await post(s, general, { uuid: 'guest:frank', username: 'frank' }, 'hi from irc');
    const posted = Date.now();
    const [a, b] = await Promise.all([X.find(hasMessage(m.id), 2_000), X2.find(hasMessage(m.id), 2_000)]);
    const arrived = Date.now();
    expect(arrived - posted).toBeLessThan(200);
    const T = (JSON.parse(a) as Frame).errors.time;
    // P4: guest author as guest:<nick>, text as sent
    expect(a).toBe(
      `{"type": "update", "jsonapi": {"version": "1.0", "revision": "17"}, "meta": null, "data": {"time": ${T}, "user": [], "meta": null, "flow": [], "message": [${fullMessage(m)}]}, "errors": {"detail": "Request fulfilled, document follows", "code": 200, "status": "OK", "time": ${T}}}`,
    );
    expect(JSON.parse(b)).toEqual(JSON.parse(a));
    void t0;
    // P5: an edit and a delete made elsewhere arrive changed
    const author = await makeUser(s, 'dave');
    const mine = await post(s, general, author, 'typo');
    await X.find(hasMessage(mine.id));
    await s.msgClient.editMessage(
      messagesV1.EditMessageRequest.fromPartial({ principal: principalOf(author), messageId: mine.id, text: 'fixed' }),
    );
    const edited = (pred: (m: Record<string, unknown>) => boolean) => (f: Frame) =>
      f.type === 'update' && (f.data?.message ?? []).some((x) => x['uuid'] === mine.id && pred(x));
    const e1 = JSON.parse(
      await X.find(
        edited((x) => x['text'] === 'fixed'),
        2_000,
      ),
    ) as Frame;
    await X2.find(
      edited((x) => x['text'] === 'fixed'),
      2_000,
    );
    expect(e1.data!.message![0]).toMatchObject({ text: 'fixed', edited_status: true, client_id: null });
    await s.msgClient.deleteMessage(
      messagesV1.DeleteMessageRequest.fromPartial({ principal: principalOf(author), messageId: mine.id }),
    );
    const d = JSON.parse(
      await X.find(
        edited((x) => x['text'] === 'Message deleted'),
        2_000,
      ),
    ) as Frame;
    expect(d.data!.message![0]).toMatchObject({ file_picture: '', emoji: '', edited_status: true });
  });

  it('P2 Y sends to group(U1, U2) → X gets the full message within 100 ms; P10 Z gets nothing', async () => {
    const before = Date.now();
    const r = await Y.req(
      mtp('send_message', auth(U2), { flow: [{ uuid: G }], message: [{ text: 'to the group', client_id: 7 }] }),
    );
    expect(r.errors.code).toBe(200);
    const id = r.data!.message![0]!['uuid'] as string;
    const f = JSON.parse(await X.find(hasMessage(id), 1_000)) as Frame;
    expect(Date.now() - before).toBeLessThan(500);
    expect(f.data!.user).toEqual([]);
    expect(f.data!.flow).toEqual([]);
    expect(f.data!.message![0]).toMatchObject({
      uuid: id,
      text: 'to the group',
      from_user: U2.uuid,
      from_flow: G,
      client_id: null,
    });
  });

  it('P3 X sends: its reply comes first, then the update with the same uuid', async () => {
    const start = X.raw.length;
    X.send(mtp('send_message', auth(U1), { flow: [{ uuid: G }], message: [{ text: 'mine', client_id: 9 }] }));
    await X.find((f) => f.type === 'send_message');
    const replyRaw = X.raw.slice(start).find((r) => r.startsWith('{"type": "send_message"'))!;
    const id = (JSON.parse(replyRaw) as Frame).data!.message![0]!['uuid'] as string;
    await X.find(hasMessage(id));
    const after = X.raw.slice(start);
    const iReply = after.indexOf(replyRaw);
    const iUpdate = after.findIndex((r) => r.startsWith('{"type": "update"') && r.includes(`"uuid": "${id}"`));
    expect(iReply).toBeGreaterThanOrEqual(0);
    expect(iUpdate).toBeGreaterThan(iReply);
    // keep X's sequential reader in step
    X.skipAll();
  });

  it('P6 a message in a flow X cannot see is not pushed to X', async () => {
    const hidden = await makeFlow(s, 'group', U2, [U2, U3]);
    const r = await Y.req(mtp('send_message', auth(U2), { flow: [{ uuid: hidden }], message: [{ text: 'secret' }] }));
    const id = r.data!.message![0]!['uuid'] as string;
    await Y.find(hasMessage(id)); // Y (U2) sees it: the event went through
    const marker = await post(s, general, U3, 'marker');
    await X.find(hasMessage(marker.id));
    expect(X.raw.some((raw) => raw.includes(`"uuid": "${id}"`))).toBe(false);
  });

  it('P7 U2 creates group(U2, U1) → X receives an update with that flow', async () => {
    const r = await Y.req(
      mtp('add_flow', auth(U2), { flow: [{ type: 'group', title: 'new one', users: [U2.uuid, U1.uuid] }] }),
    );
    const F = r.data!.flow![0]!['uuid'] as string;
    const f = JSON.parse(
      await X.find((x) => x.type === 'update' && (x.data?.flow ?? []).some((fl) => fl['uuid'] === F), 2_000),
    ) as Frame;
    expect(f.data!.flow!.find((fl) => fl['uuid'] === F)).toMatchObject({
      type: 'group',
      title: 'new one',
      owner: U2.uuid,
      users: [U2.uuid, U1.uuid],
    });
    expect(f.data!.message).toEqual([]);
  });

  it('P8 unsubscribe → 200 data null; nothing is pushed afterwards', async () => {
    X2.skipAll();
    const raw = await X2.reqRaw(mtp('unsubscribe', auth(U1)));
    const t = (JSON.parse(raw) as Frame).errors.time;
    expect(raw).toBe(
      `{"type": "unsubscribe", "jsonapi": {"version": "1.0", "revision": "17"}, "meta": null, "data": null, "errors": {"detail": "Request fulfilled, document follows", "code": 200, "status": "OK", "time": ${t}}}`,
    );
    expect((await X2.req(mtp('unsubscribe', auth(U1)))).errors.code).toBe(200); // idempotent
    const count = X2.raw.length;
    const m = await post(s, G, U2, 'after unsubscribe');
    await X.find(hasMessage(m.id));
    expect(X2.raw.length).toBe(count);
  });

  it('P9 the account is deleted elsewhere → the final 401 update frame, then nothing', async () => {
    const victim = await makeUser(s, 'victim');
    const V = await connect();
    expect((await V.req(mtp('subscribe', auth(victim)))).errors.code).toBe(200);
    await s.idClient.deleteAccount(
      identityV1.DeleteAccountRequest.fromPartial({ userId: victim.uuid, password: victim.password }),
    );
    const raw = await V.find((f) => f.type === 'update' && f.errors.code === 401, 3_000);
    const t = (JSON.parse(raw) as Frame).errors.time;
    expect(raw).toBe(
      `{"type": "update", "jsonapi": {"version": "1.0", "revision": "17"}, "meta": null, "data": null, "errors": {"detail": "Authentication User failed", "code": 401, "status": "Unauthorized", "time": ${t}}}`,
    );
    const n = V.raw.length;
    const m = await post(s, general, U3, 'after revoke');
    await X.find(hasMessage(m.id));
    expect(V.raw.length).toBe(n);
    const p = await V.req(mtp('ping_pong', auth(victim)));
    expect(p.errors.detail).toBe('Authentication User failed');
  });

  describe('a member removed without a channel event (lost on NATS) stops receiving the flow', () => {
    // The removal goes straight into message-store's database: no event, exactly as if NATS had lost it.
    const removeQuietly = async (flow: string, u: U, owner: U): Promise<void> => {
      await queryDatabase(s.messageStoreDbUrl, 'DELETE FROM channel_members WHERE channel_id = $1 AND user_id = $2', [
        flow,
        u.uuid,
      ]);
      // message-store caches membership for a moment: wait until its own answer no longer lists u
      await waitFor(
        async () => {
          const r = await s.msgClient.lookupChannel(
            messagesV1.LookupChannelRequest.fromPartial({
              principal: principalOf(owner),
              id: flow,
              includeMembers: true,
            }),
          );
          return !r.channel!.memberIds.includes(u.uuid);
        },
        10_000,
        'message-store sees the removal',
      );
    };
    /** Posts to the flow; returns once `member` got it, and whether `removed` got it too. */
    const postAndSee = async (flow: string, member: MtpClient, removed: MtpClient, text: string): Promise<boolean> => {
      const m = await post(s, flow, U2, text);
      await member.find(hasMessage(m.id), 3_000);
      // a later public push on the removed member's connection: anything for it from m came before
      const marker = await post(s, general, U3, `after ${text}`);
      await removed.find(hasMessage(marker.id), 3_000);
      return removed.raw.some((raw) => raw.includes(`"uuid": "${m.id}"`));
    };

    it('after a NATS reconnect', async () => {
      const F = await makeFlow(s, 'group', U2, [U2, U1]);
      await X.find((f) => f.type === 'update' && (f.data?.flow ?? []).some((fl) => fl['uuid'] === F), 3_000);
      expect(await postAndSee(F, Y, X, 'before')).toBe(true);
      await removeQuietly(F, U1, U2);
      // the door still trusts its cached members: this is the lost event's effect
      expect(await postAndSee(F, Y, X, 'lost')).toBe(true);
      const status = w.nc.status()[Symbol.asyncIterator]();
      const reconnected = (async () => {
        for (let st = await status.next(); !st.done; st = await status.next())
          if (st.value.type === 'reconnect') return;
      })();
      await w.nc.reconnect();
      await reconnected;
      await status.return?.();
      await w.nc.flush();
      expect(await postAndSee(F, Y, X, 'after reconnect')).toBe(false);
    }, 30_000);

    it('after WSM_CHANNEL_FACTS_MS without any reconnect', async () => {
      const short = await s.wsm({ WSM_CHANNEL_FACTS_MS: '300' });
      const surl = `ws://127.0.0.1:${short.port}/ws`;
      const [A, B] = [await connect(surl), await connect(surl)];
      expect((await A.req(mtp('subscribe', auth(U1)))).errors.code).toBe(200);
      expect((await B.req(mtp('subscribe', auth(U2)))).errors.code).toBe(200);
      const F = await makeFlow(s, 'group', U2, [U2, U1]);
      await A.find((f) => f.type === 'update' && (f.data?.flow ?? []).some((fl) => fl['uuid'] === F), 3_000);
      expect(await postAndSee(F, B, A, 'before')).toBe(true);
      const removedAt = Date.now();
      await removeQuietly(F, U1, U2);
      await new Promise((r) => setTimeout(r, Math.max(0, 400 - (Date.now() - removedAt))));
      expect(await postAndSee(F, B, A, 'after expiry')).toBe(false);
      // the member that stays keeps receiving, from the refreshed facts
      expect(await postAndSee(F, B, A, 'again')).toBe(false);
    }, 30_000);
  });

  it('P10 a client that never subscribed received only replies to its own requests', () => {
    expect(Z.raw).toHaveLength(1);
    expect(Z.updates()).toEqual([]);
  });

  it('P11 a subscriber that never reads is closed 1008 slow consumer; others keep receiving', async () => {
    const small = await s.wsm({ WSM_MAX_OUTBUF_BYTES: String(2 * 1024 * 1024) });
    const surl = `ws://127.0.0.1:${small.port}/ws`;
    const slow = await connect(surl);
    const good = await connect(surl);
    expect((await slow.req(mtp('subscribe', auth(U3)))).errors.code).toBe(200);
    expect((await good.req(mtp('subscribe', auth(U3)))).errors.code).toBe(200);
    const sock = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    sock.pause();
    const big = 'x'.repeat(60_000);
    const ids: string[] = [];
    for (let i = 0; i < 340 && small.subscriptionCount() > 1; i++)
      ids.push((await post(s, general, U3, `${i}${big}`)).id);
    await waitFor(() => small.subscriptionCount() === 1, 10_000, 'slow consumer closed');
    const last = await post(s, general, U3, 'still here');
    await good.find(hasMessage(last.id), 5_000);
    for (const id of ids) await good.find(hasMessage(id), 5_000);
    sock.resume();
    await waitFor(() => slow.closed !== undefined, 10_000, 'slow close seen');
    expect(slow.closed).toEqual({ code: 1008, reason: 'slow consumer' });
    expect(good.closed).toBeUndefined();
  }, 60_000);
});
