/**
 * Failed-login throttling (per account and per source address, one Throttle each).
 *
 * After `freeFailures` failures within `windowMs`, each further attempt must wait a growing delay
 * after the last failure (`baseDelayMs`, doubling, capped at `maxDelayMs`); attempts inside the
 * delay are refused without checking the secret. After `lockFailures` failures the key is locked
 * for `lockMs`. Once a key has failed, attempts in flight count as failures, so a burst of
 * parallel guesses cannot slip past; at most `maxInFlight` attempts per key run at once. A success
 * clears the key. The failure counters of a key can be adopted from a ledger shared by every instance
 * (`adopt`, store/login-failures.ts); the attempts in flight are per process.
 */
export interface ThrottleSettings {
  readonly windowMs: number;
  readonly freeFailures: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly lockFailures: number;
  readonly lockMs: number;
  /** Concurrent attempts per key before further ones are refused (default 16). */
  readonly maxInFlight?: number;
  /** Bound on tracked keys (oldest dropped first). */
  readonly maxKeys?: number;
}

export type ThrottleVerdict = { ok: true } | { ok: false; retryAfterMs: number; locked: boolean };

/** A key's failure counters (epoch ms; `lockedUntil` 0 = not locked). */
export interface FailureState {
  failures: number;
  firstFailAt: number;
  lastFailAt: number;
  lockedUntil: number;
}

interface State extends FailureState {
  inFlight: number;
}

const DEFAULT_MAX_KEYS = 200_000;
const DEFAULT_MAX_IN_FLIGHT = 16;

export class Throttle {
  private readonly m = new Map<string, State>();

  constructor(
    readonly settings: ThrottleSettings,
    private readonly now: () => number = Date.now,
  ) {}

  private state(key: string): State | undefined {
    const s = this.m.get(key);
    if (!s) return undefined;
    const t = this.now();
    if (s.inFlight === 0 && s.lockedUntil <= t && t - s.firstFailAt > this.settings.windowMs) {
      this.m.delete(key);
      return undefined;
    }
    return s;
  }

  /** Whether an attempt may proceed now (without reserving it). */
  check(key: string): ThrottleVerdict {
    const s = this.state(key);
    if (!s) return { ok: true };
    const t = this.now();
    if (s.lockedUntil > t) return { ok: false, retryAfterMs: s.lockedUntil - t, locked: true };
    const maxInFlight = this.settings.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    if (s.inFlight >= maxInFlight) return { ok: false, retryAfterMs: this.settings.baseDelayMs, locked: false };
    // Attempts in flight count as failures only once the key has failed: parallel logins of a
    // healthy account or address (NAT) are fine, parallel guesses after a failure are not.
    const effective = s.failures + (s.failures > 0 ? s.inFlight : 0);
    if (effective < this.settings.freeFailures) return { ok: true };
    const over = Math.max(0, s.failures - this.settings.freeFailures);
    const delay = Math.min(this.settings.maxDelayMs, this.settings.baseDelayMs * 2 ** Math.min(over, 30));
    const waitMs = s.lastFailAt + delay - t;
    if (s.inFlight > 0) return { ok: false, retryAfterMs: Math.max(waitMs, this.settings.baseDelayMs), locked: false };
    if (s.failures >= this.settings.freeFailures && waitMs > 0)
      return { ok: false, retryAfterMs: waitMs, locked: false };
    return { ok: true };
  }

  /**
   * Takes a key's failure counters from the shared ledger (undefined: it has none, e.g. a success elsewhere cleared
   * them), keeping the attempts in flight here. Counters whose window is over count as none.
   */
  adopt(key: string, shared: FailureState | undefined): void {
    const t = this.now();
    const live =
      shared !== undefined &&
      shared.failures > 0 &&
      (shared.lockedUntil > t || t - shared.firstFailAt <= this.settings.windowMs);
    const s = this.m.get(key);
    if (!live) {
      if (!s) return;
      if (s.inFlight === 0) this.m.delete(key);
      else Object.assign(s, { failures: 0, firstFailAt: t, lastFailAt: 0, lockedUntil: 0 });
      return;
    }
    const next = {
      failures: shared.failures,
      firstFailAt: shared.firstFailAt,
      lastFailAt: shared.lastFailAt,
      lockedUntil: shared.lockedUntil,
    };
    if (s) Object.assign(s, next);
    else {
      this.m.set(key, { ...next, inFlight: 0 });
      this.bound();
    }
  }

  /** Reserves an attempt (counts as in flight until `done`). */
  begin(key: string): void {
    let s = this.m.get(key);
    if (!s) {
      const t = this.now();
      s = { failures: 0, firstFailAt: t, lastFailAt: 0, lockedUntil: 0, inFlight: 0 };
      this.m.set(key, s);
      this.bound();
    }
    s.inFlight++;
  }

  /** Ends an attempt started with `begin`. */
  done(key: string, success: boolean): void {
    const s = this.m.get(key);
    const t = this.now();
    if (!s) {
      if (!success) this.fail(key);
      return;
    }
    s.inFlight = Math.max(0, s.inFlight - 1);
    if (success) {
      if (s.inFlight === 0) this.m.delete(key);
      else s.failures = 0;
      return;
    }
    if (s.failures === 0 || t - s.firstFailAt > this.settings.windowMs) {
      s.failures = 0;
      s.firstFailAt = t;
    }
    s.failures++;
    s.lastFailAt = t;
    if (s.failures >= this.settings.lockFailures) s.lockedUntil = t + this.settings.lockMs;
    // Re-insert: Map order is the eviction order.
    this.m.delete(key);
    this.m.set(key, s);
  }

  /** Ends an attempt without recording anything (neither failure nor success). */
  abandon(key: string): void {
    const s = this.m.get(key);
    if (s) s.inFlight = Math.max(0, s.inFlight - 1);
  }

  /** Records a failure that had no `begin`. */
  fail(key: string): void {
    this.begin(key);
    this.done(key, false);
  }

  /** Seconds until a locked key unlocks (0 when not locked). */
  lockedForMs(key: string): number {
    const s = this.state(key);
    return s && s.lockedUntil > this.now() ? s.lockedUntil - this.now() : 0;
  }

  reset(key: string): void {
    this.m.delete(key);
  }

  /** The keys tracked here that start with `prefix`. */
  keysWithPrefix(prefix: string): string[] {
    return [...this.m.keys()].filter((k) => k.startsWith(prefix));
  }

  private bound(): void {
    const max = this.settings.maxKeys ?? DEFAULT_MAX_KEYS;
    while (this.m.size > max) {
      const k = this.m.keys().next().value;
      if (k === undefined) break;
      this.m.delete(k);
    }
  }
}

/** At most `max` events per `windowMs` per key (fixed window), e.g. registrations per address. */
export class RateLimiter {
  private readonly m = new Map<string, { start: number; n: number }>();
  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one event; returns 0 when allowed, else ms until the window ends. */
  take(key: string): number {
    const t = this.now();
    let s = this.m.get(key);
    if (!s || t - s.start >= this.windowMs) {
      s = { start: t, n: 0 };
      this.m.delete(key);
      this.m.set(key, s);
      while (this.m.size > DEFAULT_MAX_KEYS) {
        const k = this.m.keys().next().value;
        if (k === undefined) break;
        this.m.delete(k);
      }
    }
    if (s.n >= this.max) return s.start + this.windowMs - t;
    s.n++;
    return 0;
  }
}
