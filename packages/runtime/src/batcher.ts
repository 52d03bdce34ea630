/**
 * Group commit: concurrent submissions are gathered and handed to `run` together, one batch at a time.
 *
 * Rules:
 * 1. At most `maxInFlight` batches run at once (default 1). Batches START in submission order, so whatever
 *    `run` does synchronously before its first await (assigning message ids) happens in submission order;
 *    with more than one in flight they may finish out of order (the caller orders its side effects).
 * 2. When idle, the first submission waits at most `windowMs` (0 = the next turn of the event loop) for
 *    company; a batch of `maxItems` goes at once. Submissions arriving while all slots are busy form the
 *    next batch, which starts the moment a slot frees.
 * 3. `submitMany` items stay consecutive and in order, in one batch when they fit (≤ `maxItems`); only a
 *    larger group spans consecutive batches, still in order.
 * 4. If `run` throws, every item of that batch is rejected with the error; later batches still run.
 * 5. After `close()`, submissions are refused; `close()` resolves when everything queued has run.
 */
export interface BatcherOptions<T, R> {
  readonly windowMs: number;
  readonly maxItems: number;
  /** Batches running at once; default 1. */
  readonly maxInFlight?: number;
  /** Returns one result per item, in order. */
  readonly run: (items: readonly T[]) => Promise<readonly R[]>;
}

interface Pending<T, R> {
  readonly item: T;
  /** Last item of its submission (a batch is cut only after such an item, when it can be). */
  readonly last: boolean;
  readonly resolve: (r: R) => void;
  readonly reject: (e: unknown) => void;
}

export class BatcherClosedError extends Error {
  override readonly name = 'BatcherClosedError';
}

export class Batcher<T, R> {
  private queue: Pending<T, R>[] = [];
  private running = 0;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  /** Batches run and items processed since start (metrics). */
  readonly stats = { batches: 0, items: 0, maxBatch: 0 };

  constructor(private readonly o: BatcherOptions<T, R>) {
    if (o.maxItems < 1) throw new RangeError('maxItems must be >= 1');
  }

  get queued(): number {
    return this.queue.length;
  }

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      if (this.closed) return reject(new BatcherClosedError('batcher closed'));
      this.queue.push({ item, last: true, resolve, reject });
      this.schedule();
    });
  }

  submitMany(items: readonly T[]): Promise<R[]> {
    if (this.closed) return Promise.reject(new BatcherClosedError('batcher closed'));
    const n = items.length;
    const ps = items.map(
      (item, i) => new Promise<R>((resolve, reject) => this.queue.push({ item, last: i === n - 1, resolve, reject })),
    );
    this.schedule();
    return Promise.all(ps);
  }

  /** Refuses new submissions and resolves when the queue is empty and no batch runs. */
  close(): Promise<void> {
    this.closed = true;
    return this.idle();
  }

  /** Resolves when the queue is empty and no batch runs. */
  idle(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private get slots(): number {
    return Math.max(1, this.o.maxInFlight ?? 1);
  }

  private schedule(): void {
    if (this.running >= this.slots) return; // rule 2: a finishing batch starts the next one
    if (this.queue.length >= this.o.maxItems) {
      this.clearTimer();
      this.flush();
      return;
    }
    if (this.timer) return;
    this.timer =
      this.o.windowMs <= 0
        ? setImmediate(() => {
            this.timer = undefined;
            this.flush();
          })
        : setTimeout(() => {
            this.timer = undefined;
            this.flush();
          }, this.o.windowMs);
  }

  private clearTimer(): void {
    if (!this.timer) return;
    clearTimeout(this.timer as NodeJS.Timeout);
    clearImmediate(this.timer as NodeJS.Immediate);
    this.timer = undefined;
  }

  /** Starts as many batches as there are free slots; each finished batch starts the next. */
  private flush(): void {
    while (this.running < this.slots && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.cut());
      this.running++;
      void this.runBatch(batch).finally(() => {
        this.running--;
        if (this.queue.length > 0) this.flush();
        else if (this.running === 0) {
          const ws = this.idleWaiters;
          this.idleWaiters = [];
          for (const w of ws) w();
        }
      });
    }
  }

  /** Items of the next batch: up to maxItems, ending at a submission boundary when one exists (rule 3). */
  private cut(): number {
    const q = this.queue;
    const max = Math.min(q.length, this.o.maxItems);
    if (max === q.length || q[max - 1]!.last) return max;
    for (let j = max - 1; j > 0; j--) if (q[j - 1]!.last) return j;
    return max;
  }

  private async runBatch(batch: Pending<T, R>[]): Promise<void> {
    this.stats.batches++;
    this.stats.items += batch.length;
    if (batch.length > this.stats.maxBatch) this.stats.maxBatch = batch.length;
    try {
      const results = await this.o.run(batch.map((p) => p.item));
      if (results.length !== batch.length) throw new Error(`batch run returned ${results.length} of ${batch.length}`);
      batch.forEach((p, i) => p.resolve(results[i]!));
    } catch (e) {
      for (const p of batch) p.reject(e);
    }
  }
}
