/**
 * Transport micro-benchmark behind docs/adr/0003: the CPU cost of one request/reply of 300 bytes over a
 * grpc-js unary call versus NATS request/reply (both ends in this process; nats-server's own CPU is read
 * from /proc when it runs on this machine). Prints numbers; asserts nothing.
 *
 *   npx tsc -b tests-e2e && NATS_URL=nats://127.0.0.1:4222 node tests-e2e/dist/bench/rpc-transport.js [concurrency...]
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Client, Metadata, Server, ServerCredentials, credentials } from '@grpc/grpc-js';
import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { connect } from '@nats-io/transport-node';

const CALLS = 20_000;
const WARMUP = 2_000;
const payload = Buffer.alloc(300, 1);
const identity = (b: Buffer): Buffer => b;

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function natsServerTicks(): number {
  try {
    const pid = execFileSync('pgrep', ['-o', 'nats-server']).toString().trim();
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return NaN;
  }
}

async function run(name: string, conc: number, call: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < WARMUP; i++) await call();
  const c0 = cpuMs();
  const n0 = natsServerTicks();
  const t0 = performance.now();
  let started = 0;
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (started < CALLS) {
        started++;
        await call();
      }
    }),
  );
  const ms = performance.now() - t0;
  const cpu = cpuMs() - c0;
  const server = ((natsServerTicks() - n0) * 10_000) / CALLS;
  console.log(
    `${name.padEnd(5)} concurrency ${String(conc).padStart(3)}: ${((CALLS / ms) * 1000).toFixed(0).padStart(6)} calls/s, ` +
      `CPU ${((cpu / CALLS) * 1000).toFixed(0)} µs/call (client + server in this process)` +
      (name === 'nats' && Number.isFinite(server) ? `, nats-server ${server.toFixed(0)} µs/call` : ''),
  );
}

async function main(): Promise<void> {
  const concs = process.argv
    .slice(2)
    .map(Number)
    .filter((n) => n > 0);
  const levels = concs.length > 0 ? concs : [1, 16];
  const server = new Server();
  const def = {
    Echo: {
      path: '/bench.Echo/Echo',
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  };
  server.addService(def, {
    Echo: (c: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => cb(null, c.request),
  });
  const port = await new Promise<number>((ok, ko) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? ko(e) : ok(p))),
  );
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  const url = process.env['NATS_URL'] ?? 'nats://127.0.0.1:4222';
  const a = await connect({ servers: url });
  const b = await connect({ servers: url });
  const subject = `bench.rpc.${process.pid}`;
  b.subscribe(subject, { queue: 'q', callback: (_e, m) => void m.respond(m.data) });
  await b.flush();
  try {
    for (const conc of levels) {
      await run(
        'grpc',
        conc,
        () =>
          new Promise((ok, ko) =>
            client.makeUnaryRequest(
              '/bench.Echo/Echo',
              identity,
              identity,
              payload,
              new Metadata(),
              { deadline: Date.now() + 5_000 },
              (e, r) => (e ? ko(e) : ok(r)),
            ),
          ),
      );
      await run('nats', conc, () => a.request(subject, payload, { timeout: 5_000 }));
    }
  } finally {
    client.close();
    server.forceShutdown();
    await a.close();
    await b.close();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
