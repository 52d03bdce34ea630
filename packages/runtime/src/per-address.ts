import { addressThrottleKey } from './addresses';
import { TokenBucket } from './token-bucket';

/**
 * Open connections per client address, with a limit (the doors' "connections per IP" setting). One
 * implementation for every door, so the bound and its bookkeeping cannot drift apart. Addresses count by
 * `addressThrottleKey`: an IPv6 address as its /64 (one host can hop between the addresses of its /64 at will),
 * IPv4 (also IPv4-mapped) exactly.
 */
export class PerAddressLimit {
  private readonly open = new Map<string, number>();

  /** `max` connections per address; 0 = no limit (still counted). */
  constructor(private readonly max: number) {}

  /** Counts a connection from `addr`; false, and nothing counted, when the address already has `max`. */
  tryAdd(addr: string): boolean {
    const key = addressThrottleKey(addr);
    const n = this.open.get(key) ?? 0;
    if (this.max > 0 && n >= this.max) return false;
    this.open.set(key, n + 1);
    return true;
  }

  /** A connection counted by `tryAdd` closed. */
  remove(addr: string): void {
    const key = addressThrottleKey(addr);
    const n = (this.open.get(key) ?? 1) - 1;
    if (n <= 0) this.open.delete(key);
    else this.open.set(key, n);
  }

  /** Connections counted for `addr` (for its /64 when it is IPv6). */
  count(addr: string): number {
    return this.open.get(addressThrottleKey(addr)) ?? 0;
  }
}

/**
 * One token bucket per client address (keyed like PerAddressLimit), shared by all of that address's connections: what
 * one host may do in total however many connections it opens (the per-connection limits multiply with them). A
 * connection `join`s with its address and `leave`s when it closes; an address's bucket lives while it has
 * connections, so the map is bounded by the open connections. `ratePerS` 0 = no limit.
 */
export class PerAddressRate {
  private readonly buckets = new Map<string, { bucket: TokenBucket; refs: number }>();

  constructor(
    private readonly ratePerS: number,
    private readonly burst: number,
  ) {}

  /** A connection from `addr` opened; returns the key its calls use. */
  join(addr: string, nowMs: number): string {
    const key = addressThrottleKey(addr);
    const b = this.buckets.get(key);
    if (b) b.refs++;
    else this.buckets.set(key, { bucket: new TokenBucket(this.ratePerS, Math.max(1, this.burst), nowMs), refs: 1 });
    return key;
  }

  /** A connection that joined with `key` closed. */
  leave(key: string): void {
    const b = this.buckets.get(key);
    if (!b) return;
    if (--b.refs <= 0) this.buckets.delete(key);
  }

  /** Takes one token of `key`'s bucket and returns 0, or returns the ms until there is one (taking nothing). */
  wait(key: string, nowMs: number): number {
    return this.buckets.get(key)?.bucket.wait(nowMs) ?? 0;
  }

  /** Addresses with a bucket (open connections' addresses). */
  get size(): number {
    return this.buckets.size;
  }
}
