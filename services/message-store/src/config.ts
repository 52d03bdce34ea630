/** message-store configuration (HOUSE-STYLE §3.6): every key, default and limit in one schema. */
import { bool, commonSchema, int, str } from '@hubbub/runtime';
import type { ConfigOf } from '@hubbub/runtime';

export const DEFAULT_MESSAGE_STORE_PORT = 50052;
export const DEFAULT_MESSAGE_STORE_METRICS_PORT = 9452;
export const DEFAULT_BATCH_WINDOW_MS = 0;
export const DEFAULT_BATCH_MAX_MESSAGES = 512;
export const DEFAULT_BATCH_MAX_IN_FLIGHT = 4;
export const DEFAULT_MAX_TEXT_BYTES = 65_536;
export const DEFAULT_MAX_ATTACHMENT_BYTES = 262_144;
export const DEFAULT_MAX_BATCH_MESSAGES = 1_000;
export const DEFAULT_MAX_ONELINER_BYTES = 480;
export const DEFAULT_WORKER_LEASE_TTL_MS = 15_000;
export const DEFAULT_OUTBOX_SWEEP_INTERVAL_MS = 2_000;
export const DEFAULT_OUTBOX_CLEANUP_INTERVAL_MS = 50;
export const DEFAULT_CACHE_TTL_MS = 2_000;
export const DEFAULT_DB_POOL_MAX = 8;
export const DEFAULT_STATEMENT_TIMEOUT_MS = 10_000;

export const schema = {
  ...commonSchema,
  port: int({
    env: 'MESSAGE_STORE_PORT',
    doc: 'gRPC port (0 = any free port)',
    default: DEFAULT_MESSAGE_STORE_PORT,
    min: 0,
    max: 65_535,
  }),
  metricsPort: int({
    env: 'MESSAGE_STORE_METRICS_PORT',
    doc: 'ops HTTP port for /healthz, /readyz, /metrics (0 = off)',
    default: DEFAULT_MESSAGE_STORE_METRICS_PORT,
    min: 0,
    max: 65_535,
  }),
  databaseUrl: str({
    env: 'DATABASE_URL',
    doc: 'PostgreSQL URL; without it an embedded PGlite under DATA_DIR',
    secret: true,
  }).optional(),
  dataDir: str({ env: 'DATA_DIR', doc: 'folder of the embedded PGlite database', default: '.data/message-store' }),
  statementTimeoutMs: int({
    env: 'MESSAGE_STORE_STATEMENT_TIMEOUT_MS',
    doc: "longest a statement of the service's may run in PostgreSQL (statement_timeout; migrations excepted); one over it is cancelled and the call answered DEADLINE_EXCEEDED QUERY_TIMEOUT; 0 = no limit",
    default: DEFAULT_STATEMENT_TIMEOUT_MS,
    min: 0,
  }),
  dbPoolMax: int({
    env: 'MESSAGE_STORE_DB_POOL_MAX',
    doc: 'PostgreSQL connections for reads and other writes (plus MESSAGE_STORE_BATCH_MAX_IN_FLIGHT + 1 of their own for the post path: the batch INSERT and the channel facts it needs; and one for outbox cleanup, committed without waiting for fsync)',
    default: DEFAULT_DB_POOL_MAX,
    min: 2,
    max: 100,
  }),
  batchWindowMs: int({
    env: 'MESSAGE_STORE_BATCH_WINDOW_MS',
    doc: 'how long an idle batcher waits for more posts before committing (0 = what arrived in the same event-loop turn; posts arriving while commits run always form the next batch)',
    default: DEFAULT_BATCH_WINDOW_MS,
    min: 0,
    max: 100,
  }),
  batchMaxMessages: int({
    env: 'MESSAGE_STORE_BATCH_MAX_MESSAGES',
    doc: 'most posts committed in one transaction',
    default: DEFAULT_BATCH_MAX_MESSAGES,
    min: 1,
    max: 10_000,
  }),
  batchMaxInFlight: int({
    env: 'MESSAGE_STORE_BATCH_MAX_IN_FLIGHT',
    doc: 'batches committing at once (events still leave in id order)',
    default: DEFAULT_BATCH_MAX_IN_FLIGHT,
    min: 1,
    max: 16,
  }),
  maxTextBytes: int({
    env: 'MESSAGE_STORE_MAX_TEXT_BYTES',
    doc: 'max UTF-8 bytes of a message text',
    default: DEFAULT_MAX_TEXT_BYTES,
    min: 1,
  }),
  maxAttachmentBytes: int({
    env: 'MESSAGE_STORE_MAX_ATTACHMENT_BYTES',
    doc: 'max UTF-8 bytes of all attachments of a message together',
    default: DEFAULT_MAX_ATTACHMENT_BYTES,
    min: 0,
  }),
  maxBatchMessages: int({
    env: 'MESSAGE_STORE_MAX_BATCH_MESSAGES',
    doc: 'max messages in one PostMessages call',
    default: DEFAULT_MAX_BATCH_MESSAGES,
    min: 1,
  }),
  natsPostMaxInFlight: int({
    env: 'MESSAGE_STORE_NATS_POST_MAX_IN_FLIGHT',
    doc: 'PostMessages calls over NATS (subject <prefix>.rpc.messages.post) handled at once; more are refused with RESOURCE_EXHAUSTED (doors then use gRPC); 0 = do not serve posts on NATS',
    default: 1_024,
    min: 0,
  }),
  maxOnelinerBytes: int({
    env: 'MESSAGE_STORE_MAX_ONELINER_BYTES',
    doc: 'max UTF-8 bytes of a oneliner',
    default: DEFAULT_MAX_ONELINER_BYTES,
    min: 1,
  }),
  workerLeaseTtlMs: int({
    env: 'MESSAGE_STORE_WORKER_LEASE_TTL_MS',
    doc: 'TTL of the worker-id lease in the NATS KV bucket (renewed every third of it)',
    default: DEFAULT_WORKER_LEASE_TTL_MS,
    min: 1_000,
  }),
  horizonTimeoutMs: int({
    env: 'MESSAGE_STORE_HORIZON_TIMEOUT_MS',
    doc: 'how long a read waits for another replica to answer the read horizon (docs/adr/0007; after it, changes are reported complete only up to twice MESSAGE_STORE_STATEMENT_TIMEOUT_MS ago while that replica stays silent, logged MSG_HORIZON_PEER_TIMEOUT), and the longest a catch-up after an id waits for writes in flight below the ids it returns; a replica answers after at most half of it',
    default: 1_000,
    min: 10,
  }),
  outboxSweepIntervalMs: int({
    env: 'MESSAGE_STORE_OUTBOX_SWEEP_INTERVAL_MS',
    doc: 'how often unpublished outbox rows are swept from the database',
    default: DEFAULT_OUTBOX_SWEEP_INTERVAL_MS,
    min: 50,
  }),
  outboxCleanupIntervalMs: int({
    env: 'MESSAGE_STORE_OUTBOX_CLEANUP_INTERVAL_MS',
    doc: 'how often published outbox rows are deleted (after a NATS flush)',
    default: DEFAULT_OUTBOX_CLEANUP_INTERVAL_MS,
    min: 1,
  }),
  cacheTtlMs: int({
    env: 'MESSAGE_STORE_CACHE_TTL_MS',
    doc: 'how long channel and membership facts are cached for authorization of posts',
    default: DEFAULT_CACHE_TTL_MS,
    min: 0,
  }),
  enableTestSeed: bool({
    env: 'MESSAGE_STORE_ENABLE_TEST_SEED',
    doc: 'registers the test-only SeedMessages RPC; honoured only when NODE_ENV=test',
    default: false,
  }),
  nodeEnv: str({
    env: 'NODE_ENV',
    doc: 'runtime environment (test enables test-only paths with the flag above)',
    default: 'production',
  }),
} as const;

export type Config = ConfigOf<typeof schema>;
