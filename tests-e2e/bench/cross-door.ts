/**
 * Cross-door latency benchmark (issue #7): post from dum-dum at a fixed rate, receive on a Morelia
 * push subscriber and on another dum-dum client; print p50/p99/max end-to-end latency per receiver.
 * Target: p50 < 2 ms, p99 < 10 ms at 1,000 posts/s.
 *
 *   pnpm build && DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres NATS_URL=nats://127.0.0.1:4222 \
 *     node tests-e2e/dist/bench/cross-door.js [--rate 1000] [--seconds 10] [--warmup-seconds 3]
 *
 * The timed posts follow --warmup-seconds of untimed posts at the same rate (JIT warm-up).
 */
import { DumDumClient } from '../clients/dumdum';
import { MoreliaClient } from '../clients/morelia';
import { startE2eEnv } from '../harness/env';
import { pct } from './stats';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

async function main(): Promise<void> {
  const rate = arg('rate', 1000);
  const seconds = arg('seconds', 10);
  const warmupSeconds = arg('warmup-seconds', 3);
  // MESSAGE_STORE_POST_TRANSPORT=grpc in this process's environment compares the doors' gRPC post path (docs/adr/0003).
  const transport = process.env['MESSAGE_STORE_POST_TRANSPORT'];
  const env = await startE2eEnv({
    env: { LOG_LEVEL: 'warn', ...(transport ? { MESSAGE_STORE_POST_TRANSPORT: transport } : {}) },
  });
  try {
    const morelia = await MoreliaClient.connect(env.stack.ports.ws);
    await morelia.register('bench_push', 'correct horse battery');
    await morelia.subscribe();
    const sender = await DumDumClient.connect(env.stack.ports.irc, 'bench_sender');
    const receiver = await DumDumClient.connect(env.stack.ports.irc, 'bench_recv');
    const sentAt = new Map<string, number>();
    const lat = { ws: [] as number[], irc: [] as number[] };
    receiver.onMessage = (m) => {
      const t = sentAt.get(m.content);
      if (t !== undefined) lat.irc.push(performance.now() - t);
    };
    morelia.onPush = (m) => {
      const t = m.text === null ? undefined : sentAt.get(m.text);
      if (t !== undefined && !m.edited_status) lat.ws.push(performance.now() - t);
    };
    // Paced sending: every 1 ms timer tick sends the posts that are due by then; `timed` posts record their send
    // time, which the receivers look up by text.
    const pace = (count: number, prefix: string, timed: boolean): Promise<void> => {
      const start = performance.now();
      let sent = 0;
      return new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          const due = Math.min(count, Math.floor(((performance.now() - start) / 1000) * rate));
          while (sent < due) {
            const text = `${prefix}${sent}`;
            if (timed) sentAt.set(text, performance.now());
            sender.send('general', text);
            sent++;
          }
          if (sent >= count) {
            clearInterval(timer);
            resolve();
          }
        }, 1);
      });
    };
    // Warm-up at the same rate, not timed: V8 compiles the hot paths of every process in the chain during the
    // first few thousand posts, and on these two cores its compiler threads compete with the posts.
    await pace(rate * warmupSeconds, 'warm-', false);
    await new Promise((r) => setTimeout(r, 500));

    const total = rate * seconds;
    await pace(total, 'm', true);
    const deadline = Date.now() + 10_000;
    while ((lat.ws.length < total || lat.irc.length < total) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const cores = (await import('node:os')).cpus();
    console.log(
      `cross-door latency: dum-dum post → Morelia push and → dum-dum, ${rate} posts/s for ${seconds} s (after ${warmupSeconds} s untimed)`,
    );
    console.log(
      `machine: ${cores.length} × ${cores[0]?.model ?? '?'}; load avg ${(await import('node:os'))
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
    );
    for (const [name, xs] of Object.entries(lat)) {
      const s = [...xs].sort((a, b) => a - b);
      console.log(
        `${name.padEnd(4)} received ${s.length}/${total}  p50 ${pct(s, 50).toFixed(2)} ms  p90 ${pct(s, 90).toFixed(2)} ms  p99 ${pct(s, 99).toFixed(2)} ms  max ${(s[s.length - 1] ?? NaN).toFixed(2)} ms`,
      );
    }
    await Promise.all([morelia.close(), sender.close(), receiver.close()]);
  } finally {
    await env.destroy();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
