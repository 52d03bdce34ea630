/**
 * The same migrations and queries on the embedded PGlite (no DATABASE_URL): the built service
 * (dist/src/main.js, so run `npx tsc -b services/message-store` first) is started as a child process on a
 * temporary data folder (PGlite needs --experimental-vm-modules under jest's VM; a real process does
 * not). It also proves main.ts: the `ready` log line, and a clean exit 0 on SIGTERM.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createMessageStoreClient } from '@hubbub/msg-client';
import type { MessageStoreClient } from '@hubbub/msg-client';
import { createTestNats, waitFor } from '@hubbub/testing';
import type { TestNats } from '@hubbub/testing';
import { messagesV1 } from '@hubbub/proto';
import { alice, bob, createReq, listReq, natsClient, newMessage } from './harness';

const MAIN = join(__dirname, '../../dist/src/main.js');

let nats: TestNats;
let dir: string;
let child: ChildProcess | undefined;
let client: MessageStoreClient | undefined;
const lines: Record<string, unknown>[] = [];

async function startChild(env: Record<string, string>): Promise<number> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} missing: run npx tsc -b services/message-store first`);
  const c = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = c;
  const rl = createInterface({ input: c.stdout });
  let stderr = '';
  c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise<number>((resolve, reject) => {
    c.once('exit', (code) => reject(new Error(`message-store exited ${code}: ${stderr}`)));
    rl.on('line', (line) => {
      try {
        const o = JSON.parse(line) as Record<string, unknown>;
        lines.push(o);
        if (o['msg'] === 'ready') resolve(Number(o['port']));
      } catch {
        /* not a log line */
      }
    });
  });
}

beforeAll(() => {
  nats = createTestNats();
  dir = mkdtempSync(join(tmpdir(), 'hubbub-msg-pglite-'));
}, 60_000);

afterAll(async () => {
  client?.close();
  if (child && child.exitCode === null) {
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
  }
  await nats?.cleanup();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

it('runs the migrations and the hot path on PGlite, logs ready and stops cleanly on SIGTERM', async () => {
  const port = await startChild({
    NATS_URL: nats.url,
    NATS_PREFIX: nats.prefix,
    MESSAGE_STORE_PORT: '0',
    MESSAGE_STORE_METRICS_PORT: '0',
    DATA_DIR: join(dir, 'db'),
    LOG_LEVEL: 'info',
  });
  expect(lines.some((l) => l['msg'] === 'using embedded PGlite database')).toBe(true);
  const s = { client: createMessageStoreClient(`127.0.0.1:${port}`) };
  client = s.client;
  const nc = await natsClient(nats.url);
  const seen: string[] = [];
  nc.subscribe(`${nats.prefix}.chat.>`, { callback: (_e, m) => void seen.push(m.subject) });
  await nc.flush();
  try {
    const [ch] = (await s.client.ensurePublicChannels({ slugs: ['general'], kind: 0 })).channels;
    const batch = await s.client.postMessages({
      leanReply: false,
      principals: [],
      principal: alice,
      messages: [newMessage(ch!.id, 'hello pglite', { clientKey: 'k1', tags: ['x'] }), newMessage(ch!.id, 'second')],
    });
    const again = await s.client.postMessage({
      principal: alice,
      message: newMessage(ch!.id, 'hello pglite', { clientKey: 'k1' }),
    });
    expect(again.duplicate).toBe(true);
    expect(again.message!.id).toBe(batch.results[0]!.message!.id);
    const id = batch.results[0]!.message!.id;
    await s.client.editMessage({
      principal: alice,
      messageId: id,
      text: 'edited on pglite',
      tags: [],
      setTags: false,
      attachments: undefined,
    });
    const found = await s.client.searchMessages({
      principal: bob,
      query: 'edited',
      channelIds: [],
      mailbox: false,
      before: '',
      limit: 0,
    });
    expect(found.messages.map((m) => m.id)).toEqual([id]);
    const hist = await s.client.listMessages(listReq(bob, ch!.id, { after: id }));
    expect(hist.messages.map((m) => m.text)).toEqual(['second']);
    const { channel } = await s.client.createChannel(
      createReq(alice, messagesV1.ChannelKind.CHANNEL_KIND_GROUP, { memberIds: [bob.userId] }),
    );
    expect(channel!.memberIds).toEqual([bob.userId, alice.userId]);
    await waitFor(
      () => seen.filter((x) => x.endsWith('.posted')).length === 2 && seen.some((x) => x.endsWith('.edited')),
    );
  } finally {
    await nc.close();
  }
  const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
  child!.kill('SIGTERM');
  expect(await exited).toBe(0);
  expect(lines.some((l) => l['msg'] === 'stopped' && l['ok'] === true)).toBe(true);
}, 60_000);
