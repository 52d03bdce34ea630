/**
 * Snowflake ids in dum-dum-irc's layout (ARCHITECTURE.md "How a message travels", irc-binary spec §2.7):
 * bit 63 zero | 44 bits of milliseconds since the Unix epoch | 7 bits worker id | 12 bits sequence.
 *
 * Invariants this file keeps:
 * 1. Ids from one generator strictly increase, even when the clock steps back: the generator keeps its last
 *    millisecond while the clock is behind, and when the 4096 sequence numbers of a millisecond are used up
 *    it borrows the next millisecond (so ids may run slightly ahead of the clock, never backwards).
 * 2. An id is never 0 and never has bit 63 set.
 * 3. A generator without a worker id (lease not held) refuses to assign ids, and so does one whose lease was not
 *    renewed in time (`leaseValid`): after the event loop stalled past the lease's TTL the key may already be
 *    another replica's, and the first thing to run after the stall can be a batch, before the renewal finds out.
 */

export const WORKER_BITS = 7;
export const SEQUENCE_BITS = 12;
export const MAX_WORKER_ID = (1 << WORKER_BITS) - 1;
export const MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1;
/** 2^44 - 1 ms: year 2527. */
export const MAX_TIMESTAMP_MS = 2 ** 44 - 1;

export class SnowflakeUnavailableError extends Error {
  override readonly name = 'SnowflakeUnavailableError';
}

/** Composes an id; `ms` must be below 2^44. */
export function composeSnowflake(ms: number, worker: number, seq: number): bigint {
  return (BigInt(ms) << 19n) | (BigInt(worker) << 12n) | BigInt(seq);
}

export function snowflakeMs(id: bigint | string): number {
  return Number(BigInt(id) >> 19n);
}

export function snowflakeWorker(id: bigint | string): number {
  return Number((BigInt(id) >> 12n) & 0x7fn);
}

export interface SnowflakeOptions {
  readonly now?: () => number;
  /** False while the worker id's lease is not known to be held (invariant 3); default always true. */
  readonly leaseValid?: () => boolean;
}

export class SnowflakeGenerator {
  private worker: number | undefined;
  private lastMs = 0;
  private seq = 0;
  private readonly now: () => number;
  private readonly leaseValid: (() => boolean) | undefined;
  /** How often the clock was seen behind the last millisecond used (a metric). */
  clockBackwards = 0;

  constructor(o: SnowflakeOptions = {}) {
    this.now = o.now ?? Date.now;
    this.leaseValid = o.leaseValid;
  }

  get workerId(): number | undefined {
    return this.worker;
  }

  /**
   * Starts assigning ids as `worker`. `floorMs` is the millisecond of the newest id already stored (by any
   * worker), so a restarted process whose clock is behind still continues above it.
   */
  setWorker(worker: number, floorMs = 0): void {
    if (!Number.isInteger(worker) || worker < 0 || worker > MAX_WORKER_ID)
      throw new RangeError(`bad worker id ${worker}`);
    // A new worker id may be lower than the old one: the next id must start a new millisecond, or it
    // could sort below ids this process already issued in the current one. The next id borrows
    // max(lastMs, floorMs) + 1 unless the clock is already past it.
    if (worker !== this.worker || floorMs > this.lastMs) {
      this.lastMs = Math.max(this.lastMs, floorMs);
      this.seq = MAX_SEQUENCE;
    }
    this.worker = worker;
  }

  /** Stops assigning ids (lease lost). */
  clearWorker(): void {
    this.worker = undefined;
  }

  /**
   * The lowest id a later `next()` can return (a read horizon, docs/adr/0007). It also moves the generator up to the
   * clock's millisecond, so the bound holds even if the clock steps back afterwards.
   */
  horizon(): bigint {
    const now = this.now();
    if (now > this.lastMs) {
      this.lastMs = now;
      this.seq = -1; // the next id in this millisecond takes sequence 0
    }
    if (this.seq < 0) return composeSnowflake(this.lastMs, 0, 0);
    // Every later id is above the last one issued (also across a worker-id change: setWorker borrows a millisecond).
    return composeSnowflake(this.lastMs, this.worker ?? 0, this.seq) + 1n;
  }

  /** Whether next() can issue an id now: a worker id whose lease was renewed in time. */
  get available(): boolean {
    return this.worker !== undefined && (!this.leaseValid || this.leaseValid());
  }

  /** The next id, or SnowflakeUnavailableError without a worker id. */
  next(): bigint {
    const w = this.worker;
    if (w === undefined) throw new SnowflakeUnavailableError('no worker id lease');
    if (this.leaseValid && !this.leaseValid())
      throw new SnowflakeUnavailableError('worker id lease not renewed in time');
    const now = this.now();
    if (now > this.lastMs) {
      this.lastMs = now;
      this.seq = 0;
    } else {
      if (now < this.lastMs) this.clockBackwards++;
      if (this.seq < MAX_SEQUENCE) this.seq++;
      else {
        this.lastMs++;
        this.seq = 0;
      }
    }
    if (this.lastMs > MAX_TIMESTAMP_MS) throw new SnowflakeUnavailableError('timestamp out of range');
    const id = composeSnowflake(this.lastMs, w, this.seq);
    // Invariant 2: ms 0 with worker 0 and seq 0 would be id 0; skip it.
    return id === 0n ? this.next() : id;
  }
}
