/** Settings every service shares, with the same names everywhere (ARCHITECTURE.md "Configuration"). */
import { oneOf, str } from './load-config';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';
export const DEFAULT_NATS_PREFIX = 'hubbub';

export const commonSchema = {
  logLevel: oneOf<LogLevel>({ env: 'LOG_LEVEL', doc: 'pino log level', values: LOG_LEVELS, default: 'info' }),
  natsUrl: str({
    env: 'NATS_URL',
    doc: 'NATS server URL(s), comma-separated; `nats://user:password@host:4222` carries the service user',
    default: DEFAULT_NATS_URL,
    // It may carry a password: never logged.
    secret: true,
  }),
  natsPrefix: str({
    env: 'NATS_PREFIX',
    doc: 'subject prefix for every hubbub subject and KV bucket',
    default: DEFAULT_NATS_PREFIX,
    pattern: /^[a-z][a-z0-9_-]{0,31}$/,
  }),
  host: str({ env: 'HOST', doc: 'address to listen on', default: '127.0.0.1' }),
} as const;
