/**
 * Clients that only watch `general` and record every message id they were given, reconnecting and
 * catching up the way each protocol allows when their connection is lost.
 */
import { DumDumClient } from '../clients/dumdum';
import { MoreliaClient } from '../clients/morelia';

/** The reconnect loop and bookkeeping both observers share; `connect` is the protocol's own. */
abstract class Observer<C extends { readonly closed: boolean; close(): Promise<void> }> {
  readonly seen = new Set<string>();
  readonly duplicates: string[] = [];
  protected client: C | undefined;
  private running = true;
  private loop: Promise<void> | undefined;

  /** Connects (and, when `catchUp`, catches up on what the lost connection missed). */
  protected abstract connect(catchUp: boolean): Promise<void>;

  async start(): Promise<void> {
    await this.connect(false);
    this.loop = this.watch();
  }

  private async watch(): Promise<void> {
    while (this.running) {
      if (this.client?.closed) {
        try {
          await this.connect(true);
        } catch {
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.client?.close();
  }
}

export class DumDumObserver extends Observer<DumDumClient> {
  /** What the observer did (reconnects, catch-up pages), for failure messages. */
  readonly journal: string[] = [];
  // Catch-ups after a reconnect cover at least everything created since the observer started, even
  // when nothing was seen before the connection was lost.
  private maxId = BigInt(Date.now() - 1_000) << 19n;

  constructor(
    private readonly port: number,
    private readonly nick: string,
  ) {
    super();
  }

  private record(id: bigint, live: boolean): void {
    const k = id.toString();
    if (this.seen.has(k)) {
      if (live) this.duplicates.push(k);
      return;
    }
    this.seen.add(k);
    if (id > this.maxId) this.maxId = id;
  }

  private connects = 0;

  protected async connect(catchUp: boolean): Promise<void> {
    // The catch-up starts at the last id seen before this connection: live messages on the new
    // connection arrive before the catch-up is read and must not move its starting point.
    const from = this.maxId;
    // After a door crash the old nick is held until its presence lease expires: use a fresh one.
    const nick = this.connects++ === 0 ? this.nick : `${this.nick}_${this.connects}`;
    const c = await DumDumClient.connect(this.port, nick);
    this.journal.push(`${new Date().toISOString()} connected as ${nick}, catch-up from ${from}`);
    c.onMessage = (m) => this.record(m.id, true);
    // Broadcasts that arrived together with the ACK were queued before onMessage was attached.
    for (const m of c.received) this.record(m.id, true);
    this.client = c;
    if (catchUp && from > 0n) {
      // LIST_MESSAGES(after = last seen) pages forward through what was missed, from its own cursor:
      // live messages arriving meanwhile raise maxId past pages not read yet.
      let cursor = from;
      for (;;) {
        const page = await c.listMessages('general', 0n, cursor);
        this.journal.push(
          `${new Date().toISOString()} LIST after ${cursor}: ${page.length} (${page[0]?.id ?? '-'}..${page[page.length - 1]?.id ?? '-'})`,
        );
        for (const m of page) {
          this.record(m.id, false);
          if (m.id > cursor) cursor = m.id;
        }
        if (page.length < 100) break;
      }
    }
  }
}

export class MoreliaObserver extends Observer<MoreliaClient> {
  private lastTime = 0;

  constructor(
    private readonly port: number,
    private readonly login: string,
    private readonly password: string,
    private readonly flow: string,
  ) {
    super();
  }

  protected async connect(): Promise<void> {
    // Catch up from the last second seen before this connection (pushes on the new one may raise it).
    const from = this.lastTime;
    const c = await MoreliaClient.connect(this.port);
    await c.login(this.login, this.password);
    c.onPush = (m) => {
      if (m.from_flow !== this.flow || m.edited_status) return;
      if (this.seen.has(m.uuid)) this.duplicates.push(m.uuid);
      else this.seen.add(m.uuid);
      if (m.time !== null && m.time > this.lastTime) this.lastTime = m.time;
    };
    const sub = await c.subscribe();
    if (sub.errors.code !== 200) throw new Error(`subscribe: ${sub.errors.code}`);
    this.client = c;
    if (from > 0) {
      // Catch up from the last known second with get_update (inclusive bound; dedupe by uuid).
      const r = await c.getUpdate(from);
      for (const m of r.data?.message ?? []) if (m.from_flow === this.flow) this.seen.add(m.uuid);
    }
  }
}
