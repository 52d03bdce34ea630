/** Listen-on-port-0 helpers (tests never use fixed ports), and a NATS link a test can cut. */
import { createServer, connect as tcpConnect } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

export async function listenEphemeral(server: Server, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Polls `cond` every few ms until it is true or `timeoutMs` passes (no fixed sleeps in tests). */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A TCP relay to NATS that a test cuts (every connection through it dropped, new ones closed at once: NATS or the
 * network gone for the processes behind it) and restores. Other connections to NATS are unaffected.
 */
export interface NatsLink {
  /** NATS_URL for the processes behind the link (credentials of `natsUrl` kept). */
  readonly url: string;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function natsLink(natsUrl: string): Promise<NatsLink> {
  const target = new URL(natsUrl.split(',')[0]!.trim());
  const sockets = new Set<Socket>();
  let up = true;
  const server = createServer((client) => {
    if (!up) return void client.destroy();
    const upstream = tcpConnect(Number(target.port || 4222), target.hostname);
    const drop = (): void => {
      for (const s of [client, upstream]) {
        s.destroy();
        sockets.delete(s);
      }
    };
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', drop).on('close', drop);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const port = await listenEphemeral(server);
  const url = new URL(target.href);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  const cut = (): void => {
    up = false;
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    url: url.href,
    cut,
    restore: () => void (up = true),
    close: async () => {
      cut();
      await closeServer(server);
    },
  };
}
