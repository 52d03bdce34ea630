/**
 * The machine's floor for hubbub's latency targets: what one hop and one commit cost here, before any
 * hubbub code runs. Every post crosses about four process-to-process hops (client → door → NATS →
 * message-store → PostgreSQL and back) and waits for one WAL flush, so these numbers bound what the
 * latency benchmarks (irc-fanout pingpong, cross-door, ws-send K=1/K=4) can reach. Prints; asserts nothing.
 *
 *   npx tsc -b tests-e2e && DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
 *     node tests-e2e/dist/bench/machine.js
 *
 * 1. TCP loopback round trip between two Node processes (64-byte echo, one at a time): p50/p99, and
 *    the CPU both processes spend per round trip (two wake-ups, two writes, two reads).
 * 2. An idle-loop wake-up: a 1 ms timer that writes 100 bytes to a socket, CPU per wake-up.
 * 3. PostgreSQL: round trip of `SELECT 1`, and a one-row INSERT committed with synchronous_commit=on
 *    (WAL flush), one at a time over TCP: p50/p99.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { cpus } from 'node:os';
import { Client } from 'pg';
import { createTestDatabase } from '@hubbub/testing';
import { pct } from './stats';

const N = Number(process.env['BENCH_N'] ?? 5000);

function summary(lat: number[]): string {
  const s = Float64Array.from(lat).sort();
  return `p50 ${(pct(s, 50) * 1000).toFixed(0)} µs  p99 ${(pct(s, 99) * 1000).toFixed(0)} µs  max ${(pct(s, 100) * 1000).toFixed(0)} µs`;
}

/** CPU ms (user + system) of a process from /proc. */
function cpuMsOf(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function echoChild(): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(__filename, ['--echo'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve) => child.once('message', (m) => resolve(m as number)));
  return { child, port };
}

async function connectTo(port: number): Promise<Socket> {
  const s = createConnection({ host: '127.0.0.1', port, noDelay: true });
  await new Promise((r) => s.once('connect', r));
  return s;
}

async function tcpRoundTrip(): Promise<void> {
  const { child, port } = await echoChild();
  const s = await connectTo(port);
  const msg = Buffer.alloc(64, 7);
  const lat: number[] = [];
  const once = (): Promise<void> =>
    new Promise((resolve) => {
      s.once('data', () => resolve());
      s.write(msg);
    });
  for (let i = 0; i < 500; i++) await once();
  const c0 = selfCpuMs() + cpuMsOf(child.pid!);
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    await once();
    lat.push(performance.now() - t0);
  }
  const cpu = selfCpuMs() + cpuMsOf(child.pid!) - c0;
  console.log(
    `TCP loopback round trip, two Node processes, 64 B, one at a time (n=${N}): ${summary(lat)}; ` +
      `CPU of both processes ${((cpu * 1000) / N).toFixed(0)} µs per round trip`,
  );
  s.destroy();
  child.kill();
}

async function timerWakeups(): Promise<void> {
  const { child, port } = await echoChild();
  const s = await connectTo(port);
  s.on('data', () => undefined);
  const buf = Buffer.alloc(100, 1);
  const n = 2000;
  const c0 = selfCpuMs();
  await new Promise<void>((resolve) => {
    let i = 0;
    const iv = setInterval(() => {
      s.write(buf);
      if (++i >= n) {
        clearInterval(iv);
        resolve();
      }
    }, 1);
  });
  const cpu = selfCpuMs() - c0;
  console.log(
    `wake-up: a 1 ms timer writing 100 B to a loopback socket (n=${n}): ${((cpu * 1000) / n).toFixed(0)} µs CPU per wake-up`,
  );
  s.destroy();
  child.kill();
}

async function postgres(): Promise<void> {
  if (!process.env['DATABASE_URL']) {
    console.log('PostgreSQL: DATABASE_URL not set; skipped');
    return;
  }
  const db = await createTestDatabase();
  const c = new Client({ connectionString: db.url });
  await c.connect();
  try {
    const settings = await c.query<{ name: string; setting: string }>(
      `SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method')`,
    );
    await c.query('CREATE TABLE t (id bigint PRIMARY KEY, v text NOT NULL)');
    const sel: number[] = [];
    for (let i = 0; i < N; i++) {
      const t0 = performance.now();
      await c.query({ name: 'sel', text: 'SELECT 1' });
      sel.push(performance.now() - t0);
    }
    const ins: number[] = [];
    for (let i = 0; i < Math.min(N, 3000); i++) {
      const t0 = performance.now();
      await c.query({ name: 'ins', text: 'INSERT INTO t VALUES ($1, $2)', values: [i, 'x'.repeat(64)] });
      ins.push(performance.now() - t0);
    }
    console.log(`PostgreSQL (${settings.rows.map((r) => `${r.name}=${r.setting}`).join(', ')}):`);
    console.log(`  SELECT 1 round trip (n=${sel.length}): ${summary(sel)}`);
    console.log(`  one-row INSERT, committed and flushed (n=${ins.length}): ${summary(ins)}`);
  } finally {
    await c.end();
    await db.drop();
  }
}

async function main(): Promise<void> {
  const cpu = cpus();
  console.log(`machine: ${cpu.length} × ${cpu[0]?.model ?? '?'}`);
  await tcpRoundTrip();
  await timerWakeups();
  await postgres();
}

if (process.argv.includes('--echo')) {
  const srv = createServer((c) => {
    c.setNoDelay(true);
    c.on('error', () => undefined);
    c.on('data', (d) => c.write(d));
  });
  srv.listen(0, '127.0.0.1', () => process.send!((srv.address() as { port: number }).port));
  process.on('disconnect', () => process.exit(0));
} else {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
