/**
 * A unique NATS subject prefix and KV bucket namespace per test file, against `NATS_URL`
 * (./scripts/test sets it), so parallel test files and CI runs never see each other's traffic.
 * `cleanup()` deletes every stream (KV buckets included) created under the prefix.
 */
import { randomBytes } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';

export interface TestNats {
  readonly url: string;
  /** Subject prefix (also the bucket-name prefix), e.g. `t3f9a1c2b`. */
  readonly prefix: string;
  cleanup(): Promise<void>;
}

export function createTestNats(env: Record<string, string | undefined> = process.env): TestNats {
  const url = env['NATS_URL'];
  if (!url) {
    throw new Error(
      'No NATS for tests: set NATS_URL (./scripts/test does this when nats-server answers on 127.0.0.1:4222).',
    );
  }
  const prefix = 't' + randomBytes(5).toString('hex');
  return {
    url,
    prefix,
    cleanup: async () => {
      const nc = await connect({ servers: url, name: 'test-cleanup' });
      try {
        const jsm = await jetstreamManager(nc);
        const names: string[] = [];
        for await (const s of jsm.streams.names()) names.push(s);
        for (const n of names) {
          if (n.startsWith(prefix) || n.startsWith(`KV_${prefix}`) || n.startsWith(`OBJ_${prefix}`))
            await jsm.streams.delete(n);
        }
      } finally {
        await nc.close();
      }
    },
  };
}

/** Streams (including KV buckets) whose name contains `prefix` (leak check). */
export async function listStreamsWithPrefix(url: string, prefix: string): Promise<string[]> {
  const nc = await connect({ servers: url, name: 'test-leak-check' });
  try {
    const jsm = await jetstreamManager(nc);
    const out: string[] = [];
    for await (const s of jsm.streams.names()) if (s.includes(prefix)) out.push(s);
    return out;
  } finally {
    await nc.close();
  }
}
