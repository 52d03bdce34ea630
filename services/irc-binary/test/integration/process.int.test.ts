/**
 * The irc-binary process (dist/src/main.js): CLI usage and exit codes, the ready line, SIGTERM
 * (§3.11), restarts with persistent history (L13), and real identity / message-store outages
 * (N14, M11) against the real platform.
 */
import { spawnSync } from 'node:child_process';
import { connect } from '@nats-io/transport-node';
import { Presence, identityNameAuthority } from '@hubbub/presence';
import { waitFor } from '@hubbub/testing';
import { startPlatform } from '../helpers/platform';
import type { Platform } from '../helpers/platform';
import { serviceMain, startService } from '../helpers/processes';
import type { StartedService } from '../helpers/processes';
import { RawClient } from '../helpers/raw-client';

jest.setTimeout(40_000);

const MAIN = serviceMain('irc-binary');
const V13 = '03 07 67 65 6e 65 72 61 6c 00 15 68 65 6c 6c 6f 20 66 72 6f 6d 20 64 64 5f 69 6e 74 65 72 6f 70';

function run(
  args: string[],
  env: Record<string, string> = {},
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    encoding: 'utf8',
    timeout: 10_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('CLI (§3.11)', () => {
  it('-h prints the usage on stdout and exits 0', () => {
    const r = run(['-h']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(
      /^usage: irc-binary \[-h\] \[-v\] \[-c CHANNELS \[CHANNELS \.\.\.\]\] \[--host HOST\] \[--port PORT\] \[--cert CERT\[:KEY\]\] \[--max-messages N\]/,
    );
  });
  it('unknown flags and bad values: usage error on stderr, exit 2', () => {
    const r = run(['--bogus', '--port', 'x']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/usage:/);
    expect(r.stderr).toMatch(/unrecognized arguments: --bogus/);
  });
  it('L15 a configured channel of 33 bytes: exits non-zero naming it, with every other problem', () => {
    const long = 'x'.repeat(33);
    const r = run(['-c', long, '--cert', '/nonexistent.pem'], { IRCB_SEND_BURST: 'many' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(long);
    expect(r.stderr).toContain('IRCB_SEND_BURST');
  });
});

describe('running process', () => {
  let p: Platform;
  let irc: StartedService | undefined;
  const clients: RawClient[] = [];
  const env = (): Record<string, string> => ({
    NATS_URL: p.nats.url,
    NATS_PREFIX: p.nats.prefix,
    IDENTITY_ADDR: p.identity.addr,
    MESSAGE_STORE_ADDR: p.store.addr,
    IRCB_METRICS_PORT: '0',
    IRCB_SEND_RATE_PER_S: '0',
    IRCB_IP_SEND_RATE_PER_S: '0',
    IRCB_IP_HISTORY_RATE_PER_S: '0',
    IRCB_BACKEND_TIMEOUT_MS: '700',
    IRCB_PORT: '0',
    IRCB_HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
  });
  async function ready(nick: string): Promise<RawClient> {
    const c = await RawClient.connect(irc!.port);
    clients.push(c);
    await c.handshake(nick);
    return c;
  }

  beforeAll(async () => {
    p = await startPlatform();
  }, 60_000);
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    await irc?.stop();
    await p?.stop();
  }, 30_000);

  it('logs "ready" with the bound port even at LOG_LEVEL=warn; SIGTERM closes connections silently, frees nicks, exits 0 within 10 s', async () => {
    irc = await startService('irc-binary', { ...env(), LOG_LEVEL: 'warn' });
    expect(irc.output.some((l) => l.includes('"msg":"ready"') && l.includes('"tls":false'))).toBe(true);
    const a = await ready('sigterm');
    const t0 = Date.now();
    const before = a.received.length;
    await irc.stop();
    expect(irc.process.exitCode).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    await a.waitClosed();
    expect(a.received.length).toBe(before);
    const nc = await connect({ servers: p.nats.url });
    try {
      const presence = await Presence.open({ nc, prefix: p.nats.prefix, names: identityNameAuthority(p.idClient) });
      expect(await presence.getNick('sigterm')).toBeUndefined();
    } finally {
      await nc.close();
    }
    irc = undefined;
  });

  it('L13 history survives restarts of irc-binary and message-store', async () => {
    irc = await startService('irc-binary', env());
    const a = await ready('l13');
    a.write(V13);
    const echo = await a.nextFrame();
    if (echo.type !== 'SendMessage') throw new Error('no echo');
    a.close();
    await irc.stop();
    await p.restartStore();
    irc = await startService('irc-binary', env());
    const b = await ready('l13b');
    b.send({ type: 'ListMessages', channel: 'general', before: 0n, after: 0n });
    const l = await b.nextFrame();
    expect(l.type === 'ListMessages' && l.messages.some((m) => m.id === echo.message.id)).toBe(true);
  });

  it('M11 message-store stopped: no echo, the connection stays; back → posts work again', async () => {
    const a = await ready('m11real');
    await p.store.stop();
    a.write(V13);
    a.send({ type: 'ListMessages', channel: 'general', before: 0n, after: 0n });
    await a.expect('05 00 00 00', 10_000);
    expect(a.frames.filter((f) => f.type === 'SendMessage')).toEqual([]);
    await p.restartStore();
    a.frames.length = 0;
    await waitFor(
      async () => {
        a.write(V13);
        await waitFor(() => a.frames.length > 0, 2_000).catch(() => undefined);
        return a.frames.some((f) => f.type === 'SendMessage');
      },
      20_000,
      'posting again',
    );
  });

  it('N14 identity stopped: "erin" → 02 00 and the connection stays; identity back → "erin" → 02 01', async () => {
    const c = await RawClient.connect(irc!.port);
    clients.push(c);
    c.write('00 02');
    await c.expect('00 00');
    await p.identity.stop();
    c.send({ type: 'Authenticate', nick: 'erin' });
    await c.expect('02 00', 10_000);
    await p.restartIdentity();
    await waitFor(
      async () => {
        c.send({ type: 'Authenticate', nick: 'erin' });
        return (await c.read(2, 10_000)) === '0201';
      },
      20_000,
      'erin accepted',
    );
  });
});
