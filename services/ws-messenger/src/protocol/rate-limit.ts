/**
 * Per-connection request rate (spec §2.6 step 3): a token bucket of `burst` tokens refilled at
 * `perSecond`. Time comes in as an argument (sans-IO). `perSecond` 0 = off.
 */
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
    const cap = Math.max(1, this.burst);
    if (this.lastMs !== undefined && nowMs > this.lastMs) {
      this.tokens = Math.min(cap, this.tokens + ((nowMs - this.lastMs) * this.perSecond) / 1000);
    }
    this.lastMs = nowMs;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }
}
