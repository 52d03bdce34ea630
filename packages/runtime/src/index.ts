export {
  ConfigError,
  SHARED_ENV_NAMES,
  bool,
  configDocTable,
  int,
  list,
  loadConfig,
  loadConfigOrExit,
  oneOf,
  redactConfig,
  str,
} from './config/load-config';
export type { ConfigOf, Env, Field, LoadOptions, OptionalField, RequiredField, Schema } from './config/load-config';
export { DEFAULT_NATS_PREFIX, DEFAULT_NATS_URL, LOG_LEVELS, commonSchema } from './config/common';
export type { LogLevel } from './config/common';
export { REDACT_PATHS, connectionLogger, createLogger, logReady } from './log/logger';
export type { Logger, LoggerOptions } from './log/logger';
export { DEFAULT_SHUTDOWN_TIMEOUT_MS, createLifecycle } from './lifecycle/lifecycle';
export type { Lifecycle } from './lifecycle/lifecycle';
export { createMetricsRegistry, createReadiness, handleOpsRequest, startOpsServer } from './health/ops-server';
export type { OpsServer, Readiness } from './health/ops-server';
export { foldName, hasInvisibleCharacter } from './names';
export { Batcher, BatcherClosedError } from './batcher';
export type { BatcherOptions } from './batcher';
export { PerAddressLimit, PerAddressRate } from './per-address';
export { TokenBucket } from './token-bucket';
export { LogGate } from './log-gate';
export { StampedWrites } from './stamped-writes';
export { addressThrottleKey, normalizeAddress } from './addresses';
export { periodicTask } from './periodic';
export type { PeriodicTask } from './periodic';
