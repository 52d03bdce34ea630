/**
 * A service run as a real process, the way scripts/up runs it: `node services/<svc>/dist/src/main.js`
 * with an environment, ready when it logs `"msg":"ready"` (its `"port"` is read from that line, for
 * services started on port 0). Tests kill -9 it, stop it with SIGTERM and start it again on the same
 * ports. Used by the end-to-end tests and by services' integration tests that need another service (a
 * service never imports another service's code).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';

/** The repository root (the folder with pnpm-workspace.yaml), from source or from dist. */
export function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(resolve(dir, 'pnpm-workspace.yaml'))) {
    const up = resolve(dir, '..');
    if (up === dir) throw new Error('repository root not found');
    dir = up;
  }
  return dir;
}

/** A port that was free a moment ago (services need fixed ports across restarts). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => res(port));
    });
  });
}

const MAX_LOG_LINES = 2_000;

export class ServiceProcess {
  private child: ChildProcess | undefined;
  readonly logs: string[] = [];
  /** The `port` of the last ready line (0 until then). */
  port = 0;
  private exitWaiters: (() => void)[] = [];

  constructor(
    readonly name: string,
    private readonly cmd: string,
    private readonly args: readonly string[],
    readonly env: Record<string, string>,
    private readonly readyPattern: RegExp = /"msg":"ready"/,
    private readonly echo = process.env['E2E_ECHO_LOGS'] === '1',
  ) {}

  /** `main` relative to the repository root, e.g. `services/identity/dist/src/main.js`. */
  static node(name: string, main: string, env: Record<string, string>): ServiceProcess {
    // Profiling hook for benchmarks, e.g. E2E_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
    const flags = (process.env['E2E_NODE_ARGS'] ?? '').split(' ').filter((f) => f !== '');
    return new ServiceProcess(name, process.execPath, [...flags, resolve(repoRoot(), main)], env);
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(timeoutMs = 30_000): Promise<void> {
    if (this.running) return Promise.resolve();
    const script = this.args.find((a) => a.endsWith('.js'));
    if (script !== undefined && !existsSync(script))
      return Promise.reject(new Error(`${script} is missing: build it first (npx tsc -b)`));
    const child = spawn(this.cmd, this.args as string[], {
      cwd: repoRoot(),
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: process.env['HOME'] ?? '/tmp',
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    return new Promise((resolvePromise, reject) => {
      let ready = false;
      let buf = '';
      const timer = setTimeout(() => {
        if (!ready) reject(new Error(`${this.name} not ready in ${timeoutMs} ms; last logs:\n${this.tail()}`));
      }, timeoutMs);
      const onData = (chunk: Buffer): void => {
        buf += chunk.toString();
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          this.logs.push(line);
          if (this.logs.length > MAX_LOG_LINES) this.logs.shift();
          if (this.echo) process.stderr.write(`[${this.name}] ${line}\n`);
          if (!ready && this.readyPattern.test(line)) {
            ready = true;
            const port = /"port":(\d+)/.exec(line);
            if (port) this.port = Number(port[1]);
            clearTimeout(timer);
            resolvePromise();
          }
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('exit', (code, sig) => {
        clearTimeout(timer);
        const waiters = this.exitWaiters;
        this.exitWaiters = [];
        for (const w of waiters) w();
        if (!ready) reject(new Error(`${this.name} exited (${code ?? sig}) before ready:\n${this.tail()}`));
      });
    });
  }

  private waitExit(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((r) => this.exitWaiters.push(r));
  }

  /** kill -9: no shutdown hooks run. */
  async kill9(): Promise<void> {
    if (!this.running) return;
    const exited = this.waitExit();
    this.child!.kill('SIGKILL');
    await exited;
  }

  /** SIGTERM and wait (SIGKILL after graceMs). */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.running) return;
    const exited = this.waitExit();
    this.child!.kill('SIGTERM');
    const t = setTimeout(() => this.child?.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(t);
  }

  /** The exit code of the last run (after stop), or null. */
  get exitCode(): number | null {
    return this.child?.exitCode ?? null;
  }

  tail(n = 40): string {
    return this.logs.slice(-n).join('\n');
  }
}
