import { Writable } from 'node:stream';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLifecycle, createLogger } from '../index';

function memoryLogger() {
  const lines: Record<string, unknown>[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: createLogger({ service: 'test', level: 'debug', destination: dest }), lines };
}

describe('createLifecycle', () => {
  it('runs hooks once, last registered first', async () => {
    const { log } = memoryLogger();
    const lc = createLifecycle(log, 1_000);
    const order: string[] = [];
    lc.onShutdown('db', () => void order.push('db'));
    lc.onShutdown('nats', async () => {
      await new Promise((r) => setTimeout(r, 5));
      order.push('nats');
    });
    lc.onShutdown('listener', () => void order.push('listener'));
    const [a, b] = await Promise.all([lc.shutdown('test'), lc.shutdown('again')]);
    expect(a).toBe(true);
    expect(b).toBe(true);
    expect(order).toEqual(['listener', 'nats', 'db']);
    expect(lc.stopping).toBe(true);
  });

  it('reports failure when a hook throws, and still runs the rest', async () => {
    const { log, lines } = memoryLogger();
    const lc = createLifecycle(log, 1_000);
    const ran: string[] = [];
    lc.onShutdown('a', () => void ran.push('a'));
    lc.onShutdown('b', () => {
      throw new Error('boom');
    });
    expect(await lc.shutdown('test')).toBe(false);
    expect(ran).toEqual(['a']);
    expect(lines.some((l) => l['code'] === 'SHUTDOWN_HOOK_FAILED')).toBe(true);
  });

  it('gives up after the timeout', async () => {
    const { log, lines } = memoryLogger();
    const lc = createLifecycle(log, 50);
    let release!: () => void;
    lc.onShutdown('stuck', () => new Promise<void>((r) => (release = r)));
    expect(await lc.shutdown('test')).toBe(false);
    expect(lines.some((l) => l['code'] === 'SHUTDOWN_TIMEOUT')).toBe(true);
    release();
  });

  it('drains: an in-flight request finishes before the server closes', async () => {
    const { log } = memoryLogger();
    const lc = createLifecycle(log, 2_000);
    let finishRequest!: () => void;
    const server = createServer((_req, res) => {
      finishRequest = () => res.end('done');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    lc.onShutdown('http', () => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as AddressInfo).port;
    const body = new Promise<string>((resolve, reject) => {
      const req = request({ port, host: '127.0.0.1', agent: false }, (res) => {
        let s = '';
        res.on('data', (c: Buffer) => (s += c.toString()));
        res.on('end', () => resolve(s));
      });
      req.on('error', reject);
      req.end();
    });
    while (!finishRequest) await new Promise((r) => setTimeout(r, 2));
    const stopped = lc.shutdown('test');
    setTimeout(() => finishRequest(), 20);
    expect(await body).toBe('done');
    expect(await stopped).toBe(true);
  });
});

describe('createLogger', () => {
  it('redacts secrets and names the service', () => {
    const { log, lines } = memoryLogger();
    log.info({ password: 'hunter2', user: { token: 'abc' } }, 'login');
    log.flush();
    const line = lines.find((l) => l['msg'] === 'login');
    expect(line).toMatchObject({ service: 'test', password: '[redacted]', user: { token: '[redacted]' } });
  });
});
