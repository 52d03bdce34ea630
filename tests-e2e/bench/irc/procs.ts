/**
 * Benchmark plumbing: fresh databases, service child processes (waiting for their "ready" line),
 * and CPU accounting from /proc/<pid>/stat (utime + stime) of every server-side process.
 */
import { spawn, execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';

export const ROOT = join(__dirname, '..', '..', '..', '..');

export interface Proc {
  readonly name: string;
  readonly port: number;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

export async function startProc(
  name: string,
  main: string,
  env: Record<string, string>,
  nodeArgs: readonly string[] = [],
  timeoutMs = 60_000,
): Promise<Proc> {
  const child = spawn(process.execPath, [...nodeArgs, main], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail: string[] = [];
  let buf = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} not ready:\n${tail.join('\n')}`)), timeoutMs);
    child.stdout.on('data', (b: Buffer) => {
      buf += b.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        tail.push(line);
        if (tail.length > 50) tail.shift();
        if (line.includes('"msg":"ready"')) {
          clearTimeout(timer);
          resolve(Number(/"port":(\d+)/.exec(line)?.[1] ?? NaN));
        }
      }
    });
    child.stderr.on('data', (b: Buffer) => tail.push(b.toString()));
    child.once('exit', (c) => reject(new Error(`${name} exited ${c}:\n${tail.join('\n')}`)));
  });
  return {
    name,
    port,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

export async function createDatabase(adminUrl: string, name: string): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(adminUrl);
  u.pathname = '/' + name;
  return {
    url: u.toString(),
    drop: async () => {
      const c = new Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** fsync / synchronous_commit settings and the mean latency of 200 single-row durable commits. */
export async function fsyncLatency(
  url: string,
): Promise<{ fsync: string; synchronousCommit: string; commitMs: number }> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    const fsync = (await c.query<{ fsync: string }>('SHOW fsync')).rows[0]!.fsync;
    const sc = (await c.query<{ synchronous_commit: string }>('SHOW synchronous_commit')).rows[0]!.synchronous_commit;
    await c.query('CREATE TEMP TABLE IF NOT EXISTS bench_fsync (x int)');
    await c.query('CREATE TABLE IF NOT EXISTS bench_fsync_probe (x int)');
    const n = 200;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await c.query('INSERT INTO bench_fsync_probe VALUES ($1)', [i]);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6 / n;
    await c.query('DROP TABLE bench_fsync_probe');
    return { fsync, synchronousCommit: sc, commitMs: ms };
  } finally {
    await c.end();
  }
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process in ms, or 0 when it is gone. */
export function cpuMs(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // fields after ")": state(0) ... utime = field 14 → index 11, stime → index 12
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** PIDs whose command name is one of `names` (PostgreSQL backends, nats-server). */
export function pidsByName(names: readonly string[]): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const comm = readFileSync(`/proc/${d}/comm`, 'utf8').trim();
      if (names.some((n) => comm.startsWith(n))) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

/** CPU ms of a set of processes, by group, including PostgreSQL backends that come and go. */
export function cpuSnapshot(groups: Record<string, number[]>): Map<number, { group: string; ms: number }> {
  const m = new Map<number, { group: string; ms: number }>();
  for (const [group, pids] of Object.entries(groups)) for (const p of pids) m.set(p, { group, ms: cpuMs(p) });
  return m;
}

export function cpuDelta(
  before: Map<number, { group: string; ms: number }>,
  after: Map<number, { group: string; ms: number }>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [pid, a] of after) {
    const b = before.get(pid)?.ms ?? 0;
    out[a.group] = (out[a.group] ?? 0) + Math.max(0, a.ms - b);
  }
  return out;
}
