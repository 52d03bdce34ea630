/**
 * The admin handlers' failure paths that real servers do not produce on demand: a bug in the service (INTERNAL,
 * logged MESSAGE_STORE_ADMIN_INTERNAL, never thrown out of the handler) and a reply larger than the NATS server
 * accepts (RESOURCE_EXHAUSTED, MESSAGE_STORE_ADMIN_REPLY_TOO_LARGE). The happy paths and refusals run against
 * PostgreSQL and NATS in test/integration/nats-admin.int.test.ts.
 */
import { Code } from '@hubbub/errors';
import type { Replyable } from '@hubbub/nats';
import { messagesV1 } from '@hubbub/proto';
import { createLogger } from '@hubbub/runtime';
import { broadcastHandler, channelCreateHandler } from './nats-admin';
import type { AdminApp } from './nats-admin';

interface Line {
  level: string;
  code?: string;
  action?: string;
  by?: string;
  messageIds?: string[];
}

function setup(app: Partial<AdminApp>, maxReplyBytes = 1024 * 1024) {
  const lines: Line[] = [];
  const log = createLogger({
    service: 'nats-admin-unit',
    level: 'info',
    destination: { write: (s: string) => void lines.push(JSON.parse(s) as Line) },
  });
  const full: AdminApp = {
    adminCreateChannel: () => Promise.reject(new Error('not used')),
    adminBroadcast: () => Promise.reject(new Error('not used')),
    flushEvents: () => undefined,
    ...app,
  };
  const o = { log, maxTextBytes: 65_536, maxReplyBytes: () => maxReplyBytes };
  return { lines, create: channelCreateHandler(full, o), broadcast: broadcastHandler(full, o) };
}

function request(body: string): Replyable & { replies: { data?: Uint8Array; error?: [number, string] }[] } {
  const replies: { data?: Uint8Array; error?: [number, string] }[] = [];
  return {
    data: new TextEncoder().encode(body),
    replies,
    respond: (data) => {
      replies.push(data === undefined ? {} : { data });
      return true;
    },
    respondError: (code, description) => {
      replies.push({ error: [code, description] });
      return true;
    },
  };
}

describe('admin handlers', () => {
  it('answers a failure of the service with INTERNAL, logs it, and does not throw', async () => {
    const h = setup({ adminCreateChannel: () => Promise.reject(new TypeError('boom')) });
    const m = request('{"slug":"x","by":"ann"}');
    await expect(h.create(m)).resolves.toBeUndefined();
    expect(m.replies).toEqual([{ error: [Code.INTERNAL, expect.stringMatching(/^[A-Z_]+: /) as string] }]);
    expect(h.lines).toContainEqual(
      expect.objectContaining({
        level: 'error',
        code: 'MESSAGE_STORE_ADMIN_INTERNAL',
        action: 'channel-create',
        by: 'ann',
      }),
    );
  });

  it('refuses a reply larger than the NATS server accepts with RESOURCE_EXHAUSTED', async () => {
    const message = messagesV1.Message.fromPartial({ id: '5', channelId: '1', text: 'z'.repeat(600) });
    let flushed = 0;
    const h = setup(
      {
        adminBroadcast: () => Promise.resolve({ messages: [message, { ...message, id: '6' }], duplicates: 0 }),
        flushEvents: () => void flushed++,
      },
      1_000,
    );
    const m = request('{"text":"zzz"}');
    await h.broadcast(m);
    expect(flushed).toBe(1);
    expect(m.replies).toEqual([{ error: [Code.RESOURCE_EXHAUSTED, expect.stringMatching(/^REPLY_TOO_LARGE: /)] }]);
    // The broadcast happened (audit line with its ids); only its answer could not travel.
    expect(h.lines).toContainEqual(
      expect.objectContaining({
        level: 'info',
        code: 'MESSAGE_STORE_ADMIN_ACTION',
        by: 'nats-operator',
        messageIds: ['5', '6'],
      }),
    );
    expect(h.lines).toContainEqual(
      expect.objectContaining({ level: 'warn', code: 'MESSAGE_STORE_ADMIN_REPLY_TOO_LARGE', by: 'nats-operator' }),
    );
  });

  it('answers a broadcast with the proto3 JSON of its messages after flushing their events', async () => {
    const message = messagesV1.Message.fromPartial({
      id: '7',
      channelId: '2',
      text: 'hi',
      authorId: 'system:operator',
    });
    const order: string[] = [];
    const h = setup({
      adminBroadcast: () => Promise.resolve({ messages: [message], duplicates: 0 }),
      flushEvents: () => void order.push('flush'),
    });
    const m = request('{"text":"hi","channels":["general"]}');
    const respond = m.respond.bind(m);
    m.respond = (d) => {
      order.push('reply');
      return respond(d);
    };
    await h.broadcast(m);
    expect(order).toEqual(['flush', 'reply']);
    const body = JSON.parse(new TextDecoder().decode(m.replies[0]!.data)) as unknown;
    expect(messagesV1.AdminBroadcastResponse.fromJSON(body).messages).toEqual([message]);
    expect(h.lines).toContainEqual(
      expect.objectContaining({ level: 'info', code: 'MESSAGE_STORE_ADMIN_ACTION', action: 'broadcast' }),
    );
  });
});
