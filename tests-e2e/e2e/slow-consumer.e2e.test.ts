/**
 * Issue #7, slow consumer: a dum-dum client that never reads does not slow the others, is
 * disconnected at its buffer limit, and irc-binary's memory stays bounded.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { waitFor } from '@hubbub/testing';
import { DumDumClient, encode } from '../clients/dumdum';
import type { E2eEnv } from '../harness/env';
import { startE2eEnv } from '../harness/env';

jest.setTimeout(120_000);

let env: E2eEnv;
beforeAll(async () => {
  env = await startE2eEnv({ doors: ['irc-binary'], env: { IRCB_MAX_OUTBUF_BYTES: '262144' } });
});
afterAll(async () => env?.destroy());

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

it('disconnects a client that never reads, without slowing a reading client', async () => {
  // The slow client: a raw socket that authenticates and then never reads again.
  const slow = connect({ port: env.stack.ports.irc, host: '127.0.0.1' });
  await new Promise<void>((r) => slow.once('connect', () => r()));
  // HELLO, wait for the server's HELLO, then AUTHENTICATE (pipelining after HELLO is refused).
  let handshake = Buffer.alloc(0);
  const readUntil = (n: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`handshake: got ${handshake.toString('hex')}`)), 5_000);
      const check = (): void => {
        if (handshake.length >= n) {
          clearTimeout(t);
          slow.off('data', onData);
          resolve();
        }
      };
      const onData = (b: Buffer): void => {
        handshake = Buffer.concat([handshake, b]);
        check();
      };
      slow.on('data', onData);
      check();
    });
  slow.write(encode.hello());
  await readUntil(2);
  slow.write(encode.authenticate('sloth'));
  await readUntil(4);
  slow.pause();
  expect([...handshake.subarray(0, 4)]).toEqual([0x00, 0x00, 0x02, 0x01]);
  // Small kernel buffers make the server-side limit the one that counts.
  slow.setNoDelay(true);
  let slowClosed = false;
  slow.on('close', () => (slowClosed = true));
  slow.on('error', () => (slowClosed = true));

  const reader = await DumDumClient.connect(env.stack.ports.irc, 'reader');
  const writer = await DumDumClient.connect(env.stack.ports.irc, 'writer');
  const rssBefore = rssBytes(env.stack.irc!.pid!);
  const body = 'x'.repeat(1000);
  const N = 6_000; // ~6.6 MB of broadcasts per reader: far over the 256 KiB limit plus socket buffers
  const t0 = Date.now();
  for (let i = 0; i < N; i++) writer.send('general', `${i} ${body}`);
  await waitFor(() => reader.received.length >= N, 60_000, 'reader receiving every message');
  const tDone = Date.now();
  const elapsed = tDone - t0;
  expect(reader.received.length).toBe(N);
  // The slow client was cut off (its socket is closed by the server; we see it once we read again).
  slow.resume();
  await waitFor(() => slowClosed, 10_000, 'slow client disconnected');
  const rssAfter = rssBytes(env.stack.irc!.pid!);

  console.log(
    `slow consumer: ${N} × 1 kB to a reader in ${elapsed} ms; irc-binary RSS ${(rssBefore / 1e6).toFixed(1)} → ${(rssAfter / 1e6).toFixed(1)} MB`,
  );
  // Bounded: the server cut the slow client off while the stream was still flowing (at its buffer
  // limit), instead of buffering the rest for it.
  const cut = env.stack.irc!.logs.find((l) => l.includes('IRCB_ERR_SLOW_READER'));
  expect(cut).toBeDefined();
  const cutAt = Date.parse((JSON.parse(cut!) as { time: string }).time);
  expect(cutAt).toBeLessThan(tDone);
  // A gross leak would show here; V8 grows its heap lazily, so this bound is loose on purpose.
  expect(rssAfter).toBeLessThan(rssBefore + 256 * 1024 * 1024);
  await reader.close();
  await writer.close();
  slow.destroy();
});
