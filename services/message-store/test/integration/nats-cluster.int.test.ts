/**
 * A NATS cluster changing under a live connection (a rolling restart of another node): the server sends the clients
 * an INFO with new connect URLs, and nats.js replaces `nc.info`. message-store's outbox publisher must not take that
 * for a new connection: no backlog, every event published once (before, each INFO sent the events in flight through
 * a backlog and the drain published them again).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { messagesV1 } from '@hubbub/proto';
import { createLogger } from '@hubbub/runtime';
import { ServiceProcess, createTestDatabase, freePort, waitFor } from '@hubbub/testing';
import type { TestDatabase } from '@hubbub/testing';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { alice, createReq, newMessage, startStore } from './harness';
import type { Started } from './harness';

jest.setTimeout(60_000);

const BIN = process.env['NATS_SERVER_BIN'] ?? '/usr/sbin/nats-server';

/** Three JetStream nodes routed to each other (a quorum survives one node's restart). */
async function cluster(): Promise<{ nodes: ServiceProcess[]; ports: number[]; dirs: string[] }> {
  const ports = [await freePort(), await freePort(), await freePort()];
  const routes = [await freePort(), await freePort(), await freePort()];
  const dirs = ports.map(() => mkdtempSync(join(tmpdir(), 'hubbub-nats-cluster-')));
  const nodes = ports.map(
    (p, i) =>
      new ServiceProcess(
        `nats${i}`,
        BIN,
        [
          '-a',
          '127.0.0.1',
          '-p',
          String(p),
          '-js',
          '-sd',
          dirs[i]!,
          '-n',
          `n${i}`,
          '--cluster_name',
          'hubbub-test',
          '--cluster',
          `nats://127.0.0.1:${routes[i]}`,
          '--routes',
          routes
            .filter((_, j) => j !== i)
            .map((r) => `nats://127.0.0.1:${r}`)
            .join(','),
        ],
        {},
        /Server is ready/,
      ),
  );
  await Promise.all(nodes.map((n) => n.start()));
  return { nodes, ports, dirs };
}

let c: Awaited<ReturnType<typeof cluster>>;
let db: TestDatabase;
let store: Started;
let watcher: NatsConnection;
const logs: Record<string, unknown>[] = [];
const events = new Map<string, number>();

beforeAll(async () => {
  c = await cluster();
  db = await createTestDatabase();
  const url = `nats://127.0.0.1:${c.ports[0]}`;
  // JetStream (the worker-id bucket) needs its meta leader first.
  await waitFor(
    async () => {
      const nc = await connect({ servers: url });
      try {
        return (
          (await nc.request('$JS.API.INFO', undefined, { timeout: 1_000 })).json<{ error?: unknown }>().error ===
          undefined
        );
      } catch {
        return false;
      } finally {
        await nc.close();
      }
    },
    20_000,
    'JetStream meta leader',
  );
  store = await startStore(
    { databaseUrl: db.url, natsUrl: url, prefix: 'tclu' },
    {
      log: createLogger({
        service: 'message-store-test',
        level: 'info',
        destination: { write: (l: string) => void logs.push(JSON.parse(l) as Record<string, unknown>) },
      }),
    },
  );
  watcher = await connect({ servers: `nats://127.0.0.1:${c.ports[1]}` });
  watcher.subscribe('tclu.chat.*.posted', {
    callback: (_e, m) => {
      const id = messagesV1.MessageEvent.fromJSON(m.json()).message!.id;
      events.set(id, (events.get(id) ?? 0) + 1);
    },
  });
  await watcher.flush();
});

afterAll(async () => {
  await watcher?.close();
  await store?.close();
  await db?.drop();
  for (const n of c?.nodes ?? []) await n.stop();
  for (const d of c?.dirs ?? []) rmSync(d, { recursive: true, force: true });
});

it('a node of the cluster restarting sends an INFO to message-store: no backlog, every event once', async () => {
  const { channel } = await store.client.createChannel(
    createReq(alice, messagesV1.ChannelKind.CHANNEL_KIND_GROUP, { title: 'cluster' }),
  );
  const ids: string[] = [];
  const post = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++)
      ids.push(
        (await store.client.postMessage({ principal: alice, message: newMessage(channel!.id, `m${ids.length}`) }))
          .message!.id,
      );
  };
  await post(20);
  // Node 2 goes away and comes back: node 0 (message-store's) tells its clients twice.
  const info = store.srv.nc.info;
  await c.nodes[2]!.stop();
  await waitFor(() => store.srv.nc.info !== info, 10_000, 'an INFO for the node that left');
  await post(20);
  const info2 = store.srv.nc.info;
  await c.nodes[2]!.start();
  await waitFor(() => store.srv.nc.info !== info2, 10_000, 'an INFO for the node that came back');
  await post(20);
  await waitFor(() => ids.every((id) => events.has(id)), 10_000, 'every event');
  await new Promise((r) => setTimeout(r, 300)); // a drain, had there been one, would have published again by now
  expect(ids.filter((id) => events.get(id) !== 1)).toEqual([]);
  expect(logs.filter((l) => typeof l['code'] === 'string' && l['code'].startsWith('OUTBOX_'))).toEqual([]);
});
