/**
 * ws-messenger send_message benchmark (spec ws-messenger.md §8): closed-loop WebSocket clients at
 * K = 1, 4, 16, 64, every reply only after PostgreSQL committed the message; then push latency to 1,000
 * subscribers of one flow (see pushRun); then an idle run of N authenticated, subscribed sockets and the RSS
 * of the ws-messenger process.
 *
 *   npx tsc -b tests-e2e && DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
 *     NATS_URL=nats://127.0.0.1:4222 node tests-e2e/dist/bench/ws-send.js \
 *     [--seconds 20] [--max 3000] [--k 1,4,16,64] [--push 1000] [--push-rate 50] [--push-seconds 10] [--push-threads 2]
 *     [--idle 10000] [--idle-seconds 60] [--warmup-seconds 5]
 *
 * BENCH_SERVICE_ENV (a JSON object of env vars) reaches every service, for experiments.
 *
 * Before the timed runs, --warmup-seconds of K=4 traffic (a flow and users of its own) warms the JIT; it is
 * printed and marked as not counted.
 *
 * Prints numbers; never asserts timings. Checks correctness: zero non-200 replies, zero dropped
 * connections, every replied message present in message-store's PostgreSQL database.
 */
import { cpus, tmpdir, totalmem } from 'node:os';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { Client } from 'pg';
import { connectNats, drainNats } from '@hubbub/nats';
import { createLogger } from '@hubbub/runtime';
import { join, resolve } from 'node:path';
import { startE2eEnv } from '../harness/env';
import { ServiceProcess, freePort, repoRoot } from '../harness/proc';
import { Worker } from 'node:worker_threads';
import { closeAll, openClient, Pipelined } from './ws/client';
import type { PushWorkerJob, PushWorkerResult } from './ws/push-worker';
import type { WsBenchClient } from './ws/client';
import { pct } from './stats';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

const JSONAPI = { version: '1.0', revision: '17' };

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * The spec's disk figure (§8.2): pg_test_fsync's "fdatasync" line for one 8 kB write, from the local
 * PostgreSQL installation when there is one (run in a temporary folder, 1 s per test).
 */
function fdatasyncLine(): string {
  const dirs = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql') : [];
  const bin = dirs.map((v) => `/usr/lib/postgresql/${v}/bin/pg_test_fsync`).find((b) => existsSync(b));
  if (!bin) return 'pg_test_fsync not installed';
  const dir = mkdtempSync(join(tmpdir(), 'fsync-'));
  try {
    const out = execFileSync(bin, ['-s', '1', '-f', join(dir, 'probe')], { encoding: 'utf8', timeout: 60_000 });
    const one = out.split('one 8kB write')[1] ?? '';
    const line = one.split('\n').find((l) => l.trim().startsWith('fdatasync'));
    return line
      ? `pg_test_fsync (one 8 kB write): ${line.trim().replace(/\s+/g, ' ')}`
      : 'pg_test_fsync: no fdatasync line';
  } catch (e) {
    return `pg_test_fsync failed: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

interface User {
  uuid: string;
  auth_id: string;
}

async function register(c: WsBenchClient, login: string): Promise<User> {
  const r = await c.request({
    type: 'register_user',
    jsonapi: JSONAPI,
    data: { user: [{ login, password: 'bench-password-1', username: login }] },
  });
  if (r.errors.code !== 201) throw new Error(`register ${login}: ${r.errors.code} ${r.errors.detail}`);
  const u = r.data.user[0];
  return { uuid: u.uuid, auth_id: u.auth_id };
}

async function runK(
  url: string,
  k: number,
  seconds: number,
  maxPerConn: number,
  runId: string,
): Promise<{ ids: string[]; line: string; failures: number; dropped: number }> {
  const setup = await openClient(url);
  const users: User[] = [];
  for (let i = 0; i < k; i++) users.push(await register(setup, `b${runId}k${k}u${i}`));
  const flow = await setup.request({
    type: 'add_flow',
    jsonapi: JSONAPI,
    data: { user: [users[0]], flow: [{ type: 'group', title: `bench ${k}`, users: users.map((u) => u.uuid) }] },
  });
  if (flow.errors.code !== 200) throw new Error(`add_flow: ${flow.errors.detail}`);
  const flowId = flow.data.flow[0].uuid as string;
  for (let i = 0; i < 50; i++) {
    const r = await setup.request({
      type: 'send_message',
      jsonapi: JSONAPI,
      data: { user: [users[i % k]], flow: [{ uuid: flowId }], message: [{ text: `seed message ${i}`, client_id: i }] },
    });
    if (r.errors.code !== 200) throw new Error(`seed: ${r.errors.detail}`);
  }
  await setup.close();

  const conns = await Promise.all(users.map(() => openClient(url)));
  const text = 'the quick brown fox jumps over the lazy dog, again and again!'; // 60 bytes
  const latencies = new Float64Array(k * maxPerConn);
  let n = 0;
  let failures = 0;
  const ids: string[] = [];
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    conns.map(async (c, i) => {
      const u = users[i]!;
      const p = new Pipelined(c);
      for (let j = 0; j < maxPerConn && performance.now() < end && !c.closed; j++) {
        const t0 = performance.now();
        const r = await p.request(
          `{"type": "send_message", "jsonapi": {"version": "1.0", "revision": "17"}, "data": {"user": [{"uuid": "${u.uuid}", "auth_id": "${u.auth_id}"}], "flow": [{"uuid": "${flowId}"}], "message": [{"text": "${text}", "client_id": ${j + 1}}]}}`,
        );
        latencies[n++] = performance.now() - t0;
        const code = /"code": (\d+)/.exec(r)?.[1];
        if (code !== '200') {
          failures++;
          continue;
        }
        const id = /"message": \[\{"uuid": "(\d+)"/.exec(r)?.[1];
        if (id) ids.push(id);
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  const dropped = conns.filter((c) => c.closed).length;
  await closeAll(conns);
  const lat = latencies.slice(0, n).sort();
  const line =
    `K=${String(k).padStart(2)}  ${String(n).padStart(6)} replies in ${elapsed.toFixed(1)} s  ` +
    `${(n / elapsed).toFixed(0).padStart(6)} msg/s  p50 ${pct(lat, 50).toFixed(2)} ms  p90 ${pct(lat, 90).toFixed(2)} ms  ` +
    `p99 ${pct(lat, 99).toFixed(2)} ms  max ${pct(lat, 100).toFixed(2)} ms  non-200 ${failures}  dropped ${dropped}`;
  return { ids, line, failures, dropped };
}

async function idleRun(url: string, count: number, idleSeconds: number, pid: number): Promise<string> {
  const setup = await openClient(url);
  const runId = Date.now().toString(36);
  const users: User[] = [];
  for (let i = 0; i < 20; i++) users.push(await register(setup, `idle${runId}${i}`));
  await setup.close();
  const before = rssMb(pid);
  const conns: WsBenchClient[] = [];
  const t0 = performance.now();
  const batch = 200;
  for (let i = 0; i < count; i += batch) {
    const opened = await Promise.all(
      Array.from({ length: Math.min(batch, count - i) }, async (_, j) => {
        const c = await openClient(url);
        const u = users[(i + j) % users.length]!;
        const ping = await c.request({ type: 'ping_pong', jsonapi: JSONAPI, data: { user: [u] } });
        const sub = await c.request({ type: 'subscribe', jsonapi: JSONAPI, data: { user: [u] } });
        if (ping.errors.code !== 200 || sub.errors.code !== 200) throw new Error('idle client setup failed');
        return c;
      }),
    );
    conns.push(...opened);
  }
  const openSeconds = (performance.now() - t0) / 1000;
  const afterOpen = rssMb(pid);
  let peak = afterOpen;
  const until = Date.now() + idleSeconds * 1000;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 1000));
    peak = Math.max(peak, rssMb(pid));
  }
  const afterIdle = rssMb(pid);
  const dropped = conns.filter((c) => c.closed).length;
  await closeAll(conns);
  return (
    `idle: ${count} sockets (ping_pong + subscribe each) opened in ${openSeconds.toFixed(1)} s, idle ${idleSeconds} s; ` +
    `ws-messenger RSS ${before.toFixed(0)} MB before, ${afterOpen.toFixed(0)} MB after opening, ` +
    `${afterIdle.toFixed(0)} MB after idling (peak ${peak.toFixed(0)} MB); dropped ${dropped}`
  );
}

/**
 * Push latency (spec §8.3, SHOULD: commit-to-`update` p50 < 5 ms, p99 < 50 ms with 1,000 subscribers of one flow):
 * `subscribers` sockets (20 accounts, each socket `subscribe`d), spread over `threads` worker threads, all see the
 * public flow `general`; the main thread posts into it at `rate` posts/s for `seconds`. Each update's latency is
 * measured twice: from the moment its post was SENT (the commit included: an upper bound of commit-to-update), and
 * from the moment the post's `posted` event reached a plain NATS subscriber in this process (message-store publishes
 * it right after the commit: a lower bound of commit-to-update, short of the commit by the publish hop).
 * Also counts lost and duplicate pushes (every subscriber must get every post exactly once).
 */
async function pushRun(
  url: string,
  o: { subscribers: number; rate: number; seconds: number; threads: number },
  pid: number,
  nats: { url: string; prefix: string },
): Promise<string> {
  const setup = await openClient(url);
  const runId = Date.now().toString(36);
  const users: User[] = [];
  for (let i = 0; i < 20; i++) users.push(await register(setup, `push${runId}${i}`));
  const poster = await register(setup, `pusher${runId}`);
  const flows = await setup.request({ type: 'all_flow', jsonapi: JSONAPI, data: { user: [poster] } });
  const general = (flows.data?.flow as { uuid: string; title: string }[] | undefined)?.find(
    (f) => f.title === 'general',
  );
  if (!general) throw new Error('push run: no public flow "general"');

  const workers = Array.from({ length: o.threads }, (_, i) => {
    const count = Math.floor(o.subscribers / o.threads) + (i < o.subscribers % o.threads ? 1 : 0);
    const job: PushWorkerJob = { url, users, count };
    return new Worker(join(__dirname, 'ws/push-worker.js'), { workerData: job });
  });
  const next = (w: Worker): Promise<{ ready?: boolean; result?: PushWorkerResult; error?: string }> =>
    new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
  for (const m of await Promise.all(workers.map(next))) if (m.error) throw new Error(`push worker: ${m.error}`);

  const sender = await openClient(url);
  const total = Math.round(o.rate * o.seconds);
  const sentUs = new Float64Array(total);
  // When each post's `posted` event reached NATS (after its commit); the text says which post it is.
  const eventUs = new Float64Array(total);
  const nc = await connectNats({
    servers: nats.url,
    name: 'ws-send-bench',
    log: createLogger({ service: 'bench', level: 'warn' }),
  });
  nc.subscribe(`${nats.prefix}.chat.${general.uuid}.posted`, {
    callback: (_e, msg) => {
      const at = (performance.timeOrigin + performance.now()) * 1000;
      const n = /push (\d+) from the push benchmark/.exec(msg.string())?.[1];
      if (n !== undefined && Number(n) < total) eventUs[Number(n)] = at;
    },
  });
  await nc.flush();
  let failures = 0;
  const wsCpu0 = cpuSeconds(pid);
  const mainCpu0 = process.cpuUsage();
  const start = performance.now();
  for (let n = 0; n < total; n++) {
    const wait = start + (n * 1000) / o.rate - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sentUs[n] = (performance.timeOrigin + performance.now()) * 1000;
    const r = await sender.send(
      `{"type": "send_message", "jsonapi": {"version": "1.0", "revision": "17"}, "data": {"user": [{"uuid": "${poster.uuid}", "auth_id": "${poster.auth_id}"}], "flow": [{"uuid": "${general.uuid}"}], "message": [{"text": "push ${n} from the push benchmark", "client_id": ${n + 1}}]}}`,
    );
    if (/"code": (\d+)/.exec(r)?.[1] !== '200') failures++;
  }
  // Let the last pushes arrive (bounded), then collect.
  await new Promise((r) => setTimeout(r, 2_000));
  const wsCpuS = cpuSeconds(pid) - wsCpu0;
  const mainCpu = process.cpuUsage(mainCpu0);
  const results = await Promise.all(
    workers.map(async (w) => {
      const p = next(w);
      w.postMessage('stop');
      const m = await p;
      await w.terminate();
      if (!m.result) throw new Error(`push worker: ${m.error ?? 'no result'}`);
      return m.result;
    }),
  );
  await closeAll([sender, setup]);
  await drainNats(nc);
  const lat: number[] = [];
  const fromEvent: number[] = [];
  let duplicates = 0;
  let dropped = 0;
  let short = 0;
  // process.cpuUsage() is the whole process: the main thread and the worker threads.
  const toolCpuUs = mainCpu.user + mainCpu.system;
  for (const r of results) {
    for (let i = 0; i < r.n.length; i++) {
      lat.push((r.atUs[i]! - sentUs[r.n[i]!]!) / 1000);
      const ev = eventUs[r.n[i]!]!;
      if (ev > 0) fromEvent.push((r.atUs[i]! - ev) / 1000);
    }
    duplicates += r.duplicates;
    dropped += r.dropped;
    short += Array.from(r.perSocket).filter((g) => g < total - failures).length;
  }
  const expected = (total - failures) * o.subscribers;
  const sorted = Float64Array.from(lat).sort();
  const sortedEv = Float64Array.from(fromEvent).sort();
  return (
    `push: ${o.subscribers} subscribers of "general" on ${o.threads} load threads, ${total} posts at ${o.rate}/s ` +
    `(${failures} failed): ${lat.length}/${expected} updates, post sent→update received p50 ${pct(sorted, 50).toFixed(2)} ms  ` +
    `p90 ${pct(sorted, 90).toFixed(2)} ms  p99 ${pct(sorted, 99).toFixed(2)} ms  max ${pct(sorted, 100).toFixed(2)} ms; ` +
    `posted event on NATS→update received (${fromEvent.length} updates) p50 ${pct(sortedEv, 50).toFixed(2)} ms  ` +
    `p90 ${pct(sortedEv, 90).toFixed(2)} ms  p99 ${pct(sortedEv, 99).toFixed(2)} ms; ` +
    `subscribers missing updates ${short}, duplicates ${duplicates}, dropped ${dropped}; CPU µs/update: ` +
    `ws-messenger ${((wsCpuS * 1e6) / Math.max(1, lat.length)).toFixed(1)}, load tool ${(toolCpuUs / Math.max(1, lat.length)).toFixed(1)}`
  );
}

async function main(): Promise<void> {
  const seconds = Number(arg('seconds', '20'));
  const maxPerConn = Number(arg('max', '3000'));
  const ks = arg('k', '1,4,16,64')
    .split(',')
    .map(Number)
    .filter((x) => x > 0);
  const idle = Number(arg('idle', '10000'));
  const idleSeconds = Number(arg('idle-seconds', '60'));
  const push = Number(arg('push', '1000'));
  const pushRate = Number(arg('push-rate', '50'));
  const pushSeconds = Number(arg('push-seconds', '10'));
  const pushThreads = Number(arg('push-threads', '2'));
  const warmupSeconds = Number(arg('warmup-seconds', '5'));

  const env = await startE2eEnv({
    doors: [],
    env: {
      LOG_LEVEL: 'info',
      IDENTITY_REGISTRATIONS_PER_HOUR: '1000000',
      WSM_RATE_PER_S: '0',
      WSM_IP_RATE_PER_S: '0',
      WSM_PUBLIC_CHANNELS: 'general',
      // Experiments: BENCH_SERVICE_ENV='{"MESSAGE_STORE_BATCH_MAX_IN_FLIGHT":"1"}' reaches every service.
      ...(JSON.parse(process.env['BENCH_SERVICE_ENV'] ?? '{}') as Record<string, string>),
    },
  });
  // `--wsm-node-args "--cpu-prof --cpu-prof-dir=/tmp/prof"` runs ws-messenger with extra node flags.
  const wsmNodeArgs = arg('wsm-node-args', '').split(' ').filter(Boolean);
  const ws = new ServiceProcess(
    'ws-messenger',
    process.execPath,
    [...wsmNodeArgs, resolve(repoRoot(), 'services/ws-messenger/dist/src/main.js')],
    {
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      NATS_URL: env.nats.url,
      NATS_PREFIX: env.nats.prefix,
      IDENTITY_ADDR: env.stack.identityAddr,
      MESSAGE_STORE_ADDR: env.stack.messageStoreAddr,
      WSM_HOST: '127.0.0.1',
      WSM_PORT: String(await freePort()),
      WSM_METRICS_PORT: '0',
      WSM_RATE_PER_S: '0',
      WSM_IP_RATE_PER_S: '0',
      // The load tool is one address opening hundreds of sockets at once (K=64, the idle run's batches of 200).
      WSM_MAX_HTTP_PENDING_PER_IP: '0',
      WSM_MAX_CONNECTIONS_PER_IP: '0',
      WSM_PUBLIC_CHANNELS: 'general',
    },
  );
  await ws.start();
  try {
    const url = `ws://127.0.0.1:${ws.env['WSM_PORT']!}/ws`;
    const pid = ws.pid!;
    const dbUrl = env.stack.messageStore.env['DATABASE_URL']!;
    const pg = new Client({ connectionString: dbUrl });
    await pg.connect();
    const fsync = (await pg.query<{ fsync: string }>('SHOW fsync')).rows[0]!.fsync;
    const sync = (await pg.query<{ synchronous_commit: string }>('SHOW synchronous_commit')).rows[0]!
      .synchronous_commit;
    const cpu = cpus();
    console.log(
      `machine: ${cpu.length} cores, ${cpu[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; ` +
        `PostgreSQL fsync=${fsync} synchronous_commit=${sync}; ${seconds} s or ${maxPerConn} requests per connection`,
    );
    console.log(fdatasyncLine());
    const runId = Date.now().toString(36);
    const pids = { ws: pid, store: env.stack.messageStore.pid, identity: env.stack.identity.pid };
    if (warmupSeconds > 0) {
      // Untimed: V8 compiles the hot paths of ws-messenger, message-store and identity during the first few
      // thousand requests, and on these two cores its compiler threads compete with the requests.
      const w = await runK(url, 4, warmupSeconds, 1_000_000, `${runId}w`);
      console.log(`warm-up (not counted): ${w.line}`);
    }
    for (const k of ks) {
      const cpu0 = { ws: cpuSeconds(pids.ws), store: cpuSeconds(pids.store), identity: cpuSeconds(pids.identity) };
      const r = await runK(url, k, seconds, maxPerConn, runId);
      const per = (name: keyof typeof pids): string =>
        (((cpuSeconds(pids[name]) - cpu0[name]) * 1e6) / Math.max(1, r.ids.length)).toFixed(0);
      let present = 0;
      for (let i = 0; i < r.ids.length; i += 5000) {
        const q = await pg.query<{ n: string }>('SELECT count(*) AS n FROM messages WHERE id = ANY($1::bigint[])', [
          r.ids.slice(i, i + 5000),
        ]);
        present += Number(q.rows[0]!.n);
      }
      console.log(
        `${r.line}  in PostgreSQL ${present}/${r.ids.length}  ` +
          `CPU µs/msg: ws-messenger ${per('ws')}, message-store ${per('store')}, identity ${per('identity')}`,
      );
    }
    await pg.end();
    if (push > 0)
      console.log(
        await pushRun(url, { subscribers: push, rate: pushRate, seconds: pushSeconds, threads: pushThreads }, pid, {
          url: env.nats.url,
          prefix: env.nats.prefix,
        }),
      );
    if (idle > 0) console.log(await idleRun(url, idle, idleSeconds, pid));
  } finally {
    await ws.stop();
    await env.destroy();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
