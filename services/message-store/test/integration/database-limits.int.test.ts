/**
 * How message-store uses PostgreSQL under pressure. MESSAGE_STORE_STATEMENT_TIMEOUT_MS: a statement PostgreSQL
 * cannot finish in time (here: waiting for a lock another session holds) is cancelled and answered DEADLINE_EXCEEDED
 * `QUERY_TIMEOUT`, reads and posts alike; nothing of a cancelled post is stored, and the service answers normally once
 * the lock is gone. Posts have connections of their own: reads holding every pooled connection do not delay them.
 */
import { Code } from '@hubbub/errors';
import { messagesV1 } from '@hubbub/proto';
import { createMessageStoreClient } from '@hubbub/msg-client';
import type { MessageStoreClient } from '@hubbub/msg-client';
import { createTestDatabase, createTestNats } from '@hubbub/testing';
import type { TestDatabase, TestNats } from '@hubbub/testing';
import { Client } from 'pg';
import { alice, createReq, listReq, newMessage, refusal, startStore } from './harness';
import type { Started } from './harness';

let db: TestDatabase;
let nats: TestNats;
let s: Started;
let once: MessageStoreClient;

beforeAll(async () => {
  db = await createTestDatabase();
  nats = createTestNats();
  s = await startStore({
    databaseUrl: db.url,
    natsUrl: nats.url,
    prefix: nats.prefix,
    env: { MESSAGE_STORE_STATEMENT_TIMEOUT_MS: '200' },
  });
  // One attempt per call: the client would otherwise retry DEADLINE_EXCEEDED.
  once = createMessageStoreClient(`127.0.0.1:${s.srv.port}`, { deadlineMs: 5_000, attempts: 1 });
});

afterAll(async () => {
  once?.close();
  await s?.close();
  await nats?.cleanup();
  await db?.drop();
});

it('a statement over the limit is cancelled with QUERY_TIMEOUT; a cancelled post stores nothing; then all is normal', async () => {
  const { channel } = await s.client.createChannel(
    createReq(alice, messagesV1.ChannelKind.CHANNEL_KIND_GROUP, { title: 'slow' }),
  );
  const ch = channel!.id;
  await s.client.postMessage({ principal: alice, message: newMessage(ch, 'before the lock') });

  const locker = new Client({ connectionString: db.url });
  await locker.connect();
  try {
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE messages IN ACCESS EXCLUSIVE MODE');
    const t0 = Date.now();
    expect(await refusal(once.listMessages(listReq(alice, ch)))).toEqual({
      code: Code.DEADLINE_EXCEEDED,
      reason: 'QUERY_TIMEOUT',
    });
    expect(
      await refusal(
        once.postMessage({ principal: alice, message: newMessage(ch, 'during the lock', { clientKey: 'k-lock' }) }),
      ),
    ).toEqual({ code: Code.DEADLINE_EXCEEDED, reason: 'QUERY_TIMEOUT' });
    // Both were cancelled by PostgreSQL after 200 ms each, far from the client's 5 s deadline.
    expect(Date.now() - t0).toBeLessThan(2_000);
  } finally {
    await locker.query('ROLLBACK');
    await locker.end();
  }

  const retried = await once.postMessage({
    principal: alice,
    message: newMessage(ch, 'during the lock', { clientKey: 'k-lock' }),
  });
  expect(retried.duplicate).toBe(false);
  const { messages } = await once.listMessages(listReq(alice, ch));
  expect(messages.map((m) => m.text)).toEqual(['before the lock', 'during the lock']);
});

it('posts commit while slow reads hold every pooled connection (the batch INSERT has connections of its own)', async () => {
  const busy = await startStore({
    databaseUrl: db.url,
    natsUrl: nats.url,
    prefix: `${nats.prefix}b`,
    env: { MESSAGE_STORE_DB_POOL_MAX: '2' },
  });
  try {
    const { channel } = await busy.client.createChannel(
      createReq(alice, messagesV1.ChannelKind.CHANNEL_KIND_GROUP, { title: 'busy' }),
    );
    // Two reads of 1.5 s take both connections of the pool (as slow searches or a crowd of pollers would).
    const slow = [busy.srv.sql.query('SELECT pg_sleep(1.5)'), busy.srv.sql.query('SELECT pg_sleep(1.5)')];
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    const posted = await busy.client.postMessage({ principal: alice, message: newMessage(channel!.id, 'not stuck') });
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(posted.message?.text).toBe('not stuck');
    await Promise.all(slow);
  } finally {
    await busy.close();
  }
});
