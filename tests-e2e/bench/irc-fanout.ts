/**
 * irc-binary fanout and pingpong benchmark (specs/irc-binary.md §8).
 *
 *   npx tsc -b services/irc-binary services/identity services/message-store tests-e2e
 *   node tests-e2e/dist/bench/irc-fanout.js [--runs 3] [--only validate,fanout,pingpong]
 *   node tests-e2e/dist/bench/irc-fanout.js --clients 10 --messages 1000 --size 64   (one fanout config)
 *
 * 1. Validates the harness against a trivial in-memory coalescing broadcast server (a child process
 *    running this file with --serve-memory): the harness must reach ≥ 1 M deliveries/s there.
 * 2. Starts identity, message-store and irc-binary as processes against fresh databases on the local
 *    PostgreSQL (DATABASE_URL, fsync on) and NATS (NATS_URL) under a unique prefix, irc-binary with its
 *    defaults except IRCB_SEND_RATE_PER_S=0, IRCB_IP_SEND_RATE_PER_S=0, IRCB_IP_HISTORY_RATE_PER_S=0 and LOG_LEVEL=warn.
 * 3. fanout N/M/S: N connections (one process, this one) authenticate as b0..b<N-1>; at time 0 each
 *    writes M SEND_MESSAGE frames of S bytes into `general` at once; the clock stops when every
 *    connection has received all N·M broadcasts. Reports accepted msgs/s = N·M/t, deliveries/s =
 *    N²·M/t, CPU (utime+stime) of the server-side processes per delivery, lost/duplicate/order checks.
 *    Default: N=10/M=1000 and N=50/M=200, S=64, --runs times each (median reported). Each run ≤ 120 s.
 * 4. pingpong M=1000: one connection, send → own echo → repeat; p50/p90/p99/max; each of --runs runs starts
 *    with --pingpong-warmup (default 3000) untimed round trips (JIT warm-up), the median of the runs is reported.
 * Timings are printed, never asserted. Env: DATABASE_URL, NATS_URL, BENCH_MESSAGE_STORE_ENV (extra
 * message-store settings for experiments), BENCH_IRC_NODE_ARGS (e.g. --cpu-prof for irc-binary).
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createTestNats } from '@hubbub/testing';
import { BenchConn, sendFrames } from './irc/client';
import { startMemoryBroadcastServer } from './irc/memory-server';
import { ROOT, cpuDelta, cpuSnapshot, createDatabase, fsyncLatency, pidsByName, startProc } from './irc/procs';
import type { Proc } from './irc/procs';
import { pct } from './stats';

const ADMIN_URL = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NATS_URL = process.env['NATS_URL'] ?? 'nats://127.0.0.1:4222';
const RUN_LIMIT_MS = 120_000;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, limitMs: number): Promise<boolean> {
  const end = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > end) return false;
    await sleep(1);
  }
  return true;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

interface FanoutResult {
  seconds: number;
  accepted: number;
  deliveries: number;
  complete: boolean;
  orderErrors: number;
  received: number;
  expected: number;
  closed: number;
  cpuMs: Record<string, number>;
}

async function openConns(port: number, n: number): Promise<BenchConn[]> {
  const conns: BenchConn[] = [];
  for (let i = 0; i < n; i++) {
    // A nick of the previous run may still be releasing: retry briefly.
    for (let attempt = 1; ; attempt++) {
      try {
        conns.push(await BenchConn.open(port, i, n));
        break;
      } catch (e) {
        if (attempt >= 50) throw e;
        await sleep(20);
      }
    }
  }
  return conns;
}

async function fanout(
  port: number,
  n: number,
  m: number,
  size: number,
  cpuGroups: (() => Record<string, number[]>) | undefined,
): Promise<FanoutResult> {
  const conns = await openConns(port, n);
  const payloads = conns.map((c) => sendFrames('general', size, m, c.index));
  const expected = n * m;
  await sleep(50);
  const groups = cpuGroups?.();
  const before = groups ? cpuSnapshot(groups) : undefined;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) conns[i]!.socket.write(payloads[i]!);
  const complete = await until(() => conns.every((c) => c.received >= expected || c.closed), RUN_LIMIT_MS);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const after = groups ? cpuSnapshot(cpuGroups!()) : undefined;
  const received = conns.reduce((a, c) => a + c.received, 0);
  const r: FanoutResult = {
    seconds,
    accepted: expected / seconds,
    deliveries: (n * expected) / seconds,
    complete: complete && conns.every((c) => c.received === expected),
    orderErrors: conns.reduce((a, c) => a + c.orderErrors, 0),
    received,
    expected: n * expected,
    closed: conns.filter((c) => c.closed).length,
    cpuMs: before && after ? cpuDelta(before, after) : {},
  };
  for (const c of conns) c.close();
  return r;
}

/** One connection: `warmup` round trips not counted, then `m` timed ones (sorted latencies in ms). */
async function pingpong(port: number, m: number, warmup: number): Promise<number[]> {
  const [c] = await openConns(port, 1);
  const conn = c!;
  const frame = sendFrames('general', 64, 1, 0);
  const lat: number[] = [];
  let resolve: (() => void) | undefined;
  conn.onBroadcast = (sender) => {
    if (sender === 0) resolve?.();
  };
  for (let i = 0; i < warmup + m; i++) {
    const t0 = process.hrtime.bigint();
    const echoed = new Promise<void>((r) => (resolve = r));
    conn.socket.write(frame);
    await echoed;
    if (i >= warmup) lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  conn.close();
  return lat.sort((a, b) => a - b);
}

function printFanout(label: string, runs: FanoutResult[], n: number, m: number): void {
  for (const [i, r] of runs.entries()) {
    const cpuTotal = Object.values(r.cpuMs).reduce((a, b) => a + b, 0);
    const perDelivery =
      cpuTotal > 0
        ? ` cpu/delivery ${((cpuTotal * 1000) / (n * n * m)).toFixed(2)} µs (${Object.entries(r.cpuMs)
            .map(([k, v]) => `${k} ${fmt(v)} ms`)
            .join(', ')})`
        : '';
    console.log(
      `  ${label} run ${i + 1}: ${r.seconds.toFixed(3)} s, accepted ${fmt(r.accepted)} msgs/s, deliveries ${fmt(r.deliveries)}/s, ` +
        `${r.complete ? 'complete' : `INCOMPLETE ${r.received}/${r.expected}`}, order/dup errors ${r.orderErrors}, closed ${r.closed}${perDelivery}`,
    );
  }
  const med = median(runs.map((r) => r.deliveries));
  const cpu = median(runs.map((r) => Object.values(r.cpuMs).reduce((a, b) => a + b, 0)));
  console.log(
    `  ${label} median: deliveries ${fmt(med)}/s, accepted ${fmt(median(runs.map((r) => r.accepted)))} msgs/s` +
      (cpu > 0 ? `, cpu/delivery ${((cpu * 1000) / (n * n * m)).toFixed(2)} µs` : ''),
  );
}

async function serveMemory(): Promise<void> {
  const s = await startMemoryBroadcastServer();
  process.send!({ port: s.port });
  process.on('disconnect', () => {
    s.close();
    process.exit(0);
  });
}

async function main(): Promise<void> {
  const only = (arg('only') ?? 'validate,fanout,pingpong').split(',');
  const runs = Number(arg('runs') ?? 3);
  const single = arg('clients')
    ? { n: Number(arg('clients')), m: Number(arg('messages') ?? 1000), s: Number(arg('size') ?? 64) }
    : undefined;
  console.log('irc-binary benchmark (specs/irc-binary.md §8)');
  console.log(
    `machine: ${cpus().length} cores, ${cpus()[0]?.model ?? '?'}; load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    'conditions: IRCB_SEND_RATE_PER_S=0 and IRCB_IP_*_RATE_PER_S=0 (rate limits disabled: the harness floods on purpose from one address), LOG_LEVEL=warn, other irc-binary settings default',
  );

  if (only.includes('validate')) {
    const child = fork(__filename, ['--serve-memory'], { stdio: 'inherit' });
    const port = await new Promise<number>((r) => child.once('message', (m: { port: number }) => r(m.port)));
    const cpuGroups = (): Record<string, number[]> => ({ 'memory-server': [child.pid!] });
    const vr = [await fanout(port, 50, 1000, 64, cpuGroups), await fanout(port, 50, 1000, 64, cpuGroups)];
    console.log('harness validation against a trivial in-memory coalescing broadcast server (N=50, M=1000, S=64):');
    printFanout('memory', vr, 50, 1000);
    const best = Math.max(...vr.map((r) => r.deliveries));
    console.log(`  harness ${best >= 1e6 ? 'OK' : 'BELOW TARGET'}: best ${fmt(best)} deliveries/s (needs ≥ 1,000,000)`);
    child.disconnect();
  }
  if (!only.includes('fanout') && !only.includes('pingpong')) return;

  const tag = randomBytes(4).toString('hex');
  const nats = createTestNats({ NATS_URL });
  const idDb = await createDatabase(ADMIN_URL, `hubbub_bench_id_${tag}`);
  const msDb = await createDatabase(ADMIN_URL, `hubbub_bench_ms_${tag}`);
  const procs: Proc[] = [];
  try {
    const fs = await fsyncLatency(msDb.url);
    console.log(
      `PostgreSQL: fsync=${fs.fsync}, synchronous_commit=${fs.synchronousCommit}, single-row commit ${fs.commitMs.toFixed(3)} ms mean (200 commits)`,
    );
    const common = { NATS_URL, NATS_PREFIX: nats.prefix, HOST: '127.0.0.1' };
    const identity = await startProc('identity', join(ROOT, 'services/identity/dist/src/main.js'), {
      ...common,
      LOG_LEVEL: 'info',
      DATABASE_URL: idDb.url,
      IDENTITY_PORT: '0',
      IDENTITY_METRICS_PORT: '0',
    });
    procs.push(identity);
    const store = await startProc('message-store', join(ROOT, 'services/message-store/dist/src/main.js'), {
      ...common,
      LOG_LEVEL: 'info',
      DATABASE_URL: msDb.url,
      MESSAGE_STORE_PORT: '0',
      MESSAGE_STORE_METRICS_PORT: '0',
      // Optional overrides for experiments, e.g. BENCH_MESSAGE_STORE_ENV="MESSAGE_STORE_BATCH_WINDOW_MS=0"
      ...Object.fromEntries(
        (process.env['BENCH_MESSAGE_STORE_ENV'] ?? '')
          .split(/\s+/)
          .filter((kv) => kv.includes('='))
          .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      ),
    });
    procs.push(store);
    const irc = await startProc(
      'irc-binary',
      join(ROOT, 'services/irc-binary/dist/src/main.js'),
      {
        ...common,
        LOG_LEVEL: 'warn',
        IRCB_PORT: '0',
        IRCB_HOST: '127.0.0.1',
        IRCB_METRICS_PORT: '0',
        IRCB_SEND_RATE_PER_S: '0',
        IRCB_IP_SEND_RATE_PER_S: '0',
        IRCB_IP_HISTORY_RATE_PER_S: '0',
        IDENTITY_ADDR: `127.0.0.1:${identity.port}`,
        MESSAGE_STORE_ADDR: `127.0.0.1:${store.port}`,
      },
      (process.env['BENCH_IRC_NODE_ARGS'] ?? '').split(' ').filter(Boolean),
    ); // profiling hook, e.g. --cpu-prof
    procs.push(irc);
    console.log(
      `started identity :${identity.port}, message-store :${store.port}, irc-binary :${irc.port} (NATS prefix ${nats.prefix})`,
    );
    const cpuGroups = (): Record<string, number[]> => ({
      'irc-binary': [irc.child.pid!],
      'message-store': [store.child.pid!],
      identity: [identity.child.pid!],
      postgres: pidsByName(['postgres']),
      nats: pidsByName(['nats-server']),
    });

    if (only.includes('fanout')) {
      // Warm-up (JIT, connection pools, batcher) so the first measured run is not a cold start.
      await fanout(irc.port, 10, 1000, 64, undefined);
      await fanout(irc.port, 50, 200, 64, undefined);
      const configs = single
        ? [single]
        : [
            { n: 10, m: 1000, s: 64 },
            { n: 50, m: 200, s: 64 },
          ];
      for (const c of configs) {
        const rs: FanoutResult[] = [];
        for (let i = 0; i < runs; i++) rs.push(await fanout(irc.port, c.n, c.m, c.s, cpuGroups));
        console.log(`fanout N=${c.n} M=${c.m} S=${c.s} (every message persisted before broadcast):`);
        printFanout(`N=${c.n}/M=${c.m}`, rs, c.n, c.m);
      }
      console.log(
        '  (cpu: utime+stime from /proc of irc-binary, message-store, identity, every postgres and nats-server process on this machine)',
      );
    }
    if (only.includes('pingpong')) {
      const m = Number(arg('pingpong-messages') ?? 1000);
      // V8 compiles the hot paths of every process in the chain during the first few thousand posts (on these
      // two cores the compiler threads compete with the request), so each run starts with untimed round trips.
      const warmup = Number(arg('pingpong-warmup') ?? 3000);
      const p50s: number[] = [];
      const p99s: number[] = [];
      for (let run = 1; run <= runs; run++) {
        const lat = await pingpong(irc.port, m, warmup);
        p50s.push(pct(lat, 50));
        p99s.push(pct(lat, 99));
        console.log(
          `pingpong M=${m} run ${run} (send → own echo, persisted; after ${warmup} untimed round trips): p50 ${pct(lat, 50).toFixed(3)} ms, ` +
            `p90 ${pct(lat, 90).toFixed(3)} ms, p99 ${pct(lat, 99).toFixed(3)} ms, max ${lat[lat.length - 1]!.toFixed(3)} ms`,
        );
      }
      console.log(`pingpong median of ${runs}: p50 ${median(p50s).toFixed(3)} ms, p99 ${median(p99s).toFixed(3)} ms`);
    }
  } finally {
    for (const p of procs.reverse()) await p.stop();
    await Promise.allSettled([idDb.drop(), msDb.drop(), nats.cleanup()]);
  }
}

if (process.argv.includes('--serve-memory')) void serveMemory();
else
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
