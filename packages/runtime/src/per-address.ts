/**
 * Open connections per client address, with a limit (the doors' "connections per IP" setting). One
 * implementation for every door, so the bound and its bookkeeping cannot drift apart.
 */
export class PerAddressLimit {
  private readonly open = new Map<string, number>();

  /** `max` connections per address; 0 = no limit (still counted). */
  constructor(private readonly max: number) {}

  /** Counts a connection from `addr`; false, and nothing counted, when the address already has `max`. */
  tryAdd(addr: string): boolean {
    const n = this.open.get(addr) ?? 0;
    if (this.max > 0 && n >= this.max) return false;
    this.open.set(addr, n + 1);
    return true;
  }

  /** A connection counted by `tryAdd` closed. */
  remove(addr: string): void {
    const n = (this.open.get(addr) ?? 1) - 1;
    if (n <= 0) this.open.delete(addr);
    else this.open.set(addr, n);
  }

  /** Connections counted for `addr`. */
  count(addr: string): number {
    return this.open.get(addr) ?? 0;
  }
}
