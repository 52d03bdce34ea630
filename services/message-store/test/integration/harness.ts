/** Integration harness: a message-store in-process on port 0 against a fresh database and NATS prefix. */
import { loadConfig, createLogger } from '@hubbub/runtime';
import type { Logger } from '@hubbub/runtime';
import { createMessageStoreClient, newMessage as newMessageOf, principal } from '@hubbub/msg-client';
import type { MessageStoreClient } from '@hubbub/msg-client';
import { connect } from '@nats-io/transport-node';
import { Client } from 'pg';
import type { NatsConnection } from '@nats-io/nats-core';
import { messagesV1 } from '@hubbub/proto';
import { schema } from '../../src/config';
import { start } from '../../src/server';
import type { MessageStoreServer, StartDeps } from '../../src/server';

export interface Started {
  readonly srv: MessageStoreServer;
  readonly client: MessageStoreClient;
  close(): Promise<void>;
}

export const testLog: Logger = createLogger({ service: 'message-store-test', level: 'silent' });

export async function startStore(
  o: { databaseUrl?: string; natsUrl: string; prefix: string; env?: Record<string, string> },
  deps: StartDeps = {},
): Promise<Started> {
  const cfg = loadConfig(schema, {
    ...(o.databaseUrl ? { DATABASE_URL: o.databaseUrl } : {}),
    NATS_URL: o.natsUrl,
    NATS_PREFIX: o.prefix,
    MESSAGE_STORE_PORT: '0',
    MESSAGE_STORE_METRICS_PORT: '0',
    MESSAGE_STORE_CACHE_TTL_MS: '0',
    MESSAGE_STORE_OUTBOX_CLEANUP_INTERVAL_MS: '5',
    LOG_LEVEL: 'silent',
    NODE_ENV: 'test',
    MESSAGE_STORE_ENABLE_TEST_SEED: '1',
    ...o.env,
  });
  const srv = await start(cfg, { log: testLog, ...deps });
  const client = createMessageStoreClient(`127.0.0.1:${srv.port}`, { deadlineMs: 5_000 });
  return {
    srv,
    client,
    close: async () => {
      client.close();
      await srv.close();
    },
  };
}

export async function natsClient(url: string): Promise<NatsConnection> {
  return connect({ servers: url, name: 'message-store-test' });
}

/** Resolves at the next `reconnect` of `nc` (call before causing the disconnect). */
export function nextReconnect(nc: NatsConnection): Promise<void> {
  const status = nc.status();
  return (async () => {
    for await (const s of status) if (s.type === 'reconnect') return;
  })();
}

export const alice = principal({ userId: '1001', displayName: 'alice', door: 'test' });
export const bob = principal({ userId: '1002', displayName: 'bob', door: 'test' });
export const carol = principal({ userId: '1003', displayName: 'carol', door: 'test' });
export const sysop = principal({ userId: '1', displayName: 'root', sysop: true, door: 'test' });
export const frank = principal({ userId: 'guest:frank', displayName: 'frank', guest: true, door: 'irc-binary' });

export function newMessage(
  channelId: string,
  text: string,
  more: Partial<messagesV1.NewMessage> = {},
): messagesV1.NewMessage {
  return newMessageOf({ channelId, text, ...more });
}

export function listReq(
  p: messagesV1.Principal | undefined,
  channelId: string,
  more: Partial<messagesV1.ListMessagesRequest> = {},
): messagesV1.ListMessagesRequest {
  return {
    principal: p,
    channelId,
    before: '',
    after: '',
    limit: 0,
    includeDeleted: false,
    tags: [],
    mailbox: false,
    ...more,
  };
}

export function createReq(
  p: messagesV1.Principal,
  kind: messagesV1.ChannelKind,
  more: Partial<messagesV1.CreateChannelRequest> = {},
): messagesV1.CreateChannelRequest {
  return {
    principal: p,
    kind,
    slug: '',
    title: '',
    info: '',
    visibility: messagesV1.Visibility.VISIBILITY_PRIVATE,
    memberIds: [],
    ...more,
  };
}

/** Resolves with the error's code and reason when `p` is refused; fails the test when it succeeds. */
export async function refusal(p: Promise<unknown>): Promise<{ code: number; reason: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as { code: number; reason: string };
    return { code: err.code, reason: err.reason };
  }
  throw new Error('expected a refusal');
}

/**
 * Holds one post's INSERT: an uncommitted row with the same (author, client key) makes PostgreSQL wait on the unique
 * index for this transaction, while posts with other keys commit. `release` rolls back; the held post then commits.
 */
export async function holdClientKey(
  databaseUrl: string,
  channelId: string,
  authorId: string,
  clientKey: string,
): Promise<{ release(): Promise<void>; waiting(): Promise<number> }> {
  const c = new Client({ connectionString: databaseUrl });
  const probe = new Client({ connectionString: databaseUrl });
  await c.connect();
  await probe.connect();
  await c.query('BEGIN');
  await c.query(
    `INSERT INTO messages (id, channel_id, author_id, author_name, author_kind, door, text, kind, created_at,
       changed_at, client_key) VALUES ($1, $2, $3, 'holder', 1, 'test', 'held', 1, now(), now(), $4)`,
    [String(1 + Math.floor(Math.random() * 1e9)), channelId, authorId, clientKey],
  );
  return {
    release: async () => {
      await c.query('ROLLBACK');
      await c.end();
      await probe.end();
    },
    // Statements of the database waiting for another transaction (the held INSERTs). pg_stat_activity keeps one
    // snapshot per transaction: the count runs outside the holding one.
    waiting: async () =>
      Number(
        (
          await probe.query<{ n: string }>(
            `SELECT count(*)::text AS n FROM pg_locks l JOIN pg_stat_activity a USING (pid)
             WHERE a.datname = current_database() AND l.locktype = 'transactionid' AND NOT l.granted`,
          )
        ).rows[0]!.n,
      ),
  };
}
