/**
 * A token bucket: `burst` tokens, refilled at `ratePerS`; rate 0 (or less) = unlimited. Time is passed in. irc-binary's
 * per-connection limits and PerAddressRate's per-address buckets are this one.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerS: number,
    private readonly burst: number,
    nowMs: number,
  ) {
    this.tokens = burst;
    this.last = nowMs;
  }

  /** Takes one token; false when none is left. */
  take(nowMs: number): boolean {
    return this.wait(nowMs) === 0;
  }

  /** Takes one token and returns 0, or returns how many ms until one is there (taking nothing). */
  wait(nowMs: number): number {
    if (this.ratePerS <= 0) return 0;
    const elapsed = nowMs - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.ratePerS) / 1000);
      this.last = nowMs;
    }
    if (this.tokens < 1) return Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.ratePerS));
    this.tokens -= 1;
    return 0;
  }
}
