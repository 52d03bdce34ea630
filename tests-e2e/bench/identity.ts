/**
 * identity benchmark (issue #3 "Done when"): starts identity as a child process (production KDF
 * cost unless told otherwise) against a fresh database on the local PostgreSQL and a fresh NATS
 * prefix, then measures
 *
 *   1. password login (Authenticate) latency, sequential, and login throughput with 4 in flight;
 *   2. VerifyToken latency unloaded (one call at a time);
 *   3. VerifyToken throughput, saturated (workers × concurrency), with p50/p99;
 *   4. VerifyToken at paced rates up to 10,000/s (the target load) with p50/p99, twice: from the scheduled
 *      send time (queueing counted, but also the generator's own lateness: it sends on 1 ms timer ticks in
 *      worker threads that share the two cores with the server), and from the moment each call was sent;
 *   5. the floor (NATS clients): the same paced generator against an echo responder that does no work, so the
 *      p99 the machine and nats-server alone give is printed beside identity's;
 *   6. VerifyToken with the token cache off (every call reads PostgreSQL), saturated.
 *
 * The load runs in worker threads with their own connections (gRPC, or one NATS connection per worker with
 * BENCH_CLIENT=nats). Every result line names the transport it measured. Numbers are printed, never asserted.
 *
 *   npx tsc -b tests-e2e && node tests-e2e/dist/bench/identity.js
 *
 * Env: DATABASE_URL (admin URL; unset = PGlite in a temp folder), NATS_URL, BENCH_SECONDS (default 10),
 * BENCH_WORKERS (default 2), BENCH_CONCURRENCY (in-flight calls per worker, default 32),
 * BENCH_RATE (paced calls/s, comma-separated, default 2000,5000,10000), BENCH_SCRYPT_LOG_N (default: the service default, 15),
 * BENCH_WARMUP_SECONDS (untimed paced calls at the highest BENCH_RATE before the paced runs, default 3),
 * BENCH_PHASES (comma-separated subset of login,idle,saturated,paced,floor,cold; default all; `floor` runs the paced
 * generator at the highest rate against a NATS echo responder that does no work, NATS clients only; e.g. `paced` alone to
 * profile identity under the target load with BENCH_IDENTITY_NODE_ARGS=--cpu-prof),
 * BENCH_CLIENT (`h2` default: raw HTTP/2 with pre-encoded gRPC frames, so the generator costs less CPU than
 * the server; `grpc`: the grpc-js client; `nats`: NATS request/reply to identity's `verify-token` endpoint,
 * subject `<prefix>.rpc.identity.verify` (docs/adr/0004), one NATS connection per worker with `noAsyncTraces`,
 * pre-encoded binary VerifyTokenRequest bytes; a reply with a `Nats-Service-Error-Code` header counts as an
 * error; `nats-lean`: the same requests over the lean hand-written NATS requester of lean-nats.ts, one socket per
 * worker, no per-request timer or promise, so the generator costs a fraction of nats.js's CPU and garbage).
 * BENCH_CLIENT applies to phases 3-5; phase 2 always uses the grpc-js client, and with a NATS client it is
 * repeated over NATS. The handler-time line (identity's `hubbub_identity_rpc_seconds`) covers both transports.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as h2connect } from 'node:http2';
import type { ClientHttp2Session } from 'node:http2';
import { createInterface } from 'node:readline';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createClient } from '@hubbub/grpc';
import { identityV1, subjects } from '@hubbub/proto';
import { connect as natsConnect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { createTestDatabase, createTestNats } from '@hubbub/testing';
import { freePort } from '../harness/proc';
import { leanRequester } from './lean-nats';
import { pct } from './stats';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10);
const WORKERS = Number(process.env['BENCH_WORKERS'] ?? 2);
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 32);
const RATES = (process.env['BENCH_RATE'] ?? '2000,5000,10000').split(',').map(Number);
const LOG_N = process.env['BENCH_SCRYPT_LOG_N'];
const WARMUP_SECONDS = Number(process.env['BENCH_WARMUP_SECONDS'] ?? 3);
const PHASES = new Set((process.env['BENCH_PHASES'] ?? 'login,idle,saturated,paced,floor,cold').split(','));
type ClientKind = 'grpc' | 'h2' | 'nats' | 'nats-lean';
const CLIENT_ENV = process.env['BENCH_CLIENT'] ?? 'h2';
if (isMainThread && !['grpc', 'h2', 'nats', 'nats-lean'].includes(CLIENT_ENV)) {
  console.error(`BENCH_CLIENT must be h2, grpc, nats or nats-lean, got ${JSON.stringify(CLIENT_ENV)}`);
  process.exit(2);
}
const CLIENT = CLIENT_ENV as ClientKind;

/** How a result line names the transport it measured. */
function transport(c: ClientKind): string {
  switch (c) {
    case 'nats':
      return 'NATS request/reply, nats.js client';
    case 'nats-lean':
      return 'NATS request/reply, lean client';
    case 'h2':
      return 'gRPC, raw h2 client';
    default:
      return 'gRPC, grpc-js client';
  }
}

interface Job {
  readonly addr: string;
  /** NATS server and VerifyToken subject (client `nats`). */
  readonly natsUrl: string;
  readonly subject: string;
  /**
   * `grpc`: the @hubbub/grpc client (grpc-js); `h2`: raw HTTP/2 with pre-encoded gRPC frames (a cheaper
   * generator); `nats`: NATS request/reply with pre-encoded protobuf bytes.
   */
  readonly client: ClientKind;
  readonly mode: 'closed' | 'paced';
  readonly concurrency: number;
  readonly rate: number;
  readonly seconds: number;
  readonly tokens: readonly string[];
}

interface JobResult {
  readonly ok: number;
  readonly errors: number;
  readonly latUs: Float64Array;
  /** Paced mode: latency from the moment the call was actually sent (the generator's lateness excluded). */
  readonly sentLatUs: Float64Array;
  readonly elapsedMs: number;
}

function summary(latUs: Float64Array | number[]): string {
  const s = Float64Array.from(latUs).sort();
  const ms = (us: number): string => (us / 1000).toFixed(3);
  return `p50 ${ms(pct(s, 50))} ms  p99 ${ms(pct(s, 99))} ms  p99.9 ${ms(pct(s, 99.9))} ms  max ${ms(s[s.length - 1] ?? NaN)} ms`;
}

// ------------------------------------------------------------------ worker

/** Paced mode: at most this many calls in flight per worker; more are counted as errors (overload). */
const MAX_INFLIGHT_PACED = 1_000;
const VERIFY_PATH = '/hubbub.identity.v1.IdentityService/VerifyToken';

/** One gRPC unary call over a raw HTTP/2 stream; true when grpc-status is 0. */
function rawCall(session: ClientHttp2Session, body: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const req = session.request({
      ':method': 'POST',
      ':path': VERIFY_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    let status: string | undefined;
    req.on('response', (h) => {
      if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
    });
    req.on('trailers', (t) => {
      status = String(t['grpc-status']);
    });
    req.on('data', () => undefined);
    req.on('end', () => resolve(status === '0'));
    req.on('error', () => resolve(false));
    req.end(body);
  });
}

/** One VerifyToken over NATS request/reply; true when the reply is not a services-framework error. */
async function natsCall(nc: NatsConnection, subject: string, body: Uint8Array): Promise<boolean> {
  try {
    const r = await nc.request(subject, body, { timeout: 10_000 });
    return !r.headers?.get('Nats-Service-Error-Code');
  } catch {
    return false;
  }
}

/**
 * BENCH_CLIENT=nats-lean: the same requests over the lean hand-written NATS requester (lean-nats.ts), which costs
 * the generator a fraction of nats.js's CPU and garbage per request; replies are matched by number, and the send
 * and scheduled times live in preallocated arrays.
 */
async function runLeanJob(job: Job): Promise<JobResult> {
  const messages = job.tokens.map((token) =>
    Buffer.from(identityV1.VerifyTokenRequest.encode({ token, expectedUserId: '', requiredScope: '' }).finish()),
  );
  const SLOTS = 1 << 16;
  const sentAt = new Float64Array(SLOTS);
  const scheduledAt = new Float64Array(SLOTS);
  const waiters: ((() => void) | undefined)[] = new Array<(() => void) | undefined>(SLOTS);
  const lat: number[] = [];
  const sentLat: number[] = [];
  let ok = 0;
  let errors = 0;
  let inflight = 0;
  const paced = job.mode === 'paced';
  const req = await leanRequester(job.natsUrl, job.subject, (n, good) => {
    const slot = n & (SLOTS - 1);
    const now = performance.now();
    if (good) ok++;
    else errors++;
    inflight--;
    if (paced) {
      lat.push((now - scheduledAt[slot]!) * 1000);
      sentLat.push((now - sentAt[slot]!) * 1000);
    } else lat.push((now - sentAt[slot]!) * 1000);
    const w = waiters[slot];
    if (w) {
      waiters[slot] = undefined;
      w();
    }
  });
  let i = 0;
  const send = (scheduled: number): number => {
    const n = i++;
    const slot = n & (SLOTS - 1);
    sentAt[slot] = performance.now();
    scheduledAt[slot] = scheduled;
    inflight++;
    req.request(n, messages[n % messages.length]!);
    return slot;
  };
  const start = performance.now();
  const end = start + job.seconds * 1000;
  if (!paced) {
    await Promise.all(
      Array.from({ length: job.concurrency }, async () => {
        while (performance.now() < end) {
          await new Promise<void>((resolve) => {
            waiters[send(performance.now())] = resolve;
          });
        }
      }),
    );
  } else {
    const intervalMs = 1000 / job.rate;
    let next = start;
    while (next < end) {
      const now = performance.now();
      while (next <= now && next < end) {
        if (inflight >= MAX_INFLIGHT_PACED) errors++;
        else send(next);
        next += intervalMs;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    const deadline = performance.now() + 10_000;
    while (inflight > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 1));
    errors += inflight;
  }
  const elapsedMs = performance.now() - start;
  await req.close();
  return { ok, errors, latUs: Float64Array.from(lat), sentLatUs: Float64Array.from(sentLat), elapsedMs };
}

async function runJob(job: Job): Promise<JobResult> {
  if (job.client === 'nats-lean') return runLeanJob(job);
  const client = createClient(identityV1.IdentityServiceService, job.addr, { deadlineMs: 10_000 });
  await client.waitForReady(5_000);
  const sessions = job.client === 'h2' ? [h2connect(`http://${job.addr}`), h2connect(`http://${job.addr}`)] : [];
  for (const se of sessions) se.on('error', () => undefined);
  // One connection per worker; without noAsyncTraces every request() builds two Errors up front (docs/adr/0003).
  const nc =
    job.client === 'nats'
      ? await natsConnect({ servers: job.natsUrl, name: 'identity-bench', noAsyncTraces: true })
      : undefined;
  const messages = job.tokens.map((token) =>
    Buffer.from(identityV1.VerifyTokenRequest.encode({ token, expectedUserId: '', requiredScope: '' }).finish()),
  );
  const bodies = messages.map((msg) => {
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(msg.length, 1);
    return Buffer.concat([prefix, msg]);
  });
  const lat: number[] = [];
  const sentLat: number[] = [];
  let ok = 0;
  let errors = 0;
  let i = 0;
  const call = async (scheduledAt?: number): Promise<void> => {
    const k = i++;
    const sentAt = performance.now();
    const t0 = scheduledAt ?? sentAt;
    if (nc) {
      if (await natsCall(nc, job.subject, messages[k % messages.length]!)) ok++;
      else errors++;
    } else if (job.client === 'h2') {
      if (await rawCall(sessions[k % sessions.length]!, bodies[k % bodies.length]!)) ok++;
      else errors++;
    } else {
      try {
        await client.verifyToken({ token: job.tokens[k % job.tokens.length]!, expectedUserId: '', requiredScope: '' });
        ok++;
      } catch {
        errors++;
      }
    }
    const now = performance.now();
    lat.push((now - t0) * 1000);
    if (scheduledAt !== undefined) sentLat.push((now - sentAt) * 1000);
  };
  const start = performance.now();
  const end = start + job.seconds * 1000;
  if (job.mode === 'closed') {
    await Promise.all(
      Array.from({ length: job.concurrency }, async () => {
        while (performance.now() < end) await call();
      }),
    );
  } else {
    const intervalMs = 1000 / job.rate;
    const inflight = new Set<Promise<void>>();
    let next = start;
    while (next < end) {
      const now = performance.now();
      while (next <= now && next < end) {
        if (inflight.size >= MAX_INFLIGHT_PACED) {
          // The server (or this generator) cannot keep up: count the call as failed instead of queueing forever.
          errors++;
        } else {
          const p = call(next).finally(() => inflight.delete(p));
          inflight.add(p);
        }
        next += intervalMs;
      }
      // A 1 ms tick, not a busy loop: the generator must not steal the server's CPU.
      await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.all(inflight);
  }
  const elapsedMs = performance.now() - start;
  client.close();
  for (const se of sessions) se.close();
  await nc?.close();
  return { ok, errors, latUs: Float64Array.from(lat), sentLatUs: Float64Array.from(sentLat), elapsedMs };
}

if (!isMainThread) {
  void runJob(workerData as Job).then((r) => parentPort!.postMessage(r));
}

async function runWorkers(
  job: Omit<Job, 'concurrency' | 'rate'> & { concurrency: number; rate: number },
  workers: number,
): Promise<{
  perSec: number;
  errors: number;
  lat: Float64Array;
  sentLat: Float64Array;
}> {
  const results = await Promise.all(
    Array.from(
      { length: workers },
      () =>
        new Promise<JobResult>((resolve, reject) => {
          const w = new Worker(__filename, { workerData: { ...job, rate: job.rate / workers } satisfies Job });
          w.once('message', (m: JobResult) => {
            resolve(m);
            void w.terminate();
          });
          w.once('error', reject);
        }),
    ),
  );
  const total = results.reduce((a, r) => a + r.ok, 0);
  const secs = Math.max(...results.map((r) => r.elapsedMs)) / 1000;
  const concat = (pick: (r: JobResult) => Float64Array): Float64Array => {
    const all = new Float64Array(results.reduce((a, r) => a + pick(r).length, 0));
    let off = 0;
    for (const r of results) {
      all.set(pick(r), off);
      off += pick(r).length;
    }
    return all;
  };
  return {
    perSec: total / secs,
    errors: results.reduce((a, r) => a + r.errors, 0),
    lat: concat((r) => r.latUs),
    sentLat: concat((r) => r.sentLatUs),
  };
}

// ------------------------------------------------------------------ main

async function startIdentity(env: Record<string, string>): Promise<{ child: ChildProcess; port: number }> {
  const main = join(__dirname, '..', '..', '..', 'services', 'identity', 'dist', 'src', 'main.js');
  const extra = (process.env['BENCH_IDENTITY_NODE_ARGS'] ?? '').split(' ').filter((x) => x !== '');
  const child = spawn(process.execPath, [...extra, main], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    const t = setTimeout(() => reject(new Error('identity did not log ready within 60 s')), 60_000);
    rl.on('line', (line) => {
      try {
        const j = JSON.parse(line) as { msg?: string; port?: number; level?: string };
        if (j.msg === 'ready' && typeof j.port === 'number') {
          clearTimeout(t);
          resolve(j.port);
        } else if (j.level === 'error' || j.level === 'fatal') process.stderr.write(line + '\n');
      } catch {
        /* not JSON */
      }
    });
    child.once('exit', (code) => reject(new Error(`identity exited with ${code}`)));
  });
  return { child, port };
}

/** Server-side handler time of VerifyToken from identity's own histogram (transport excluded; gRPC and NATS). */
async function handlerShares(metricsPort: number): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const buckets = new Map<string, number>();
  let count = 0;
  for (const line of text.split('\n')) {
    if (!line.includes('method="verifyToken"') || !line.includes('code="OK"')) continue;
    const m = /_bucket\{.*le="([^"]+)".*\} (\d+)/.exec(line);
    if (m) buckets.set(m[1]!, (buckets.get(m[1]!) ?? 0) + Number(m[2]));
    const c = /_count\{.*\} (\d+)/.exec(line);
    if (c) count += Number(c[1]);
  }
  const share = (le: string): string => (((buckets.get(le) ?? 0) / Math.max(1, count)) * 100).toFixed(2) + '%';
  return `n=${count}: <=0.5 ms ${share('0.0005')}, <=1 ms ${share('0.001')}, <=2.5 ms ${share('0.0025')}`;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

async function main(): Promise<void> {
  const usePg = process.env['DATABASE_URL'] !== undefined && process.env['DATABASE_URL'] !== '';
  const db = usePg ? await createTestDatabase() : undefined;
  const dataDir = usePg ? undefined : mkdtempSync(join(tmpdir(), 'identity-bench-'));
  const nats = createTestNats({ NATS_URL: process.env['NATS_URL'] ?? 'nats://127.0.0.1:4222' });
  const baseEnv: Record<string, string> = {
    IDENTITY_PORT: '0',
    IDENTITY_METRICS_PORT: '0',
    NATS_PREFIX: nats.prefix,
    NATS_URL: nats.url,
    LOG_LEVEL: 'info',
    ...(db ? { DATABASE_URL: db.url } : { DATABASE_URL: '', DATA_DIR: dataDir! }),
    ...(LOG_N ? { IDENTITY_SCRYPT_LOG_N: LOG_N } : {}),
  };
  const children: ChildProcess[] = [];
  try {
    const metricsPort = await freePort();
    const { child, port } = await startIdentity({ ...baseEnv, IDENTITY_METRICS_PORT: String(metricsPort) });
    children.push(child);
    const addr = `127.0.0.1:${port}`;
    const net = { natsUrl: nats.url, subject: subjects(nats.prefix).rpcVerifyToken };
    const client = createClient(identityV1.IdentityServiceService, addr, { deadlineMs: 30_000 });
    console.log(
      `identity benchmark: ${db ? 'PostgreSQL ' + db.name : 'PGlite ' + dataDir}, NATS prefix ${nats.prefix}, ` +
        `scrypt logN ${LOG_N ?? '15 (default)'}, ${WORKERS} workers, ${SECONDS}s per phase, ` +
        `VerifyToken load over ${transport(CLIENT)} (BENCH_CLIENT=${CLIENT})`,
    );

    const password = 'bench password ' + randomBytes(4).toString('hex');
    await client.register({
      username: 'bench',
      password,
      displayName: '',
      email: '',
      bio: '',
      avatar: '',
      isBot: false,
      clientAddress: '127.0.0.1',
      sshPublicKey: '',
      createSession: false,
      sessionTtlSeconds: 0,
    });

    // 1. password logins (always a few: the later phases verify their tokens)
    const loginLat: number[] = [];
    const tokens: string[] = [];
    for (let i = 0; i < (PHASES.has('login') ? 30 : 4); i++) {
      const t0 = performance.now();
      const r = await client.authenticate({
        username: 'bench',
        password,
        clientAddress: '127.0.0.1',
        sessionTtlSeconds: 0,
      });
      loginLat.push((performance.now() - t0) * 1000);
      tokens.push(r.session!.token);
    }
    if (PHASES.has('login')) {
      console.log(
        `password login (Authenticate), sequential, n=30:  ${summary(loginLat)}  mean ${(loginLat.reduce((a, b) => a + b, 0) / 30 / 1000).toFixed(1)} ms`,
      );
      const t0 = performance.now();
      let n = 0;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          for (let i = 0; i < 5; i++) {
            await client.authenticate({
              username: 'bench',
              password,
              clientAddress: '127.0.0.1',
              sessionTtlSeconds: 0,
            });
            n++;
          }
        }),
      );
      console.log(
        `password login throughput, 4 in flight: ${(n / ((performance.now() - t0) / 1000)).toFixed(1)} logins/s`,
      );
    }

    // 2. unloaded VerifyToken latency
    const idleClients = CLIENT === 'grpc' || CLIENT === 'h2' ? (['grpc'] as const) : (['grpc', CLIENT] as const);
    for (const c of PHASES.has('idle') ? idleClients : []) {
      const seq = await runWorkers(
        { addr, ...net, client: c, mode: 'closed', concurrency: 1, rate: 0, seconds: Math.min(3, SECONDS), tokens },
        1,
      );
      console.log(
        `VerifyToken, 1 in flight (${transport(c)}): ${seq.perSec.toFixed(0)}/s  ${summary(seq.lat)}  errors ${seq.errors}`,
      );
    }

    // 3. saturated throughput
    if (PHASES.has('saturated')) {
      const sat = await runWorkers(
        { addr, ...net, client: CLIENT, mode: 'closed', concurrency: CONCURRENCY, rate: 0, seconds: SECONDS, tokens },
        WORKERS,
      );
      console.log(
        `VerifyToken, saturated (${transport(CLIENT)}, ${WORKERS}x${CONCURRENCY} in flight): ${sat.perSec.toFixed(0)}/s  ${summary(sat.lat)}  errors ${sat.errors}`,
      );
    }

    // 4. paced at the target load, after untimed warm-up at the highest rate (V8 compiles the hot paths of
    //    identity and the generator during the first thousands of calls; without it p99 measures the compiler)
    if (PHASES.has('paced') && WARMUP_SECONDS > 0) {
      await runWorkers(
        {
          addr,
          ...net,
          client: CLIENT,
          mode: 'paced',
          concurrency: 0,
          rate: Math.max(...RATES),
          seconds: WARMUP_SECONDS,
          tokens,
        },
        WORKERS,
      );
    }
    for (const rate of PHASES.has('paced') ? RATES : []) {
      const paced = await runWorkers(
        { addr, ...net, client: CLIENT, mode: 'paced', concurrency: 0, rate, seconds: SECONDS, tokens },
        WORKERS,
      );
      console.log(
        `VerifyToken, paced at ${rate}/s (${transport(CLIENT)}): ${paced.perSec.toFixed(0)}/s  ${summary(paced.lat)}  errors ${paced.errors}`,
      );
      console.log(`  the same calls timed from their actual send: ${summary(paced.sentLat)}`);
    }
    console.log(
      `VerifyToken handler time inside identity (all phases above, gRPC and NATS, transport excluded): ${await handlerShares(metricsPort)}`,
    );
    // The machine's floor: the same generator, rate and nats-server against a responder that does nothing.
    if (PHASES.has('floor') && (CLIENT === 'nats' || CLIENT === 'nats-lean')) {
      const subject = `${nats.prefix}.bench.echo`;
      const echo = await startEcho(nats.url, subject);
      children.push(echo);
      const floorRate = Math.max(...RATES);
      const floorRun = (seconds: number): ReturnType<typeof runWorkers> =>
        runWorkers(
          { addr, ...net, subject, client: CLIENT, mode: 'paced', concurrency: 0, rate: floorRate, seconds, tokens },
          WORKERS,
        );
      await floorRun(WARMUP_SECONDS); // untimed, like the paced runs' warm-up
      const floor = await floorRun(SECONDS);
      console.log(
        `floor: a NATS echo responder (no work) paced at ${floorRate}/s (${transport(CLIENT)}): ${floor.perSec.toFixed(0)}/s  ${summary(floor.lat)}  errors ${floor.errors}`,
      );
      console.log(`  the same calls timed from their actual send: ${summary(floor.sentLat)}`);
      await stop(echo);
    }
    client.close();
    await stop(child);

    // 5. cache off: every verification reads the database
    if (PHASES.has('cold')) {
      const nocache = await startIdentity({ ...baseEnv, IDENTITY_TOKEN_CACHE_SIZE: '0' });
      children.push(nocache.child);
      const cold = await runWorkers(
        {
          addr: `127.0.0.1:${nocache.port}`,
          ...net,
          client: CLIENT,
          mode: 'closed',
          concurrency: CONCURRENCY,
          rate: 0,
          seconds: Math.min(5, SECONDS),
          tokens,
        },
        WORKERS,
      );
      console.log(
        `VerifyToken, cache off, saturated (${transport(CLIENT)}, ${WORKERS}x${CONCURRENCY}): ${cold.perSec.toFixed(0)}/s  ${summary(cold.lat)}  errors ${cold.errors}`,
      );
      await stop(nocache.child);
    }
  } finally {
    for (const c of children) await stop(c);
    await nats.cleanup().catch(() => undefined);
    if (db) await db.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * The `floor` phase's responder (this file run as a child process with `--echo-responder <url> <subject>`): answers
 * every request at once with fixed bytes the size of a VerifyTokenResponse, so the same generator at the same
 * rate through the same nats-server measures what the machine and the transport alone cost.
 */
async function echoResponder(url: string, subject: string): Promise<void> {
  const nc = await natsConnect({ servers: url, name: 'identity-bench-echo' });
  const reply = new Uint8Array(112).fill(0x2a);
  nc.subscribe(subject, { queue: 'echo', callback: (_e, m) => void m.respond(reply) });
  await nc.flush();
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => void nc.close().then(() => process.exit(0)));
}

async function startEcho(url: string, subject: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [__filename, '--echo-responder', url, subject], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.once('line', () => resolve());
    child.once('exit', (code) => reject(new Error(`echo responder exited with ${code}`)));
  });
  return child;
}

if (isMainThread && process.argv[2] === '--echo-responder') {
  echoResponder(process.argv[3]!, process.argv[4]!).catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
} else if (isMainThread) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
