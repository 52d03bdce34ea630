/** The §5.1 counters as Prometheus metrics. */
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { DoorMetrics } from '../app/ports';

export interface PromDoorMetrics extends DoorMetrics {
  readonly registry: Registry;
}

export function createDoorMetrics(registry: Registry): PromDoorMetrics {
  const open = new Gauge({ name: 'ircb_connections_open', help: 'open connections', registers: [registry] });
  const closed = new Counter({
    name: 'ircb_connections_closed_total',
    help: 'closed connections by close code',
    labelNames: ['code'],
    registers: [registry],
  });
  const posted = new Counter({
    name: 'ircb_messages_posted_total',
    help: 'messages stored through this instance',
    registers: [registry],
  });
  const dropped = new Counter({
    name: 'ircb_messages_dropped_total',
    help: 'SEND_MESSAGE frames dropped, by reason',
    labelNames: ['reason'],
    registers: [registry],
  });
  const deliveries = new Counter({
    name: 'ircb_deliveries_total',
    help: 'broadcast frames queued to connections',
    registers: [registry],
  });
  const historyDelayed = new Counter({
    name: 'ircb_history_delayed_total',
    help: 'LIST_MESSAGES requests that waited for the per-connection history rate',
    registers: [registry],
  });
  const auth = new Counter({
    name: 'ircb_auth_total',
    help: 'AUTHENTICATE outcomes',
    labelNames: ['result'],
    registers: [registry],
  });
  return {
    registry,
    connectionOpened: () => open.inc(),
    connectionClosed: (code) => {
      if (code !== 'IRCB_ERR_CONN_LIMIT') open.dec();
      closed.inc({ code });
    },
    posted: (n) => n > 0 && posted.inc(n),
    dropped: (reason, n = 1) => dropped.inc({ reason }, n),
    delivered: (n) => n > 0 && deliveries.inc(n),
    historyDelayed: () => historyDelayed.inc(),
    auth: (result) => auth.inc({ result }),
  };
}
