import { addressThrottleKey } from './addresses';

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
