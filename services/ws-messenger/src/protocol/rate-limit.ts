/**
 * Per-connection request rate (spec §2.6 step 3): a token bucket of `burst` tokens refilled at
 * `perSecond`. Time comes in as an argument (sans-IO). `perSecond` 0 = off.
 *
 * Malformed frames (415, steps 1–2, answered before the rate check) are charged too (`charge`): they
 * take a token when there is one, and otherwise overdraw the bucket by up to `burst` tokens, which the
 * refill pays back before any request passes `take` again. A connection that would overdraw further
 * keeps sending malformed frames faster than the rate allows: `charge` says 'exhausted'.
 */
export type Charge = 'ok' | 'overdrawn' | 'exhausted';

/** What the dispatcher asks of a connection's rate (a TokenBucket, or one combined with its address's). */
export interface RequestRate {
  take(nowMs: number): boolean;
  charge(nowMs: number): Charge;
}

export class TokenBucket {
  private tokens: number;
  private lastMs: number | undefined;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {
    this.tokens = Math.max(1, burst);
  }

  /** Takes one token; false when the caller is over the rate. */
  take(nowMs: number): boolean {
    if (this.perSecond <= 0) return true;
    this.refill(nowMs);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  /**
   * Charges a request that is answered anyway (a malformed frame): a token if there is one ('ok'), else an
   * overdraft of at most `burst` tokens ('overdrawn'); beyond that nothing is charged ('exhausted'). Always 'ok'
   * when the rate is off.
   */
  charge(nowMs: number): Charge {
    if (this.perSecond <= 0) return 'ok';
    this.refill(nowMs);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 'ok';
    }
    if (this.tokens - 1 < -this.cap) return 'exhausted';
    this.tokens -= 1;
    return 'overdrawn';
  }

  private get cap(): number {
    return Math.max(1, this.burst);
  }

  private refill(nowMs: number): void {
    if (this.lastMs !== undefined && nowMs > this.lastMs) {
      this.tokens = Math.min(this.cap, this.tokens + ((nowMs - this.lastMs) * this.perSecond) / 1000);
    }
    this.lastMs = nowMs;
  }
}
