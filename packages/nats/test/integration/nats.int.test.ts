import { createLogger } from '@hubbub/runtime';
import { createTestNats, waitFor } from '@hubbub/testing';
import { subjects } from '@hubbub/proto';
import type { JsonCodec, NatsConnection } from '../../src/index';
import {
  claim,
  connectNats,
  drainNats,
  NATS_PENDING_LIMIT,
  openKv,
  publishJson,
  registerNatsService,
  release,
  renew,
  subscribeJson,
} from '../../src/index';

interface Ping {
  id: string;
  text: string;
}
const PingCodec: JsonCodec<Ping> = {
  toJSON: (m) => ({ id: m.id, text: m.text }),
  fromJSON: (o) => {
    const r = o as Record<string, unknown>;
    if (typeof r['id'] !== 'string') throw new Error('bad');
    return { id: r['id'], text: typeof r['text'] === 'string' ? r['text'] : '' };
  },
};

const log = createLogger({ service: 'nats-test', level: 'silent' });
const tn = createTestNats();
let nc: NatsConnection;
let nc2: NatsConnection;

beforeAll(async () => {
  nc = await connectNats({ servers: tn.url, name: 'nats-test', log });
  nc2 = await connectNats({ servers: tn.url, name: 'nats-test-2', log });
});
afterAll(async () => {
  await drainNats(nc);
  await drainNats(nc2);
  await tn.cleanup();
});

describe('@hubbub/nats', () => {
  it('publishes and receives proto3-JSON payloads under the prefix, skipping bad payloads', async () => {
    const s = subjects(tn.prefix);
    const got: Ping[] = [];
    const bad: string[] = [];
    const sub = subscribeJson(
      nc2,
      s.chatAll,
      PingCodec,
      (m) => got.push(m),
      (subj) => bad.push(subj),
    );
    await nc2.flush();
    nc.publish(s.chat('42', 'posted'), 'not json');
    publishJson(nc, s.chat('42', 'posted'), PingCodec, { id: '1', text: 'hi' });
    await nc.flush();
    await waitFor(() => got.length === 1 && bad.length === 1);
    expect(got).toEqual([{ id: '1', text: 'hi' }]);
    expect(bad).toEqual([`${tn.prefix}.chat.42.posted`]);
    sub.unsubscribe();
  });

  it('writes what one event-loop turn publishes in one socket write, up to NATS_PENDING_LIMIT', async () => {
    const s = subjects(tn.prefix);
    let received = 0;
    const sub = nc2.subscribe(s.chat('7', 'posted'), {
      callback: () => {
        received += 1;
      },
    });
    await nc2.flush();
    // The transport's socket (nats.js internals): count the writes of one turn of 300 publishes of 1 KiB.
    const socket = (nc as unknown as { protocol: { transport: { socket: { write: (...a: unknown[]) => boolean } } } })
      .protocol.transport.socket;
    const write = socket.write.bind(socket);
    let writes = 0;
    socket.write = (...a: unknown[]) => {
      writes += 1;
      return write(...a);
    };
    try {
      const body = new Uint8Array(1024);
      for (let i = 0; i < 300; i++) nc.publish(s.chat('7', 'posted'), body);
      await nc.flush();
    } finally {
      socket.write = write;
    }
    // 300 KiB: with nats.js's default of 32 KiB it would be 10 writes; the flush's PING is a write of its own.
    expect(300 * 1024).toBeLessThan(NATS_PENDING_LIMIT);
    expect(writes).toBeLessThanOrEqual(2);
    await waitFor(() => received === 300);
    sub.unsubscribe();
  });

  it('claims a KV key atomically: exactly one of many concurrent claimers wins', async () => {
    const kv1 = await openKv(nc, `${tn.prefix}_claims`, 5_000);
    const kv2 = await openKv(nc2, `${tn.prefix}_claims`, 5_000);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => claim(i % 2 ? kv1 : kv2, 'alice', `session-${i}`)),
    );
    const winners = results.filter((r) => r !== undefined);
    expect(winners).toHaveLength(1);
    const rev = winners[0]!;
    const rev2 = await renew(kv1, 'alice', 'renewed', rev);
    expect(rev2).toBeGreaterThan(rev);
    expect(await renew(kv1, 'alice', 'stale', rev)).toBeUndefined(); // stale revision loses
    expect(await release(kv2, 'alice', rev)).toBe(false); // only the holder's revision releases
    expect(await release(kv2, 'alice', rev2!)).toBe(true);
    expect(await claim(kv1, 'alice', 'next')).toBeDefined();
  });

  it('brings the TTL of an existing bucket to the one asked for (older releases used another)', async () => {
    const old = await openKv(nc, `${tn.prefix}_ttl`, 60_000);
    expect((await old.status()).ttl).toBe(60_000);
    const now = await openKv(nc2, `${tn.prefix}_ttl`, 30_000);
    expect((await now.status()).ttl).toBe(30_000);
    await now.put('k', 'v'); // still usable after the update
    expect((await now.get('k'))?.string()).toBe('v');
  });

  it('registers with the NATS services framework so $SRV.PING finds it', async () => {
    const svc = await registerNatsService(nc, { name: `svc-${tn.prefix}`, version: '0.1.0', description: 'test' });
    // The server has the service's subscriptions once it answered a PING sent after them (the request
    // below comes from another connection, which could otherwise overtake them).
    await nc.flush();
    const r = await nc2.request(`$SRV.PING.svc-${tn.prefix}`, '', { timeout: 2_000 });
    expect(JSON.parse(r.string())).toMatchObject({ name: `svc-${tn.prefix}`, version: '0.1.0' });
    await svc.stop();
  });
});
