/**
 * pino logger factory: JSON lines with the service name, child loggers per connection, and secret
 * redaction. Never log a password, token, hash or secret; the redact list is the safety net.
 */
import pino from 'pino';
import type { Logger, DestinationStream } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'password',
  'newPassword',
  'token',
  'secret',
  'authorization',
  'databaseUrl',
  '*.password',
  '*.newPassword',
  '*.token',
  '*.secret',
  '*.authorization',
  '*.databaseUrl',
  'req.headers.authorization',
  'req.headers.cookie',
];

export interface LoggerOptions {
  readonly service: string;
  readonly level?: string;
  /** For tests: where lines go. Defaults to stdout. */
  readonly destination?: DestinationStream;
}

export function createLogger(o: LoggerOptions): Logger {
  return pino(
    {
      name: o.service,
      level: o.level ?? 'info',
      base: { service: o.service, pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    o.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

let connSeq = 0;
/** A child logger for one connection with a process-unique connection id. */
export function connectionLogger(parent: Logger, fields: Record<string, unknown> = {}): Logger {
  connSeq = (connSeq + 1) % Number.MAX_SAFE_INTEGER;
  return parent.child({ conn: connSeq.toString(36), ...fields });
}

/**
 * Logs the `ready` line whatever LOG_LEVEL says: scripts/up and the e2e harness wait for
 * `"msg":"ready"`, so it must not be filtered out by `LOG_LEVEL=warn`.
 */
export function logReady(log: Logger, fields: Record<string, unknown>): void {
  log.child({}, { level: 'info' }).info(fields, 'ready');
}
