/** Prometheus metrics of spec §5 (names are part of the operations contract). */
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';

export interface WsmMetrics {
  request(type: string, code: number): void;
  closed(reason: string): void;
  connections(n: number): void;
  framesPushed(n: number): void;
  subscriptions(n: number): void;
  staleChannelEvent(): void;
}

export function createWsmMetrics(registry: Registry): WsmMetrics {
  const requests = new Counter({
    name: 'wsm_requests_total',
    help: 'MTP requests by canonical type and reply code',
    labelNames: ['type', 'code'],
    registers: [registry],
  });
  const closed = new Counter({
    name: 'wsm_connections_closed_total',
    help: 'Closed WebSocket connections by reason',
    labelNames: ['reason'],
    registers: [registry],
  });
  const pushed = new Counter({ name: 'wsm_push_frames_total', help: 'update frames written', registers: [registry] });
  const open = new Gauge({ name: 'wsm_connections_open', help: 'open WebSocket connections', registers: [registry] });
  const subs = new Gauge({ name: 'wsm_subscriptions_open', help: 'active push subscriptions', registers: [registry] });
  const stale = new Counter({
    name: 'wsm_stale_channel_events_total',
    help: 'channel events older than the channel facts held, ignored (a change published again after newer ones)',
    registers: [registry],
  });
  return {
    request: (type, code) => requests.inc({ type, code: String(code) }),
    closed: (reason) => closed.inc({ reason }),
    connections: (n) => open.set(n),
    framesPushed: (n) => pushed.inc(n),
    subscriptions: (n) => subs.set(n),
    staleChannelEvent: () => stale.inc(),
  };
}
