/**
 * Publishes committed outbox rows to NATS (ARCHITECTURE.md: "No event is lost between commit and publish").
 *
 * Rules:
 * 1. Fast path: rows committed by this process are handed over in memory right after COMMIT and published at once, in
 *    hand-off order (commit order; id order for posts). Their deletion waits for a NATS flush (the server has them),
 *    and is batched every `cleanupIntervalMs`. A flush proves only what went out on the connection it was answered
 *    on: nats.js drops what it had not written when it redials, and bytes written to a socket that then broke are
 *    gone. So rows are deleted only when the flush was answered on the connection they were published on.
 * 2. Backlog: rows whose publication is not proven (their flush failed, the connection changed or dropped before it,
 *    NATS was away at hand-off) are this instance's backlog, and every row handed over after them queues behind it
 *    (by seq, in hand-off order) instead of overtaking it, so the events of one instance reach NATS in commit order.
 *    A drain publishes the backlog from the database as soon as NATS is connected (at once on a reconnect, not on
 *    the next sweep); the fast path resumes when the backlog is empty. The queue holds at most MAX_BACKLOG seqs;
 *    beyond that the drain takes the whole outbox in seq order (every row is committed: nothing is lost, but other
 *    replicas' fresh rows may go out twice).
 * 3. Sweep: rows left behind (a crash between commit and publish, another replica's leftovers) are swept from the
 *    database: all of them at start-up, then every `sweepIntervalMs` the ones older than that interval. Adjacent
 *    batches of posts go out in id order (concurrent batches may get their seqs the other way round).
 * 4. Sweeps and drains publish in chunks (at most SWEEP_BATCH rows, about SWEEP_EVENTS events), each flushed before
 *    its rows are deleted, under one advisory lock shared by all replicas (chunks never interleave), and yield to
 *    the event loop between chunks.
 * 5. An event NATS refuses by itself (over `max_payload`) can never be published: it is logged and skipped, not
 *    retried forever ahead of every later event. Readers find the change in history.
 * 6. Delivery is at-least-once; consumers dedupe by message id.
 * 7. Posted events are stored without payload (the hot INSERT stays small); the sweep rebuilds them from
 *    the message row, so a late event carries the message as it is now (possibly already edited).
 */
import type { NatsConnection } from '@nats-io/nats-core';
import type { Logger } from '@hubbub/runtime';
import type { OutboxRow, Repo, StoredOutboxRow } from '../store/repo';
import type { Queryable } from '../store/sql';

export interface OutboxPublisherOptions {
  readonly repo: Repo;
  readonly nc: NatsConnection;
  readonly log: Logger;
  readonly cleanupIntervalMs: number;
  readonly sweepIntervalMs: number;
  /** Tests: start with publishing switched off (simulates a crash between commit and publish). */
  readonly paused?: boolean;
  readonly onPublished?: (n: number) => void;
  /** Builds the events of rows stored without payload (batches of posts), by seq. */
  readonly rebuild: (
    q: Queryable,
    rows: readonly StoredOutboxRow[],
  ) => Promise<Map<string, { subject: string; payload: string }[]>>;
}

/** Most rows per sweep or drain chunk. */
const SWEEP_BATCH = 1_000;
/** About the most events per chunk (a batch row is never split): what one event-loop turn publishes. */
const SWEEP_EVENTS = 1_000;
/** Most seqs queued in the backlog (rule 2): one per committed transaction (a batch of posts is one). */
export const MAX_BACKLOG = 100_000;
/** First retry of a failed drain (doubling up to the sweep interval), and the retry while another replica sweeps. */
const DRAIN_RETRY_MS = 100;

/**
 * Longest wait for a NATS flush. A half-open connection answers no PING until nats.js gives it up (two missed
 * pings, tens of seconds), and a sweep or drain waits inside its transaction (the advisory lock and a pooled
 * connection held): past this the flush counts as failed, and the rows go again later.
 */
export const FLUSH_TIMEOUT_MS = 5_000;

/** Another sweep or drain holds the outbox lock. */
const BUSY: unique symbol = Symbol('busy');

/**
 * An event's bytes. nats.js encodes a string payload with TextEncoder (a fresh ArrayBuffer per event);
 * Buffer.from slices Node's pool and is about 2.5× faster for events of chat-message size.
 */
const utf8 = (payload: string): Uint8Array => Buffer.from(payload, 'utf8');

/** No connection yet (differs from every `nc.info`, including undefined while nats.js redials). */
const NO_CONNECTION: unique symbol = Symbol('no connection');

/**
 * Which NATS connection `nc` is on now (undefined while disconnected): the server's id and the client id it gave this
 * connection, which both stay the same for the connection's life. nats.js replaces `nc.info` on every INFO the
 * server sends, also on a live connection (cluster topology changes, lame duck mode), so the object alone would take
 * each of those for a new connection and send the events in flight through a needless backlog. A server that gives
 * no client id falls back to the object.
 */
export function connectionOf(nc: Pick<NatsConnection, 'info'>): unknown {
  const info = nc.info;
  if (info === undefined) return undefined;
  const i = info as { server_id?: unknown; client_id?: unknown };
  return typeof i.client_id === 'number' && typeof i.server_id === 'string' ? `${i.server_id}/${i.client_id}` : info;
}

/** A committed outbox row handed over (a batch of posts is one row) and how many events it carries. */
interface Entry {
  readonly seq: string;
  events: number;
}

/** Rows of one batch share a seq and are adjacent. */
function entriesOf(rows: readonly OutboxRow[]): Entry[] {
  const out: Entry[] = [];
  for (const r of rows) {
    const last = out[out.length - 1];
    if (last?.seq === r.seq) last.events++;
    else out.push({ seq: r.seq, events: 1 });
  }
  return out;
}

/** The first message id of a row of posts (batch rows list their ids ascending; migration-0002 rows name one). */
const firstPostId = (r: StoredOutboxRow): string | undefined =>
  r.message_ids?.[0] ?? (r.payload === null && r.ref !== '' ? r.ref : undefined);

/** Decimal ids without leading zeros: the longer is larger. */
const idOrder = (a: string, b: string): number => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);

/**
 * Rule 3: adjacent rows of posts in the order of their first message id. Batches commit concurrently, so a batch
 * with higher ids can get the lower seq; the fast path hands batches over in id order, and so does the sweep. Only
 * adjacent ones move: a row in between (an edit, a join) may depend on the batch before it.
 */
export function inIdOrder(rows: readonly StoredOutboxRow[]): StoredOutboxRow[] {
  const out = [...rows];
  for (let i = 0; i < out.length;) {
    let j = i;
    while (j < out.length && firstPostId(out[j]!) !== undefined) j++;
    if (j - i > 1) {
      const run = out.slice(i, j).sort((a, b) => idOrder(firstPostId(a)!, firstPostId(b)!));
      out.splice(i, j - i, ...run);
    }
    i = Math.max(j, i + 1);
  }
  return out;
}

export class OutboxPublisher {
  /** Published on `pendingConn`; deleted by the next cleanup once a flush on that connection is answered. */
  private pendingDelete: Entry[] = [];
  /**
   * The connection the rows of `pendingDelete` were published on: nats.js replaces `nc.info` with the INFO object
   * of every connection (undefined while it redials), so identity tells connections apart. An INFO update on the
   * same connection also changes it; that only makes a backlog of rows NATS has (duplicates), never loses one.
   */
  private pendingConn: unknown = NO_CONNECTION;
  /** The rows of the cleanup in progress, and their connection. */
  private cleaningRows: readonly Entry[] = [];
  private cleaningConn: unknown = NO_CONNECTION;
  /** Rule 2: the backlog in hand-off order; undefined on the fast path. */
  private backlog: Entry[] | undefined;
  /** Rule 2 beyond MAX_BACKLOG: the drain takes the whole outbox; `handedOverflowed` = a row was handed over since. */
  private overflowed = false;
  private handedOverflowed = false;
  /** From the connection's status events: the drain waits for a reconnect. */
  private connected = true;
  private queued: OutboxRow[] = [];
  private queuedFlush: NodeJS.Immediate | undefined;
  private cleanupTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  private cleaning: Promise<void> | undefined;
  private sweeping: Promise<number> | undefined;
  private draining: Promise<void> | undefined;
  private drainAgain = false;
  private drainFailures = 0;
  /** Sweeps and drains run one at a time (rule 4). */
  private turn: Promise<unknown> = Promise.resolve();
  private paused: boolean;
  private stopped = false;
  /** Events published since start (handed over + swept + drained). */
  published = 0;
  swept = 0;
  drained = 0;

  constructor(private readonly o: OutboxPublisherOptions) {
    this.paused = o.paused ?? false;
    if (!this.paused) this.watchConnection();
  }

  /** Whether events queue behind a backlog (rule 2) instead of going out at once. */
  get backlogged(): boolean {
    return this.backlog !== undefined;
  }

  /** Sweeps everything left from before, then keeps sweeping periodically. */
  async start(): Promise<void> {
    if (this.paused) return;
    await this.sweep(0);
    this.scheduleSweep();
  }

  private scheduleSweep(): void {
    if (this.stopped || this.paused) return;
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = undefined;
      // A backlog goes first (rule 2); leftovers of others wait for the fast path.
      const run: Promise<unknown> = this.backlog ? this.drain() : this.sweep(this.o.sweepIntervalMs);
      void run.finally(() => this.scheduleSweep());
    }, this.o.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  /** Rule 2: no fast path while NATS is away; the drain starts when it is back. */
  private watchConnection(): void {
    const status = this.o.nc.status();
    void (async () => {
      for await (const s of status) {
        if (this.stopped) break;
        if (s.type === 'disconnect') {
          this.connected = false;
          this.enterBacklog('nats disconnected');
        } else if (s.type === 'reconnect') {
          this.connected = true;
          this.scheduleDrain(0);
        }
      }
    })().catch((err: unknown) => {
      // Without status events, the periodic sweep tries the drain (it fails and retries while NATS is away).
      this.connected = true;
      this.o.log.warn({ err, code: 'OUTBOX_STATUS_FAILED' }, 'nats status stream failed');
    });
  }

  /**
   * Rule 1 for batches of posts: rows wait (in commit order) until `flushQueued()` — which the API calls right
   * before it answers, so the events and the reply leave in ONE socket write — or the end of this event-loop
   * turn (setImmediate), whichever comes first. Events still leave before the replies of their batch.
   */
  queue(rows: readonly OutboxRow[]): void {
    if (rows.length === 0) return;
    for (const r of rows) this.queued.push(r);
    if (!this.queuedFlush) this.queuedFlush = setImmediate(() => this.flushQueued());
  }

  /** Publishes the queued rows now (see `queue`). */
  flushQueued(): void {
    if (this.queuedFlush) {
      clearImmediate(this.queuedFlush);
      this.queuedFlush = undefined;
    }
    if (this.queued.length === 0) return;
    const rows = this.queued;
    this.queued = [];
    this.handOff(rows);
  }

  /** Rules 1 and 2: rows just committed by this process, in commit order. */
  handOff(rows: readonly OutboxRow[]): void {
    if (this.paused || this.stopped || rows.length === 0) return;
    const conn = connectionOf(this.o.nc);
    if (!this.backlog) {
      if (conn === undefined) this.enterBacklog('nats disconnected');
      // The cleanup is far behind (its flush hangs): publishing more only grows what is unproven (and unbounded).
      else if (this.pendingDelete.length >= MAX_BACKLOG) this.enterBacklog('nats flush behind');
      // Rows still unproven went out on another connection: no flush on this one proves them.
      else if (
        (this.pendingDelete.length > 0 && conn !== this.pendingConn) ||
        (this.cleaningRows.length > 0 && conn !== this.cleaningConn)
      )
        this.enterBacklog('nats connection changed');
    }
    if (this.backlog) return this.hold(entriesOf(rows));
    let n: number;
    try {
      n = this.send(rows);
    } catch (err) {
      // Closed or draining connection: what went out of these rows goes again with the backlog (duplicates).
      this.o.log.warn({ err, code: 'OUTBOX_PUBLISH_FAILED' }, 'outbox publish failed; rows queued as a backlog');
      this.enterBacklog('publish failed');
      return this.hold(entriesOf(rows));
    }
    this.published += n;
    this.o.onPublished?.(n);
    // Any rows still pending went out on this same connection (checked above).
    this.pendingConn = conn;
    for (const e of entriesOf(rows)) this.pendingDelete.push(e);
    if (!this.cleanupTimer && !this.cleaning) {
      this.cleanupTimer = setTimeout(() => {
        this.cleanupTimer = undefined;
        void this.cleanup();
      }, this.o.cleanupIntervalMs);
      this.cleanupTimer.unref();
    }
  }

  /** Publishes events; returns how many went out. Throws only when the connection is closed or draining (rule 5). */
  private send(events: readonly { subject: string; payload: string }[]): number {
    let n = 0;
    for (const e of events) {
      const data = utf8(e.payload);
      try {
        this.o.nc.publish(e.subject, data);
        n++;
      } catch (err) {
        if (this.o.nc.isClosed() || this.o.nc.isDraining()) throw err;
        this.o.log.error(
          { err, subject: e.subject, bytes: data.length, code: 'OUTBOX_EVENT_REFUSED' },
          'nats refused an outbox event; skipped (readers find the change in history)',
        );
      }
    }
    return n;
  }

  /** Rule 2: unproven rows (the cleanup's, then the pending ones, in the order they went out) start the backlog. */
  private enterBacklog(reason: string): void {
    if (this.backlog) return;
    const unproven = [...this.cleaningRows, ...this.pendingDelete];
    this.backlog = [];
    this.pendingDelete = [];
    this.pendingConn = NO_CONNECTION;
    this.o.log.warn(
      { reason, n: unproven.length, code: 'OUTBOX_BACKLOG' },
      'outbox events queue behind a backlog until nats has it',
    );
    this.hold(unproven);
  }

  /** Rule 2: rows queue behind the backlog (they are committed: the drain reads them from the database). */
  private hold(entries: readonly Entry[]): void {
    const backlog = this.backlog!;
    if (this.overflowed) this.handedOverflowed = true;
    else {
      for (const e of entries) backlog.push(e);
      if (backlog.length > MAX_BACKLOG) {
        this.o.log.warn(
          { n: backlog.length, code: 'OUTBOX_BACKLOG_OVERFLOW' },
          'outbox backlog over its bound; the drain takes the whole outbox in seq order',
        );
        this.backlog = [];
        this.overflowed = true;
        this.handedOverflowed = true;
      }
    }
    this.scheduleDrain(0);
  }

  private leaveBacklog(): void {
    this.backlog = undefined;
    this.overflowed = false;
    this.o.log.info('outbox backlog drained; publishing at once again');
  }

  private scheduleDrain(delayMs: number): void {
    if (this.stopped || !this.backlog || this.drainTimer) return;
    this.drainTimer = setTimeout(() => {
      this.drainTimer = undefined;
      void this.drain();
    }, delayMs);
    this.drainTimer.unref();
  }

  /** Rule 2: publishes the backlog chunk by chunk while NATS is connected; the fast path resumes when it is empty. */
  drain(): Promise<void> {
    if (this.draining) {
      // It may be past its last check: go again when it ends.
      this.drainAgain = true;
      return this.draining;
    }
    this.drainAgain = false;
    this.draining = this.exclusive(() => this.drainChunks()).then((retryMs) => {
      this.draining = undefined;
      if (retryMs !== undefined) this.scheduleDrain(retryMs);
      else if (this.drainAgain) this.scheduleDrain(0);
    });
    return this.draining;
  }

  /** Returns when to try again (ms), if the drain has to. */
  private async drainChunks(): Promise<number | undefined> {
    let total = 0;
    let retryMs: number | undefined;
    try {
      // While NATS is away the reconnect starts the next drain.
      while (this.backlog && !this.stopped && this.connected && this.o.nc.info !== undefined) {
        const n = this.overflowed ? await this.drainOutboxChunk() : await this.drainBacklogChunk();
        if (n === BUSY) {
          retryMs = DRAIN_RETRY_MS;
          break;
        }
        total += n;
        this.drainFailures = 0;
        if (this.backlog) await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } catch (err) {
      this.drainFailures++;
      retryMs = Math.min(this.o.sweepIntervalMs, DRAIN_RETRY_MS * 2 ** this.drainFailures);
      this.o.log.warn({ err, retryMs, code: 'OUTBOX_DRAIN_FAILED' }, 'outbox backlog drain failed; will retry');
    }
    if (total > 0) {
      this.drained += total;
      this.published += total;
      this.o.onPublished?.(total);
      this.o.log.info({ n: total }, 'outbox backlog drained to NATS');
    }
    return retryMs;
  }

  /** One chunk of the backlog in hand-off order; returns the events published. */
  private async drainBacklogChunk(): Promise<number | typeof BUSY> {
    const backlog = this.backlog!;
    let n = 0;
    let events = 0;
    while (n < backlog.length && n < SWEEP_BATCH && (n === 0 || events + backlog[n]!.events <= SWEEP_EVENTS))
      events += backlog[n++]!.events;
    const seqs = [...new Set(backlog.slice(0, n).map((e) => e.seq))];
    const sent =
      seqs.length === 0
        ? 0
        : await this.o.repo.sql.tx(async (q) => {
            if (!(await this.o.repo.tryLockOutbox(q))) return BUSY;
            const bySeq = new Map((await this.o.repo.lockOutboxSeqs(q, seqs)).map((r) => [r.seq, r]));
            // Rows no longer there were deleted after a proven flush, or swept by another replica.
            const rows = seqs.flatMap((s) => {
              const r = bySeq.get(s);
              return r ? [r] : [];
            });
            return this.publishLocked(q, rows);
          });
    if (sent === BUSY) return BUSY;
    backlog.splice(0, n);
    // Empty, and nothing handed over meanwhile (it would be in it): what is handed over from now on is newer.
    if (this.backlog === backlog && backlog.length === 0) this.leaveBacklog();
    return sent;
  }

  /** Rule 2 beyond MAX_BACKLOG: one chunk of the whole outbox in seq order. */
  private async drainOutboxChunk(): Promise<number | typeof BUSY> {
    this.handedOverflowed = false;
    const r = await this.sweepChunk(0, []);
    if (r === BUSY) return BUSY;
    // Nothing left, and nothing handed over since this chunk started reading (it would have been seen).
    if (r.rows === 0 && !this.handedOverflowed) this.leaveBacklog();
    return r.events;
  }

  /** Flushes NATS, then deletes what was handed over and published (rule 1). */
  cleanup(): Promise<void> {
    if (this.cleaning) return this.cleaning;
    this.cleaning = (async () => {
      while (this.pendingDelete.length > 0) {
        const rows = this.pendingDelete;
        const conn = this.pendingConn;
        this.pendingDelete = [];
        this.cleaningRows = rows;
        this.cleaningConn = conn;
        try {
          try {
            await this.flushWithin();
          } catch (err) {
            // Not proven: these rows, and those handed over while the flush waited (likely on the same broken
            // connection), are the backlog; nothing overtakes them.
            this.o.log.warn(
              { err, n: rows.length + this.pendingDelete.length, code: 'OUTBOX_FLUSH_FAILED' },
              'nats flush failed; outbox rows queued as a backlog',
            );
            this.enterBacklog('flush failed');
            return;
          }
          if (connectionOf(this.o.nc) !== conn) {
            // Answered on another connection than the one the rows went out on: they may never have arrived.
            this.o.log.warn(
              { n: rows.length, code: 'OUTBOX_CONNECTION_CHANGED' },
              'nats connection changed before the flush; outbox rows queued as a backlog',
            );
            this.enterBacklog('nats connection changed');
            return;
          }
          try {
            await this.o.repo.deleteOutbox(rows.map((r) => r.seq));
          } catch (err) {
            // NATS has them (in order); the sweep publishes them again later (duplicates).
            this.o.log.warn({ err, n: rows.length, code: 'OUTBOX_CLEANUP_FAILED' }, 'outbox cleanup failed');
          }
        } finally {
          this.cleaningRows = [];
          this.cleaningConn = NO_CONNECTION;
        }
      }
    })().finally(() => {
      this.cleaning = undefined;
    });
    return this.cleaning;
  }

  /** Rule 3: publishes and deletes rows older than `olderThanMs`; returns how many events went out. */
  sweep(olderThanMs: number): Promise<number> {
    if (this.sweeping) return this.sweeping;
    this.sweeping = this.exclusive(async () => {
      let total = 0;
      try {
        // A backlog goes first (rule 2): its drain sweeps.
        while (!this.backlog && !this.stopped) {
          // Rows handed over and not yet proven are in flight: publishing them again would only duplicate them.
          const inFlight = [...this.pendingDelete, ...this.cleaningRows].map((e) => e.seq);
          const r = await this.sweepChunk(olderThanMs, inFlight);
          if (r === BUSY || r.rows === 0) break;
          total += r.events;
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      } catch (err) {
        this.o.log.warn({ err, code: 'OUTBOX_SWEEP_FAILED' }, 'outbox sweep failed; will retry');
      }
      if (total > 0) {
        this.swept += total;
        this.published += total;
        this.o.onPublished?.(total);
        this.o.log.info({ n: total }, 'outbox rows swept to NATS');
      }
      return total;
    }).finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  /** One chunk of rows older than `olderThanMs` (rules 3 and 4). */
  private sweepChunk(
    olderThanMs: number,
    exclude: readonly string[],
  ): Promise<{ rows: number; events: number } | typeof BUSY> {
    return this.o.repo.sql.tx(async (q) => {
      if (!(await this.o.repo.tryLockOutbox(q))) return BUSY;
      const rows = await this.o.repo.lockOutbox(q, { olderThanMs, rows: SWEEP_BATCH, events: SWEEP_EVENTS, exclude });
      return { rows: rows.length, events: await this.publishLocked(q, inIdOrder(rows)) };
    });
  }

  /** Publishes locked rows in the order given, flushes, deletes them (rule 4); returns the events published. */
  private async publishLocked(q: Queryable, rows: readonly StoredOutboxRow[]): Promise<number> {
    if (rows.length === 0) return 0;
    const missing = rows.filter((r) => r.payload === null);
    const built = missing.length > 0 ? await this.o.rebuild(q, missing) : new Map<string, never[]>();
    let n = 0;
    for (const r of rows)
      n += this.send(r.payload !== null ? [{ subject: r.subject, payload: r.payload }] : (built.get(r.seq) ?? []));
    await this.flushWithin();
    await this.o.repo.deleteOutboxIn(
      q,
      rows.map((r) => r.seq),
    );
    return n;
  }

  /** A NATS flush that fails after FLUSH_TIMEOUT_MS instead of waiting for nats.js to give the connection up. */
  private flushWithin(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      this.o.nc.flush(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`nats flush not answered in ${FLUSH_TIMEOUT_MS} ms`)),
          FLUSH_TIMEOUT_MS,
        );
      }),
    ]).finally(() => clearTimeout(timer));
  }

  /** Runs sweeps and drains one at a time (rule 4). */
  private exclusive<T>(f: () => Promise<T>): Promise<T> {
    const run = this.turn.then(f);
    this.turn = run.catch(() => undefined);
    return run;
  }

  /** Final flush on shutdown: publish what is handed over, delete it, stop timers. A backlog is left for the next start. */
  async stop(): Promise<void> {
    this.flushQueued();
    this.stopped = true;
    for (const t of [this.sweepTimer, this.cleanupTimer, this.drainTimer]) if (t) clearTimeout(t);
    this.sweepTimer = this.cleanupTimer = this.drainTimer = undefined;
    await this.sweeping;
    await this.draining;
    await this.cleaning;
    if (!this.paused && !this.backlog) await this.cleanup();
    if (this.backlog)
      this.o.log.warn(
        { n: this.backlog.length, code: 'OUTBOX_BACKLOG_LEFT' },
        'outbox backlog left for the sweep of the next start',
      );
  }
}
