/**
 * Ordered graceful shutdown. Hooks run in reverse order of registration (last started, first
 * stopped: stop accepting → finish in-flight work → drain NATS → close the database), each awaited,
 * the whole bounded by a timeout after which the process exits non-zero.
 */
import type { Logger } from 'pino';

export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

export interface Lifecycle {
  /** Registers a shutdown hook; hooks run LIFO. */
  onShutdown(name: string, fn: () => Promise<void> | void): void;
  /** Runs every hook once; later calls return the same promise. Resolves true when all hooks finished in time. */
  shutdown(reason: string): Promise<boolean>;
  /** SIGTERM/SIGINT → shutdown → process exit (0 clean, 1 on timeout or hook failure). */
  installSignalHandlers(exit?: (code: number) => void): void;
  readonly stopping: boolean;
}

export function createLifecycle(log: Logger, timeoutMs = DEFAULT_SHUTDOWN_TIMEOUT_MS): Lifecycle {
  const hooks: { name: string; fn: () => Promise<void> | void }[] = [];
  let running: Promise<boolean> | undefined;
  let stopping = false;

  async function runHooks(): Promise<boolean> {
    let ok = true;
    for (const h of [...hooks].reverse()) {
      const t0 = Date.now();
      try {
        await h.fn();
        log.debug({ hook: h.name, ms: Date.now() - t0 }, 'shutdown hook done');
      } catch (err) {
        ok = false;
        log.error({ err, hook: h.name, code: 'SHUTDOWN_HOOK_FAILED' }, 'shutdown hook failed');
      }
    }
    return ok;
  }

  const lc: Lifecycle = {
    get stopping() {
      return stopping;
    },
    onShutdown(name, fn) {
      hooks.push({ name, fn });
    },
    shutdown(reason) {
      if (running) return running;
      stopping = true;
      log.info({ reason }, 'shutting down');
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => {
          log.error({ code: 'SHUTDOWN_TIMEOUT', timeoutMs }, 'shutdown timed out');
          resolve(false);
        }, timeoutMs);
        timer.unref();
      });
      running = Promise.race([runHooks(), timeout]).finally(() => clearTimeout(timer));
      return running;
    },
    installSignalHandlers(exit = (code) => process.exit(code)) {
      const on = (sig: NodeJS.Signals): void => {
        process.once(sig, () => {
          void lc.shutdown(sig).then((ok) => {
            log.info({ ok }, 'stopped');
            log.flush?.();
            exit(ok ? 0 : 1);
          });
        });
      };
      on('SIGTERM');
      on('SIGINT');
    },
  };
  return lc;
}
