import { Counter } from 'prom-client';
import { createMetricsRegistry, createReadiness, startOpsServer } from '../index';

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

describe('startOpsServer', () => {
  it('answers /healthz, /readyz and /metrics', async () => {
    const registry = createMetricsRegistry('test');
    const c = new Counter({ name: 'hubbub_test_total', help: 'test counter', registers: [registry] });
    c.inc(3);
    const readiness = createReadiness(['nats', 'db']);
    const ops = await startOpsServer({ host: '127.0.0.1', port: 0, registry, readiness });
    try {
      expect(await get(ops.port, '/healthz')).toEqual({ status: 200, body: 'ok\n' });
      expect(await get(ops.port, '/readyz')).toEqual({ status: 503, body: 'not ready: nats, db\n' });
      readiness.set('nats', true);
      readiness.set('db', true);
      expect(await get(ops.port, '/readyz')).toEqual({ status: 200, body: 'ready\n' });
      const m = await get(ops.port, '/metrics');
      expect(m.status).toBe(200);
      expect(m.body).toContain('hubbub_test_total{service="test"} 3');
      expect(m.body).toContain('process_cpu_user_seconds_total');
      expect((await get(ops.port, '/nope')).status).toBe(404);
    } finally {
      await ops.close();
    }
  });
});
