/**
 * Issue #7, cross-door scenario: a dum-dum client, two Morelia clients (one with push, one polling
 * get_update) and a message-store history reader share `general`. Every post from every door is seen
 * by every other door exactly once, in id order, with the same id everywhere; Morelia edits and
 * deletes reach the poller and history; a dum-dum reconnect catches up with LIST_MESSAGES(after).
 */
import { connect } from '@nats-io/transport-node';
import { messagesV1, subjects } from '@hubbub/proto';
import { waitFor } from '@hubbub/testing';
import { DumDumClient } from '../clients/dumdum';
import { MoreliaClient } from '../clients/morelia';
import type { MtpMessage } from '../clients/morelia';
import type { E2eEnv } from '../harness/env';
import { otherDoorGuest, startE2eEnv } from '../harness/env';

jest.setTimeout(120_000);

const PER_DOOR = 5;
let env: E2eEnv;
let pusher: MoreliaClient;
let poller: MoreliaClient;
let dd: DumDumClient;
let generalFlow: string;
let generalId: string;

beforeAll(async () => {
  env = await startE2eEnv();
  const wsPort = env.stack.ports.ws;
  pusher = await MoreliaClient.connect(wsPort);
  await pusher.register('alice_e2e', 'correct horse battery');
  poller = await MoreliaClient.connect(wsPort);
  await poller.register('bob_e2e', 'correct horse battery');
  generalFlow = (await pusher.flowByTitle('general')).uuid;
  expect((await poller.flowByTitle('general')).uuid).toBe(generalFlow);
  const lookup = await env.store.lookupChannel(messagesV1.LookupChannelRequest.fromPartial({ slug: 'general' }));
  generalId = lookup.channel!.id;
  expect(generalId).toBe(generalFlow);
  expect((await pusher.subscribe()).errors.code).toBe(200);
  dd = await DumDumClient.connect(env.stack.ports.irc, 'dd_e2e');
  expect(await dd.listChannels()).toContain('general');
});

afterAll(async () => {
  await Promise.all([pusher?.close(), poller?.close(), dd?.close()]);
  await env?.destroy();
});

/** Polls get_update from 0 and returns the general flow's messages by uuid (current form). */
async function pollGeneral(): Promise<Map<string, MtpMessage>> {
  const r = await poller.getUpdate(0);
  expect([200, 206]).toContain(r.errors.code);
  const out = new Map<string, MtpMessage>();
  for (const m of r.data?.message ?? []) if (m.from_flow === generalFlow) out.set(m.uuid, m);
  return out;
}

describe('one conversation across doors', () => {
  const acked: { id: string; text: string; door: string }[] = [];

  it('delivers every post from every door to every door exactly once, in id order, with the same id', async () => {
    // dum-dum posts: acknowledged by their echo (the protocol's only success signal).
    for (let i = 0; i < PER_DOOR; i++) dd.send('general', `dd-${i}`);
    for (let i = 0; i < PER_DOOR; i++) {
      const r = await pusher.sendMessage(generalFlow, `push-${i}`, i);
      expect(r.errors.code).toBe(200);
      acked.push({ id: r.data!.message![0]!.uuid, text: `push-${i}`, door: 'ws-push' });
      const q = await poller.sendMessage(generalFlow, `poll-${i}`, i);
      expect(q.errors.code).toBe(200);
      acked.push({ id: q.data!.message![0]!.uuid, text: `poll-${i}`, door: 'ws-poll' });
      const g = await env.store.postMessage(
        messagesV1.PostMessageRequest.fromPartial({
          principal: otherDoorGuest('otherdoor'),
          message: { channelId: generalId, text: `grpc-${i}`, clientKey: `grpc-${i}` },
        }),
      );
      acked.push({ id: g.message!.id, text: `grpc-${i}`, door: 'grpc' });
    }
    const total = PER_DOOR * 4;
    await waitFor(() => dd.received.length >= total, 10_000, 'dum-dum deliveries');
    for (const m of dd.received.filter((x) => x.content.startsWith('dd-'))) {
      acked.push({ id: m.id.toString(), text: m.content, door: 'irc' });
    }
    expect(acked).toHaveLength(total);
    const ids = acked.map((a) => a.id);
    expect(new Set(ids).size).toBe(total);
    const sortedIds = [...ids].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));

    // dum-dum: exactly once each, in ascending id order, with the same ids and texts.
    await new Promise((r) => setTimeout(r, 200)); // let any duplicate arrive before asserting
    expect(dd.received.map((m) => m.id.toString())).toEqual(sortedIds);
    const textById = new Map(acked.map((a) => [a.id, a.text]));
    for (const m of dd.received) expect(m.content).toBe(textById.get(m.id.toString()));
    const ddNick = dd.received.find((m) => m.content === 'dd-0')!.nick;
    expect(ddNick).toBe('dd_e2e');

    // Morelia push: the same ids, once each, in id order.
    await waitFor(
      () => pusher.pushedMessages.filter((m) => m.from_flow === generalFlow).length >= total,
      10_000,
      'pushes',
    );
    const pushed = pusher.pushedMessages.filter((m) => m.from_flow === generalFlow).map((m) => m.uuid);
    expect(pushed).toEqual(sortedIds);
    const fromDd = pusher.pushedMessages.find((m) => m.text === 'dd-0')!;
    expect(fromDd.from_user).toBe('guest:dd_e2e');

    // Morelia poller: every message in get_update.
    await waitFor(async () => (await pollGeneral()).size >= total, 10_000, 'get_update');
    expect([...(await pollGeneral()).keys()].sort()).toEqual([...sortedIds].sort());

    // History reader: the same ids in ascending order.
    const hist = await env.store.listMessages(
      messagesV1.ListMessagesRequest.fromPartial({
        principal: otherDoorGuest('reader'),
        channelId: generalId,
        limit: 100,
      }),
    );
    expect(hist.messages.map((m) => m.id)).toEqual(sortedIds);
  });

  it("carried the doors' posts over NATS request/reply (nats micro stats of message-store)", async () => {
    const nc = await connect({ servers: env.nats.url });
    try {
      const subject = subjects(env.nats.prefix).rpcPostMessages;
      let served = -1;
      // Every message-store on this NATS answers; ours is the one whose endpoint has our prefix.
      for await (const m of await nc.requestMany('$SRV.STATS.message-store', '', { maxWait: 1_000 })) {
        const st = JSON.parse(m.string()) as { endpoints?: { subject: string; num_requests: number }[] };
        const ep = st.endpoints?.find((e) => e.subject === subject);
        if (ep) served = ep.num_requests;
      }
      // dum-dum and both Morelia clients posted PER_DOOR each; coalescing may merge calls.
      expect(served).toBeGreaterThan(0);
    } finally {
      await nc.close();
    }
  });

  it('shows a Morelia edit and delete to the poller, to push subscribers and in history', async () => {
    const mine = acked.filter((a) => a.door === 'ws-push');
    const edited = mine[0]!;
    const deleted = mine[1]!;
    const pushesBefore = pusher.pushedMessages.length;
    expect((await pusher.editMessage(edited.id, 'push-0 (edited)')).errors.code).toBe(200);
    expect((await pusher.deleteMessage(deleted.id)).errors.code).toBe(200);

    await waitFor(
      async () => {
        const m = await pollGeneral();
        return m.get(edited.id)?.edited_status === true && m.get(deleted.id)?.text === 'Message deleted';
      },
      10_000,
      'edit and delete in get_update',
    );
    const polled = await pollGeneral();
    expect(polled.get(edited.id)).toMatchObject({ text: 'push-0 (edited)', edited_status: true });
    expect(polled.get(deleted.id)).toMatchObject({ text: 'Message deleted', edited_status: true });

    await waitFor(() => pusher.pushedMessages.length >= pushesBefore + 2, 5_000, 'edit/delete pushes');

    const got = await env.store.getMessage({ principal: otherDoorGuest('otherdoor'), messageId: edited.id });
    expect(got.message).toMatchObject({ text: 'push-0 (edited)', edited: true });
    const hist = await env.store.listMessages(
      messagesV1.ListMessagesRequest.fromPartial({
        principal: otherDoorGuest('reader'),
        channelId: generalId,
        limit: 100,
      }),
    );
    expect(hist.messages.map((m) => m.id)).not.toContain(deleted.id);
    expect(hist.messages.find((m) => m.id === edited.id)?.text).toBe('push-0 (edited)');

    // dum-dum history shows the edit and leaves the deleted message out.
    const ddHist = await dd.listMessages('general');
    expect(ddHist.find((m) => m.id.toString() === edited.id)?.content).toBe('push-0 (edited)');
    expect(ddHist.map((m) => m.id.toString())).not.toContain(deleted.id);
  });

  it('lets a reconnecting dum-dum client catch up with exactly the missed messages', async () => {
    const lastSeen = dd.received[dd.received.length - 1]!.id;
    await dd.close();
    const missed: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await poller.sendMessage(generalFlow, `missed-${i}`, 100 + i);
      missed.push(r.data!.message![0]!.uuid);
    }
    dd = await DumDumClient.connect(env.stack.ports.irc, 'dd_e2e');
    const caughtUp = await dd.listMessages('general', 0n, lastSeen);
    expect(caughtUp.map((m) => m.id.toString())).toEqual(missed);
    expect(caughtUp.map((m) => m.content)).toEqual(['missed-0', 'missed-1', 'missed-2']);
  });
});
