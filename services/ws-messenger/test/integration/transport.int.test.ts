/**
 * Transport, limits and malformed input (spec §2.1, §2.6, §2.10, §3.1, §3.8, §5; acceptance #30,
 * #34, #35 and §7.2 R1–R5, R20–R25, R27–R29, R32): every malformed request gets its exact reply and
 * the connection keeps working.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect as netConnect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import WebSocket from 'ws';
import { createLogger } from '@hubbub/runtime';
import { freePort, makeCert, makeTempDir, waitFor } from '@hubbub/testing';
import type { TestCert } from '@hubbub/testing';
import { auth, makeUser } from './helpers/fixtures';
import type { U } from './helpers/fixtures';
import { frameText, MtpClient, mtp } from './helpers/mtp-client';
import type { Frame } from './helpers/mtp-client';
import { startStack } from './helpers/stack';
import type { Stack } from './helpers/stack';
import type { WsmServer } from '../../src/server';

let s: Stack;
let w: WsmServer;
let U1: U;
let url: string;
const clients: MtpClient[] = [];

beforeAll(async () => {
  s = await startStack();
  w = await s.wsm({ WSM_METRICS_PORT: String(await freePort()) });
  url = `ws://127.0.0.1:${w.port}/ws`;
  U1 = await makeUser(s, 'login');
}, 60_000);
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await s?.close();
});

async function connect(u = url): Promise<MtpClient> {
  // wss:// only in the TLS tests, with their self-signed certificate
  const c = await MtpClient.connect(u, u.startsWith('wss:') ? { rejectUnauthorized: false } : {});
  clients.push(c);
  return c;
}

function http(
  port: number,
  path: string,
  method = 'GET',
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((ok, fail) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => ok({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

const V = { version: '1.0', revision: '17' };
const error415 = (detail: string, t: number): string =>
  frameText('error', 'null', detail, 415, 'Unsupported Media Type', t);
const NOT_JSON = '1 validation error for Request\n__root__\n  Invalid JSON (type=value_error.json)';
const NOT_DICT = '1 validation error for Request\ndata\n  value is not a valid dict (type=type_error.dict)';

/** The answer to a WebSocket upgrade: 101 and the open socket, or the HTTP status of the refusal. */
function upgrade(url: string, headers: Record<string, string> = {}): Promise<{ code: number; ws: WebSocket }> {
  return new Promise((ok) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
      ok({ code: res.statusCode ?? 0, ws });
    });
    ws.on('open', () => ok({ code: 101, ws }));
    ws.on('error', () => undefined);
  });
}

/** A logger whose JSON lines are kept in `lines` (to assert log codes). */
function capturingLog(): { lines: Record<string, unknown>[]; log: ReturnType<typeof createLogger> } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    service: 'ws-messenger',
    level: 'info',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  return { lines, log };
}

describe('HTTP surface (§3.8, #35)', () => {
  const CSP =
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

  it('serves the browser client with the security headers', async () => {
    const r = await http(w.port, '/');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['content-security-policy']).toBe(CSP);
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    expect(r.body).toBe(readFileSync(join(__dirname, '../../public/index.html'), 'utf8'));
    const js = await http(w.port, '/static/app.js');
    expect([js.status, js.headers['content-type'], js.headers['content-security-policy']]).toEqual([
      200,
      'text/javascript; charset=utf-8',
      CSP,
    ]);
    expect((await http(w.port, '/static/style.css')).headers['content-type']).toBe('text/css; charset=utf-8');
    expect((await http(w.port, '/', 'HEAD')).status).toBe(200);
  });

  it('404 for unknown paths, 405 for other methods, 426 for a plain GET /ws', async () => {
    expect((await http(w.port, '/static/nope.js')).status).toBe(404);
    expect((await http(w.port, '/static/../package.json')).status).toBe(404);
    expect((await http(w.port, '/elsewhere')).status).toBe(404);
    expect((await http(w.port, '/', 'POST')).status).toBe(405);
    expect((await http(w.port, '/ws')).status).toBe(426);
  });

  it('/healthz and /readyz on the public port; /metrics only on the ops port (§3.8: other paths 404)', async () => {
    expect((await http(w.port, '/healthz')).status).toBe(200);
    await waitFor(async () => (await http(w.port, '/readyz')).status === 200, 10_000, 'readyz 200');
    const pub = await http(w.port, '/metrics');
    expect(pub.status).toBe(404);
    expect(pub.body).not.toContain('wsm_');
    expect(w.metricsPort).toBeDefined();
    expect((await http(w.metricsPort!, '/healthz')).status).toBe(200);
    expect((await http(w.metricsPort!, '/readyz')).status).toBe(200);
    const m = await http(w.metricsPort!, '/metrics');
    expect(m.status).toBe(200);
    for (const name of [
      'wsm_requests_total',
      'wsm_connections_open',
      'wsm_subscriptions_open',
      'wsm_push_frames_total',
      'wsm_connections_closed_total',
    ]) {
      expect(m.body).toContain(name);
    }
  });

  it('upgrade on /ws is accepted without subprotocol or compression; on another path → 403', async () => {
    const headers = await new Promise<Record<string, string | string[] | undefined>>((ok, fail) => {
      const req = httpRequest({
        host: '127.0.0.1',
        port: w.port,
        path: '/ws',
        headers: {
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
          'sec-websocket-protocol': 'mtp, chat',
          'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits',
        },
      });
      req.on('upgrade', (res, socket) => {
        socket.destroy();
        ok({ status: String(res.statusCode), ...res.headers });
      });
      req.on('error', fail);
      req.end();
    });
    expect(headers['status']).toBe('101');
    expect(headers['sec-websocket-accept']).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    expect(headers['sec-websocket-protocol']).toBeUndefined();
    expect(headers['sec-websocket-extensions']).toBeUndefined();
    const status = await new Promise<number>((ok) => {
      const bad = new WebSocket(`ws://127.0.0.1:${w.port}/no-ws`);
      bad.on('unexpected-response', (_req, res) => {
        ok(res.statusCode ?? 0);
        res.resume();
        bad.terminate();
      });
      bad.on('error', () => undefined);
    });
    expect(status).toBe(403);
  });
});

describe('malformed requests get their reply and the connection keeps working (§2.10, §5)', () => {
  const cases: [string, string | Buffer, string, boolean?][] = [
    ['#35 text hello error!', 'hello error!', NOT_JSON],
    ['R28 truncated JSON', '[', NOT_JSON],
    ['R28 NaN literal', '{"type": NaN}', NOT_JSON],
    [
      '#30 a JSON string',
      '"hello"',
      '1 validation error for Request\n__root__\n  Request expected dict not str (type=type_error)',
    ],
    [
      'a JSON array',
      '[1, 2]',
      '1 validation error for Request\n__root__\n  Request expected dict not list (type=type_error)',
    ],
    [
      'JSON null',
      'null',
      '1 validation error for Request\n__root__\n  Request expected dict not NoneType (type=type_error)',
    ],
    [
      'R1 ping_pong without data',
      JSON.stringify({ type: 'ping_pong', jsonapi: V }),
      '1 validation error for Request\ndata\n  field required (type=value_error.missing)',
    ],
    [
      'R2 data.user empty',
      JSON.stringify({ type: 'ping_pong', jsonapi: V, data: { user: [] } }),
      '1 validation error for Request\ndata -> user\n  ensure this value has at least 1 items (type=value_error.list.min_items; limit_value=1)',
    ],
    [
      'missing data.user',
      JSON.stringify({ type: 'ping_pong', data: {} }),
      '1 validation error for Request\ndata -> user\n  field required (type=value_error.missing)',
    ],
    [
      'R3 send_message without flow and message',
      JSON.stringify({ type: 'send_message', jsonapi: V, data: { user: [{ uuid: '1' }] } }),
      '2 validation errors for Request\ndata -> flow\n  field required (type=value_error.missing)\ndata -> message\n  field required (type=value_error.missing)',
    ],
    [
      'R4 delete_message with message [{}]',
      JSON.stringify({ type: 'delete_message', data: { user: [{ uuid: '1' }], message: [{}] } }),
      '1 validation error for Request\ndata -> message -> 0 -> uuid\n  field required (type=value_error.missing)',
    ],
    [
      'type missing',
      JSON.stringify({ data: { user: [{}] } }),
      '1 validation error for Request\ntype\n  field required (type=value_error.missing)',
    ],
    [
      'type null',
      JSON.stringify({ type: null, data: { user: [{}] } }),
      '1 validation error for Request\ntype\n  none is not an allowed value (type=type_error.none.not_allowed)',
    ],
    [
      'type a list',
      JSON.stringify({ type: [], data: { user: [{}] } }),
      '1 validation error for Request\ntype\n  str type expected (type=type_error.str)',
    ],
    [
      'jsonapi {}',
      JSON.stringify({ type: 'ping_pong', jsonapi: {}, data: { user: [{}] } }),
      '1 validation error for Request\njsonapi -> version\n  field required (type=value_error.missing)',
    ],
    [
      'data 5',
      JSON.stringify({ type: 'ping_pong', data: 5 }),
      '1 validation error for Request\ndata\n  value is not a valid dict (type=type_error.dict)',
    ],
    [
      'user a dict',
      JSON.stringify({ type: 'ping_pong', data: { user: {} } }),
      '1 validation error for Request\ndata -> user\n  value is not a valid list (type=type_error.list)',
    ],
    [
      'user [5]',
      JSON.stringify({ type: 'ping_pong', data: { user: [5] } }),
      '1 validation error for Request\ndata -> user -> 0\n  value is not a valid dict (type=type_error.dict)',
    ],
    [
      'time abc',
      JSON.stringify({ type: 'ping_pong', data: { time: 'abc', user: [{}] } }),
      '1 validation error for Request\ndata -> time\n  value is not a valid integer (type=type_error.integer)',
    ],
    [
      'is_bot maybe',
      JSON.stringify({ type: 'ping_pong', data: { user: [{ is_bot: 'maybe' }] } }),
      '1 validation error for Request\ndata -> user -> 0 -> is_bot\n  value could not be parsed to a boolean (type=type_error.bool)',
    ],
    [
      'email nope',
      JSON.stringify({ type: 'ping_pong', data: { user: [{ email: 'nope' }] } }),
      '1 validation error for Request\ndata -> user -> 0 -> email\n  value is not a valid email address (type=value_error.email)',
    ],
    [
      'R20 file_picture [300]',
      JSON.stringify({
        type: 'send_message',
        data: { user: [{ uuid: '1' }], flow: [{ uuid: '1' }], message: [{ file_picture: [300] }] },
      }),
      '1 validation error for Request\ndata -> message -> 0 -> file_picture\n  byte type expected (type=type_error.bytes)',
    ],
    [
      'R20 file_picture ["a"]',
      JSON.stringify({
        type: 'send_message',
        data: { user: [{ uuid: '1' }], flow: [{ uuid: '1' }], message: [{ file_picture: ['a'] }] },
      }),
      '1 validation error for Request\ndata -> message -> 0 -> file_picture\n  byte type expected (type=type_error.bytes)',
    ],
    [
      'no type and data 5',
      JSON.stringify({ data: 5 }),
      '2 validation errors for Request\ntype\n  field required (type=value_error.missing)\ndata\n  value is not a valid dict (type=type_error.dict)',
    ],
    ['binary frame with invalid UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), NOT_JSON, true],
  ];

  // (one row argument: jest would take a 4th declared parameter for a `done` callback)
  it.each(cases.map((row) => [row[0], row] as const))('%s', async (_name, [, payload, detail, binary]) => {
    const c = await connect();
    c.send(payload, { binary: binary ?? false });
    const raw = await c.nextRaw();
    const t = (JSON.parse(raw) as Frame).errors.time;
    expect(raw).toBe(error415(detail, t));
    const p = await c.req(mtp('ping_pong', auth(U1)));
    expect(p.errors.code).toBe(200);
    expect(c.closed).toBeUndefined();
  });

  it('R27 a valid ping_pong with errors.code "a" → 415 errors -> code', async () => {
    const c = await connect();
    const raw = await c.reqRaw({ ...(mtp('ping_pong', auth(U1)) as object), errors: { code: 'a' } });
    const t = (JSON.parse(raw) as Frame).errors.time;
    expect(raw).toBe(
      error415(
        '1 validation error for Request\nerrors -> code\n  value is not a valid integer (type=type_error.integer)',
        t,
      ),
    );
  });

  it('old method names (auth, ping-pong) are accepted; unknown names → 405 / 401; versions checked numerically', async () => {
    const c = await connect();
    expect((await c.req(mtp('ping-pong', auth(U1)))).type).toBe('ping-pong');
    const a = await c.req({
      type: 'auth',
      jsonapi: null,
      data: { user: [{ login: U1.login, password: U1.password }] },
    });
    expect([a.type, a.errors.code]).toEqual(['auth', 200]);
    for (const [version, code] of [
      ['1.0', 200],
      ['1.9', 200],
      ['1.10', 200],
      ['2.0', 505],
      ['0.1', 505],
    ] as const) {
      const f = await c.req({ type: 'ping_pong', jsonapi: { version }, data: { user: [auth(U1)] } });
      expect([version, f.errors.code, f.type]).toEqual([version, code, code === 200 ? 'ping_pong' : 'error']);
    }
    const nul = await c.req({ type: 'ping_pong', jsonapi: null, data: { user: [auth(U1)] } });
    expect(nul.errors.code).toBe(200);
    expect((await c.req(mtp('PING_PONG', auth(U1)))).errors.code).toBe(405);
    expect((await c.req(mtp('get_updates', { uuid: '1' }))).errors.code).toBe(401);
  });

  it('R23 a binary frame with a valid request gets a text reply', async () => {
    const c = await connect();
    let wasBinary: boolean | undefined;
    c.ws.once('message', (_d, isBinary: boolean) => (wasBinary = isBinary));
    c.send(Buffer.from(JSON.stringify(mtp('ping_pong', auth(U1)))), { binary: true });
    expect((await c.next()).errors.code).toBe(200);
    expect(wasBinary).toBe(false);
  });

  it('R25 200 malformed requests in a row are answered in order, then 200 OK; others unaffected', async () => {
    const c = await connect();
    const other = await connect();
    for (let i = 0; i < 200; i++)
      c.send(i % 2 ? `garbage ${i}` : JSON.stringify({ type: 'ping_pong', data: { time: `x${i}`, user: [{}] } }));
    c.send(mtp('ping_pong', auth(U1)));
    expect((await other.req(mtp('ping_pong', auth(U1)))).errors.code).toBe(200);
    for (let i = 0; i < 200; i++) {
      const f = await c.next();
      expect(f.errors.code).toBe(415);
      expect(f.errors.detail.includes('Invalid JSON')).toBe(i % 2 === 1);
    }
    expect((await c.next()).errors.code).toBe(200);
  });

  it('R24 a 1 048 577-byte message closes with 1009; a 1 048 576-byte valid request is handled', async () => {
    const c = await connect();
    const base = JSON.stringify(mtp('ping_pong', auth(U1)));
    const exact = base.slice(0, -1) + ', "pad": "' + 'x'.repeat(1_048_576 - base.length - 11) + '"}';
    expect(Buffer.byteLength(exact)).toBe(1_048_576);
    expect((await c.req(JSON.parse(exact))).errors.code).toBe(200);
    c.send(exact.slice(0, -2) + 'xx"}');
    await waitFor(() => c.closed !== undefined, 5_000, 'close');
    expect(c.closed!.code).toBe(1009);
    expect(c.unread()).toEqual([]);
    // other connections are unaffected
    const d = await connect();
    expect((await d.req(mtp('ping_pong', auth(U1)))).errors.code).toBe(200);
  });

  it('invalid UTF-8 inside a text frame fails the connection with 1007 (RFC 6455)', async () => {
    const c = await connect();
    c.ws.send(Buffer.from([0x22, 0xff, 0x22]), { binary: false });
    await waitFor(() => c.closed !== undefined, 5_000, 'close');
    expect(c.closed!.code).toBe(1007);
  });
});

describe('limits and failures (§3.1, §5)', () => {
  it('R32 WSM_RATE_PER_S=5, burst 5: 20 pipelined ping_pongs → 5 × 200, the rest 429; connection open', async () => {
    const limited = await s.wsm({ WSM_RATE_PER_S: '5', WSM_RATE_BURST: '5' });
    const c = await connect(`ws://127.0.0.1:${limited.port}/ws`);
    for (let i = 0; i < 20; i++) c.send(mtp('ping_pong', auth(U1)));
    const frames: string[] = [];
    for (let i = 0; i < 20; i++) frames.push(await c.nextRaw());
    const codes = frames.map((f) => (JSON.parse(f) as Frame).errors.code);
    expect(codes.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(codes.filter((x) => x === 429).length).toBeGreaterThanOrEqual(13);
    const limitedFrame = frames.find((f) => f.includes('"code": 429'))!;
    const t = (JSON.parse(limitedFrame) as Frame).errors.time;
    expect(limitedFrame).toBe(frameText('error', 'null', 'Request rate limit exceeded', 429, 'Too Many Requests', t));
    expect(c.closed).toBeUndefined();
  });

  it('WSM_IP_RATE_PER_S=5, burst 5: two connections of one address share it → 5 × 200 in all, the rest 429; both open', async () => {
    const limited = await s.wsm({ WSM_IP_RATE_PER_S: '5', WSM_IP_RATE_BURST: '5' });
    const a = await connect(`ws://127.0.0.1:${limited.port}/ws`);
    const b = await connect(`ws://127.0.0.1:${limited.port}/ws`);
    for (let i = 0; i < 4; i++) a.send(mtp('ping_pong', auth(U1)));
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) codes.push((JSON.parse(await a.nextRaw()) as Frame).errors.code);
    for (let i = 0; i < 4; i++) b.send(mtp('ping_pong', auth(U1)));
    for (let i = 0; i < 4; i++) codes.push((JSON.parse(await b.nextRaw()) as Frame).errors.code);
    // 5 tokens for the address, refilled at 5/s: one or two more may pass in the time the eight take.
    expect(codes.slice(0, 4)).toEqual([200, 200, 200, 200]);
    expect(codes[4]).toBe(200);
    expect(codes.filter((x) => x === 200).length).toBeLessThanOrEqual(7);
    expect(codes.filter((x) => x === 429).length).toBeGreaterThanOrEqual(1);
    expect(a.closed).toBeUndefined();
    expect(b.closed).toBeUndefined();
  });

  it('malformed frames are charged to the rate bucket (still answered 415): valid requests after them get 429', async () => {
    const limited = await s.wsm({ WSM_RATE_PER_S: '1', WSM_RATE_BURST: '5' });
    const c = await connect(`ws://127.0.0.1:${limited.port}/ws`);
    // the 5 tokens of the burst, then an overdraft of one burst: 10 malformed frames, the most not closing it
    for (let i = 0; i < 10; i++) c.send(i % 2 ? `garbage ${i}` : JSON.stringify({ type: 'ping_pong', data: 5 }));
    for (let i = 0; i < 3; i++) c.send(mtp('ping_pong', auth(U1)));
    const frames: string[] = [];
    for (let i = 0; i < 13; i++) frames.push(await c.nextRaw());
    frames.slice(0, 10).forEach((raw, i) => {
      expect(raw).toBe(error415(i % 2 ? NOT_JSON : NOT_DICT, (JSON.parse(raw) as Frame).errors.time));
    });
    // before: the malformed frames cost nothing and all three were 200 (6 s of refill would be owed now)
    expect(frames.slice(10).map((f) => (JSON.parse(f) as Frame).errors.code)).toEqual([429, 429, 429]);
    expect(c.closed).toBeUndefined();
  });

  it('a connection that keeps sending malformed frames beyond its rate is closed 1008, logged once; others unaffected', async () => {
    const { lines, log } = capturingLog();
    const limited = await s.wsm({ WSM_RATE_PER_S: '5', WSM_RATE_BURST: '5' }, log);
    const limitedUrl = `ws://127.0.0.1:${limited.port}/ws`;
    const other = await connect(limitedUrl);
    const c = await connect(limitedUrl);
    for (let i = 0; i < 100; i++) c.send(i % 2 ? `garbage ${i}` : JSON.stringify({ type: 'ping_pong', data: 5 }));
    // before: 100 replies of 415 and the connection open, whatever the rate
    await waitFor(() => c.closed !== undefined, 5_000, 'close');
    expect(c.closed).toEqual({ code: 1008, reason: 'malformed flood' });
    // every frame up to the one over the limit got its exact 415, in order; nothing was read after it
    const replies = c.unread();
    expect(replies.length).toBeGreaterThanOrEqual(11);
    expect(replies.length).toBeLessThan(100);
    replies.forEach((raw, i) => {
      expect(raw).toBe(error415(i % 2 ? NOT_JSON : NOT_DICT, (JSON.parse(raw) as Frame).errors.time));
    });
    const flood = lines.filter((l) => l['code'] === 'WSM_ERR_MALFORMED_FLOOD');
    expect(flood).toHaveLength(1);
    expect(flood[0]).toMatchObject({ level: 'warn', addr: '127.0.0.1' });
    // a well-behaved client on the same instance: even pipelined beyond the rate, valid requests never close it
    for (let i = 0; i < 30; i++) other.send(mtp('ping_pong', auth(U1)));
    const codes: number[] = [];
    for (let i = 0; i < 30; i++) codes.push((await other.next()).errors.code);
    expect(codes.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(codes.filter((x) => x !== 200 && x !== 429)).toEqual([]);
    expect(other.closed).toBeUndefined();
  });

  it('R29 identity unreachable → 503 Service temporarily unavailable, type error; connection open', async () => {
    const dead = await new Promise<number>((ok) => {
      const srv = createServer();
      srv.listen(0, '127.0.0.1', () => {
        const port = (srv.address() as AddressInfo).port;
        srv.close(() => ok(port));
      });
    });
    // gRPC only: identity is unreachable on every transport ws-messenger uses.
    const down = await s.wsm({
      IDENTITY_ADDR: `127.0.0.1:${dead}`,
      WSM_BACKEND_TIMEOUT_MS: '300',
      WSM_IDENTITY_VERIFY_TRANSPORT: 'grpc',
    });
    const c = await connect(`ws://127.0.0.1:${down.port}/ws`);
    const raw = await c.reqRaw(mtp('ping_pong', auth(U1)));
    const t = (JSON.parse(raw) as Frame).errors.time;
    expect(raw).toBe(frameText('error', 'null', 'Service temporarily unavailable', 503, 'Service Unavailable', t));
    const r = await c.req(mtp('register_user', { login: 'someone', password: 'password' }));
    expect([r.type, r.errors.code, r.errors.detail]).toEqual(['register_user', 503, 'Service temporarily unavailable']);
    expect(c.closed).toBeUndefined();
    expect((await http(down.port, '/readyz')).status).toBe(503);
    // With token checks over NATS (the default, docs/adr/0004) identity still answers them while its gRPC
    // port is unreachable; the calls that need gRPC still get 503.
    const half = await s.wsm({ IDENTITY_ADDR: `127.0.0.1:${dead}`, WSM_BACKEND_TIMEOUT_MS: '300' });
    const c2 = await connect(`ws://127.0.0.1:${half.port}/ws`);
    expect((await c2.req(mtp('ping_pong', auth(U1)))).errors.code).toBe(200);
    const r2 = await c2.req(mtp('register_user', { login: 'someone', password: 'password' }));
    expect([r2.type, r2.errors.code]).toEqual(['register_user', 503]);
  });

  it('a pipelined flood of one-byte frames does not stall other connections (§5)', async () => {
    const other = await connect();
    expect((await other.req(mtp('ping_pong', auth(U1)))).errors.code).toBe(200);
    const sock = netConnect(w.port, '127.0.0.1');
    await new Promise((ok) => sock.once('connect', ok));
    sock.write(
      'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    await new Promise((ok) => sock.once('data', ok)); // 101
    sock.on('data', () => undefined); // reads (and drops) every reply, so it is no slow consumer
    sock.on('error', () => undefined);
    // A request that waits for the backends, then 100 000 masked text frames "1" (700 kB) that queue meanwhile,
    // each a 415 that needs no backend.
    const first = Buffer.from(JSON.stringify(mtp('get_update', auth(U1), { time: 0 })));
    const head = Buffer.from([0x81, 0x80 | 126, first.length >> 8, first.length & 255, 0, 0, 0, 0]);
    const frame = Buffer.from([0x81, 0x81, 0, 0, 0, 0, 0x31]);
    sock.write(Buffer.concat([head, first, ...Array.from({ length: 100_000 }, () => frame)]));
    let worst = 0;
    for (let i = 0; i < 10; i++) {
      const t = Date.now();
      expect((await other.req(mtp('ping_pong', auth(U1)))).errors.code).toBe(200);
      worst = Math.max(worst, Date.now() - t);
    }
    sock.destroy();
    // before: the other connection waited for the whole burst (about 3 s here)
    expect(worst).toBeLessThan(1_000);
  });

  it('WSM_MAX_CONNECTIONS: an upgrade over the limit gets HTTP 503', async () => {
    const one = await s.wsm({ WSM_MAX_CONNECTIONS: '1' });
    await connect(`ws://127.0.0.1:${one.port}/ws`);
    const status = await new Promise<number>((ok) => {
      const ws = new WebSocket(`ws://127.0.0.1:${one.port}/ws`);
      ws.on('unexpected-response', (_req, res) => {
        ok(res.statusCode ?? 0);
        res.resume();
        ws.terminate();
      });
      ws.on('error', () => undefined);
    });
    expect(status).toBe(503);
  });

  it('WSM_MAX_CONNECTIONS_PER_IP: one address over its share gets HTTP 429; a closed slot is given back', async () => {
    const two = await s.wsm({ WSM_MAX_CONNECTIONS_PER_IP: '2' });
    const url = `ws://127.0.0.1:${two.port}/ws`;
    const refusedStatus = (): Promise<number> =>
      new Promise<number>((ok) => {
        const ws = new WebSocket(url);
        ws.on('unexpected-response', (_req, res) => {
          ok(res.statusCode ?? 0);
          res.resume();
          ws.terminate();
        });
        ws.on('error', () => undefined);
      });
    const a = await connect(url);
    const b = await connect(url);
    expect(await refusedStatus()).toBe(429);
    // the two admitted connections keep working
    expect((await b.req(mtp('ping_pong', auth(U1)))).errors.code).toBe(200);
    a.ws.close();
    await waitFor(() => a.closed !== undefined, 5_000, 'close');
    const c = await connect(url);
    expect((await c.req(mtp('ping_pong', auth(U1)))).errors.code).toBe(200);
  });

  it('by default one address holds at most 256 connections (WSM_MAX_CONNECTIONS_PER_IP), not every slot', async () => {
    const d = await s.wsm({ WSM_MAX_HTTP_PENDING_PER_IP: '0' });
    const url = `ws://127.0.0.1:${d.port}/ws`;
    const open: WebSocket[] = [];
    try {
      for (let i = 0; i < 256; i += 32)
        open.push(
          ...(await Promise.all(
            Array.from(
              { length: 32 },
              () =>
                new Promise<WebSocket>((ok, fail) => {
                  const ws = new WebSocket(url);
                  ws.once('open', () => ok(ws));
                  ws.once('error', fail);
                }),
            ),
          )),
        );
      expect((await upgrade(url)).code).toBe(429);
    } finally {
      for (const ws of open) ws.terminate();
    }
  });

  it('WSM_TRUSTED_PROXIES: the address is the nearest untrusted X-Forwarded-For hop, not what the client wrote', async () => {
    // The proxy (127.0.0.1, trusted) appends the peer it saw; anything left of that is the client's own text.
    const one = await s.wsm({ WSM_TRUSTED_PROXIES: '127.0.0.1', WSM_MAX_CONNECTIONS_PER_IP: '1' });
    const url = `ws://127.0.0.1:${one.port}/ws`;
    const open = (xff: string): Promise<number> =>
      new Promise((ok) => {
        const ws = new WebSocket(url, { headers: { 'x-forwarded-for': xff }, perMessageDeflate: false });
        ws.on('unexpected-response', (_req, res) => {
          ok(res.statusCode ?? 0);
          res.resume();
          ws.terminate();
        });
        ws.on('open', () => {
          ws.terminate();
          ok(101);
        });
        ws.on('error', () => undefined);
      });
    const held = new WebSocket(url, { headers: { 'x-forwarded-for': '1.1.1.1, 9.9.9.9' } });
    await new Promise((ok) => held.once('open', ok));
    // the same client 9.9.9.9, claiming another address in front: refused
    expect(await open('2.2.2.2, 9.9.9.9')).toBe(429);
    expect(await open('9.9.9.9')).toBe(429);
    // a different client behind the same proxy still gets in
    expect(await open('3.3.3.3, 8.8.8.8')).toBe(101);
    held.terminate();
  });

  it('X-Forwarded-For from a peer not in WSM_TRUSTED_PROXIES is ignored and said once a minute (WSM_UNTRUSTED_FORWARDED)', async () => {
    const { lines, log } = capturingLog();
    const one = await s.wsm({ WSM_MAX_CONNECTIONS_PER_IP: '1' }, log);
    const url = `ws://127.0.0.1:${one.port}/ws`;
    const held = new WebSocket(url, { headers: { 'x-forwarded-for': '9.9.9.9' } });
    await new Promise((ok) => held.once('open', ok));
    // The header names another client, but the peer (127.0.0.1) is not trusted: it counts as 127.0.0.1, refused.
    const second = new WebSocket(url, { headers: { 'x-forwarded-for': '8.8.8.8' } });
    const status = await new Promise<number>((ok) => {
      second.on('unexpected-response', (_req, res) => {
        ok(res.statusCode ?? 0);
        res.resume();
        second.terminate();
      });
      second.on('open', () => ok(101));
      second.on('error', () => undefined);
    });
    expect(status).toBe(429);
    const warned = lines.filter((l) => l['code'] === 'WSM_UNTRUSTED_FORWARDED');
    expect(warned).toEqual([expect.objectContaining({ addr: '127.0.0.1', level: 'warn' })]);
    held.terminate();
  });

  it('WSM_TRUSTED_PROXIES takes CIDR ranges; a trusted proxy forwarding is no reason to warn', async () => {
    const { lines, log } = capturingLog();
    const one = await s.wsm({ WSM_TRUSTED_PROXIES: '127.0.0.0/8', WSM_MAX_CONNECTIONS_PER_IP: '1' }, log);
    const url = `ws://127.0.0.1:${one.port}/ws`;
    const status = (xff: string) => upgrade(url, { 'x-forwarded-for': xff });
    // The peer (127.0.0.1) is in the range: each forwarded client counts on its own.
    const a = await status('9.9.9.9');
    const b = await status('8.8.8.8');
    const again = await status('9.9.9.9');
    expect([a.code, b.code, again.code]).toEqual([101, 101, 429]);
    expect(lines.filter((l) => l['code'] === 'WSM_UNTRUSTED_FORWARDED')).toEqual([]);
    for (const x of [a, b, again]) x.ws.terminate();
  });

  /** A client socket; `closedWithin(ms)` tells whether the server closed it in that time, and what it said. */
  function watch<S extends Socket>(
    sock: S,
  ): { sock: S; said(): string; closedWithin(ms: number): Promise<{ closed: boolean; said: string }> } {
    let said = '';
    let closed = false;
    sock.on('data', (d: Buffer) => (said += d.toString('latin1')));
    sock.on('error', () => undefined);
    const gone = new Promise<void>((ok) => sock.once('close', () => ((closed = true), ok())));
    return {
      sock,
      said: () => said,
      closedWithin: async (ms) => {
        await Promise.race([gone, new Promise((r) => setTimeout(r, ms))]);
        return { closed, said };
      },
    };
  }
  /** A raw TCP connection; `halfOpen`: it never closes its side, not even when the server has closed its own. */
  const rawSocket = (port: number, halfOpen = false) =>
    watch(netConnect({ port, host: '127.0.0.1', allowHalfOpen: halfOpen }));
  const connected = (r: ReturnType<typeof rawSocket>): Promise<void> =>
    new Promise((ok) => (r.sock.readyState === 'open' ? ok() : r.sock.once('connect', () => ok())));
  const upgradeHead = (path: string): string =>
    `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

  it('WSM_HTTP_REQUEST_TIMEOUT_MS: a slowloris request or a silent connection is closed 408 in time', async () => {
    const t = await s.wsm({ WSM_HTTP_REQUEST_TIMEOUT_MS: '500' });
    const silent = rawSocket(t.port);
    const slow = rawSocket(t.port);
    await connected(slow);
    slow.sock.write('GET / HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => slow.sock.writable && slow.sock.write('X-Drip: 1\r\n'), 100);
    const started = Date.now();
    try {
      // before: Node's defaults kept both for 60–90 s (headers timeout 60 s, checked every 30 s)
      const [a, b] = await Promise.all([silent.closedWithin(5_000), slow.closedWithin(5_000)]);
      expect([a.closed, b.closed]).toEqual([true, true]);
      expect(b.said).toMatch(/^HTTP\/1\.1 408 /);
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      clearInterval(drip);
    }
    // a request that completes in time is served; an oversized request head is refused
    expect((await http(t.port, '/')).status).toBe(200);
    const big = rawSocket(t.port);
    big.sock.write(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect((await big.closedWithin(3_000)).said).toMatch(/^HTTP\/1\.1 431 /);
  });

  it('WSM_MAX_HTTP_PENDING: connections not upgraded are bounded in total; upgraded ones do not count', async () => {
    const t = await s.wsm({ WSM_MAX_HTTP_PENDING: '3' });
    const held = [rawSocket(t.port), rawSocket(t.port)];
    await Promise.all(held.map(connected));
    // an upgraded connection leaves the pending count at once
    const c = await connect(`ws://127.0.0.1:${t.port}/ws`);
    const third = rawSocket(t.port);
    expect((await third.closedWithin(300)).closed).toBe(false);
    // before: nothing bounded them (any number, each for up to 90 s)
    const fourth = rawSocket(t.port);
    expect(await fourth.closedWithin(3_000)).toEqual({ closed: true, said: '' });
    expect((await c.req(mtp('ping_pong', auth(U1)))).errors.code).toBe(200);
    third.sock.destroy();
    await waitFor(
      async () => (await http(t.port, '/healthz').catch(() => ({ status: 0 }))).status === 200,
      5_000,
      'slot',
    );
    for (const h of held) h.sock.destroy();
  });

  it('WSM_MAX_HTTP_PENDING_PER_IP: one address over its share is dropped; trusted proxies are not counted', async () => {
    const t = await s.wsm({ WSM_MAX_HTTP_PENDING_PER_IP: '2' });
    const held = [rawSocket(t.port), rawSocket(t.port)];
    await Promise.all(held.map(connected));
    expect(await rawSocket(t.port).closedWithin(3_000)).toEqual({ closed: true, said: '' });
    for (const h of held) h.sock.destroy();
    const p = await s.wsm({ WSM_MAX_HTTP_PENDING_PER_IP: '2', WSM_TRUSTED_PROXIES: '127.0.0.1' });
    const viaProxy = [rawSocket(p.port), rawSocket(p.port), rawSocket(p.port)];
    await Promise.all(viaProxy.map(connected));
    expect((await viaProxy[2]!.closedWithin(300)).closed).toBe(false);
    for (const h of viaProxy) h.sock.destroy();
  });

  it('a refused request or upgrade is closed even if the peer never closes its side (no socket, no pending slot kept)', async () => {
    const t = await s.wsm({ WSM_HTTP_REQUEST_TIMEOUT_MS: '500', WSM_MAX_CONNECTIONS_PER_IP: '1' });
    const pendingGone = () => waitFor(() => t.httpPendingCount() === 0, 5_000, 'pending back to 0');
    // 403 (an upgrade on another path) and 408 (a request head never completed) while still pending
    const forbidden = rawSocket(t.port, true);
    forbidden.sock.write(upgradeHead('/no-ws'));
    const slow = rawSocket(t.port, true);
    slow.sock.write('GET / HTTP/1.1\r\nHost: x\r\n');
    await waitFor(
      () => forbidden.said().startsWith('HTTP/1.1 403 ') && slow.said().startsWith('HTTP/1.1 408 '),
      5_000,
      'refusals',
    );
    // before: each kept its pending slot (and socket) for as long as the peer kept its side open
    await pendingGone();
    // 429 over WSM_MAX_CONNECTIONS_PER_IP: the socket had left the pending count and was counted nowhere after
    const held = await connect(`ws://127.0.0.1:${t.port}/ws`);
    const over = rawSocket(t.port, true);
    over.sock.write(upgradeHead('/ws'));
    await waitFor(() => over.said().startsWith('HTTP/1.1 429 '), 5_000, '429');
    // the server has closed its socket: what the peer writes now is reset (before: accepted and kept, for good)
    await waitFor(
      async () => {
        if (over.sock.writable) over.sock.write('still here');
        return (await over.closedWithin(50)).closed;
      },
      5_000,
      'the refused socket closed',
    );
    await pendingGone();
    expect((await held.req(mtp('ping_pong', auth(U1)))).errors.code).toBe(200);
    for (const r of [forbidden, slow]) r.sock.destroy();
  }, 20_000);

  describe('TLS (WSM_TLS_CERT_FILE): a connection counts as pending from accept through the handshake, released on every outcome', () => {
    const dir = makeTempDir();
    let cert: TestCert;
    let t: WsmServer;
    beforeAll(async () => {
      cert = makeCert(dir.dir, 'wsm');
      t = await s.wsm({
        WSM_TLS_CERT_FILE: cert.certFile,
        WSM_TLS_KEY_FILE: cert.keyFile,
        WSM_MAX_HTTP_PENDING: '6',
        WSM_MAX_HTTP_PENDING_PER_IP: '3',
        WSM_HTTP_REQUEST_TIMEOUT_MS: '1500',
      });
    }, 30_000);
    afterAll(() => dir.remove());

    const pendingIs = (n: number): Promise<void> =>
      waitFor(() => t.httpPendingCount() === n && t.httpPendingCount('127.0.0.1') === n, 5_000, `${n} pending`);
    /** A TLS client (the test certificate is self-signed); `verify`: refuse it, as a strict client does. */
    const tlsClient = (o: { halfOpen?: boolean; verify?: boolean } = {}) => {
      const r = watch(
        tlsConnect({
          socket: netConnect({ port: t.port, host: '127.0.0.1', allowHalfOpen: o.halfOpen ?? false }),
          servername: 'localhost',
          rejectUnauthorized: o.verify ?? false,
        }),
      );
      const secure = new Promise<void>((ok) => r.sock.once('secureConnect', () => ok()));
      return { ...r, secure };
    };
    /** The first bytes of a TLS ClientHello (record header, handshake header, version): a handshake cut short. */
    const PARTIAL_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);

    it('serves wss://; an upgraded connection no longer counts', async () => {
      const c = await connect(`wss://127.0.0.1:${t.port}/ws`);
      expect((await c.req(mtp('ping_pong', auth(U1)))).errors.code).toBe(200);
      await pendingIs(0);
    });

    it('connections in the handshake count, in total and per address; over the share they are dropped', async () => {
      const held = [rawSocket(t.port), rawSocket(t.port), rawSocket(t.port)];
      await Promise.all(held.map(connected));
      held[0]!.sock.write(PARTIAL_HELLO);
      await pendingIs(3);
      expect(await rawSocket(t.port).closedWithin(3_000)).toEqual({ closed: true, said: '' });
      for (const h of held) h.sock.destroy();
      await pendingIs(0);
    });

    it('released after: a client abort mid-handshake or right after it, a failed handshake, a timeout, an HTTP refusal', async () => {
      // twice as many rounds as WSM_MAX_HTTP_PENDING: a slot lost on any path would show as refusals at the end
      for (let round = 0; round < 2; round++) {
        // the client gives up in the middle of its ClientHello
        const mid = rawSocket(t.port);
        await connected(mid);
        mid.sock.write(PARTIAL_HELLO);
        await pendingIs(1);
        mid.sock.destroy();
        await pendingIs(0);
        // the client refuses the (self-signed) certificate and aborts the handshake
        const strict = tlsClient({ verify: true });
        expect((await strict.closedWithin(5_000)).closed).toBe(true);
        await pendingIs(0);
        // not TLS at all: the handshake fails
        const plain = rawSocket(t.port);
        plain.sock.write(upgradeHead('/ws'));
        expect((await plain.closedWithin(5_000)).closed).toBe(true);
        await pendingIs(0);
        // handshake done, then the client goes away before its request
        const gone = tlsClient();
        await gone.secure;
        await pendingIs(1);
        gone.sock.destroy();
        await pendingIs(0);
        // silence: the handshake times out (WSM_HTTP_REQUEST_TIMEOUT_MS)
        const silent = rawSocket(t.port);
        expect((await silent.closedWithin(5_000)).closed).toBe(true);
        await pendingIs(0);
        // 403 and 408 over TLS to a peer that never closes its side
        const forbidden = tlsClient({ halfOpen: true });
        await forbidden.secure;
        forbidden.sock.write(upgradeHead('/no-ws'));
        const slow = tlsClient({ halfOpen: true });
        await slow.secure;
        slow.sock.write('GET / HTTP/1.1\r\nHost: x\r\n');
        await waitFor(
          () => forbidden.said().startsWith('HTTP/1.1 403 ') && slow.said().startsWith('HTTP/1.1 408 '),
          5_000,
          'refusals',
        );
        await pendingIs(0);
        for (const r of [forbidden, slow]) r.sock.destroy();
      }
      // every slot came back: a burst up to the per-address share is admitted, and wss:// works
      const burst = [rawSocket(t.port), rawSocket(t.port), rawSocket(t.port)];
      await Promise.all(burst.map(connected));
      await pendingIs(3);
      for (const b of burst) b.sock.destroy();
      await pendingIs(0);
      const c = await connect(`wss://127.0.0.1:${t.port}/ws`);
      expect((await c.req(mtp('ping_pong', auth(U1)))).errors.code).toBe(200);
      await pendingIs(0);
    }, 30_000);

    it('close() drops connections still in the TLS handshake instead of waiting for their timeout', async () => {
      const slow = await s.wsm({
        WSM_TLS_CERT_FILE: cert.certFile,
        WSM_TLS_KEY_FILE: cert.keyFile,
        WSM_HTTP_REQUEST_TIMEOUT_MS: '600000',
      });
      const silent = rawSocket(slow.port);
      await connected(silent);
      await waitFor(() => slow.httpPendingCount() === 1, 5_000, 'pending');
      // before: close() waited for the handshake timeout (here 10 minutes; the test's own timeout ends it first)
      await slow.close();
      expect((await silent.closedWithin(1_000)).closed).toBe(true);
    });
  });

  it('a never-authenticated connection is closed 1008 authentication timeout; an authenticated one stays', async () => {
    const short = await s.wsm({ WSM_UNAUTH_IDLE_TIMEOUT_MS: '400' });
    const idle = await connect(`ws://127.0.0.1:${short.port}/ws`);
    const active = await connect(`ws://127.0.0.1:${short.port}/ws`);
    expect((await active.req(mtp('ping_pong', auth(U1)))).errors.code).toBe(200);
    await waitFor(() => idle.closed !== undefined, 5_000, 'idle close');
    expect(idle.closed).toEqual({ code: 1008, reason: 'authentication timeout' });
    expect(active.closed).toBeUndefined();
  });

  it('answers pings; a client that does not answer server pings is closed', async () => {
    const fast = await s.wsm({ WSM_PING_INTERVAL_MS: '200', WSM_PING_TIMEOUT_MS: '200' });
    const alive = await connect(`ws://127.0.0.1:${fast.port}/ws`);
    let pings = 0;
    alive.ws.on('ping', () => pings++);
    const ws = new WebSocket(`ws://127.0.0.1:${fast.port}/ws`, { autoPong: false });
    const closed = new Promise<number>((ok) => ws.on('close', (code: number) => ok(code)));
    ws.on('error', () => undefined);
    expect(await closed).toBe(1006);
    await waitFor(() => pings >= 2, 5_000, 'pings');
    expect(alive.closed).toBeUndefined();
    // client pings are answered by the WebSocket layer
    const pong = new Promise<void>((ok) => alive.ws.once('pong', () => ok()));
    alive.ws.ping();
    await pong;
  });

  it('close() sends 1001 to every connection', async () => {
    const temp = await s.wsm();
    const a = await connect(`ws://127.0.0.1:${temp.port}/ws`);
    const b = await connect(`ws://127.0.0.1:${temp.port}/ws`);
    await temp.close();
    await waitFor(() => a.closed !== undefined && b.closed !== undefined, 5_000, 'close');
    expect([a.closed!.code, b.closed!.code]).toEqual([1001, 1001]);
  });
});
