/**
 * §7.3 TLS upgrade over real TCP with a self-signed certificate made by openssl (in-memory
 * backends): T1–T8, plaintext after the upgrade, and a TLS-wanting client against a plaintext server.
 */
import { makeCert, makeTempDir, waitFor } from '@hubbub/testing';
import type { TestCert } from '@hubbub/testing';
import { logLines, startMemoryServer } from '../helpers/memory-server';
import type { MemoryServer } from '../helpers/memory-server';
import { RawClient } from '../helpers/raw-client';

const V6 = '02 05 61 6c 69 63 65';
const V13 = '03 07 67 65 6e 65 72 61 6c 00 15 68 65 6c 6c 6f 20 66 72 6f 6d 20 64 64 5f 69 6e 74 65 72 6f 70';
const V15 = '05 07 67 65 6e 65 72 61 6c 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00';

const tmp = makeTempDir();
let server: TestCert;
let carolCert: TestCert;
let otherCert: TestCert;
let s: MemoryServer;
const clients: RawClient[] = [];

async function client(srv: MemoryServer = s): Promise<RawClient> {
  const c = await RawClient.connect(srv.app.port);
  clients.push(c);
  return c;
}

async function tlsClient(o: { cert?: TestCert } = {}): Promise<RawClient> {
  const c = await client();
  c.write('00 02');
  await c.expect('00 01');
  await c.upgrade({
    ca: server.cert,
    ...(o.cert ? { cert: o.cert.cert, key: o.cert.key } : {}),
  });
  return c;
}

beforeAll(async () => {
  server = makeCert(tmp.dir, 'server');
  carolCert = makeCert(tmp.dir, 'carol', 'carol');
  otherCert = makeCert(tmp.dir, 'other', 'other');
  s = await startMemoryServer(
    { tlsCertFile: server.certFile, tlsKeyFile: server.keyFile, tlsHandshakeTimeoutMs: 1_000 },
    (m) => {
      m.identity.addAccount('carol', { tokens: ['k3yt0ken5abc'], fingerprints: [carolCert.fingerprint] });
    },
  );
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  await s.app.close();
  tmp.remove();
});

describe('TLS upgrade (§2.8, §7.3)', () => {
  it('T1/T5 00 02 → 00 01 in plaintext, then TLS 1.3 with a default client and no client certificate', async () => {
    const c = await tlsClient();
    expect(c.tls!.getProtocol()).toBe('TLSv1.3');
    expect(c.plaintextAfterUpgrade.length).toBe(0);
  });

  it('T2 inside TLS: V6, V9, V13, V15 get the plaintext replies', async () => {
    const c = await tlsClient();
    c.write(V6);
    await c.expect('02 01');
    c.write('04');
    await c.expect('04 00 08 07 67 65 6e 65 72 61 6c');
    c.frames.length = 0;
    c.write(V13);
    const echo = await c.nextFrame();
    expect(echo).toMatchObject({ type: 'SendMessage', message: { nick: 'alice', content: 'hello from dd_interop' } });
    c.write(V15);
    const list = await c.nextFrame();
    if (list.type !== 'ListMessages' || echo.type !== 'SendMessage') throw new Error('bad frames');
    expect(list.messages.at(-1)).toEqual(echo.message);
  });

  it('TLS 1.2 with a modern suite works; a CBC-only client is refused', async () => {
    const c = await client();
    c.write('00 02');
    await c.expect('00 01');
    await c.upgrade({ ca: server.cert, maxVersion: 'TLSv1.2' });
    expect(c.tls!.getProtocol()).toBe('TLSv1.2');
    expect(c.tls!.getCipher().name).toMatch(/GCM|CHACHA20/);
    const d = await client();
    d.write('00 02');
    await d.expect('00 01');
    await expect(
      d.upgrade({ ca: server.cert, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA' }),
    ).rejects.toThrow();
  });

  it('T3 plaintext AUTHENTICATE after 00 01: closed (IRCB_ERR_TLS_HANDSHAKE), no byte after 00 01', async () => {
    const c = await client();
    c.write('00 02');
    await c.expect('00 01');
    c.write(V6);
    expect(await c.waitClosed()).toBe(0);
    expect(c.received.length).toBe(2);
    expect(logLines(s.logs).some((l) => l['code'] === 'IRCB_ERR_TLS_HANDSHAKE')).toBe(true);
  });

  it('T4 (scaled: IRCB_TLS_HANDSHAKE_TIMEOUT_MS=1000) no ClientHello: closed after the TLS timer', async () => {
    const c = await client();
    c.write('00 02');
    await c.expect('00 01');
    const t0 = Date.now();
    expect(await c.waitClosed(3_000)).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(logLines(s.logs).some((l) => l['code'] === 'IRCB_ERR_TLS_TIMEOUT')).toBe(true);
  });

  it('H4 over TLS: HELLO with pipelined bytes is closed before 00 01 (no plaintext reaches TLS)', async () => {
    const c = await client();
    c.write('00 02 16 03 01');
    expect(await c.waitClosed()).toBe(0);
  });

  it('T6 a registered client certificate proves "carol"; broadcasts carry nick carol', async () => {
    const c = await tlsClient({ cert: carolCert });
    c.send({ type: 'Authenticate', nick: 'CaRoL' });
    await c.expect('02 01');
    c.frames.length = 0;
    c.write(V13);
    expect(await c.nextFrame()).toMatchObject({ type: 'SendMessage', message: { nick: 'carol' } });
  });

  it('T7 without a registered certificate "carol" is refused; with an unregistered one too', async () => {
    const a = await tlsClient();
    a.send({ type: 'Authenticate', nick: 'carol' });
    await a.expect('02 00');
    const b = await tlsClient({ cert: otherCert });
    b.send({ type: 'Authenticate', nick: 'carol' });
    await b.expect('02 00');
  });

  it('N7/N8/N9/N11 app passwords over TLS: accepted in any case of the name, wrong token refused', async () => {
    const a = await tlsClient();
    a.send({ type: 'Authenticate', nick: 'CAROL#k3Yt0kEn5abc' });
    await a.expect('02 01');
    a.frames.length = 0;
    a.write(V13);
    expect(await a.nextFrame()).toMatchObject({ type: 'SendMessage', message: { nick: 'carol' } });
    const b = await tlsClient();
    b.send({ type: 'Authenticate', nick: 'carol#k3Yt0kEn5abc' });
    await b.expect('02 01');
    const c = await tlsClient();
    c.send({ type: 'Authenticate', nick: 'carol#wrong' });
    await c.expect('02 00');
    expect(s.logs.join('\n')).not.toMatch(/k3Yt0kEn5abc/i);
  });

  it('name#token guesses reach identity with the client address (its per-address throttle counts them)', async () => {
    const seen: string[] = [];
    const orig = s.identity.verifyAppPassword.bind(s.identity);
    s.identity.verifyAppPassword = (a, t, addr) => (seen.push(addr), orig(a, t, addr));
    try {
      const c = await tlsClient();
      c.send({ type: 'Authenticate', nick: 'carol#guess1' });
      await c.expect('02 00');
      expect(seen).toHaveLength(1);
      expect(seen[0]!.replace(/^::ffff:/, '')).toBe(c.socket.localAddress!.replace(/^::ffff:/, ''));
    } finally {
      s.identity.verifyAppPassword = orig;
    }
  });
});

describe('TLS configuration', () => {
  it('T8 --cert combined.pem (key and certificate in one file) passes T1', async () => {
    const m = await startMemoryServer({ tlsCertFile: server.combinedFile, tlsKeyFile: server.combinedFile });
    try {
      const c = await client(m);
      c.write('00 02');
      await c.expect('00 01');
      await c.upgrade({ ca: server.cert });
      expect(c.tls!.getProtocol()).toBe('TLSv1.3');
    } finally {
      for (const c of clients.splice(0)) c.close();
      await m.app.close();
    }
  });

  it('a client that wants TLS against a plaintext server gets 00 00 and closes; the server logs a normal close', async () => {
    const m = await startMemoryServer();
    try {
      const c = await client(m);
      c.write('00 02');
      await c.expect('00 00'); // ServerCannotUpgradeSSLError is raised client-side
      c.close();
      await waitFor(() => m.app.server.connections.size === 0);
      expect(logLines(m.logs).filter((l) => l['msg'] === 'connection closed on error')).toEqual([]);
    } finally {
      for (const c of clients.splice(0)) c.close();
      await m.app.close();
    }
  });
});
