/**
 * identity's configuration schema (HOUSE-STYLE §3.6). Only main.ts passes process.env in.
 * The generated table is in docs/operations.md (## identity).
 */
import { commonSchema, int, str } from '@hubbub/runtime';
import type { ConfigOf } from '@hubbub/runtime';
import { checkPassword, checkUsername } from './app/usernames';

export const DEFAULT_IDENTITY_PORT = 50051;
export const DEFAULT_IDENTITY_METRICS_PORT = 9451;
export const DEFAULT_SESSION_TTL_S = 7 * 24 * 3600;
export const DEFAULT_NATS_VERIFY_MAX_IN_FLIGHT = 1_024;

export const identitySchema = {
  ...commonSchema,
  port: int({
    env: 'IDENTITY_PORT',
    doc: 'gRPC port (0 = any free port)',
    default: DEFAULT_IDENTITY_PORT,
    min: 0,
    max: 65535,
  }),
  metricsPort: int({
    env: 'IDENTITY_METRICS_PORT',
    doc: 'ops HTTP port for /healthz /readyz /metrics (0 = off)',
    default: DEFAULT_IDENTITY_METRICS_PORT,
    min: 0,
    max: 65535,
  }),
  identityAddr: str({
    env: 'IDENTITY_ADDR',
    doc: 'where the operator CLI (pnpm hubbub) reaches identity; ignored by the service',
    default: '127.0.0.1:50051',
  }),
  databaseUrl: str({
    env: 'DATABASE_URL',
    doc: 'PostgreSQL URL; unset = embedded PGlite under DATA_DIR',
    secret: true,
  }).optional(),
  dataDir: str({ env: 'DATA_DIR', doc: 'PGlite data folder (when DATABASE_URL is unset)', default: '.data/identity' }),
  sessionTtlS: int({
    env: 'IDENTITY_SESSION_TTL_S',
    doc: 'default session token lifetime in seconds (refresh extends it)',
    default: DEFAULT_SESSION_TTL_S,
    min: 1,
    max: 366 * 24 * 3600,
  }),
  maxSessionTtlS: int({
    env: 'IDENTITY_MAX_SESSION_TTL_S',
    doc: 'longest lifetime a caller may ask for',
    default: 30 * 24 * 3600,
    min: 1,
    max: 366 * 24 * 3600,
  }),
  scryptLogN: int({
    env: 'IDENTITY_SCRYPT_LOG_N',
    doc: 'scrypt cost: log2(N) for new password hashes (15 = 32 MiB, ~50-150 ms)',
    default: 15,
    min: 1,
    max: 20,
  }),
  scryptR: int({ env: 'IDENTITY_SCRYPT_R', doc: 'scrypt block size r', default: 8, min: 1, max: 32 }),
  scryptP: int({ env: 'IDENTITY_SCRYPT_P', doc: 'scrypt parallelism p', default: 1, min: 1, max: 16 }),
  appPasswordScryptLogN: int({
    env: 'IDENTITY_APP_PASSWORD_SCRYPT_LOG_N',
    doc: 'scrypt log2(N) for app passwords (checked up to 20 per login, so cheaper)',
    default: 11,
    min: 1,
    max: 20,
  }),
  throttleWindowS: int({
    env: 'IDENTITY_THROTTLE_WINDOW_S',
    doc: 'failed logins are remembered for this long',
    default: 900,
    min: 1,
  }),
  throttleFreeFailures: int({
    env: 'IDENTITY_THROTTLE_FREE_FAILURES',
    doc: 'failures (per account and per address) before delays start',
    default: 5,
    min: 1,
  }),
  throttleBaseDelayMs: int({
    env: 'IDENTITY_THROTTLE_BASE_DELAY_MS',
    doc: 'first delay after the free failures; doubles with each failure',
    default: 1_000,
    min: 1,
  }),
  throttleMaxDelayMs: int({ env: 'IDENTITY_THROTTLE_MAX_DELAY_MS', doc: 'longest delay', default: 30_000, min: 1 }),
  throttleAccountLockFailures: int({
    env: 'IDENTITY_THROTTLE_ACCOUNT_LOCK_FAILURES',
    doc: 'failures for one account within the window that lock it temporarily',
    default: 20,
    min: 1,
  }),
  throttleAddressLockFailures: int({
    env: 'IDENTITY_THROTTLE_ADDRESS_LOCK_FAILURES',
    doc: 'failures from one address within the window that lock it temporarily',
    default: 50,
    min: 1,
  }),
  throttleLockS: int({ env: 'IDENTITY_THROTTLE_LOCK_S', doc: 'how long a lock lasts', default: 900, min: 1 }),
  registrationsPerHour: int({
    env: 'IDENTITY_REGISTRATIONS_PER_HOUR',
    doc: 'accounts one client address may create per hour',
    default: 20,
    min: 1,
  }),
  tokenCacheSize: int({
    env: 'IDENTITY_TOKEN_CACHE_SIZE',
    doc: 'verified tokens kept in the in-process LRU (0 = no cache)',
    default: 100_000,
    min: 0,
  }),
  tokenCacheMs: int({
    env: 'IDENTITY_TOKEN_CACHE_MS',
    doc: 'longest time a cached verification is trusted without a database read',
    default: 60_000,
    min: 0,
  }),
  natsVerifyMaxInFlight: int({
    env: 'IDENTITY_NATS_VERIFY_MAX_IN_FLIGHT',
    doc: 'VerifyToken calls over NATS (subject <prefix>.rpc.identity.verify) handled at once; more are refused with RESOURCE_EXHAUSTED BUSY (doors then use gRPC); 0 = do not serve VerifyToken on NATS',
    default: DEFAULT_NATS_VERIFY_MAX_IN_FLIGHT,
    min: 0,
  }),
  statementTimeoutMs: int({
    env: 'IDENTITY_STATEMENT_TIMEOUT_MS',
    doc: "longest a statement of the service's may run in PostgreSQL (statement_timeout; migrations excepted); one over it is cancelled and the call answered DEADLINE_EXCEEDED QUERY_TIMEOUT; 0 = no limit",
    default: 10_000,
    min: 0,
  }),
  bootstrapSysop: str({
    env: 'IDENTITY_BOOTSTRAP_SYSOP',
    doc: '`name:password` of a sysop created on start when no account has that name',
    secret: true,
    pattern: /^[A-Za-z][A-Za-z0-9_-]{1,23}:.{8,}$/,
    // Register's own rules, checked before anything starts (a refused bootstrap would stop the service later).
    check: (raw) => {
      const i = raw.indexOf(':');
      const name = checkUsername(raw.slice(0, i));
      if (!name.ok) return `names a ${name.reason === 'USERNAME_RESERVED' ? 'reserved' : 'invalid'} username`;
      const pw = checkPassword(raw.slice(i + 1), raw.slice(0, i));
      return pw.ok ? undefined : `has a password Register refuses: ${pw.message}`;
    },
  }).optional(),
} as const;

export type IdentityConfig = ConfigOf<typeof identitySchema>;
