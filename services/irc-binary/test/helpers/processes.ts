/**
 * Starts identity and message-store as child processes from their built `dist/src/main.js` (a
 * service never imports another service), on port 0, against a fresh database and a unique NATS
 * prefix, and waits for their `"msg":"ready"` line.
 */
import { join } from 'node:path';
import { ServiceProcess, repoRoot } from '@hubbub/testing';

/** A started service: its port (started on port 0 unless the env says otherwise) and its process. */
export interface StartedService {
  readonly name: string;
  readonly port: number;
  readonly addr: string;
  readonly process: ServiceProcess;
  /** Log lines so far. */
  readonly output: readonly string[];
  /** SIGTERM, then wait for exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
  /** SIGKILL (a crash), then wait for exit. */
  kill(): Promise<void>;
}

export function serviceMain(name: string): string {
  return join(repoRoot(), 'services', name, 'dist', 'src', 'main.js');
}

export async function startService(
  name: string,
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<StartedService> {
  const p = ServiceProcess.node(name, `services/${name}/dist/src/main.js`, {
    LOG_LEVEL: 'info',
    HOST: '127.0.0.1',
    ...env,
  });
  await p.start(timeoutMs);
  return {
    name,
    port: p.port,
    addr: `127.0.0.1:${p.port}`,
    process: p,
    output: p.logs,
    stop: () => p.stop(10_000),
    kill: () => p.kill9(),
  };
}

export function identityEnv(o: {
  databaseUrl: string;
  natsUrl: string;
  prefix: string;
  port?: number;
}): Record<string, string> {
  return {
    DATABASE_URL: o.databaseUrl,
    NATS_URL: o.natsUrl,
    NATS_PREFIX: o.prefix,
    IDENTITY_PORT: String(o.port ?? 0),
    IDENTITY_METRICS_PORT: '0',
    // Fast hashing for tests.
    IDENTITY_SCRYPT_LOG_N: '10',
    IDENTITY_APP_PASSWORD_SCRYPT_LOG_N: '10',
  };
}

export function messageStoreEnv(o: {
  databaseUrl: string;
  natsUrl: string;
  prefix: string;
  port?: number;
}): Record<string, string> {
  return {
    DATABASE_URL: o.databaseUrl,
    NATS_URL: o.natsUrl,
    NATS_PREFIX: o.prefix,
    MESSAGE_STORE_PORT: String(o.port ?? 0),
    MESSAGE_STORE_METRICS_PORT: '0',
  };
}
