/**
 * The read horizon across message-store replicas (docs/adr/0007).
 *
 * A catch-up "after the last id I saw" must not return an id while a lower one can still commit: the reader would
 * continue past the lower one for good. Each replica knows its own writes in flight; this class asks the others.
 *
 * Rules:
 * 1. The peers are the holders of the worker-id leases (the lease bucket's values), learnt from a watch of that
 *    bucket; an entry not renewed within the lease TTL is no longer a peer. Each replica answers requests on
 *    `<prefix>.rpc.messages.horizon.<holder>` with its horizon: the lowest id and the earliest change time that may
 *    still become visible there (`respond`).
 * 2. A reader's horizon is the minimum of the answers of every peer (of the ids and of the times), asked at once.
 *    A peer that cannot be asked (no subscriber: it stopped without releasing its lease, or lost NATS while it still
 *    serves gRPC; no answer within `timeoutMs`, logged `MSG_HORIZON_PEER_TIMEOUT`; and every known peer while this
 *    replica's NATS connection or lease watch is down) bounds only the time: its changes are complete up to
 *    `fallbackLagMs` ago (best effort: statement_timeout bounds a batch's statement, not every wait around it), and
 *    its ids are not waited for.
 * 3. Rounds are coalesced like group commit: at most one is in flight; callers arriving meanwhile share the next
 *    one, which starts when the current one ends. A round starts after its callers arrived, so every answer
 *    reflects writes acknowledged before the call.
 */
import { isNoResponders, isTimeout, openKv, watchConnection } from '@hubbub/nats';
import type { ConnectionWatch, KV, NatsConnection } from '@hubbub/nats';
import { subjects } from '@hubbub/proto';
import { LogGate } from '@hubbub/runtime';
import type { Logger } from '@hubbub/runtime';
import type { Subscription } from '@nats-io/nats-core';
import { lowerHorizon } from './message-service';
import type { Horizon } from './message-service';

/** Above every snowflake (bit 63 is never set). */
const NO_ID_BOUND = 1n << 63n;

/** A horizon answer: "<id> <time ms>" in decimal digits, at most 40 bytes. */
const MAX_ANSWER_BYTES = 40;
const ANSWER = /^([0-9]{1,19}) ([0-9]{1,16})$/;

export interface PeerHorizonOptions {
  readonly nc: NatsConnection;
  readonly prefix: string;
  readonly bucket: string;
  readonly leaseTtlMs: number;
  /** This replica's lease holder value (its own requests subject). */
  readonly self: string;
  readonly timeoutMs: number;
  /** How far back the horizon of a peer that cannot be asked lies (twice the statement timeout). */
  readonly fallbackLagMs: number;
  readonly log: Logger;
  /** This replica's answer to a peer (the service's horizon after its writes in flight settle, bounded). */
  readonly respond: () => Promise<Horizon>;
  readonly onRound?: (peers: number, ms: number) => void;
  readonly onPeerFailure?: (reason: 'timeout' | 'error' | 'bad_answer' | 'disconnected' | 'no_responders') => void;
}

interface Peer {
  readonly holder: string;
  readonly at: number;
}

export class PeerHorizon {
  private readonly peers = new Map<string, Peer>(); // lease key -> holder
  private kv: KV | undefined;
  private sub: Subscription | undefined;
  private stopWatch: (() => void) | undefined;
  private running: Promise<Horizon | undefined> | undefined;
  /** False while the lease watch is down (known peers then count as live: no renewals are heard). */
  private watching = false;
  private queued: Promise<Horizon | undefined> | undefined;
  private stopped = false;
  private conn: ConnectionWatch | undefined;
  /** Rounds run and peers asked since start. */
  readonly stats = { rounds: 0, asks: 0 };
  private readonly timeoutGate = new LogGate(60_000);
  private readonly enc = new TextEncoder();
  private readonly dec = new TextDecoder();
  private readonly subj: ReturnType<typeof subjects>;

  constructor(private readonly o: PeerHorizonOptions) {
    this.subj = subjects(o.prefix);
  }

  /** Number of live peers (this replica not counted). */
  get size(): number {
    return this.peersToAsk().length;
  }

  /**
   * Answers peers' requests and loads the peers. Call after this replica's lease is claimed and before it serves
   * reads or posts: the returned promise resolves once the watch has delivered the bucket's current entries.
   */
  async start(): Promise<void> {
    const { nc, log } = this.o;
    this.conn = watchConnection(nc);
    this.sub = nc.subscribe(this.subj.rpcHorizon(this.o.self), {
      callback: (err, m) => {
        if (err) {
          log.warn({ err, code: 'MSG_HORIZON_SUBSCRIPTION_FAILED' }, 'horizon subscription failed');
          return;
        }
        // The answer may come after the connection closed (respond throws then): never an unhandled rejection.
        this.o
          .respond()
          .then((h) => void m.respond(this.enc.encode(`${h.id} ${h.timeMs}`)))
          .catch((e: unknown) => log.warn({ err: e, code: 'MSG_HORIZON_ANSWER_FAILED' }, 'horizon answer failed'));
      },
    });
    this.kv = await openKv(nc, this.o.bucket, this.o.leaseTtlMs);
    await this.watch();
  }

  /** Resolves once the current entries are in; afterwards the watch is kept up, again and again, until stop(). */
  private async watch(): Promise<void> {
    let loaded!: () => void;
    const initial = new Promise<void>((r) => (loaded = r));
    let first = true;
    let backoffMs = 500;
    const once = async (): Promise<void> => {
      const it = await this.kv!.watch({ key: '>' });
      this.stopWatch = () => it.stop();
      this.watching = true;
      backoffMs = 500;
      for await (const e of it) {
        if (e.operation === 'PUT') this.peers.set(e.key, { holder: e.string(), at: Date.now() });
        else this.peers.delete(e.key);
        // The initial values end with delta 0 (the newest); the lease of this replica is among them.
        if (e.isUpdate || e.delta === 0) loaded();
      }
    };
    void (async () => {
      while (!this.stopped) {
        try {
          await once();
        } catch (err) {
          if (first) throw err;
          this.o.log.warn({ err, code: 'MSG_HORIZON_WATCH_FAILED' }, 'worker lease watch failed; retrying');
        }
        this.watching = false;
        loaded();
        first = false;
        if (this.stopped) return;
        await new Promise((r) => setTimeout(r, backoffMs).unref());
        backoffMs = Math.min(backoffMs * 2, 10_000);
      }
    })().catch((err: unknown) => {
      this.o.log.warn({ err, code: 'MSG_HORIZON_WATCH_FAILED' }, 'worker lease watch failed');
      loaded();
    });
    await initial;
    if (!this.watching && first) throw new Error('worker lease watch did not start');
  }

  /**
   * The other holders: those renewed within the lease TTL, or, while this replica's NATS connection is down, every
   * one known (the watch hears no renewals then, and the peers may still commit).
   */
  private peersToAsk(): string[] {
    const now = Date.now();
    const all = !this.watching || (this.conn !== undefined && !this.conn.up);
    const out: string[] = [];
    for (const p of this.peers.values())
      if (p.holder !== this.o.self && (all || now - p.at <= this.o.leaseTtlMs) && !out.includes(p.holder))
        out.push(p.holder);
    return out;
  }

  /**
   * The horizon of a peer that cannot be asked (rule 2): its changes before `fallbackLagMs` ago are complete. Its ids
   * are not waited for (NO_ID_BOUND): a catch-up returns what is committed rather than wait for nobody.
   */
  private fallback(): Horizon {
    return { id: NO_ID_BOUND, timeMs: Date.now() - this.o.fallbackLagMs };
  }

  private failed(reason: 'timeout' | 'error' | 'disconnected', peer: string, err?: unknown): Horizon {
    this.o.onPeerFailure?.(reason);
    const leftOut = this.timeoutGate.due();
    if (leftOut !== undefined) {
      const code =
        reason === 'timeout'
          ? 'MSG_HORIZON_PEER_TIMEOUT'
          : reason === 'disconnected'
            ? 'MSG_HORIZON_DISCONNECTED'
            : 'MSG_HORIZON_PEER_FAILED';
      this.o.log.warn(
        { err, peer, leftOut, lagMs: this.o.fallbackLagMs, code },
        'a replica could not be asked for the read horizon; catch-ups stop that far in the past meanwhile',
      );
    }
    return this.fallback();
  }

  /** The lowest id and earliest change time that may still become visible on any peer; undefined without peers. */
  horizon(): Promise<Horizon | undefined> {
    if (this.peersToAsk().length === 0) return Promise.resolve(undefined);
    if (!this.running) return this.begin();
    return (this.queued ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.begin();
      }));
  }

  private begin(): Promise<Horizon | undefined> {
    // round() does not reject; if it ever did, the callers get the error and the next round starts afresh.
    const p = this.round();
    this.running = p;
    const clear = (): void => {
      if (this.running === p) this.running = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  /** Never rejects. */
  private async round(): Promise<Horizon | undefined> {
    const peers = this.peersToAsk();
    if (peers.length === 0) return undefined;
    if (this.conn !== undefined && !this.conn.up) return this.failed('disconnected', peers.join(','));
    const t0 = performance.now();
    this.stats.rounds++;
    this.stats.asks += peers.length;
    const answers = await Promise.all(peers.map((h) => this.ask(h)));
    this.o.onRound?.(peers.length, performance.now() - t0);
    let min: Horizon | undefined;
    for (const a of answers) if (a !== undefined) min = min === undefined ? a : lowerHorizon(min, a);
    return min;
  }

  private async ask(holder: string): Promise<Horizon | undefined> {
    const { nc, log } = this.o;
    try {
      const m = await nc.request(this.subj.rpcHorizon(holder), undefined, { timeout: this.o.timeoutMs });
      const a = ANSWER.exec(m.data.length <= MAX_ANSWER_BYTES ? this.dec.decode(m.data) : '');
      if (!a) {
        this.o.onPeerFailure?.('bad_answer');
        log.warn({ peer: holder, bytes: m.data.length, code: 'MSG_HORIZON_BAD_ANSWER' }, 'bad horizon answer');
        return undefined;
      }
      return { id: BigInt(a[1]!), timeMs: Number(a[2]) };
    } catch (e) {
      // Rule 2: no subscriber. Either it stopped without releasing its lease (the entry expires with the TTL) or it
      // lost NATS and still serves gRPC; its changes may still commit, so the time bound applies either way.
      if (isNoResponders(e)) {
        this.o.onPeerFailure?.('no_responders');
        return this.fallback();
      }
      return this.failed(isTimeout(e) ? 'timeout' : 'error', holder, e);
    }
  }

  stop(): void {
    this.stopped = true;
    this.conn?.stop();
    this.stopWatch?.();
    this.sub?.unsubscribe();
  }
}
