/**
 * A worker thread of the ws-send push run: opens its share of subscriber sockets, subscribes each, and
 * records when every `push <n> …` message arrives (wall-clock µs, comparable across threads). The main
 * thread posts; spreading the receivers over threads keeps the load tool from being what it measures.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { closeAll, openClient } from './client';
import type { WsBenchClient } from './client';

export interface PushWorkerJob {
  readonly url: string;
  readonly users: readonly { uuid: string; auth_id: string }[];
  readonly count: number;
}

/** Per received message: post number and arrival time (µs since the epoch, fractional). */
export interface PushWorkerResult {
  readonly n: Int32Array;
  readonly atUs: Float64Array;
  readonly duplicates: number;
  /** Messages received per socket. */
  readonly perSocket: Uint32Array;
  readonly dropped: number;
}

const JSONAPI = { version: '1.0', revision: '17' };
const MARK = Buffer.from('"text": "push ');
const nowUs = (): number => (performance.timeOrigin + performance.now()) * 1000;

async function run(job: PushWorkerJob): Promise<void> {
  const conns: WsBenchClient[] = [];
  for (let i = 0; i < job.count; i += 200) {
    const opened = await Promise.all(
      Array.from({ length: Math.min(200, job.count - i) }, async (_, j) => {
        const c = await openClient(job.url);
        const u = job.users[(i + j) % job.users.length];
        const r = await c.request({ type: 'subscribe', jsonapi: JSONAPI, data: { user: [u] } });
        if (r.errors.code !== 200) throw new Error(`subscribe: ${r.errors.code} ${r.errors.detail}`);
        return c;
      }),
    );
    conns.push(...opened);
  }
  let cap = 1 << 16;
  let ns = new Int32Array(cap);
  let ats = new Float64Array(cap);
  let len = 0;
  let duplicates = 0;
  const perSocket = new Uint32Array(conns.length);
  const seen = conns.map(() => new Set<number>());
  conns.forEach((c, i) => {
    c.onRawUpdate = (buf) => {
      const at = nowUs();
      for (let p = buf.indexOf(MARK); p >= 0; p = buf.indexOf(MARK, p + 1)) {
        let n = 0;
        for (let q = p + MARK.length; buf[q]! >= 48 && buf[q]! <= 57; q++) n = n * 10 + buf[q]! - 48;
        if (seen[i]!.has(n)) {
          duplicates++;
          continue;
        }
        seen[i]!.add(n);
        perSocket[i]!++;
        if (len === cap) {
          cap *= 2;
          const n2 = new Int32Array(cap);
          n2.set(ns);
          ns = n2;
          const a2 = new Float64Array(cap);
          a2.set(ats);
          ats = a2;
        }
        ns[len] = n;
        ats[len++] = at;
      }
    };
  });
  parentPort!.postMessage({ ready: true });
  await new Promise<void>((resolve) => parentPort!.once('message', () => resolve()));
  const dropped = conns.filter((c) => c.closed).length;
  await closeAll(conns);
  const result: PushWorkerResult = {
    n: ns.slice(0, len),
    atUs: ats.slice(0, len),
    duplicates,
    perSocket,
    dropped,
  };
  parentPort!.postMessage({ result });
}

run(workerData as PushWorkerJob).catch((e: unknown) => {
  parentPort!.postMessage({ error: e instanceof Error ? e.message : String(e) });
});
