/**
 * One NATS connection per process: named after the service (so `nats server report connections`
 * shows who is who), reconnecting forever with jitter, drained on shutdown.
 */
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import type { Logger } from '@hubbub/runtime';

export type { NatsConnection };

export interface ConnectOptions {
  readonly servers: string;
  readonly name: string;
  readonly log: Logger;
  /** Called when the connection state changes (readiness). */
  readonly onStatus?: (connected: boolean) => void;
  /** Called after a reconnect, so subscribers can fill gaps from history. */
  readonly onReconnect?: () => void;
  /**
   * Command-line tools: one attempt within `timeoutMs` that fails with the connect error, and no reconnects
   * (services wait for NATS on start and reconnect forever).
   */
  readonly once?: { readonly timeoutMs: number };
}

/**
 * Splits NATS_URL (comma-separated servers) into server addresses and credentials, as the NATS CLI reads
 * them: `nats://user:password@host:4222` gives user and password, `nats://token@host:4222` a token. The
 * credentials of the first server that has any apply (nats.js takes them as options, not from the URL).
 * The returned servers carry no credentials, so they can be logged.
 */
export function parseNatsServers(servers: string): {
  servers: string[];
  auth: { user: string; pass: string } | { token: string } | undefined;
} {
  let auth: { user: string; pass: string } | { token: string } | undefined;
  const list = servers
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const m = /^([a-z]+:\/\/)([^@/]*)@(.*)$/i.exec(s);
      if (!m) return s;
      const [, scheme, info, rest] = m as unknown as [string, string, string, string];
      const i = info.indexOf(':');
      if (!auth && info !== '')
        auth =
          i >= 0
            ? { user: decodeURIComponent(info.slice(0, i)), pass: decodeURIComponent(info.slice(i + 1)) }
            : { token: decodeURIComponent(info) };
      return scheme + rest;
    });
  return { servers: list, auth };
}

/**
 * The inbox prefix of a NATS user: `_INBOX_<user>` (characters outside `[A-Za-z0-9_-]` become `_`), so that
 * deploy/nats/hubbub-auth.conf can let each user subscribe to its own replies only. With the shared `_INBOX`
 * any service could read every other service's replies (token checks' principals, posted messages) and, with
 * publish rights on `_INBOX.>`, forge them. Connections without a user (a token or none) keep `_INBOX`.
 */
export function inboxPrefixFor(user: string | undefined): string {
  if (user === undefined || user === '') return '_INBOX';
  return `_INBOX_${user.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

/** Bytes a connection buffers within one event-loop turn before writing them inline (see connectNats). */
export const NATS_PENDING_LIMIT = 1024 * 1024;

export async function connectNats(o: ConnectOptions): Promise<NatsConnection> {
  const { servers, auth } = parseNatsServers(o.servers);
  const nc = await connect({
    servers,
    ...auth,
    inboxPrefix: inboxPrefixFor(auth && 'user' in auth ? auth.user : undefined),
    name: o.name,
    maxReconnectAttempts: o.once ? 0 : -1,
    reconnectTimeWait: 250,
    reconnectJitter: 100,
    pingInterval: 10_000,
    waitOnFirstConnect: !o.once,
    ...(o.once ? { timeout: o.once.timeoutMs, reconnect: false } : {}),
    // Without this, every request() builds two Error objects (stack traces) up front in case it fails:
    // the largest cost of a post on the doors' hot path (docs/adr/0003). Failures still carry their cause.
    noAsyncTraces: true,
    // nats.js writes its outbound buffer inline whenever it passes this many bytes in one turn (default 32 KiB).
    // message-store publishes a committed batch's events (up to ~600 B each, hundreds per batch) and then its
    // reply in one turn: at 32 KiB that was five or more socket writes per batch, each running nats-server's
    // receive path on this core; with 1 MiB it is one write per turn. Batched posts: 37.4 / 35.2 / 37.0 k/s
    // against 38.8 / 37.2 / 40.4 k/s, interleaved (docs/performance.md). The option exists but is untyped.
    ...({ pendingLimit: NATS_PENDING_LIMIT } as object),
  });
  o.log.info({ server: nc.getServer() }, 'nats connected');
  o.onStatus?.(true);
  void (async () => {
    for await (const s of nc.status()) {
      switch (s.type) {
        case 'disconnect':
          o.log.warn({ code: 'NATS_DISCONNECTED' }, 'nats disconnected');
          o.onStatus?.(false);
          break;
        case 'reconnect':
          o.log.info('nats reconnected');
          o.onStatus?.(true);
          o.onReconnect?.();
          break;
        case 'error':
          o.log.warn({ code: 'NATS_ERROR', err: s.error }, 'nats error');
          break;
        default:
          break;
      }
    }
  })();
  return nc;
}

/** Drains (finishes deliveries, flushes publishes) and closes; bounded by timeoutMs. */
export async function drainNats(nc: NatsConnection, timeoutMs = 5_000): Promise<void> {
  if (nc.isClosed()) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    nc.drain().catch(() => undefined),
    new Promise<void>((r) => {
      timer = setTimeout(r, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (!nc.isClosed()) await nc.close();
}
