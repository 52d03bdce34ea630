/**
 * §5 limits and degraded backends over real TCP (in-memory backends): connection limits, the send
 * rate limit (M5), read backpressure, ineligible channels (M7), configured channel order (L1), a
 * stopped message-store (M11) or identity (N14), and the ops HTTP metrics.
 */
import { get } from 'node:http';
import { waitFor } from '@hubbub/testing';
import { encodeClientFrame } from '../../src/protocol/frames';
import { logLines, startMemoryServer } from '../helpers/memory-server';
import type { MemoryServer } from '../helpers/memory-server';
import { RawClient } from '../helpers/raw-client';

const V13 = '03 07 67 65 6e 65 72 61 6c 00 15 68 65 6c 6c 6f 20 66 72 6f 6d 20 64 64 5f 69 6e 74 65 72 6f 70';

const servers: MemoryServer[] = [];
const clients: RawClient[] = [];
async function server(...a: Parameters<typeof startMemoryServer>): Promise<MemoryServer> {
  const s = await startMemoryServer(...a);
  servers.push(s);
  return s;
}
async function client(s: MemoryServer): Promise<RawClient> {
  const c = await RawClient.connect(s.app.port);
  clients.push(c);
  return c;
}
async function ready(s: MemoryServer, nick: string): Promise<RawClient> {
  const c = await client(s);
  await c.handshake(nick);
  return c;
}
async function metric(s: MemoryServer, name: string, label?: string): Promise<number> {
  const m = await s.app.registry.getSingleMetric(name)!.get();
  return m.values.find((x) => label === undefined || Object.values(x.labels).includes(label))?.value ?? 0;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.app.close();
});

describe('limits (§5.2)', () => {
  it('IRCB_MAX_CONNECTIONS: the connection over the limit is accepted then closed at once, nothing sent', async () => {
    const s = await server({ maxConnections: 2 });
    await client(s);
    await client(s);
    await waitFor(() => s.app.server.connections.size === 2);
    const third = await client(s);
    expect(await third.waitClosed()).toBe(0);
    expect(await metric(s, 'ircb_connections_closed_total', 'IRCB_ERR_CONN_LIMIT')).toBe(1);
  });

  it('IRCB_MAX_CONNECTIONS_PER_IP', async () => {
    const s = await server({ maxConnectionsPerIp: 1 });
    const a = await client(s);
    await waitFor(() => s.app.server.connections.size === 1);
    const b = await client(s);
    expect(await b.waitClosed()).toBe(0);
    a.write('00 02');
    await a.expect('00 00');
  });

  it('M5 rate limit 20/s burst 40: 100 frames in one write → 40..40+20·t+1 echoes, the rest counted, connection open', async () => {
    const s = await server({ sendRatePerS: 20, sendBurst: 40 });
    const a = await ready(s, 'm5');
    const t0 = Date.now();
    a.write(
      Buffer.concat(
        Array.from({ length: 100 }, (_, i) =>
          encodeClientFrame({ type: 'SendMessage', channel: 'general', content: `r${i}` }),
        ),
      ),
    );
    await waitFor(
      async () => (await metric(s, 'ircb_messages_dropped_total', 'rate_limited')) + s.store.messages.length >= 100,
    );
    const elapsed = (Date.now() - t0) / 1000;
    const echoes = s.store.messages.length;
    expect(echoes).toBeGreaterThanOrEqual(40);
    expect(echoes).toBeLessThanOrEqual(40 + 20 * elapsed + 1);
    expect(await metric(s, 'ircb_messages_dropped_total', 'rate_limited')).toBe(100 - echoes);
    a.write('04');
    await waitFor(() => a.frames.some((f) => f.type === 'ListChannels'));
  });

  it('IRCB_HISTORY_RATE_PER_S 20/s burst 5: 15 LIST_MESSAGES in one write are all answered, in order, the last ≥ 0.5 s later; other connections are not slowed', async () => {
    const s = await server({ historyRatePerS: 20, historyBurst: 5 });
    let queries = 0;
    const orig = s.store.listMessages.bind(s.store);
    s.store.listMessages = (q) => {
      queries++;
      return orig(q);
    };
    const a = await ready(s, 'hist');
    const other = await ready(s, 'other');
    const t0 = Date.now();
    a.write(
      Buffer.concat([
        ...Array.from({ length: 15 }, () =>
          encodeClientFrame({ type: 'ListMessages', channel: 'general', before: 0n, after: 0n }),
        ),
        encodeClientFrame({ type: 'SendMessage', channel: 'general', content: 'after the lists' }),
      ]),
    );
    // Within the burst: answered at once; the other connection's request does not wait behind a's.
    await waitFor(() => a.frames.filter((f) => f.type === 'ListMessages').length >= 5, 2_000, 'the burst');
    other.send({ type: 'ListMessages', channel: 'general', before: 0n, after: 0n });
    await waitFor(() => other.frames.some((f) => f.type === 'ListMessages'), 200, "the other connection's reply");
    expect(a.frames.filter((f) => f.type === 'ListMessages').length).toBeLessThan(15);
    await waitFor(() => a.frames.some((f) => f.type === 'SendMessage'), 5_000, 'the echo after the lists');
    const elapsed = Date.now() - t0;
    // 10 requests over the burst at 20/s: at least 450 ms (timer granularity), every one answered, none dropped,
    // and the post behind them came after all 15 replies.
    expect(elapsed).toBeGreaterThanOrEqual(450);
    const kinds = a.frames.map((f) => f.type);
    expect(kinds.filter((k) => k === 'ListMessages')).toHaveLength(15);
    expect(kinds.lastIndexOf('ListMessages')).toBeLessThan(kinds.indexOf('SendMessage'));
    expect(queries).toBe(16);
    expect(await metric(s, 'ircb_history_delayed_total')).toBeGreaterThanOrEqual(10);
    expect(logLines(s.logs).some((l) => l['code'] === 'IRCB_HISTORY_THROTTLED')).toBe(true);
  });

  it('IRCB_IP_SEND_RATE_PER_S 20/s burst 20: three connections of one address share one bucket; the rest dropped and counted', async () => {
    const s = await server({ ipSendRatePerS: 20, ipSendBurst: 20 });
    const conns = [await ready(s, 'ip1'), await ready(s, 'ip2'), await ready(s, 'ip3')];
    const t0 = Date.now();
    for (const [i, c] of conns.entries())
      c.write(
        Buffer.concat(
          Array.from({ length: 20 }, (_, j) =>
            encodeClientFrame({ type: 'SendMessage', channel: 'general', content: `c${i}m${j}` }),
          ),
        ),
      );
    await waitFor(
      async () =>
        (await metric(s, 'ircb_messages_dropped_total', 'rate_limited_address')) + s.store.messages.length >= 60,
    );
    const elapsed = (Date.now() - t0) / 1000;
    const stored = s.store.messages.length;
    expect(stored).toBeGreaterThanOrEqual(20);
    expect(stored).toBeLessThanOrEqual(20 + 20 * elapsed + 1);
    expect(await metric(s, 'ircb_messages_dropped_total', 'rate_limited_address')).toBe(60 - stored);
    // Every connection stays open and answers.
    for (const c of conns) c.write('04');
    for (const c of conns) await waitFor(() => c.frames.some((f) => f.type === 'ListChannels'));
  });

  it("IRCB_IP_HISTORY_RATE_PER_S: one connection's lists spend its address's bucket, so another connection's wait", async () => {
    const s = await server({ ipHistoryRatePerS: 20, ipHistoryBurst: 5 });
    const a = await ready(s, 'iph1');
    const b = await ready(s, 'iph2');
    const list = encodeClientFrame({ type: 'ListMessages', channel: 'general', before: 0n, after: 0n });
    a.write(Buffer.concat(Array.from({ length: 5 }, () => list)));
    await waitFor(() => a.frames.filter((f) => f.type === 'ListMessages').length === 5, 2_000, "a's burst");
    expect(await metric(s, 'ircb_history_delayed_total')).toBe(0);
    b.write(Buffer.concat(Array.from({ length: 3 }, () => list)));
    await waitFor(() => b.frames.filter((f) => f.type === 'ListMessages').length === 3, 3_000, "b's lists, later");
    expect(await metric(s, 'ircb_history_delayed_total')).toBeGreaterThanOrEqual(1);
  });

  it('IRCB_MAX_PENDING_FRAMES: reading pauses while the queue is full and resumes; pipelining is never an error', async () => {
    const s = await server({ maxPendingFrames: 4 });
    let release: (() => void) | undefined;
    const gate = new Promise<void>((r) => (release = r));
    const orig = s.store.postBatch.bind(s.store);
    let calls = 0;
    s.store.postBatch = async (a, p) => {
      calls++;
      await gate;
      return orig(a, p);
    };
    const a = await ready(s, 'bp');
    a.write(
      Buffer.concat(
        Array.from({ length: 50 }, (_, i) =>
          encodeClientFrame({ type: 'SendMessage', channel: 'general', content: `p${i}` }),
        ),
      ),
    );
    await waitFor(() => calls === 1);
    const conn = [...s.app.server.connections][0]!;
    await waitFor(() => conn.session.pendingFrames >= 4);
    expect(conn.session.pendingFrames).toBeLessThanOrEqual(5);
    release!();
    await waitFor(() => s.store.messages.length === 50, 5_000, 'all 50 stored');
    expect(s.store.messages.map((m) => m.text)).toEqual(Array.from({ length: 50 }, (_, i) => `p${i}`));
  });

  it('posts pipelined faster than the store commits, then FIN in the same write: every post is stored, in order; nothing more is sent', async () => {
    const s = await server({ maxPendingFrames: 8 });
    let release: (() => void) | undefined;
    const gate = new Promise<void>((r) => (release = r));
    const orig = s.store.postBatch.bind(s.store);
    s.store.postBatch = async (a, p) => {
      await gate;
      return orig(a, p);
    };
    const a = await ready(s, 'piper');
    const n = 2000;
    const received = a.received.length;
    a.socket.end(
      Buffer.concat(
        Array.from({ length: n }, (_, i) =>
          encodeClientFrame({ type: 'SendMessage', channel: 'general', content: `p${i}` }),
        ),
      ),
    );
    await a.waitClosed();
    // Still counted against the connection limits while its posts are being stored.
    expect(s.app.server.connections.size).toBe(1);
    release!();
    await waitFor(() => s.store.messages.length === n, 3_000, `all ${n} stored`).catch((e: unknown) => {
      throw new Error(`${String(e)}; stored ${s.store.messages.length}`);
    });
    expect(s.store.messages.map((m) => m.text)).toEqual(Array.from({ length: n }, (_, i) => `p${i}`));
    expect(a.received.length).toBe(received);
    await waitFor(() => s.app.server.connections.size === 0);
  });

  it('a message a client read in LIST_MESSAGES is not sent to it live afterwards; other connections get it live', async () => {
    const s = await server({});
    const general = s.store.channels.find((c) => c.name === 'general')!;
    const reader = await ready(s, 'catcher');
    const other = await ready(s, 'bystander');
    // The live copy is late: the event is held back until the reader has read the message in history.
    const held: Parameters<NonNullable<typeof s.store.onPosted>>[0][] = [];
    const publish = s.store.onPosted!;
    s.store.onPosted = (ev) => void held.push(ev);
    const m = s.store.store(general.id, 'someone', 'read before its event');
    reader.send({ type: 'ListMessages', channel: 'general', before: 0n, after: 0n });
    await waitFor(() => reader.frames.some((f) => f.type === 'ListMessages'), 3_000, 'the history reply');
    for (const ev of held) publish(ev);
    await waitFor(
      () => other.frames.some((f) => f.type === 'SendMessage' && f.message.id === m.id),
      3_000,
      'the live copy elsewhere',
    );
    // Everything sent to the reader after the event was handled has arrived once a later reply is in.
    reader.send({ type: 'ListChannels' });
    await waitFor(() => reader.frames.some((f) => f.type === 'ListChannels'), 3_000, 'a later reply');
    expect(reader.frames.filter((f) => f.type === 'SendMessage')).toEqual([]);
  });

  it('posts message-store refuses (a NUL character) are dropped and logged once per interval, not once per frame', async () => {
    const s = await server({});
    // As message-store answers content PostgreSQL cannot hold.
    s.store.postBatch = (_a, p) =>
      Promise.resolve(p.map(() => ({ ok: false as const, reason: 'NUL_CHARACTER: text must not contain U+0000' })));
    const a = await ready(s, 'nulflood');
    const n = 200;
    a.write(
      Buffer.concat(
        Array.from({ length: n }, () =>
          encodeClientFrame({ type: 'SendMessage', channel: 'general', content: 'a\u0000b' }),
        ),
      ),
    );
    const refusedLines = (): Record<string, unknown>[] =>
      logLines(s.logs).filter((l) => l['code'] === 'IRCB_DROP_REFUSED');
    await waitFor(() => refusedLines().length >= 1, 3_000, 'the refusal logged');
    // Every frame handled: a request after them is answered (the session handles its queue in order).
    a.write(encodeClientFrame({ type: 'ListChannels' }));
    await waitFor(() => a.frames.some((f) => f.type === 'ListChannels'), 3_000, 'the list after the posts');
    expect(refusedLines()).toHaveLength(1);
    expect(s.store.messages).toHaveLength(0);
  });

  it('a flood of 1-byte LIST_CHANNELS (663-byte replies) never holds more than IRCB_MAX_OUTBUF_BYTES unsent; every reply arrives', async () => {
    // 20 channels of 32 bytes: each 1-byte request is answered with 3 + 20 × 33 bytes.
    const names = Array.from({ length: 20 }, (_, i) => `c${i}`.padEnd(32, 'x'));
    const limit = 64 * 1024;
    const s = await server({ channels: names, maxOutbufBytes: limit });
    const a = await ready(s, 'amplify');
    const conn = [...s.app.server.connections][0]!;
    let most = 0;
    const flush = conn.flush.bind(conn);
    conn.flush = (): void => {
      most = Math.max(most, conn.unsentBytes);
      flush();
    };
    const n = 2048; // 2 KiB of requests, 1.3 MiB of replies
    a.write(Buffer.alloc(n, 0x04));
    await waitFor(() => a.frames.length >= n || a.closed, 10_000, `${n} replies`);
    expect(a.closed).toBe(false);
    expect(a.frames).toHaveLength(n);
    expect(a.frames.every((f) => f.type === 'ListChannels' && f.channels.length === 20)).toBe(true);
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(limit);
  });
});

describe('eligibility and channels', () => {
  it('M7 a message in a public channel named with 33 bytes is not delivered, and the channel is not listed', async () => {
    const s = await server();
    const a = await ready(s, 'm7');
    const long = s.store.createChannel('c'.repeat(33), true);
    await s.app.channels.refresh();
    s.store.store(long.id, 'other', 'too long');
    const gen = s.store.channels.find((c) => c.name === 'general')!;
    const marker = s.store.store(gen.id, 'other', 'marker');
    const f = await a.nextFrame();
    expect(f).toMatchObject({ type: 'SendMessage', message: { id: marker.id } });
    a.write('04');
    expect(await a.nextFrame()).toEqual({ type: 'ListChannels', channels: ['general'] });
  });

  it('M8 (memory) a private channel event is not delivered', async () => {
    const s = await server();
    const a = await ready(s, 'm8');
    const priv = s.store.createChannel('secret', false);
    s.store.store(priv.id, 'x', 'private');
    const gen = s.store.channels.find((c) => c.name === 'general')!;
    const marker = s.store.store(gen.id, 'x', 'marker');
    expect(await a.nextFrame()).toMatchObject({ message: { id: marker.id } });
  });

  it('L1 -c a b -c a c on a fresh store lists a, b, c (V11)', async () => {
    const s = await server({ channels: ['a', 'b', 'c'] });
    const a = await ready(s, 'l1');
    a.write('04');
    await a.expect('04 00 06 01 61 01 62 01 63');
  });

  it('D6 messages of other doors are mapped: nick cut to 32 bytes, text cut to 1024 with …, attachment placeholder', async () => {
    const s = await server();
    const a = await ready(s, 'map');
    const gen = s.store.channels.find((c) => c.name === 'general')!;
    s.store.store(gen.id, 'é'.repeat(20), 'a'.repeat(2000));
    s.store.store(gen.id, 'bob', '', '', true);
    expect(await a.nextFrame()).toMatchObject({ message: { nick: 'é'.repeat(16), content: 'a'.repeat(1021) + '…' } });
    expect(await a.nextFrame()).toMatchObject({ message: { content: '[attachment]' } });
  });
});

describe('degraded backends', () => {
  it('M11 message-store stopped: no echo, connection stays, store_unavailable counted; LIST_MESSAGES → 05 00 00 00', async () => {
    const s = await server({ backendTimeoutMs: 300 });
    const a = await ready(s, 'm11');
    s.store.available = false;
    a.write(V13);
    await waitFor(async () => (await metric(s, 'ircb_messages_dropped_total', 'store_unavailable')) === 1);
    a.send({ type: 'ListMessages', channel: 'general', before: 0n, after: 0n });
    await a.expect('05 00 00 00');
    expect(logLines(s.logs).some((l) => l['code'] === 'IRCB_ERR_STORE_UNAVAILABLE')).toBe(true);
    s.store.available = true;
    a.frames.length = 0;
    a.write(V13);
    expect(await a.nextFrame()).toMatchObject({ type: 'SendMessage', message: { nick: 'm11' } });
  });

  it('N14 identity stopped: "erin" → 02 00, not counted, connection stays; identity back → 02 01', async () => {
    const s = await server({ maxAuthFailures: 1 });
    const c = await client(s);
    c.write('00 02');
    await c.expect('00 00');
    s.identity.available = false;
    c.send({ type: 'Authenticate', nick: 'erin' });
    await c.expect('02 00');
    s.identity.available = true;
    c.send({ type: 'Authenticate', nick: 'erin' });
    await c.expect('02 01');
    expect(logLines(s.logs).some((l) => l['code'] === 'IRCB_ERR_IDENTITY_UNAVAILABLE')).toBe(true);
  });
});

describe('ops HTTP (IRCB_METRICS_PORT)', () => {
  it('serves /healthz, /readyz and the ircb_* counters on /metrics', async () => {
    const s = await server({ metricsPort: 0 });
    expect(s.app.opsPort).toBeUndefined();
    // Port 0 means "off" for this setting, so use an ephemeral port found by listening once.
    const { createServer } = await import('node:net');
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const o = await server({ metricsPort: port, opsHost: '127.0.0.1' });
    await ready(o, 'ops');
    const body = await new Promise<string>((resolve, reject) =>
      get(`http://127.0.0.1:${port}/metrics`, (res) => {
        let d = '';
        res.on('data', (b: Buffer) => (d += b.toString()));
        res.on('end', () => resolve(d));
      }).on('error', reject),
    );
    for (const m of [
      'ircb_connections_open',
      'ircb_auth_total',
      'ircb_messages_dropped_total',
      'ircb_deliveries_total',
      'ircb_messages_posted_total',
      'ircb_connections_closed_total',
    ])
      expect(body).toContain(m);
    expect(body).toMatch(/ircb_connections_open\{[^}]*\} 1/);
  });
});
