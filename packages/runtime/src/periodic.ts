/**
 * A background task that runs every `everyMs` (0 = only when triggered) and whenever `trigger()` is called
 * (e.g. after a reconnect), never twice at once: a trigger while it runs is dropped, the next round comes.
 * `run` handles its own errors (a rejection is swallowed so a failed round never stops the next).
 */
export interface PeriodicTask {
  trigger(): void;
  stop(): void;
}

export function periodicTask(everyMs: number, run: () => Promise<void>): PeriodicTask {
  let running = false;
  const trigger = (): void => {
    if (running) return;
    running = true;
    void run()
      .catch(() => undefined)
      .finally(() => (running = false));
  };
  const timer = everyMs > 0 ? setInterval(trigger, everyMs) : undefined;
  timer?.unref();
  return { trigger, stop: () => clearInterval(timer) };
}
