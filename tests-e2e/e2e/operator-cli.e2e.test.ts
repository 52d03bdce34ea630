/**
 * The operator CLI (`pnpm hubbub …`, services/identity/dist/src/cli.js) run as a process against the running
 * services: accounts through identity's gRPC, channels and broadcasts through message-store's operator NATS
 * subjects. Checks what an operator sees (exit status, output) and what the services stored.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { messagesV1 } from '@hubbub/proto';
import { otherDoorGuest, startE2eEnv } from '../harness/env';
import type { E2eEnv } from '../harness/env';
import { repoRoot } from '../harness/proc';

jest.setTimeout(60_000);

let env: E2eEnv;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function hubbub(...argv: string[]): Promise<Run> {
  return hubbubWith({}, ...argv);
}

function hubbubWith(envOverride: Record<string, string>, ...argv: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(repoRoot(), 'services', 'identity', 'dist', 'src', 'cli.js'), ...argv],
      {
        env: {
          PATH: process.env['PATH'] ?? '',
          IDENTITY_ADDR: env.stack.identityAddr,
          NATS_URL: env.nats.url,
          NATS_PREFIX: env.nats.prefix,
          ...envOverride,
        },
        timeout: 30_000,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

beforeAll(async () => {
  env = await startE2eEnv();
});
afterAll(async () => {
  await env?.destroy();
});

describe('operator CLI', () => {
  it('creates an owned announcement channel, refuses a taken slug, broadcasts idempotently', async () => {
    const add = await hubbub('user', 'add', 'olga', '--password', 'olga password 1', '--json');
    expect(add).toMatchObject({ code: 0 });
    const olga = JSON.parse(add.stdout) as { id: string; username: string };
    expect(olga.username).toBe('olga');

    const made = await hubbub(
      'channel',
      'create',
      'news',
      '--title',
      'News',
      '--kind',
      'channel',
      '--owner',
      'olga',
      '--json',
    );
    expect(made).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(made.stdout)).toMatchObject({
      channel: { slug: 'news', title: 'News', kind: 'CHANNEL_KIND_CHANNEL', ownerId: olga.id },
    });
    const plain = await hubbub('channel', 'create', 'ops', '--private');
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^created channel ops \(id \d+, group, private\)/);

    const taken = await hubbub('channel', 'create', 'news');
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/^refused: ALREADY_EXISTS SLUG_TAKEN: /);

    const sent = await hubbub('broadcast', 'maintenance at 22:00', '--channel', 'news,ops', '--key', 'm-1', '--json');
    expect(sent.code).toBe(0);
    const first = messagesV1.AdminBroadcastResponse.fromJSON(JSON.parse(sent.stdout));
    expect(first.messages).toHaveLength(2);
    for (const m of first.messages)
      expect(m).toMatchObject({ text: 'maintenance at 22:00', authorId: 'system:operator' });
    // A retry with the same key posts nothing again and answers the same messages.
    const again = await hubbub('broadcast', 'maintenance at 22:00', '--channel', 'news,ops', '--key', 'm-1', '--json');
    const second = messagesV1.AdminBroadcastResponse.fromJSON(JSON.parse(again.stdout));
    expect(second.messages.map((m) => m.id)).toEqual(first.messages.map((m) => m.id));
    const newsId = first.messages[0]!.channelId;
    const hist = await env.store.listMessages(
      messagesV1.ListMessagesRequest.fromPartial({ principal: otherDoorGuest('reader'), channelId: newsId, limit: 10 }),
    );
    expect(hist.messages.map((m) => m.text)).toEqual(['maintenance at 22:00']);
  });

  it('reports refusals and usage errors with their exit status', async () => {
    const unknown = await hubbub('broadcast', 'hello', '--channel', 'no-such-channel');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^refused: NOT_FOUND CHANNEL_NOT_FOUND: /);
    const noOwner = await hubbub('channel', 'create', 'orphan', '--owner', 'nobody-here');
    expect(noOwner.code).toBe(1);
    expect(noOwner.stderr).toMatch(/NOT_FOUND/);
    const badKind = await hubbub('channel', 'create', 'dm', '--kind', 'direct');
    expect(badKind.code).toBe(2);
    expect(badKind.stderr).toContain('--kind is group, channel or board');
    expect((await hubbub('broadcast')).code).toBe(2);
  });

  it('fails at once, with exit 1, when NATS cannot be reached', async () => {
    // Without a single-attempt connect the CLI would wait for NATS forever (execFile's 30 s timeout: code -1).
    const r = await hubbubWith({ NATS_URL: 'nats://127.0.0.1:1' }, 'broadcast', 'hello');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/UNAVAILABLE NATS_UNREACHABLE: cannot reach NATS at nats:\/\/127\.0\.0\.1:1/);
  });
});
