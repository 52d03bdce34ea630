/**
 * Writes that stamped a change time before they commit, and the read horizon in time they leave (docs/adr/0006,
 * 0007): a reader that continues "from the time of my last answer" must be told only times before which every
 * change is visible. message-store's messages and channels use it (identity's accounts are stamped by the
 * database and bounded by its open transactions instead).
 *
 * Rules:
 * 1. `track(write, stampMs)` in the turn that stamped the change, with that stamp or an earlier time; the write
 *    counts until it commits or fails.
 * 2. `settled()` resolves when every write tracked before the call has settled (`settledWithin` bounds the wait).
 * 3. `timeHorizon()` is the earliest stamp a write may still commit with: the lowest stamp in flight, else the
 *    clock. `stampNow()` never goes below a horizon handed out, so a clock stepping back cannot stamp a change
 *    before a time a reader was told is complete.
 */
export class StampedWrites {
  private readonly unsettled = new Map<Promise<unknown>, number>();
  private floor = 0;

  constructor(private readonly now: () => number) {}

  /** Writes in flight. */
  get size(): number {
    return this.unsettled.size;
  }

  /** The clock for change stamps (rule 3). */
  stampNow(): number {
    const n = this.now();
    return n > this.floor ? n : this.floor;
  }

  /** Rule 1; returns the write as a promise (the same one when it already is). */
  track<T>(write: PromiseLike<T>, stampMs: number): Promise<T> {
    const p = Promise.resolve(write);
    this.unsettled.set(p, stampMs);
    const done = (): void => void this.unsettled.delete(p);
    p.then(done, done);
    return p;
  }

  /** Rule 2. */
  async settled(): Promise<void> {
    if (this.unsettled.size > 0) await Promise.allSettled([...this.unsettled.keys()]);
  }

  /** settled(), for at most `ms`: true when everything tracked before the call settled in time. */
  async settledWithin(ms: number): Promise<boolean> {
    if (this.unsettled.size === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), Math.max(0, ms))));
    const done = await Promise.race([this.settled().then(() => true), late]);
    clearTimeout(timer);
    return done;
  }

  /** Rule 3. */
  timeHorizon(): number {
    let t = this.stampNow();
    for (const stamp of this.unsettled.values()) if (stamp < t) t = stamp;
    if (t > this.floor) this.floor = t;
    return t;
  }
}
