/**
 * The operations HTTP surface every service offers: `/healthz` (process alive), `/readyz` (its
 * dependencies are usable) and `/metrics` (Prometheus text). Services that already speak HTTP mount
 * `handleOpsRequest` in their own server instead of opening a second port.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry, collectDefaultMetrics } from 'prom-client';

export interface Readiness {
  /** Names of checks that currently fail; empty when ready. */
  failing(): string[];
  set(check: string, ok: boolean): void;
}

export function createReadiness(initial: readonly string[] = []): Readiness {
  const state = new Map<string, boolean>(initial.map((c) => [c, false]));
  return {
    failing: () => [...state].filter(([, ok]) => !ok).map(([c]) => c),
    set: (check, ok) => void state.set(check, ok),
  };
}

/** Period of the event-loop delay sampling behind `nodejs_eventloop_lag_*`. */
export const EVENT_LOOP_SAMPLE_MS = 100;

export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  // prom-client samples event-loop delay with a libuv timer at this period (its default is 10 ms). Every firing
  // wakes an idle process, and on a VM whose idle vCPUs halt a wake-up costs about 150 µs of CPU (docs/performance.md):
  // 100 ms keeps the lag gauges' meaning at a tenth of the wake-ups.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  return registry;
}

/** Handles /healthz, /readyz, /metrics; returns false for any other path. */
export function handleOpsRequest(
  req: IncomingMessage,
  res: ServerResponse,
  registry: Registry,
  readiness: Readiness,
): boolean {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return true;
  }
  if (path === '/readyz') {
    const failing = readiness.failing();
    res
      .writeHead(failing.length === 0 ? 200 : 503, { 'content-type': 'text/plain' })
      .end(failing.length === 0 ? 'ready\n' : `not ready: ${failing.join(', ')}\n`);
    return true;
  }
  if (path === '/metrics') {
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      () => res.writeHead(500).end(),
    );
    return true;
  }
  return false;
}

export interface OpsServer {
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

export async function startOpsServer(o: {
  host: string;
  port: number;
  registry: Registry;
  readiness: Readiness;
}): Promise<OpsServer> {
  const server = createServer((req, res) => {
    if (!handleOpsRequest(req, res, o.registry, o.readiness)) res.writeHead(404).end();
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
