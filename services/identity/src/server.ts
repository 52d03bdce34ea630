/**
 * Composition of the identity service: database + migrations, NATS (events, cache invalidation,
 * presence bucket), the app, gRPC, ops HTTP and the NATS services registration (with the `verify-token`
 * endpoint, docs/adr/0004). `start` is what main.ts and the integration tests call (tests with port 0).
 */
import { createDb, runMigrations } from '@hubbub/db';
import { startGrpcServer } from '@hubbub/grpc';
import { connectNats, drainNats, publishJson, registerNatsService, subscribeJson } from '@hubbub/nats';
import type { NatsConnection } from '@hubbub/nats';
import { Presence } from '@hubbub/presence';
import { identityV1, subjects } from '@hubbub/proto';
import {
  createLifecycle,
  createMetricsRegistry,
  createReadiness,
  createLogger,
  periodicTask,
  startOpsServer,
} from '@hubbub/runtime';
import type { Lifecycle, Logger } from '@hubbub/runtime';
import { Counter } from 'prom-client';
import { identityService, rpcHistogram } from './api/grpc-service';
import { addAdminEndpoints } from './api/nats-admin';
import { addVerifyEndpoint } from './api/nats-api';
import { IdentityApp } from './app/identity';
import type { EventSink, IdentitySettings, NameReserver } from './app/identity';
import type { IdentityConfig } from './config';
import { MIGRATIONS } from './store/migrations';

export const SERVICE_NAME = 'identity';
export const SERVICE_VERSION = '0.1.0';

export interface StartDeps {
  readonly log?: Logger;
  readonly lifecycle?: Lifecycle;
  readonly now?: () => number;
}

export interface IdentityServer {
  readonly port: number;
  /** 0 when the ops server is off. */
  readonly metricsPort: number;
  readonly app: IdentityApp;
  readonly nc: NatsConnection;
  close(): Promise<void>;
}

export function settingsFrom(cfg: IdentityConfig): IdentitySettings {
  const base = {
    windowMs: cfg.throttleWindowS * 1000,
    freeFailures: cfg.throttleFreeFailures,
    baseDelayMs: cfg.throttleBaseDelayMs,
    maxDelayMs: cfg.throttleMaxDelayMs,
    lockMs: cfg.throttleLockS * 1000,
  };
  return {
    sessionTtlS: cfg.sessionTtlS,
    maxSessionTtlS: Math.max(cfg.maxSessionTtlS, cfg.sessionTtlS),
    kdf: { logN: cfg.scryptLogN, r: cfg.scryptR, p: cfg.scryptP },
    appPasswordKdf: { logN: cfg.appPasswordScryptLogN, r: cfg.scryptR, p: 1 },
    accountThrottle: { ...base, lockFailures: cfg.throttleAccountLockFailures },
    addressThrottle: { ...base, lockFailures: cfg.throttleAddressLockFailures },
    registrationsPerHour: cfg.registrationsPerHour,
    tokenCacheSize: cfg.tokenCacheSize,
    tokenCacheMs: cfg.tokenCacheMs,
  };
}

/** How often old login failures and long-ended sessions are deleted. */
const PRUNE_MS = 10 * 60_000;

export async function start(cfg: IdentityConfig, deps: StartDeps = {}): Promise<IdentityServer> {
  const log = deps.log ?? createLogger({ service: SERVICE_NAME, level: cfg.logLevel });
  const lc = deps.lifecycle ?? createLifecycle(log);
  const readiness = createReadiness(['database', 'nats']);
  const registry = createMetricsRegistry(SERVICE_NAME);
  const subj = subjects(cfg.natsPrefix);
  try {
    const db = createDb({
      databaseUrl: cfg.databaseUrl,
      dataDir: cfg.dataDir,
      log,
      poolMax: 20,
      statementTimeoutMs: cfg.statementTimeoutMs,
    });
    lc.onShutdown('database', () => db.close());
    const applied = await runMigrations(db.knex, MIGRATIONS);
    if (applied.length > 0) log.info({ applied }, 'migrations applied');
    readiness.set('database', true);

    const nc = await connectNats({
      servers: cfg.natsUrl,
      name: SERVICE_NAME,
      log,
      onStatus: (ok) => readiness.set('nats', ok),
    });
    lc.onShutdown('nats', () => drainNats(nc));

    const presence = await Presence.open({ nc, prefix: cfg.natsPrefix, log });
    const holder = async (folded: string): Promise<'guest' | 'registration' | undefined> => {
      const r = await presence.getNick(folded);
      if (!r) return undefined;
      return r.kind === 'registration' ? 'registration' : 'guest';
    };
    const names: NameReserver = {
      async reserve(folded) {
        const lease = await presence.reserveName(folded, `register-${process.pid}-${Date.now()}`);
        if (lease) return { release: () => lease.release() };
        return { heldBy: (await holder(folded)) === 'registration' ? 'registration' : 'guest' };
      },
      holder,
    };
    const events: EventSink = {
      userEvent: (ev) => {
        const kind = (
          {
            [identityV1.UserEventType.USER_EVENT_TYPE_CREATED]: 'created',
            [identityV1.UserEventType.USER_EVENT_TYPE_UPDATED]: 'updated',
            [identityV1.UserEventType.USER_EVENT_TYPE_DELETED]: 'deleted',
            [identityV1.UserEventType.USER_EVENT_TYPE_BANNED]: 'banned',
            [identityV1.UserEventType.USER_EVENT_TYPE_KICKED]: 'kicked',
          } as const
        )[ev.type as 1 | 2 | 3 | 4 | 5];
        if (kind) publishJson(nc, subj.user(kind), identityV1.UserEvent, ev);
      },
      sessionsRevoked: (ev) => publishJson(nc, subj.sessionRevoked, identityV1.SessionRevokedEvent, ev),
      sessionRefreshed: (ev) => publishJson(nc, subj.sessionRefreshed, identityV1.SessionRefreshedEvent, ev),
    };
    const app = new IdentityApp(db.knex, settingsFrom(cfg), events, log, names, deps.now);
    await app.init();
    if (cfg.bootstrapSysop && (await app.bootstrapSysop(cfg.bootstrapSysop))) {
      log.info({ username: cfg.bootstrapSysop.slice(0, cfg.bootstrapSysop.indexOf(':')) }, 'bootstrap sysop created');
    }

    // Failed-login rows that no longer throttle anything (their window is over, no lock), and sessions that ended
    // more than 30 days ago, are deleted.
    const prune = periodicTask(PRUNE_MS, async () => {
      try {
        const failures = await app.pruneLoginFailures();
        const sessions = await app.pruneSessions();
        if (failures + sessions > 0) log.info({ failures, sessions }, 'old login failures and sessions pruned');
      } catch (err) {
        log.warn({ err, code: 'IDENTITY_PRUNE_FAILED' }, 'pruning old login failures or sessions failed');
      }
    });
    prune.trigger();
    lc.onShutdown('prune', () => prune.stop());

    // Other instances' revocations and account changes invalidate our token cache too.
    const subs = [
      subscribeJson(nc, subj.sessionRevoked, identityV1.SessionRevokedEvent, (ev) => {
        if (ev.allSessions) app.cache.invalidateUser(ev.userId);
        for (const s of ev.sessionIds) app.cache.invalidateSession(s);
      }),
      subscribeJson(nc, subj.sessionRefreshed, identityV1.SessionRefreshedEvent, (ev) => {
        app.cache.invalidateSession(ev.sessionId);
      }),
      subscribeJson(nc, subj.userAll, identityV1.UserEvent, (ev) => {
        if (ev.user) app.cache.invalidateUser(ev.user.id);
      }),
    ];
    lc.onShutdown('subscriptions', () => subs.forEach((s) => s.unsubscribe()));

    const grpc = await startGrpcServer({
      host: cfg.host,
      port: cfg.port,
      log,
      services: [identityService(app, log, registry)],
    });
    lc.onShutdown('grpc', () => grpc.close());
    let metricsPort = 0;
    if (cfg.metricsPort !== 0) {
      const ops = await startOpsServer({ host: cfg.host, port: cfg.metricsPort, registry, readiness });
      metricsPort = ops.port;
      lc.onShutdown('ops', () => ops.close());
    }
    const svc = await registerNatsService(nc, {
      name: SERVICE_NAME,
      version: SERVICE_VERSION,
      description: 'hubbub accounts, sessions, keys (gRPC hubbub.identity.v1; VerifyToken also on NATS)',
      metadata: { grpc_port: String(grpc.port) },
    });
    lc.onShutdown('nats-service', async () => {
      await svc.stop().catch(() => undefined);
    });
    const mNatsVerify = new Counter({
      name: 'hubbub_identity_nats_verify_calls_total',
      help: 'VerifyToken calls served on NATS (subject <prefix>.rpc.identity.verify), by result (ok, error, refused)',
      labelNames: ['result'],
      registers: [registry],
    });
    if (cfg.natsVerifyMaxInFlight > 0) {
      const rpcSeconds = rpcHistogram(registry);
      const verifyMetrics = new Map<string, { calls: { inc(): void }; seconds: { observe(v: number): void } }>();
      addVerifyEndpoint(svc, app, {
        subject: subj.rpcVerifyToken,
        log,
        maxInFlight: cfg.natsVerifyMaxInFlight,
        // Label children are looked up once per (result, code): prom-client hashes the label object on every
        // inc/observe otherwise, a measurable share of the hot path's garbage at 10,000 calls/s.
        onCall: (result, code, seconds) => {
          const key = result + ' ' + code;
          let m = verifyMetrics.get(key);
          if (!m) {
            m = { calls: mNatsVerify.labels(result), seconds: rpcSeconds.labels('verifyToken', code) };
            verifyMetrics.set(key, m);
          }
          m.calls.inc();
          if (result !== 'refused') m.seconds.observe(seconds);
        },
      });
    }
    addAdminEndpoints(svc, app, {
      subject: (a) => subj.adminUser(a),
      log,
      maxReplyBytes: () => nc.info?.max_payload ?? 1024 * 1024,
    });
    return { port: grpc.port, metricsPort, app, nc, close: async () => void (await lc.shutdown('close')) };
  } catch (e) {
    await lc.shutdown('start failed');
    throw e;
  }
}
