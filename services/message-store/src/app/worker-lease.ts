/**
 * Worker-id lease (0..127) from a NATS KV bucket with a TTL, so replicas never share a snowflake worker id.
 *
 * Rules:
 * 1. `claim` is an atomic KV create: the first instance to create key `<n>` holds worker id n.
 * 2. The lease is renewed every third of the TTL with a compare-and-set on our revision. If the renewal
 *    is refused (someone else holds it) or nothing succeeded for most of a TTL (NATS unreachable), the
 *    generator stops assigning ids at once; a new id is claimed as soon as possible.
 * 3. On shutdown the key is released (deleted only if still ours).
 */
import { randomBytes } from 'node:crypto';
import { claim, openKv, release, renew } from '@hubbub/nats';
import type { KV, NatsConnection } from '@hubbub/nats';
import type { Logger } from '@hubbub/runtime';
import { MAX_WORKER_ID } from './snowflake';

export interface WorkerLeaseOptions {
  readonly nc: NatsConnection;
  readonly bucket: string;
  readonly ttlMs: number;
  readonly log: Logger;
  /** Called with the worker id when a lease is acquired, and undefined when it is lost. */
  readonly onChange: (worker: number | undefined) => void | Promise<void>;
}

export class WorkerLease {
  private kv: KV | undefined;
  private worker: number | undefined;
  private revision = 0;
  private lastRenewAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** This process's value in the bucket (also the subject token of its horizon requests, peer-horizon.ts). */
  readonly holder = `${process.pid}-${randomBytes(4).toString('hex')}`;

  constructor(private readonly o: WorkerLeaseOptions) {}

  get workerId(): number | undefined {
    return this.worker;
  }

  /**
   * Whether the held id is still ours for sure: renewed within the part of the TTL after which rule 2 gives it up.
   * Checked on every id (the renewal timer cannot run while the event loop is stalled).
   */
  isValid(): boolean {
    return this.worker !== undefined && this.renewedInTime();
  }

  /** Rule 2's bound: the last renewal is no older than 5/6 of the TTL (after that the key may be another's). */
  private renewedInTime(): boolean {
    return Date.now() - this.lastRenewAt <= (this.o.ttlMs * 5) / 6;
  }

  /** Opens the bucket and claims a worker id; throws when all 128 are taken. */
  async start(): Promise<number> {
    this.kv = await openKv(this.o.nc, this.o.bucket, this.o.ttlMs);
    const w = await this.acquire();
    if (w === undefined) throw new Error('no free worker id (0..127) in ' + this.o.bucket);
    this.schedule();
    return w;
  }

  private async acquire(): Promise<number | undefined> {
    const kv = this.kv!;
    const first = Math.floor(Math.random() * (MAX_WORKER_ID + 1));
    for (let i = 0; i <= MAX_WORKER_ID; i++) {
      const n = (first + i) % (MAX_WORKER_ID + 1);
      const rev = await claim(kv, String(n), this.holder);
      if (rev !== undefined) {
        this.worker = n;
        this.revision = rev;
        this.lastRenewAt = Date.now();
        try {
          await this.o.onChange(n);
        } catch (err) {
          // The generator did not take the id (the database failed while reading the id floor): give the key
          // back and hold nothing, so the next tick claims again. Kept, it would be renewed for an id nobody
          // assigns while every post is refused with WORKER_ID_UNAVAILABLE.
          this.worker = undefined;
          await release(kv, String(n), rev).catch(() => false);
          throw err;
        }
        this.o.log.info({ worker: n, bucket: this.o.bucket }, 'worker id leased');
        return n;
      }
    }
    return undefined;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), Math.max(100, Math.floor(this.o.ttlMs / 3)));
    this.timer.unref();
  }

  private async lose(reason: string): Promise<void> {
    if (this.worker === undefined) return;
    this.o.log.error({ worker: this.worker, reason, code: 'WORKER_LEASE_LOST' }, 'worker id lease lost; ids paused');
    this.worker = undefined;
    await this.o.onChange(undefined);
  }

  private async tick(): Promise<void> {
    try {
      if (this.worker === undefined) {
        await this.acquire();
      } else {
        let rev = await renew(this.kv!, String(this.worker), this.holder, this.revision);
        if (rev === undefined) rev = await this.adoptOwnRevision(this.worker);
        if (rev === undefined) {
          await this.lose('taken by another instance');
          // Claim another id at once rather than a third of a TTL later: posts fail while none is held.
          await this.acquire();
        } else {
          this.revision = rev;
          this.lastRenewAt = Date.now();
        }
      }
    } catch (err) {
      this.o.log.warn({ err, code: 'WORKER_LEASE_RENEW_FAILED' }, 'worker id lease renewal failed');
      // Rule 2: without a renewal for most of the TTL the key may have expired and been claimed elsewhere.
      if (!this.renewedInTime()) await this.lose('not renewed within the TTL');
    }
    this.schedule();
  }

  /**
   * A renewal whose reply was lost (NATS restarting, a timeout) still moved the key's revision: if the
   * key still names this holder, it is ours; renew from its current revision.
   */
  private async adoptOwnRevision(worker: number): Promise<number | undefined> {
    const e = await this.kv!.get(String(worker));
    if (!e || e.operation !== 'PUT' || e.string() !== this.holder) return undefined;
    this.o.log.info({ worker, revision: e.revision }, 'worker id lease revision re-read after a lost reply');
    return renew(this.kv!, String(worker), this.holder, e.revision);
  }

  /** Test hook: renew (or re-acquire) now. */
  async renewNow(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    await this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.worker !== undefined && this.kv) {
      await release(this.kv, String(this.worker), this.revision).catch(() => false);
      this.worker = undefined;
    }
  }
}
