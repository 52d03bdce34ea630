/**
 * `start(config, deps?)`: builds and starts one irc-binary instance. main.ts calls it with real
 * adapters made from the config; tests call it in-process on port 0, optionally with in-memory
 * ports. Order (§3.11): dependencies → ensure channels → subscribe to events → listen → ops HTTP.
 * `close()` stops in reverse: stop accepting, close every connection (no bytes), release presence,
 * drain NATS, close clients.
 */
import type { AddressInfo } from 'node:net';
import { createClient } from '@hubbub/grpc';
import { createMessageStoreClient, natsPostSender } from '@hubbub/msg-client';
import type { MessageStoreClient } from '@hubbub/msg-client';
import { connectNats, drainNats } from '@hubbub/nats';
import type { NatsConnection } from '@hubbub/nats';
import { Presence, identityNameAuthority } from '@hubbub/presence';
import { identityV1 } from '@hubbub/proto';
import { createLogger, createMetricsRegistry, createReadiness, periodicTask, startOpsServer } from '@hubbub/runtime';
import type { Logger, OpsServer } from '@hubbub/runtime';
import type { Registry } from 'prom-client';
import { identityAdapter } from './adapters/identity-grpc';
import type { IdentityClient } from './adapters/identity-grpc';
import { messageStoreAdapter } from './adapters/message-store-grpc';
import { natsEventSource } from './adapters/nats-events';
import { presenceAdapter } from './adapters/presence-nats';
import { createDoorMetrics } from './adapters/prom-metrics';
import type { PromDoorMetrics } from './adapters/prom-metrics';
import { Authenticator } from './app/authenticator';
import { CHANNEL_REFRESH_MS, ChannelDirectory } from './app/channel-directory';
import { Door } from './app/door';
import type { EventSource, IdentityPort, MessageStorePort, PresencePort } from './app/ports';
import type { Config } from './config';
import { TcpServer } from './transport/tcp-server';
import { loadSecureContext } from './transport/tls';

export const SERVICE = 'irc-binary';
export const VERSION = '0.1.0';
const ENSURE_CHANNELS_BUDGET_MS = 60_000;

export interface StartDeps {
  readonly log?: Logger;
  readonly registry?: Registry;
  readonly store?: MessageStorePort;
  readonly identity?: IdentityPort;
  readonly presence?: PresencePort;
  readonly events?: EventSource;
}

export interface IrcBinary {
  readonly address: AddressInfo;
  readonly port: number;
  readonly tls: boolean;
  readonly opsPort: number | undefined;
  readonly metrics: PromDoorMetrics;
  readonly registry: Registry;
  readonly door: Door;
  readonly server: TcpServer;
  readonly channels: ChannelDirectory;
  /** The NATS connection when this instance made one (for registerNatsService). */
  readonly nc: NatsConnection | undefined;
  readonly log: Logger;
  close(): Promise<void>;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

export async function start(config: Config, deps: StartDeps = {}): Promise<IrcBinary> {
  const log = deps.log ?? createLogger({ service: SERVICE, level: config.logLevel });
  const registry = deps.registry ?? createMetricsRegistry(SERVICE);
  const metrics = createDoorMetrics(registry);
  const readiness = createReadiness(['listening', 'nats']);
  const cleanups: { name: string; fn: () => Promise<void> | void }[] = [];
  const closeAll = async (): Promise<void> => {
    for (const c of cleanups.reverse()) {
      try {
        await c.fn();
      } catch (err) {
        log.warn({ err, step: c.name }, 'shutdown step failed');
      }
    }
    cleanups.length = 0;
  };

  try {
    // ---- dependencies ----
    let nc: NatsConnection | undefined;
    if (!deps.presence || !deps.events) {
      nc = await connectNats({
        servers: config.natsUrl,
        name: `${SERVICE}-${config.instanceId}`,
        log,
        onStatus: (ok) => readiness.set('nats', ok),
      });
      const conn = nc;
      cleanups.push({ name: 'nats', fn: () => drainNats(conn) });
    } else readiness.set('nats', true);

    let msgClient: MessageStoreClient | undefined;
    if (!deps.store) {
      msgClient = createMessageStoreClient(config.messageStoreAddr, { deadlineMs: config.backendTimeoutMs, log });
      const c = msgClient;
      cleanups.push({ name: 'message-store client', fn: () => c.close() });
    }
    let idClient: IdentityClient | undefined;
    if (!deps.identity || !deps.presence) {
      idClient = createClient(identityV1.IdentityServiceService, config.identityAddr, {
        deadlineMs: config.backendTimeoutMs,
      });
      const c = idClient;
      cleanups.push({ name: 'identity client', fn: () => c.close() });
    }
    let store = deps.store;
    if (!store) {
      const sender =
        nc && config.postTransport === 'nats'
          ? natsPostSender({
              nc,
              prefix: config.natsPrefix,
              grpc: msgClient!,
              deadlineMs: config.backendTimeoutMs,
              log,
            })
          : undefined;
      if (sender) cleanups.push({ name: 'nats post sender', fn: async () => sender.close() });
      store = messageStoreAdapter(msgClient!, config.backendTimeoutMs, sender);
    }
    const identity = deps.identity ?? identityAdapter(idClient!, config.backendTimeoutMs);
    let presence = deps.presence;
    if (!presence) {
      const p = await Presence.open({
        nc: nc!,
        prefix: config.natsPrefix,
        names: identityNameAuthority(idClient!, config.backendTimeoutMs),
        log,
      });
      // The shared bucket's max age bounds every lease: renew often enough for the shorter of the two.
      presence = presenceAdapter(p, Math.min(config.presenceTtlMs, p.ttlMs), log);
    }
    const events = deps.events ?? natsEventSource({ nc: nc!, prefix: config.natsPrefix, log });

    const secureContext =
      config.tlsCertFile !== undefined
        ? loadSecureContext(config.tlsCertFile, config.tlsKeyFile ?? config.tlsCertFile, log)
        : undefined;

    // ---- channels (§3.11): ensured in configuration order before listening ----
    const channels = new ChannelDirectory(store, log);
    const t0 = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        await store.ensurePublicChannels(config.channels);
        await channels.refresh();
        break;
      } catch (err) {
        if (Date.now() - t0 > ENSURE_CHANNELS_BUDGET_MS) throw err;
        log.warn(
          { err: err instanceof Error ? err.message : String(err), attempt, code: 'IRCB_ERR_STORE_UNAVAILABLE' },
          'ensuring channels; retrying',
        );
        await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * attempt)));
      }
    }
    const refresher = setInterval(
      () => void channels.refresh().catch((err: unknown) => log.debug({ err }, 'channel refresh failed')),
      CHANNEL_REFRESH_MS,
    );
    refresher.unref();
    cleanups.push({ name: 'channel refresh', fn: () => clearInterval(refresher) });

    const authenticator = new Authenticator({
      identity,
      presence,
      allowPlaintextTokens: config.allowPlaintextTokens,
      backendTimeoutMs: config.backendTimeoutMs,
      log,
    });
    const door = new Door(
      { store, presence, authenticator, channels, metrics, log },
      {
        instanceId: config.instanceId,
        maxPendingFrames: config.maxPendingFrames,
        sendRatePerS: config.sendRatePerS,
        sendBurst: config.sendBurst,
        historyRatePerS: config.historyRatePerS,
        historyBurst: config.historyBurst,
        ipSendRatePerS: config.ipSendRatePerS,
        ipSendBurst: config.ipSendBurst,
        ipHistoryRatePerS: config.ipHistoryRatePerS,
        ipHistoryBurst: config.ipHistoryBurst,
        backendTimeoutMs: config.backendTimeoutMs,
      },
    );
    cleanups.push({
      name: 'presence releases',
      fn: async () => void (await Promise.allSettled([...door.releasing])),
    });

    const recheck = periodicTask(config.accountRecheckMs, async () => {
      try {
        const n = await door.recheckAccounts(identity);
        if (n > 0) log.info({ connections: n, code: 'IRCB_ACCOUNT_REVOKED' }, 'recheck closed revoked accounts');
      } catch (err) {
        log.warn({ err, code: 'IRCB_ACCOUNT_RECHECK_FAILED' }, 'account recheck failed; next round retries');
      }
    });
    cleanups.push({ name: 'account recheck', fn: () => recheck.stop() });

    await events.start({
      onPosted: (ev) => door.onPosted(ev),
      onChannelsChanged: () =>
        void channels.refresh().catch((err: unknown) => log.debug({ err }, 'channel refresh failed')),
      seen: (id) => door.hasDelivered(id),
      onDisconnect: () => door.onBusDisconnected(),
      onAccountRevoked: (id, why) => {
        const n = door.onAccountRevoked(id, why);
        if (n > 0) log.info({ account: id, why, connections: n, code: 'IRCB_ACCOUNT_REVOKED' }, 'connections closed');
      },
      onReconnect: () => {
        void door
          .fillAfterReconnect()
          .catch((err: unknown) => log.warn({ err, code: 'IRCB_GAP_FILL_FAILED' }, 'gap fill failed'));
        // User events sent while the bus was down are lost: ask identity about the connected accounts.
        recheck.trigger();
      },
    });
    cleanups.push({ name: 'events', fn: () => events.close() });

    // ---- listener ----
    const server = new TcpServer(
      door,
      {
        helloTimeoutMs: config.helloTimeoutMs,
        tlsHandshakeTimeoutMs: config.tlsHandshakeTimeoutMs,
        authTimeoutMs: config.authTimeoutMs,
        maxAuthFailures: config.maxAuthFailures,
        maxOutbufBytes: config.maxOutbufBytes,
        maxPendingFrames: config.maxPendingFrames,
        secureContext,
        maxConnections: config.maxConnections,
        maxConnectionsPerIp: config.maxConnectionsPerIp,
      },
      log,
      metrics,
      config.instanceId,
    );
    const address = await server.listen(config.host, config.port);
    readiness.set('listening', true);
    cleanups.push({
      name: 'listener',
      fn: async () => {
        readiness.set('listening', false);
        await server.close();
      },
    });

    let ops: OpsServer | undefined;
    if (config.metricsPort !== 0) {
      ops = await startOpsServer({ host: config.opsHost, port: config.metricsPort, registry, readiness });
      const o = ops;
      cleanups.push({ name: 'ops', fn: () => o.close() });
    }

    if (!secureContext && !isLoopback(config.host))
      log.warn({ code: 'IRCB_PLAINTEXT' }, 'TLS is off: nicks and messages travel in clear text');
    if (config.maxMessagesIgnored !== undefined)
      log.warn({ maxMessages: config.maxMessagesIgnored }, '--max-messages is ignored: history is persistent (D1)');

    let closing: Promise<void> | undefined;
    return {
      address,
      port: address.port,
      tls: secureContext !== undefined,
      opsPort: ops?.port,
      metrics,
      registry,
      door,
      server,
      channels,
      nc,
      log,
      close: () => (closing ??= closeAll()),
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}
