/**
 * message-store benchmark (issue #4 "Done when"): starts message-store as a child process against a fresh
 * database on the local PostgreSQL (fsync on) and a fresh NATS prefix, then measures
 *
 *   1. single posts: 64 concurrent gRPC clients for a fixed time → posts/s, post latency p50/p99,
 *      post→NATS-event latency p50/p99;
 *   2. ordered batches: 8 concurrent callers, 100 posts per PostMessages call → posts/s, call latency,
 *      post→event latency;
 *   3. paced 1,000 posts/s → post latency and post→event latency p50/p99;
 *   4. gRPC single posts from 64 concurrent streams driven by h2load (a C generator; skipped when not installed)
 *      → posts/s, post latency p50/p99 and message-store's CPU per post on the gRPC path alone.
 *
 * The load runs in worker threads (each with its own gRPC connections) so the generator is not the
 * bottleneck; the main thread only subscribes to the events and prints. Timings are printed, never asserted.
 *
 *   npx tsc -b tests-e2e && node tests-e2e/dist/bench/message-store.js
 *
 * Env: DATABASE_URL (admin URL, default postgres://postgres@127.0.0.1:5432/postgres), NATS_URL (default
 * nats://127.0.0.1:4222), BENCH_SECONDS (default 10 per phase), BENCH_WORKERS (default 2),
 * BENCH_CHANNELS_PER_WORKER (gRPC connections per worker, default 1), BENCH_CLIENT (lean = HTTP/2 gRPC client, default;
 * msg-client = the doors' grpc-js client; nats = PostMessages over NATS request/reply, the doors' path of
 * docs/adr/0003, with nats.js; nats-lean = the same requests from pre-encoded templates over the lean requester of
 * lean-nats.ts, so the generator costs about a microsecond per post), BENCH_PHASES (single,batch,paced,h2load),
 * BENCH_STORE_NODE_ARGS, BENCH_LEAN_REPLY (default 1: PostMessages asks for the lean reply like the doors; 0: full
 * replies).
 */
import { execFile, spawn } from 'node:child_process';
import http2 from 'node:http2';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { Client } from 'pg';
import { connectNats } from '@hubbub/nats';
import { createLogger } from '@hubbub/runtime';
import { createMessageStoreClient, newMessage as newMessageOf, principal } from '@hubbub/msg-client';
import { messagesV1, subjects } from '@hubbub/proto';
import { createTestNats } from '@hubbub/testing';
import { freePort } from '../harness/proc';
import { connect } from '@nats-io/transport-node';
import { leanRequester } from './lean-nats';
import { pct } from './stats';

const ADMIN_URL = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NATS_URL = process.env['NATS_URL'] ?? 'nats://127.0.0.1:4222';
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10);
const WORKERS = Number(process.env['BENCH_WORKERS'] ?? 2);
const CHANNELS_PER_WORKER = Number(process.env['BENCH_CHANNELS_PER_WORKER'] ?? 1);
type ClientKind = 'lean' | 'msg-client' | 'nats' | 'nats-lean';
const CLIENT: ClientKind =
  (['msg-client', 'nats', 'nats-lean'] as const).find((c) => c === process.env['BENCH_CLIENT']) ?? 'lean';

/**
 * PostMessages asks for the lean reply (ids for posts stored as sent, docs/adr/0005), as the doors' coalescer does;
 * BENCH_LEAN_REPLY=0 asks for full replies (the A/B).
 */
const LEAN_REPLY = process.env['BENCH_LEAN_REPLY'] !== '0';

/** Wall-clock microseconds, comparable across threads of this process. */
const nowUs = (): number => (performance.timeOrigin + performance.now()) * 1000;

interface Job {
  readonly addr: string;
  readonly mode: 'single' | 'batch' | 'paced';
  readonly concurrency: number;
  readonly seconds: number;
  readonly channelIds: readonly string[];
  readonly userBase: number;
  /** paced: posts per second for this worker. */
  readonly rate: number;
  readonly grpcChannels: number;
  readonly tag: string;
  readonly client: ClientKind;
  /** nats client: server and subject prefix. */
  readonly natsUrl: string;
  readonly prefix: string;
}

interface JobResult {
  readonly posts: number;
  readonly errors: number;
  readonly latUs: number[];
  readonly elapsedMs: number;
}

function newMessage(channelId: string, text: string, clientKey: string): messagesV1.NewMessage {
  return newMessageOf({ channelId, text, clientKey });
}

/** The two calls the load needs, over either client. */
interface PostClient {
  postOne(p: messagesV1.Principal, m: messagesV1.NewMessage): Promise<void>;
  /** Returns the number of posts stored. */
  postBatch(p: messagesV1.Principal, ms: messagesV1.NewMessage[]): Promise<number>;
  close(): void;
}

/**
 * A lean gRPC client straight on node:http2 (unary calls, identity encoding): the load generator must not
 * be the bottleneck, and grpc-js's client costs several times the server's work per call here. It speaks
 * standard gRPC, so the server path measured is exactly the one doors use.
 */
function leanClient(addr: string, connections: number): PostClient {
  const sessions = Array.from({ length: connections }, () => http2.connect(`http://${addr}`));
  for (const s of sessions) s.on('error', () => undefined);
  let next = 0;
  const def = messagesV1.MessageStoreServiceService;
  const call = (path: string, body: Uint8Array): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const frame = Buffer.allocUnsafe(5 + body.length);
      frame[0] = 0;
      frame.writeUInt32BE(body.length, 1);
      frame.set(body, 5);
      const req = sessions[next++ % sessions.length]!.request({
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': '10S',
      });
      const chunks: Buffer[] = [];
      let status = '';
      let message = '';
      req.on('response', (h) => {
        if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
      });
      req.on('trailers', (t) => {
        status = String(t['grpc-status'] ?? status);
        message = String(t['grpc-message'] ?? '');
      });
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () =>
        status === '0' ? resolve(Buffer.concat(chunks).subarray(5)) : reject(new Error(`grpc ${status} ${message}`)),
      );
      req.on('error', reject);
      req.end(frame);
    });
  return {
    postOne: async (principal, message) => {
      await call(def.postMessage.path, messagesV1.PostMessageRequest.encode({ principal, message }).finish());
    },
    postBatch: async (principal, messages) => {
      const res = messagesV1.PostMessagesResponse.decode(
        await call(
          def.postMessages.path,
          messagesV1.PostMessagesRequest.encode({
            leanReply: LEAN_REPLY,
            principal,
            messages,
            principals: [],
          }).finish(),
        ),
      );
      return res.results.filter((r) => r.message).length;
    },
    close: () => {
      for (const s of sessions) s.close();
    },
  };
}

/** PostMessages over NATS request/reply (the doors' hot path, docs/adr/0003): BENCH_CLIENT=nats. */
async function natsClient(url: string, prefix: string): Promise<PostClient> {
  const nc = await connect({ servers: url });
  const subject = subjects(prefix).rpcPostMessages;
  const call = async (req: messagesV1.PostMessagesRequest): Promise<messagesV1.PostMessagesResponse> => {
    const r = await nc.request(subject, messagesV1.PostMessagesRequest.encode(req).finish(), { timeout: 10_000 });
    const code = r.headers?.get('Nats-Service-Error-Code');
    if (code) throw new Error(`${code} ${r.headers?.get('Nats-Service-Error') ?? ''}`);
    return messagesV1.PostMessagesResponse.decode(r.data);
  };
  return {
    postOne: async (principal, message) => {
      const res = await call({ leanReply: LEAN_REPLY, principal, principals: [], messages: [message] });
      if (res.results[0]?.errorCode) throw new Error(res.results[0].errorReason);
    },
    postBatch: async (principal, messages) =>
      (await call({ leanReply: LEAN_REPLY, principal, principals: [], messages })).results.filter((r) => r.message)
        .length,
    close: () => void nc.close(),
  };
}

/**
 * BENCH_CLIENT=nats-lean: PostMessages over NATS through the lean requester (lean-nats.ts), with each request
 * made by copying a pre-encoded template and overwriting fixed-width digits in place (the client keys' sequence
 * numbers and the send time in the text), and each reply counted by scanning its bytes instead of decoding 100
 * full messages. The generator then costs about a microsecond per post, so what is measured is message-store.
 * The request is the same protobuf the other clients send.
 */
const SEQ_DIGITS = 10;
const TIME_DIGITS = 16;
async function leanNatsClient(url: string, prefix: string, tag: string): Promise<LeanPoster> {
  const pending = new Map<number, { resolve: (stored: number) => void; reject: (e: Error) => void }>();
  let lastReply: Uint8Array | undefined;
  const req = await leanRequester(
    url,
    subjects(prefix).rpcPostMessages,
    (n, ok) => {
      const w = pending.get(n);
      if (!w) return;
      pending.delete(n);
      if (!ok) w.reject(new Error('error reply'));
      else w.resolve(countStored(lastReply));
    },
    (payload) => {
      lastReply = payload;
    },
  );
  const templates = new Map<string, { bytes: Buffer; seqAt: number[]; timeAt: number[] }>();
  const template = (
    uid: string,
    channelId: string,
    size: number,
  ): { bytes: Buffer; seqAt: number[]; timeAt: number[] } => {
    const key = `${uid} ${channelId} ${size}`;
    let t = templates.get(key);
    if (t) return t;
    const seqMark = '9'.repeat(SEQ_DIGITS);
    const timeMark = '8'.repeat(TIME_DIGITS);
    const bytes = Buffer.from(
      messagesV1.PostMessagesRequest.encode({
        leanReply: LEAN_REPLY,
        principal: principal({ userId: uid, displayName: `user${uid}`, door: 'bench' }),
        principals: [],
        messages: Array.from({ length: size }, () => newMessage(channelId, timeMark, `${tag}-${uid}-${seqMark}`)),
      }).finish(),
    );
    const find = (mark: string): number[] => {
      const at: number[] = [];
      const m = Buffer.from(mark);
      for (let i = bytes.indexOf(m); i >= 0; i = bytes.indexOf(m, i + m.length)) at.push(i);
      return at;
    };
    t = { bytes, seqAt: find(seqMark), timeAt: find(timeMark) };
    if (t.seqAt.length !== size || t.timeAt.length !== size) throw new Error('template markers not found');
    templates.set(key, t);
    return t;
  };
  let n = 0;
  return {
    post(uid, channelId, firstSeq, size, startUs) {
      const t = template(uid, channelId, size);
      const b = Buffer.from(t.bytes);
      const time = String(Math.floor(startUs)).padStart(TIME_DIGITS, '0');
      for (let i = 0; i < size; i++) {
        b.write(String(firstSeq + i).padStart(SEQ_DIGITS, '0'), t.seqAt[i]!, 'latin1');
        b.write(time, t.timeAt[i]!, 'latin1');
      }
      const id = n++;
      return new Promise<number>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        req.request(id, b);
      });
    },
    close: () => void req.close(),
  };
}

const TEXT_KEY = Buffer.from('"text":"');
/** The digits of the first `"text":"…"` in an event's JSON (the send time in µs), or -1. */
function sentTime(data: Uint8Array): number {
  const i = Buffer.from(data.buffer, data.byteOffset, data.byteLength).indexOf(TEXT_KEY);
  if (i < 0) return -1;
  let v = 0;
  let j = i + TEXT_KEY.length;
  for (; j < data.length && data[j] !== 0x22; j++) {
    const c = data[j]! - 48;
    if (c < 0 || c > 9) return data[j] === 0x2e ? v : -1; // a fraction (the nats.js clients' float text) ends it
    v = v * 10 + c;
  }
  return j > i + TEXT_KEY.length ? v : -1;
}

/** Results of a PostMessagesResponse that carry a message (field 1 of PostResult comes first when set). */
function countStored(b: Uint8Array | undefined): number {
  if (!b) return 0;
  let stored = 0;
  let i = 0;
  const varint = (): number => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const c = b[i++]!;
      v += (c & 0x7f) * 2 ** shift;
      if (c < 0x80) return v;
      shift += 7;
    }
  };
  while (i < b.length) {
    if (b[i++] !== 0x0a) throw new Error('unexpected field in PostMessagesResponse');
    const len = varint();
    if (len > 0 && b[i] === 0x0a) stored++;
    i += len;
  }
  return stored;
}

interface LeanPoster {
  /** Posts `size` messages with client keys `<tag>-<uid>-<firstSeq…>` and the send time as text; resolves to the number stored. */
  post(uid: string, channelId: string, firstSeq: number, size: number, startUs: number): Promise<number>;
  close(): void;
}

/** The doors' client (@hubbub/msg-client on grpc-js), for comparison: BENCH_CLIENT=msg-client. */
async function msgClient(addr: string, connections: number): Promise<PostClient> {
  const client = createMessageStoreClient(addr, { channels: connections, deadlineMs: 10_000 });
  await client.waitForReady(5_000);
  return {
    postOne: async (principal, message) => void (await client.postMessage({ principal, message })),
    postBatch: async (principal, messages) =>
      (await client.postMessages({ leanReply: LEAN_REPLY, principals: [], principal, messages })).results.filter(
        (r) => r.message,
      ).length,
    close: () => client.close(),
  };
}

async function runJob(job: Job): Promise<JobResult> {
  const lean = job.client === 'nats-lean' ? await leanNatsClient(job.natsUrl, job.prefix, job.tag) : undefined;
  const client = lean
    ? undefined
    : job.client === 'msg-client'
      ? await msgClient(job.addr, job.grpcChannels)
      : job.client === 'nats'
        ? await natsClient(job.natsUrl, job.prefix)
        : leanClient(job.addr, job.grpcChannels);
  const latUs: number[] = [];
  let posts = 0;
  let errors = 0;
  let seq = 0;
  const t0 = performance.now();
  const end = t0 + job.seconds * 1000;
  const loops: Promise<void>[] = [];
  const interval = job.mode === 'paced' ? (1000 * job.concurrency) / job.rate : 0;
  for (let c = 0; c < job.concurrency; c++) {
    const uid = String(job.userBase + c);
    const p = principal({ userId: uid, displayName: `user${uid}`, door: 'bench' });
    const channelId = job.channelIds[c % job.channelIds.length]!;
    loops.push(
      (async () => {
        let next = performance.now() + (interval * c) / job.concurrency;
        while (performance.now() < end) {
          if (job.mode === 'paced') {
            const wait = next - performance.now();
            if (wait > 0) await new Promise((r) => setTimeout(r, wait));
            next += interval;
          }
          const start = nowUs();
          try {
            if (lean) {
              const size = job.mode === 'batch' ? 100 : 1;
              const first = seq;
              seq += size;
              const stored = await lean.post(uid, channelId, first, size, start);
              if (job.mode !== 'batch' && stored !== 1) throw new Error('not stored');
              posts += stored;
            } else if (job.mode === 'batch') {
              const msgs = Array.from({ length: 100 }, () =>
                newMessage(channelId, `${start}`, `${job.tag}-${uid}-${seq++}`),
              );
              const stored = await client!.postBatch(p, msgs); // not `posts += await …` (lost updates)
              posts += stored;
            } else {
              await client!.postOne(p, newMessage(channelId, `${start}`, `${job.tag}-${uid}-${seq++}`));
              posts++;
            }
            latUs.push(nowUs() - start);
          } catch {
            errors++;
          }
        }
      })(),
    );
  }
  await Promise.all(loops);
  const elapsedMs = performance.now() - t0;
  client?.close();
  lean?.close();
  return { posts, errors, latUs, elapsedMs };
}

if (!isMainThread) {
  // Long-lived worker: one job at a time, so module loading and JIT stay outside the timed phases.
  parentPort!.on('message', (job: Job) => {
    void runJob(job).then(
      (r) => parentPort!.postMessage(r),
      (e: unknown) => parentPort!.postMessage({ error: String(e) }),
    );
  });
}

/** Percentile of unsorted samples. */
function pctOf(xs: number[], p: number): number {
  return pct(Float64Array.from(xs).sort(), p);
}

const ms = (us: number): string => (us / 1000).toFixed(2);

let workers: Worker[] = [];

async function runPhase(
  base: Omit<Job, 'userBase' | 'concurrency' | 'rate'>,
  total: { concurrency: number; rate: number },
): Promise<JobResult> {
  if (workers.length === 0) workers = Array.from({ length: WORKERS }, () => new Worker(__filename));
  const per = Math.ceil(total.concurrency / WORKERS);
  const results = await Promise.all(
    workers.map((wk, w) => {
      const job: Job = { ...base, concurrency: per, userBase: 10_000 + w * 1_000, rate: total.rate / WORKERS };
      return new Promise<JobResult>((resolve, reject) => {
        wk.once('message', (m: JobResult | { error: string }) =>
          'error' in m ? reject(new Error(m.error)) : resolve(m),
        );
        wk.once('error', reject);
        wk.postMessage(job);
      });
    }),
  );
  return {
    posts: results.reduce((a, r) => a + r.posts, 0),
    errors: results.reduce((a, r) => a + r.errors, 0),
    latUs: results.flatMap((r) => r.latUs),
    elapsedMs: Math.max(...results.map((r) => r.elapsedMs)),
  };
}

async function startStore(env: Record<string, string>): Promise<{ child: ChildProcess; port: number }> {
  const main = join(__dirname, '../../../services/message-store/dist/src/main.js');
  const extra = (process.env['BENCH_STORE_NODE_ARGS'] ?? '').split(' ').filter((x) => x !== '');
  const child = spawn(process.execPath, [...extra, main], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const rl = createInterface({ input: child.stdout });
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('message-store did not log ready in 30 s')), 30_000);
    child.once('exit', (code) => reject(new Error(`message-store exited with ${code}`)));
    rl.on('line', (line) => {
      try {
        const o = JSON.parse(line) as { msg?: string; port?: number; level?: string };
        if (o.msg === 'ready') {
          clearTimeout(t);
          resolve(o.port!);
        } else if (o.level === 'error' || o.level === 'fatal') process.stderr.write(line + '\n');
      } catch {
        // Not a log line: node's own output (e.g. BENCH_STORE_NODE_ARGS=--trace-gc) goes to stderr.
        process.stderr.write(line + '\n');
      }
    });
  });
  return { child, port };
}

/** CPU seconds used so far by a process (Linux /proc; NaN elsewhere). */
function procCpuS(pid: number | undefined): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(parts[11]) + Number(parts[12])) / 100;
  } catch {
    return NaN;
  }
}

let lastBatch = { n: 0, sum: 0, ms: 0 };
let lastCommitBuckets = new Map<string, number>();
/** Batches and mean batch size since the previous call, from message-store's /metrics. */
async function batchStats(metricsPort: number): Promise<string> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const num = (re: RegExp): number => Number(re.exec(text)?.[1] ?? 0);
    const n = num(/^hubbub_msg_batch_size_count\{[^}]*\} (\S+)/m);
    const sum = num(/^hubbub_msg_batch_size_sum\{[^}]*\} (\S+)/m);
    const ms = num(/^hubbub_msg_batch_commit_ms_sum\{[^}]*\} (\S+)/m);
    const d = { n: n - lastBatch.n, sum: sum - lastBatch.sum, ms: ms - lastBatch.ms };
    lastBatch = { n, sum, ms };
    // Where the commit times of this phase fall (cumulative shares of the histogram's buckets).
    const buckets = new Map<string, number>();
    for (const m of text.matchAll(/^hubbub_msg_batch_commit_ms_bucket\{le="([^"]+)"[^}]*\} (\S+)/gm))
      buckets.set(m[1]!, Number(m[2]));
    const shares = ['1', '2', '4', '8', '16']
      .map((le) => {
        const c = (buckets.get(le) ?? 0) - (lastCommitBuckets.get(le) ?? 0);
        return `<=${le} ms ${((100 * c) / Math.max(1, d.n)).toFixed(2)}%`;
      })
      .join(', ');
    lastCommitBuckets = buckets;
    return `${d.n} batches, mean ${(d.sum / Math.max(1, d.n)).toFixed(1)} posts/batch, mean commit ${(d.ms / Math.max(1, d.n)).toFixed(2)} ms (${shares})`;
  } catch (e) {
    return `metrics unavailable (${String(e)})`;
  }
}

/**
 * Phase `h2load` (when Debian's nghttp2-client is installed): gRPC PostMessage from 64 concurrent HTTP/2 streams
 * (64 connections, one stream each) driven by h2load, a C load generator that costs a small fraction of the
 * server's CPU per call, so the gRPC path itself is what is measured. Every request is the same PostMessage
 * without a client key (each stores a new message); its latencies come from h2load's per-request log, and the
 * posts stored are counted in PostgreSQL (a gRPC error still has HTTP status 200, so the count is the check).
 */
async function h2loadPhase(addr: string, channelId: string, dbUrl: string, pid: number | undefined): Promise<void> {
  const bin = ['/usr/bin/h2load', '/usr/local/bin/h2load'].find((b) => existsSync(b));
  console.log('\n## gRPC single posts, 64 concurrent streams, h2load generator');
  if (!bin) {
    console.log('skipped: h2load not installed (apt-get install nghttp2-client)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'h2load-'));
  const db = new Client({ connectionString: dbUrl });
  await db.connect();
  try {
    const author = '30000';
    const body = messagesV1.PostMessageRequest.encode({
      principal: principal({ userId: author, displayName: 'h2load', door: 'bench' }),
      message: newMessage(channelId, 'posted by h2load over gRPC', ''),
    }).finish();
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    frame.set(body, 5);
    writeFileSync(join(dir, 'body'), frame);
    const count = async (): Promise<number> =>
      Number(
        (await db.query<{ n: string }>(`SELECT count(*) AS n FROM messages WHERE author_id = $1`, [author])).rows[0]!.n,
      );
    const path = `/hubbub.messages.v1.MessageStoreService/PostMessage`;
    const run = (seconds: number, log: string): Promise<string> =>
      new Promise((resolve, reject) => {
        execFile(
          bin,
          [
            '-c',
            '64',
            '-m',
            '1',
            '-t',
            '1',
            '-D',
            String(seconds),
            '--log-file',
            log,
            '-d',
            join(dir, 'body'),
            '-H',
            'content-type: application/grpc',
            '-H',
            'te: trailers',
            '-H',
            'grpc-timeout: 10S',
            `http://${addr}${path}`,
          ],
          { timeout: (seconds + 30) * 1000 },
          (err, stdout) => (err ? reject(new Error(`h2load failed: ${err.message}`)) : resolve(stdout)),
        );
      });
    await run(2, join(dir, 'warm.log')); // untimed: connections and the JIT
    const before = await count();
    const cpu0 = procCpuS(pid);
    const out = await run(SECONDS, join(dir, 'run.log'));
    const srvCpu = procCpuS(pid) - cpu0;
    const stored = (await count()) - before;
    const lat = readFileSync(join(dir, 'run.log'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => Number(l.split('\t')[2]));
    const done = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out);
    const rate = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1];
    console.log(
      `posts: ${stored} stored of ${lat.length} requests in ${SECONDS} s = ${rate ?? '?'} req/s` +
        ` (h2load: ${done ? `${done[2]} succeeded, ${done[3]} failed, ${done[4]} errored` : 'no summary'})`,
    );
    console.log(
      `post latency: p50 ${ms(pctOf(lat, 50))} ms  p99 ${ms(pctOf(lat, 99))} ms  max ${ms(pctOf(lat, 100))} ms`,
    );
    console.log(
      `server CPU ${((srvCpu / SECONDS) * 100).toFixed(0)}% of a core = ${((srvCpu * 1e6) / Math.max(1, stored)).toFixed(0)} us/post`,
    );
  } finally {
    await db.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const dbName = 'hubbub_bench_' + randomBytes(4).toString('hex');
  // A fresh prefix whose streams (the worker-id KV bucket) are deleted at the end, like a test's.
  const tn = createTestNats({ NATS_URL });
  const prefix = tn.prefix;
  const admin = new Client({ connectionString: ADMIN_URL });
  await admin.connect();
  const settings: Record<string, string> = {};
  for (const k of ['fsync', 'synchronous_commit', 'wal_sync_method', 'server_version']) {
    settings[k] = String((await admin.query(`SHOW ${k}`)).rows[0]?.[k]);
  }
  await admin.query(`CREATE DATABASE ${dbName}`);
  const u = new URL(ADMIN_URL);
  u.pathname = '/' + dbName;
  console.log(`# message-store benchmark  ${new Date().toISOString()}`);
  console.log(
    `postgres ${settings['server_version']}: fsync=${settings['fsync']} synchronous_commit=${settings['synchronous_commit']} wal_sync_method=${settings['wal_sync_method']}`,
  );
  console.log(
    `client=${CLIENT} workers=${WORKERS} grpc connections/worker=${CHANNELS_PER_WORKER} seconds/phase=${SECONDS}`,
  );

  try {
    const metricsPort = await freePort();
    const { child, port } = await startStore({
      DATABASE_URL: u.toString(),
      NATS_URL,
      NATS_PREFIX: prefix,
      MESSAGE_STORE_PORT: '0',
      MESSAGE_STORE_METRICS_PORT: String(metricsPort),
      LOG_LEVEL: 'info',
      NODE_ENV: 'production',
    });
    const addr = `127.0.0.1:${port}`;
    const nc = await connectNats({
      servers: NATS_URL,
      name: 'bench',
      log: createLogger({ service: 'bench', level: 'warn' }),
    });
    const eventLat: number[] = [];
    let events = 0;
    let recording = false;
    const sub = nc.subscribe(`${prefix}.chat.>`, {
      callback: (_e, msg) => {
        const at = nowUs();
        events++;
        if (!recording) return;
        // proto3 JSON of MessageEvent; only the text (the send time, digits) is needed, so it is read straight
        // from the bytes: parsing 10,000+ events/s as JSON cost this process a sixth of a core.
        const sent = sentTime(msg.data);
        if (sent > 0) eventLat.push(at - sent);
      },
    });
    try {
      const client = createMessageStoreClient(addr);
      const { channels } = await client.ensurePublicChannels({
        slugs: ['bench-a', 'bench-b', 'bench-c', 'bench-d', 'bench-e', 'bench-f', 'bench-g', 'bench-h'],
        kind: 0,
      });
      client.close();
      const channelIds = channels.map((c) => c.id);
      const base = { addr, channelIds, grpcChannels: CHANNELS_PER_WORKER, client: CLIENT, natsUrl: NATS_URL, prefix };

      // warm-up (JIT, connections, memberships)
      await runPhase({ ...base, mode: 'single', seconds: 2, tag: 'warm' }, { concurrency: 64, rate: 0 });
      await batchStats(metricsPort); // the first phase's server line starts after the warm-up

      const only = process.env['BENCH_PHASES']?.split(',');
      const phases = (
        [
          { name: 'single posts, 64 concurrent clients', mode: 'single', concurrency: 64, rate: 0 },
          { name: 'ordered batches, 8 callers x 100 posts', mode: 'batch', concurrency: 8, rate: 0 },
          { name: 'paced 1,000 posts/s (latency)', mode: 'paced', concurrency: 16, rate: 1_000 },
        ] as const
      ).filter((ph) => !only || only.includes(ph.mode));
      for (const ph of phases) {
        eventLat.length = 0;
        recording = true;
        const cpu0 = process.cpuUsage();
        const srv0 = procCpuS(child.pid);
        const load0 = loadavg()[0]!;
        const r = await runPhase({ ...base, mode: ph.mode, seconds: SECONDS, tag: ph.mode }, ph);
        const cpu = process.cpuUsage(cpu0);
        const srvCpu = procCpuS(child.pid) - srv0;
        await new Promise((res) => setTimeout(res, 300)); // late events
        recording = false;
        const rate = (r.posts / r.elapsedMs) * 1000;
        console.log(`\n## ${ph.name}`);
        console.log(
          `posts: ${r.posts} in ${(r.elapsedMs / 1000).toFixed(1)} s = ${Math.round(rate)} posts/s  (errors ${r.errors})`,
        );
        console.log(
          `${ph.mode === 'batch' ? 'call (100 posts)' : 'post'} latency: p50 ${ms(pctOf(r.latUs, 50))} ms  p99 ${ms(pctOf(r.latUs, 99))} ms  max ${ms(pctOf(r.latUs, 100))} ms`,
        );
        console.log(
          `post→NATS event latency: p50 ${ms(pctOf(eventLat, 50))} ms  p99 ${ms(pctOf(eventLat, 99))} ms  (${eventLat.length} events)`,
        );
        console.log(
          `server: ${await batchStats(metricsPort)}; CPU ${((srvCpu / r.elapsedMs) * 100_000).toFixed(0)}% of a core = ${((srvCpu * 1e6) / Math.max(1, r.posts)).toFixed(0)} us/post`,
        );
        console.log(
          `machine load average (1 min) before/after: ${load0.toFixed(2)} / ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} cores`,
        );
        console.log(
          `load generator CPU: ${(((cpu.user + cpu.system) / 1000 / r.elapsedMs) * 100).toFixed(0)}% of one core (all threads)`,
        );
      }
      if (!only || only.includes('h2load')) await h2loadPhase(addr, channelIds[0]!, u.toString(), child.pid);
      console.log(`\nevents received in total: ${events}`);
    } finally {
      sub.unsubscribe();
      await Promise.all(workers.map((w) => w.terminate()));
      await nc.close();
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
    await tn.cleanup();
  }
}

if (isMainThread) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
