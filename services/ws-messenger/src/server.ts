/**
 * Composition of ws-messenger: adapters (identity, message-store, NATS) → app (dispatcher, push
 * hub) → transport (HTTP + WebSocket). `start(config)` is what main.ts and the tests call.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { connectNats, drainNats } from '@hubbub/nats';
import type { NatsConnection } from '@hubbub/nats';
import {
  PerAddressLimit,
  LogGate,
  PerAddressRate,
  createLogger,
  createMetricsRegistry,
  createReadiness,
  normalizeAddress,
  periodicTask,
  startOpsServer,
} from '@hubbub/runtime';
import type { Logger, OpsServer, Readiness } from '@hubbub/runtime';
import type { Registry } from 'prom-client';
import { WebSocketServer } from 'ws';
import type WebSocket from 'ws';
import { createIdentityAdapter } from './adapters/identity-grpc';
import type { IdentityAdapter } from './adapters/identity-grpc';
import { createMessageStoreAdapter } from './adapters/message-store-grpc';
import type { MessageStoreAdapter } from './adapters/message-store-grpc';
import { createNatsEvents } from './adapters/nats-events';
import { isCredentialRefusal } from './app/backend';
import type { Clock, EventsPort } from './app/ports';
import { Dispatcher } from './app/dispatcher';
import { PushHub } from './app/push-hub';
import { TokenCache } from './app/token-cache';
import type { Config } from './config';
import { CloseCode, CloseReason, WsmErrorCode } from './protocol/status';
import { WsConnection } from './transport/connection';
import { createHttpServer, loadStatic, refuseHttp } from './transport/http-server';
import { createWsmMetrics } from './transport/metrics';
import { proxyMatcher } from './transport/proxies';
import type { ProxyMatcher } from './transport/proxies';

export const SERVICE_NAME = 'ws-messenger';

export interface StartDeps {
  readonly log?: Logger;
  readonly clock?: Clock;
  /** Folder with index.html and static/ (default: the package's public/). */
  readonly publicDir?: string;
}

export interface WsmServer {
  readonly port: number;
  /** The ops HTTP port (/healthz, /readyz, /metrics); undefined when WSM_METRICS_PORT is 0. */
  readonly metricsPort: number | undefined;
  readonly host: string;
  readonly instanceId: string;
  readonly nc: NatsConnection;
  readonly registry: Registry;
  readonly readiness: Readiness;
  /** Open WebSocket connections (for tests and metrics). */
  connectionCount(): number;
  /**
   * Connections not (yet) upgraded (TLS handshake and HTTP request included), as WSM_MAX_HTTP_PENDING counts
   * them; with `addr`, as WSM_MAX_HTTP_PENDING_PER_IP counts that peer address (for tests and metrics).
   */
  httpPendingCount(addr?: string): number;
  subscriptionCount(): number;
  /** Stops accepting, closes every connection with 1001, drains NATS, closes clients. */
  close(): Promise<void>;
}

const systemClock: Clock = { nowMs: () => Date.now() };

/** Package root (dist/src/server.js and src/server.ts both sit two levels below it, or one). */
function defaultPublicDir(): string {
  const here = __dirname;
  return here.includes(`${join('dist', 'src')}`) ? join(here, '..', '..', 'public') : join(here, '..', 'public');
}

/**
 * The peer for logs and limits (spec §3.9 WSM_TRUSTED_PROXIES, §6.5). A proxy appends the address it saw to
 * X-Forwarded-For, so only the hops from the right up to the first untrusted one are facts; entries left of it
 * are whatever the client sent. (Taking the first entry let any client behind the proxy name its own address,
 * dodging WSM_MAX_CONNECTIONS_PER_IP and identity's per-address throttling.)
 */
export function clientAddress(req: IncomingMessage, trusted: ProxyMatcher): string {
  const remote = normalizeAddress(req.socket.remoteAddress ?? '');
  if (!trusted(remote)) return remote;
  const xff = req.headers['x-forwarded-for'];
  const hops = (Array.isArray(xff) ? xff.join(',') : (xff ?? ''))
    .split(',')
    .map(normalizeAddress)
    .filter((h) => h !== '');
  let addr = remote;
  for (let i = hops.length - 1; i >= 0; i--) {
    addr = hops[i]!;
    if (!trusted(addr)) return addr;
  }
  // Every hop is one of our proxies: the leftmost is the client as far as anyone can tell.
  return addr;
}

/** Shortest time between two WSM_UNTRUSTED_FORWARDED warnings (any peer may send the header). */
const UNTRUSTED_FORWARDED_LOG_MS = 60_000;

export async function start(cfg: Config, deps: StartDeps = {}): Promise<WsmServer> {
  const log = deps.log ?? createLogger({ service: SERVICE_NAME, level: cfg.logLevel });
  const clock = deps.clock ?? systemClock;
  const instanceId = randomBytes(4).toString('hex');
  const registry = createMetricsRegistry(SERVICE_NAME);
  const readiness = createReadiness(['identity', 'message-store', 'nats']);
  const metrics = createWsmMetrics(registry);
  const trusted = proxyMatcher(cfg.trustedProxies);
  const files = loadStatic(deps.publicDir ?? defaultPublicDir());
  const tls =
    cfg.tlsCertFile && cfg.tlsKeyFile
      ? { cert: readFileSync(cfg.tlsCertFile), key: readFileSync(cfg.tlsKeyFile) }
      : undefined;

  const cleanups: (() => Promise<void> | void)[] = [];
  const runCleanups = async (): Promise<void> => {
    for (const f of cleanups.splice(0).reverse()) {
      try {
        await f();
      } catch (err) {
        log.warn({ err }, 'cleanup failed');
      }
    }
  };

  try {
    // After a NATS outage, revocation events sent meanwhile are lost: re-check the subscriptions.
    let afterReconnect: () => void = () => undefined;
    // Channel events are at-most-once: on both edges of an outage (the disconnect, so that events read once the
    // connection is back never use facts from before it; the reconnect, so that facts looked up during it are not
    // kept), private flows' members are looked up again (PushHub rule 2).
    let onConnectionChange: () => void = () => undefined;
    const nc = await connectNats({
      servers: cfg.natsUrl,
      name: SERVICE_NAME,
      log,
      onStatus: (ok) => {
        readiness.set('nats', ok);
        onConnectionChange();
      },
      onReconnect: () => afterReconnect(),
    });
    cleanups.push(() => drainNats(nc));
    const identity: IdentityAdapter = createIdentityAdapter(cfg.identityAddr, cfg.backendTimeoutMs, {
      ...(cfg.identityVerifyTransport === 'nats' ? { nats: { nc, prefix: cfg.natsPrefix, log } } : {}),
    });
    cleanups.push(() => identity.close());
    const msg: MessageStoreAdapter = createMessageStoreAdapter(cfg.messageStoreAddr, {
      deadlineMs: cfg.backendTimeoutMs,
      channels: 2,
      ...(cfg.postTransport === 'nats' ? { nats: { nc, prefix: cfg.natsPrefix, log } } : {}),
    });
    cleanups.push(() => msg.close());

    const tokens = new TokenCache(cfg.tokenCacheMs);
    const hub = new PushHub({ msg, log, clock, metrics, factsMaxAgeMs: cfg.channelFactsMs });
    // With no push subscriber, posted events are only recorded (dedupe, gap-fill cursor), not decoded.
    const events: EventsPort = createNatsEvents({
      nc,
      prefix: cfg.natsPrefix,
      log,
      client: msg.client,
      idle: () => hub.size === 0,
    });
    cleanups.push(() => events.close());
    events.onMessage((change, m, ch) => hub.onMessage(change, m, ch));
    events.onChannel((c) => hub.onChannel(c));
    onConnectionChange = () => hub.forgetChannels();
    events.onSessionsRevoked((userId, sessionIds, all) => {
      tokens.revoke(userId, sessionIds, all);
      hub.onSessionsRevoked(userId, sessionIds, all);
    });
    // The safety net for revocations whose event was missed: re-verify every subscription's token.
    const recheck = periodicTask(cfg.subscriptionRecheckMs, async () => {
      if (hub.size === 0) return;
      try {
        const n = await hub.recheck((token, userId) => identity.verifyToken(token, userId), isCredentialRefusal);
        if (n > 0)
          log.info({ ended: n, code: WsmErrorCode.SubscriptionRevoked }, 'recheck ended revoked subscriptions');
      } catch (err) {
        log.warn(
          { err, code: WsmErrorCode.SubscriptionRecheckFailed },
          'subscription recheck failed; next round retries',
        );
      }
    });
    afterReconnect = () => recheck.trigger();
    cleanups.push(() => recheck.stop());
    await nc.flush();

    // Public channels exist before the first request (retried in the background while
    // message-store is not up yet; readiness stays false until then).
    let stopped = false;
    let ensured = false;
    const publicChannels = cfg.publicChannels.filter((c) => c !== '-');
    const ensure = async (): Promise<void> => {
      for (let attempt = 1; !stopped && !ensured; attempt++) {
        try {
          if (publicChannels.length > 0) await msg.ensurePublicChannels(publicChannels);
          ensured = true;
          readiness.set('message-store', true);
          log.info({ channels: publicChannels }, 'public channels ensured');
        } catch (err) {
          if (attempt === 1 || attempt % 10 === 0) {
            log.warn({ err, code: WsmErrorCode.BackendUnavailable }, 'cannot ensure public channels yet');
          }
          await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * attempt)).unref());
        }
      }
    };
    const ensuring = ensure();
    await Promise.race([ensuring, new Promise((r) => setTimeout(r, 3_000).unref())]);

    const probe = async (): Promise<void> => {
      const check = async (name: string, f: () => Promise<void>): Promise<void> => {
        try {
          await f();
          readiness.set(name, name !== 'message-store' || ensured);
        } catch {
          readiness.set(name, false);
        }
      };
      await Promise.all([
        check('identity', () => identity.waitForReady(1_000)),
        check('message-store', () => msg.client.waitForReady(1_000)),
      ]);
    };
    await probe();
    const probeTimer = setInterval(() => void probe(), 5_000);
    probeTimer.unref();
    cleanups.push(() => clearInterval(probeTimer));
    cleanups.push(() => {
      stopped = true;
    });

    const dispatcher = new Dispatcher({
      identity,
      msg,
      hub,
      tokens,
      clock,
      log,
      limits: {
        maxReplyBytes: cfg.maxReplyBytes,
        maxMessageBytes: cfg.maxMessageBytes,
        limitMessages: cfg.limitMessages,
        limitUsers: cfg.limitUsers,
        updateMaxItems: cfg.updateMaxItems,
        maxFlowUsers: cfg.maxFlowUsers,
      },
    });

    const conns = new Set<WsConnection>();
    const sockets = new Set<WebSocket>();
    const perIp = new PerAddressLimit(cfg.maxConnectionsPerIp);
    const ipRate = new PerAddressRate(cfg.ipRatePerS, cfg.ipRateBurst);
    const untrustedForwardedLog = new LogGate(UNTRUSTED_FORWARDED_LOG_MS, () => clock.nowMs());
    let connSeq = 0;
    let accepting = true;
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: cfg.maxFrameBytes,
      perMessageDeflate: false,
      clientTracking: false,
      handleProtocols: () => false,
    });
    const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
      if (!accepting || conns.size >= cfg.maxConnections) {
        refuseHttp(socket, '503 Service Unavailable');
        return;
      }
      const address = clientAddress(req, trusted);
      // The peer itself (not the address it forwarded for) decides whether the header was believed.
      if (req.headers['x-forwarded-for'] !== undefined && !trusted(normalizeAddress(req.socket.remoteAddress ?? ''))) {
        if (untrustedForwardedLog.due() !== undefined) {
          log.warn(
            { addr: address, code: WsmErrorCode.UntrustedForwarded },
            'X-Forwarded-For from an address not in WSM_TRUSTED_PROXIES is ignored: behind a proxy, list it there, or every client shares its address for the per-address limits',
          );
        }
      }
      // Counted from the upgrade on, so a burst of handshakes cannot exceed the limit either; the socket's
      // close (the WebSocket's or a failed handshake's) gives the slot back.
      if (!perIp.tryAdd(address)) {
        log.warn({ addr: address, code: WsmErrorCode.TooManyConnections }, 'connection refused: per-address limit');
        refuseHttp(socket, '429 Too Many Requests');
        return;
      }
      socket.once('close', () => perIp.remove(address));
      wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
        sockets.add(ws);
        ws.once('close', () => sockets.delete(ws));
        const id = (++connSeq).toString(36);
        const conn = new WsConnection(
          ws,
          {
            id,
            instanceId,
            clientAddress: address,
            ratePerS: cfg.ratePerS,
            rateBurst: cfg.rateBurst,
            ipRate,
            maxOutbufBytes: cfg.maxOutbufBytes,
            maxInboxBytes: Math.max(2 * cfg.maxFrameBytes, 1 << 20),
            nowMs: () => clock.nowMs(),
          },
          {
            dispatcher,
            log,
            metrics,
            onClosed: (c, reason) => {
              conns.delete(c);
              hub.unsubscribe(c);
              metrics.connections(conns.size);
              log.info({ conn: c.id, reason }, 'connection closed');
            },
          },
        );
        conns.add(conn);
        metrics.connections(conns.size);
        log.info({ conn: id, addr: address }, 'connection opened');
      });
    };

    const { server, pendingCount, dropPending } = createHttpServer({
      tls,
      files,
      registry,
      readiness,
      onUpgrade,
      log,
      limits: {
        requestTimeoutMs: cfg.httpRequestTimeoutMs,
        maxPending: cfg.maxHttpPending,
        maxPendingPerIp: cfg.maxHttpPendingPerIp,
        isTrustedProxy: trusted,
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(cfg.port, cfg.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const port = (server.address() as AddressInfo).port;
    let ops: OpsServer | undefined;
    if (cfg.metricsPort !== 0) {
      ops = await startOpsServer({ host: cfg.opsHost, port: cfg.metricsPort, registry, readiness });
      const o = ops;
      cleanups.push(() => o.close());
    }
    if (!tls && !['127.0.0.1', '::1', 'localhost'].includes(cfg.host)) {
      log.warn(
        { host: cfg.host, code: 'WSM_PLAINTEXT' },
        'serving plain ws:// on a non-loopback address; passwords and tokens need TLS (WSM_TLS_CERT_FILE or an ingress)',
      );
    }

    // One timer for every connection: pings, pong timeouts, the unauthenticated idle limit, token expiry.
    const tickMs = Math.max(
      50,
      Math.min(5_000, Math.floor(Math.min(cfg.pingIntervalMs, cfg.pingTimeoutMs, cfg.unauthIdleTimeoutMs) / 2)),
    );
    const tick = setInterval(() => {
      const now = clock.nowMs();
      for (const c of conns) {
        if (c.awaitingPong && now - c.lastPingAtMs >= cfg.pingTimeoutMs) {
          log.info({ conn: c.id, code: WsmErrorCode.PingTimeout }, 'ping timeout');
          c.close(CloseCode.PolicyViolation, 'ping timeout', 'ping_timeout', true);
          continue;
        }
        if (!c.authenticatedOnce && now - c.openedAtMs >= cfg.unauthIdleTimeoutMs) {
          log.info({ conn: c.id, code: WsmErrorCode.AuthTimeout }, 'authentication timeout');
          c.close(CloseCode.PolicyViolation, CloseReason.authTimeout, 'auth_timeout');
          continue;
        }
        if (!c.awaitingPong && now - c.lastPingAtMs >= cfg.pingIntervalMs) c.ping(now);
      }
      hub.sweep(now);
    }, tickMs);
    tick.unref();

    let closing: Promise<void> | undefined;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        accepting = false;
        clearInterval(tick);
        const serverClosed = new Promise<void>((r) => server.close(() => r()));
        for (const c of [...conns]) c.close(CloseCode.GoingAway, 'server shutting down', 'shutdown');
        const end = Date.now() + 3_000;
        // Give clients a moment to answer the close handshake, then drop the rest.
        while (sockets.size > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
        for (const ws of sockets) ws.terminate();
        server.closeAllConnections();
        dropPending();
        await serverClosed;
        wss.close();
        hub.close();
        await runCleanups();
        await ensuring;
      })());

    log.info({ port, metricsPort: ops?.port, host: cfg.host, instance: instanceId }, 'listening');
    return {
      port,
      metricsPort: ops?.port,
      host: cfg.host,
      instanceId,
      nc,
      registry,
      readiness,
      connectionCount: () => conns.size,
      httpPendingCount: pendingCount,
      subscriptionCount: () => hub.size,
      close,
    };
  } catch (e) {
    await runCleanups();
    throw e;
  }
}
