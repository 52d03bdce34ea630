/**
 * A private nats-server with JetStream for fault tests (they stop and start it, which the shared
 * server on 4222 must never see). Same port and store across restarts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServiceProcess, freePort } from './proc';

export class PrivateNats {
  private proc: ServiceProcess | undefined;
  private dir = '';
  port = 0;

  /** `args`: extra nats-server arguments (e.g. `-c config`); `env`: its environment (config variables). */
  constructor(private readonly o: { args?: readonly string[]; env?: Record<string, string> } = {}) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (!this.proc) {
      this.port = await freePort();
      this.dir = mkdtempSync(join(tmpdir(), 'hubbub-nats-'));
      const bin = process.env['NATS_SERVER_BIN'] ?? '/usr/sbin/nats-server';
      this.proc = new ServiceProcess(
        'nats',
        bin,
        [...(this.o.args ?? []), '-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.dir],
        this.o.env ?? {},
        /Server is ready/,
      );
    }
    await this.proc.start();
  }

  async stop(): Promise<void> {
    await this.proc?.stop();
  }

  async destroy(): Promise<void> {
    await this.proc?.stop();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
