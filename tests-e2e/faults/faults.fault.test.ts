/**
 * Issue #7, faults: while a bounded post storm runs from three doors (dum-dum, Morelia, gRPC), kill -9
 * message-store, stop NATS, restart PostgreSQL, and kill -9 a door — each followed by recovery. After
 * each: every acknowledged post is in history exactly once, every watching client received every
 * acknowledged post (after reconnect/catch-up where the protocol allows), failures were reported as
 * failures, and new posts work again. Recovery times are printed.
 *
 * Runs against a private nats-server and a private PostgreSQL cluster (fsync on), because it stops
 * and restarts them.
 */
import { createClient } from '@hubbub/grpc';
import { messagesV1 } from '@hubbub/proto';
import { waitFor } from '@hubbub/testing';
import { MoreliaClient } from '../clients/morelia';
import type { StoreClient } from '../harness/env';
import { PrivateNats } from '../harness/nats-server';
import { DumDumObserver, MoreliaObserver } from '../harness/observers';
import { PrivatePostgres } from '../harness/pg-cluster';
import type { Stack } from '../harness/stack';
import { startStack } from '../harness/stack';
import type { Ack } from '../harness/storm';
import { Storm, readWholeHistory } from '../harness/storm';

jest.setTimeout(180_000);

const PASSWORD = 'correct horse battery';
const nats = new PrivateNats();
const pg = new PrivatePostgres();
let stack: Stack;
let store: StoreClient;
let generalId: string;
const allAcked: Ack[] = [];
const recovery: Record<string, string> = {};

beforeAll(async () => {
  await nats.start();
  await pg.init();
  const idDb = pg.createDatabase('hubbub_identity');
  const msgDb = pg.createDatabase('hubbub_messages');
  stack = await startStack({
    natsUrl: nats.url,
    natsPrefix: 'hubbub',
    identityDbUrl: idDb,
    messagesDbUrl: msgDb,
    // LOG_LEVEL=warn also proves every service still logs its ready line (scripts/up waits for it).
    env: { LOG_LEVEL: 'warn', IRCB_BACKEND_TIMEOUT_MS: '2000', WSM_BACKEND_TIMEOUT_MS: '2000' },
  });
  store = createClient(messagesV1.MessageStoreServiceService, stack.messageStoreAddr, { deadlineMs: 3_000 });
  for (const login of ['storm_a', 'storm_b', 'watcher']) {
    const c = await MoreliaClient.connect(stack.ports.ws);
    await c.register(login, PASSWORD);
    await c.close();
  }
  const lookup = await store.lookupChannel(messagesV1.LookupChannelRequest.fromPartial({ slug: 'general' }));
  generalId = lookup.channel!.id;
});

afterAll(async () => {
  store?.close();
  await stack?.stop();
  await pg.destroy();
  await nats.destroy();

  console.log(
    `fault recovery (first acknowledged post per door after the fault ended):\n${JSON.stringify(recovery, null, 2)}`,
  );
});

async function stormAround(tag: string, fault: () => Promise<number>): Promise<void> {
  const dd = new DumDumObserver(stack.ports.irc, `watch_${tag}`);
  const ws = new MoreliaObserver(stack.ports.ws, 'watcher', PASSWORD, generalId);
  await dd.start();
  await ws.start();
  try {
    await stormAndCheck(tag, fault, dd, ws);
  } finally {
    // Observers poll until stopped: stop them even when an assertion failed, or jest never exits.
    await dd.stop();
    await ws.stop();
  }
}

async function stormAndCheck(
  tag: string,
  fault: () => Promise<number>,
  dd: DumDumObserver,
  ws: MoreliaObserver,
): Promise<void> {
  const storm = new Storm({
    ircPort: stack.ports.irc,
    wsPort: stack.ports.ws,
    store,
    channelId: generalId,
    moreliaUsers: [
      { login: 'storm_a', password: PASSWORD },
      { login: 'storm_b', password: PASSWORD },
    ],
    ddNicks: [`dd1_${tag}`, `dd2_${tag}`],
    ratePerPoster: 40,
  });
  storm.start(tag);
  let faultEnded: number;
  try {
    await new Promise((r) => setTimeout(r, 1_500));
    faultEnded = await fault();
  } catch (e) {
    await storm.stop();
    throw e;
  }
  // Keep storming until every door has had an acknowledged post after the fault, or 30 s.
  const doors = ['irc-binary', 'ws-messenger', 'grpc'];
  await waitFor(
    () => doors.every((d) => storm.acked.some((a) => a.door === d && a.at > faultEnded)),
    30_000,
    `every door posting again after ${tag}`,
  ).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 1_000));
  await storm.stop();
  const rec: string[] = [];
  for (const d of doors) {
    const first = storm.acked.filter((a) => a.door === d && a.at > faultEnded).map((a) => a.at);
    rec.push(`${d} ${first.length ? `${Math.min(...first) - faultEnded} ms` : 'NOT RECOVERED'}`);
  }
  recovery[tag] = rec.join(', ');
  for (const d of doors) expect(storm.acked.some((a) => a.door === d && a.at > faultEnded)).toBe(true);

  // 1. Every acknowledged post is in history exactly once; nothing of the storm is duplicated.
  const history = await readWholeHistory(store, generalId);
  const byText = new Map<string, string[]>();
  for (const m of history) byText.set(m.text, [...(byText.get(m.text) ?? []), m.id]);
  const missing = storm.acked.filter((a) => !byText.has(a.text));
  expect(missing).toEqual([]);
  const dup = [...byText].filter(([t, ids]) => t.startsWith(`${tag}-`) && ids.length > 1);
  expect(dup).toEqual([]);
  for (const a of storm.acked) expect(byText.get(a.text)).toEqual([a.id]);
  // Ids ascend in history order.
  const ids = history.map((m) => BigInt(m.id));
  for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
  // Every failure was reported to its poster (not silently dropped): nothing both acked and failed.
  const ackedTexts = new Set(storm.acked.map((a) => a.text));
  expect(storm.failed.filter((f) => ackedTexts.has(f.text))).toEqual([]);
  expect(storm.acked.length).toBeGreaterThan(100);

  // 2. Every watching client eventually got every acknowledged post, exactly once live.
  await waitFor(
    () => storm.acked.every((a) => dd.seen.has(a.id) && ws.seen.has(a.id)),
    20_000,
    'observers receiving every acknowledged post',
  ).catch(() => undefined);
  const describe = (a: Ack): string =>
    `${a.text} id=${a.id} created=${new Date(Number(BigInt(a.id) >> 19n)).toISOString()} acked=${new Date(a.at).toISOString()}`;
  const ddMissing = storm.acked.filter((a) => !dd.seen.has(a.id));
  if (ddMissing.length > 0) console.log(`dum-dum observer journal:\n${dd.journal.join('\n')}`);
  expect(ddMissing.map(describe)).toEqual([]);
  expect(storm.acked.filter((a) => !ws.seen.has(a.id)).map(describe)).toEqual([]);
  expect(dd.duplicates).toEqual([]);
  expect(ws.duplicates).toEqual([]);
  allAcked.push(...storm.acked);

  console.log(`${tag}: ${storm.acked.length} acknowledged, ${storm.failed.length} reported failed; ${recovery[tag]}`);
}

describe('faults during a post storm', () => {
  it('survives kill -9 of message-store', async () => {
    await stormAround('msgkill', async () => {
      await stack.messageStore.kill9();
      await new Promise((r) => setTimeout(r, 1_000));
      await stack.messageStore.start();
      return Date.now();
    });
  });

  it('survives NATS stopping for a few seconds', async () => {
    await stormAround('natsdown', async () => {
      await nats.stop();
      await new Promise((r) => setTimeout(r, 3_000));
      await nats.start();
      return Date.now();
    });
  });

  it('survives a PostgreSQL restart', async () => {
    await stormAround('pgrestart', async () => {
      await pg.stop('fast');
      await new Promise((r) => setTimeout(r, 1_000));
      await pg.start();
      return Date.now();
    });
  });

  it('survives kill -9 of a door (irc-binary)', async () => {
    await stormAround('doorkill', async () => {
      await stack.irc!.kill9();
      await new Promise((r) => setTimeout(r, 500));
      await stack.irc!.start();
      return Date.now();
    });
  });

  it('kept every acknowledged post of the whole run exactly once', async () => {
    const history = await readWholeHistory(store, generalId);
    const ids = new Set(history.map((m) => m.id));
    expect(allAcked.filter((a) => !ids.has(a.id))).toEqual([]);
    expect(new Set(history.map((m) => m.text)).size).toBe(history.length);
  });
});
