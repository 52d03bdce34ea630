/**
 * Composition of message-store: database (migrations in knex, hot path on pg/PGlite), NATS, worker-id
 * lease, outbox publisher, the service, gRPC and ops HTTP. `start()` is what main.ts and the integration
 * tests call (tests on port 0); `close()` stops in the order of ARCHITECTURE.md "Graceful shutdown".
 */
import { createDb, runMigrations } from '@hubbub/db';
import { connectNats, drainNats, registerNatsService } from '@hubbub/nats';
import type { NatsConnection, Service } from '@hubbub/nats';
import { startGrpcServer } from '@hubbub/grpc';
import type { GrpcServer } from '@hubbub/grpc';
import { subjects } from '@hubbub/proto';
import { createLogger, createMetricsRegistry, createReadiness, startOpsServer } from '@hubbub/runtime';
import type { Logger, OpsServer } from '@hubbub/runtime';
import { Counter, Gauge, Histogram } from 'prom-client';
import { messageStoreGrpc, testSeedEnabled, testingGrpc } from './api/grpc-api';
import { addAdminEndpoints } from './api/nats-admin';
import { addPostEndpoint } from './api/nats-api';
import { MessageService } from './app/message-service';
import { OutboxPublisher } from './app/outbox-publisher';
import { SnowflakeGenerator } from './app/snowflake';
import { PeerHorizon } from './app/peer-horizon';
import { WorkerLease } from './app/worker-lease';
import type { Config } from './config';
import { migrations } from './store/migrations';
import { Repo } from './store/repo';
import { pgSql, pgliteSql } from './store/sql';
import type { Sql } from './store/sql';

export const SERVICE_NAME = 'message-store';
export const SERVICE_VERSION = '0.1.0';

export interface StartDeps {
  readonly log?: Logger;
  /** Wall clock for ids and change times (tests move it backwards). */
  readonly now?: () => number;
  /** Tests: commit but never publish (a publisher killed between commit and publish). */
  readonly publisherPaused?: boolean;
}

export interface MessageStoreServer {
  readonly port: number;
  readonly metricsPort: number | undefined;
  readonly service: MessageService;
  readonly publisher: OutboxPublisher;
  readonly lease: WorkerLease;
  readonly peers: PeerHorizon;
  readonly ids: SnowflakeGenerator;
  readonly nc: NatsConnection;
  readonly sql: Sql;
  readonly log: Logger;
  close(): Promise<void>;
}

export async function start(cfg: Config, deps: StartDeps = {}): Promise<MessageStoreServer> {
  const log = deps.log ?? createLogger({ service: SERVICE_NAME, level: cfg.logLevel });
  const readiness = createReadiness(['database', 'nats', 'worker_id']);
  const registry = createMetricsRegistry(SERVICE_NAME);
  const mPosts = new Counter({ name: 'hubbub_msg_posts_total', help: 'posts committed', registers: [registry] });
  const mBatch = new Histogram({
    name: 'hubbub_msg_batch_size',
    help: 'posts per committed batch',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [registry],
  });
  const mBatchMs = new Histogram({
    name: 'hubbub_msg_batch_commit_ms',
    help: 'batch commit time in ms',
    buckets: [0.5, 1, 2, 4, 8, 16, 32, 64, 128],
    registers: [registry],
  });
  const mPublished = new Counter({
    name: 'hubbub_msg_outbox_published_total',
    help: 'outbox rows published',
    registers: [registry],
  });
  const mWorker = new Gauge({
    name: 'hubbub_msg_worker_id',
    help: 'leased worker id (-1 = none)',
    registers: [registry],
  });
  mWorker.set(-1);
  const mNatsPosts = new Counter({
    name: 'hubbub_msg_nats_post_calls_total',
    help: 'PostMessages calls served on NATS, by result (ok, error, refused)',
    labelNames: ['result'],
    registers: [registry],
  });

  const mHorizonRounds = new Histogram({
    name: 'hubbub_msg_horizon_round_ms',
    help: 'read-horizon rounds to the other replicas (catch-up reads), by duration in ms',
    buckets: [0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [registry],
  });
  const mHorizonFailures = new Counter({
    name: 'hubbub_msg_horizon_peer_failures_total',
    help: 'replicas that did not answer a read-horizon request, by reason (timeout, error, bad_answer)',
    labelNames: ['reason'],
    registers: [registry],
  });

  const mCatchUpCut = new Counter({
    name: 'hubbub_msg_catchup_unsettled_total',
    help: 'catch-ups (ListMessages after an id) answered while a lower id was still in flight, after waiting MESSAGE_STORE_HORIZON_TIMEOUT_MS',
    registers: [registry],
  });

  const cleanups: { name: string; fn: () => Promise<unknown> }[] = [];
  const undo = async (): Promise<void> => {
    for (const c of cleanups.reverse())
      await c.fn().catch((err: unknown) => log.warn({ err, step: c.name }, 'cleanup failed'));
  };
  try {
    // Database: migrations through knex, then the raw driver for the hot path.
    const db = createDb({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir, log, applicationName: SERVICE_NAME });
    let sql: Sql;
    try {
      const applied = await runMigrations(db.knex, migrations);
      if (applied.length > 0) log.info({ applied }, 'migrations applied');
      if (db.kind === 'postgres') {
        await db.close();
        sql = pgSql(cfg.databaseUrl!, cfg.dbPoolMax, log, cfg.statementTimeoutMs, cfg.batchMaxInFlight + 1);
      } else {
        sql = await pgliteSql(db);
      }
    } catch (e) {
      await db.close().catch(() => undefined);
      throw e;
    }
    cleanups.push({ name: 'database', fn: () => sql.close() });
    readiness.set('database', true);
    const repo = new Repo(sql);
    new Counter({
      name: 'hubbub_msg_stored_key_retries_total',
      help: 'post batches that met an already stored client key and were inserted again skipping it',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(repo.storedKeyRetries);
      },
    });

    const nc = await connectNats({
      servers: cfg.natsUrl,
      name: SERVICE_NAME,
      log,
      onStatus: (ok) => readiness.set('nats', ok),
    });
    cleanups.push({ name: 'nats', fn: () => drainNats(nc) });

    const ids = new SnowflakeGenerator({
      ...(deps.now ? { now: deps.now } : {}),
      // Called per id, after start (the lease below exists by then).
      leaseValid: () => lease.isValid(),
    });
    const lease = new WorkerLease({
      nc,
      bucket: subjects(cfg.natsPrefix).buckets.workerIds,
      ttlMs: cfg.workerLeaseTtlMs,
      log,
      onChange: async (w) => {
        if (w === undefined) ids.clearWorker();
        else ids.setWorker(w, await repo.maxIdMs());
        mWorker.set(w ?? -1);
        readiness.set('worker_id', w !== undefined);
      },
    });
    await lease.start();
    cleanups.push({ name: 'worker lease', fn: () => lease.stop() });
    const late: { service?: MessageService } = {}; // the publisher rebuilds swept events through the service
    // The other replicas' read horizon (docs/adr/0007): loaded before this replica serves anything.
    const peers = new PeerHorizon({
      nc,
      prefix: cfg.natsPrefix,
      bucket: subjects(cfg.natsPrefix).buckets.workerIds,
      leaseTtlMs: cfg.workerLeaseTtlMs,
      self: lease.holder,
      timeoutMs: cfg.horizonTimeoutMs,
      // A batch is stamped when it starts and its statement ends within statement_timeout (or a minute, without one).
      fallbackLagMs: 2 * (cfg.statementTimeoutMs > 0 ? cfg.statementTimeoutMs : 30_000),
      log,
      // Before the service exists nothing is in flight: the generator's bound is the answer.
      respond: () =>
        late.service?.horizonForPeer(cfg.horizonTimeoutMs / 2) ??
        Promise.resolve({ id: ids.horizon(), timeMs: (deps.now ?? Date.now)() }),
      onRound: (_n, ms) => mHorizonRounds.observe(ms),
      onPeerFailure: (reason) => mHorizonFailures.inc({ reason }),
    });
    await peers.start();
    cleanups.push({ name: 'horizon', fn: async () => peers.stop() });

    const publisher = new OutboxPublisher({
      repo,
      nc,
      log,
      cleanupIntervalMs: cfg.outboxCleanupIntervalMs,
      sweepIntervalMs: cfg.outboxSweepIntervalMs,
      paused: deps.publisherPaused ?? false,
      onPublished: (n) => mPublished.inc(n),
      rebuild: (q, rows) => late.service!.rebuildPostedEvents(q, rows),
    });
    cleanups.push({ name: 'outbox', fn: () => publisher.stop() });

    const service = new MessageService({
      repo,
      ids,
      publisher,
      prefix: cfg.natsPrefix,
      log,
      limits: {
        maxTextBytes: cfg.maxTextBytes,
        maxAttachmentBytes: cfg.maxAttachmentBytes,
        // The server's max_payload (1 MiB by default): no message is stored whose event it would refuse.
        maxEventBytes: nc.info?.max_payload ?? 1_048_576,
        maxBatchMessages: cfg.maxBatchMessages,
        maxOnelinerBytes: cfg.maxOnelinerBytes,
      },
      batchWindowMs: cfg.batchWindowMs,
      batchMaxMessages: cfg.batchMaxMessages,
      batchMaxInFlight: cfg.batchMaxInFlight,
      cacheTtlMs: cfg.cacheTtlMs,
      ...(deps.now ? { now: deps.now } : {}),
      peers,
      catchUpWaitMs: cfg.horizonTimeoutMs,
      onCatchUpCut: () => mCatchUpCut.inc(),
      onBatch: (size, ms) => {
        mPosts.inc(size);
        mBatch.observe(size);
        mBatchMs.observe(ms);
      },
    });
    late.service = service;
    cleanups.push({ name: 'batcher', fn: () => service.drain() });
    // Rule 2 of the publisher: what earlier processes left behind goes out before we serve.
    await publisher.start();

    const services = [messageStoreGrpc(service, log)];
    if (testSeedEnabled(cfg)) {
      log.warn({ code: 'TEST_SEED_ENABLED' }, 'test-only SeedMessages RPC is registered');
      services.push(testingGrpc(service, log));
    }
    const grpc: GrpcServer = await startGrpcServer({
      host: cfg.host,
      port: cfg.port,
      log,
      services,
      maxReceiveMessageBytes: Math.max(4 * 1024 * 1024, 2 * (cfg.maxTextBytes + cfg.maxAttachmentBytes) * 4),
    });
    cleanups.push({ name: 'grpc', fn: () => grpc.close() });

    let ops: OpsServer | undefined;
    if (cfg.metricsPort > 0) {
      ops = await startOpsServer({ host: cfg.host, port: cfg.metricsPort, registry, readiness });
      const o = ops;
      cleanups.push({ name: 'ops', fn: () => o.close() });
    }

    const natsSvc: Service = await registerNatsService(nc, {
      name: SERVICE_NAME,
      version: SERVICE_VERSION,
      description:
        'channels, membership and messages of hubbub (gRPC hubbub.messages.v1; posts and operator actions also on NATS)',
      metadata: { grpc_port: String(grpc.port), worker_id: String(ids.workerId ?? '') },
    });
    cleanups.push({ name: 'nats service', fn: () => natsSvc.stop() });
    if (cfg.natsPostMaxInFlight > 0)
      addPostEndpoint(natsSvc, service, {
        subject: subjects(cfg.natsPrefix).rpcPostMessages,
        log,
        maxInFlight: cfg.natsPostMaxInFlight,
        maxReplyBytes: () => nc.info?.max_payload ?? 1024 * 1024,
        onCall: (result) => mNatsPosts.inc({ result }),
      });

    // The operators' request subjects (only the operator NATS user may publish them: deploy/nats/hubbub-auth.conf).
    addAdminEndpoints(natsSvc, service, {
      subjects: {
        channelCreate: subjects(cfg.natsPrefix).adminChannelCreate,
        broadcast: subjects(cfg.natsPrefix).adminBroadcast,
      },
      log,
      maxTextBytes: cfg.maxTextBytes,
      maxReplyBytes: () => nc.info?.max_payload ?? 1024 * 1024,
    });

    let closing: Promise<void> | undefined;
    return {
      port: grpc.port,
      metricsPort: ops?.port,
      service,
      publisher,
      lease,
      peers,
      ids,
      nc,
      sql,
      log,
      // Reverse order of start: NATS service, ops, gRPC (stop accepting, finish in-flight calls), batcher
      // drain, outbox flush, lease release, NATS drain, database.
      close: () => (closing ??= undo()),
    };
  } catch (e) {
    await undo();
    throw e;
  }
}
