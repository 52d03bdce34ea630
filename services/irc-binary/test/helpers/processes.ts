/**
 * Starts identity and message-store as child processes from their built `dist/src/main.js` (a
 * service never imports another service), on port 0, against a fresh database and a unique NATS
 * prefix, and waits for their `"msg":"ready"` line.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..', '..', '..');

export interface ServiceProcess {
  readonly name: string;
  readonly port: number;
  readonly addr: string;
  readonly child: ChildProcess;
  readonly output: string[];
  /** SIGTERM, then wait for exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
  /** SIGKILL (a crash), then wait for exit. */
  kill(): Promise<void>;
}

export function serviceMain(name: string): string {
  return join(ROOT, 'services', name, 'dist', 'src', 'main.js');
}

export async function startService(
  name: string,
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<ServiceProcess> {
  const main = serviceMain(name);
  if (!existsSync(main)) throw new Error(`${main} is missing: build it first (npx tsc -b services/${name})`);
  const child = spawn(process.execPath, [main], {
    // eslint-disable-next-line no-restricted-properties -- a child process needs the test's PATH
    env: { PATH: process.env['PATH'] ?? '', LOG_LEVEL: 'info', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  let buf = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} not ready in ${timeoutMs} ms:\n${output.join('\n')}`)),
      timeoutMs,
    );
    const onLine = (line: string): void => {
      output.push(line);
      if (output.length > 2_000) output.splice(0, 1_000);
      if (line.includes('"msg":"ready"')) {
        clearTimeout(timer);
        const m = /"port":(\d+)/.exec(line);
        if (m) resolve(Number(m[1]));
        else reject(new Error(`${name}: no port in ready line ${line}`));
      }
    };
    child.stdout.on('data', (b: Buffer) => {
      buf += b.toString('utf8');
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    child.stderr.on('data', (b: Buffer) => output.push(b.toString('utf8')));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before ready:\n${output.join('\n')}`));
    });
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const stopWith = async (sig: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  };
  return {
    name,
    port,
    addr: `127.0.0.1:${port}`,
    child,
    output,
    stop: () => stopWith('SIGTERM'),
    kill: () => stopWith('SIGKILL'),
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
