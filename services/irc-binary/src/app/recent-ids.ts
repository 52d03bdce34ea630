/**
 * §3.6 "Exactly once": message ids delivered by this instance, remembered for at least `ttlMs`
 * (60 s), so an id is delivered at most once per connection even though events are at-least-once
 * and an instance may deliver its own posts before their NATS copy arrives. Bounded by `maxSize`
 * as a safety net against memory growth under extreme rates (oldest forgotten first).
 */
export class RecentIds {
  private readonly seen = new Set<string>();
  /** Insertion-ordered ring of (id, time); `head` is the oldest live entry. */
  private ids: string[] = [];
  private times: number[] = [];
  private head = 0;

  constructor(
    private readonly ttlMs = 60_000,
    private readonly maxSize = 2_000_000,
  ) {}

  has(id: string): boolean {
    return this.seen.has(id);
  }

  /** Records `id`; false when it was already seen. */
  add(id: string, nowMs: number): boolean {
    if (this.seen.has(id)) return false;
    this.seen.add(id);
    this.ids.push(id);
    this.times.push(nowMs);
    this.prune(nowMs);
    return true;
  }

  get size(): number {
    return this.seen.size;
  }

  private prune(nowMs: number): void {
    while (
      this.head < this.ids.length &&
      (nowMs - this.times[this.head]! >= this.ttlMs || this.seen.size > this.maxSize)
    ) {
      this.seen.delete(this.ids[this.head]!);
      this.head++;
    }
    if (this.head > 4096 && this.head * 2 > this.ids.length) {
      this.ids = this.ids.slice(this.head);
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
  }
}
