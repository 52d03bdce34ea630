/**
 * Presence: who is online on which door, and platform-wide guest-nick claims, in one NATS KV
 * bucket (`subjects(prefix).buckets.presence`) shared by every door and by identity.
 *
 * Rules this file enforces:
 * 1. A guest nick is claimed by an atomic KV `create` of `g.<base64url(fold(nick))>`: the first
 *    writer wins, across every door and instance. Entries expire with the bucket TTL
 *    (DEFAULT_PRESENCE_TTL_MS) unless renewed (every DEFAULT_PRESENCE_RENEW_MS); renew and release
 *    compare-and-set on the revision, so a session never refreshes or deletes someone else's claim.
 * 2. A guest nick never equals a registered (or reserved, or deleted-but-kept) username. The
 *    check goes through identity (`NameAuthority`, normally `identityNameAuthority(client)`),
 *    twice: before the claim and again after it. identity's Register takes the same key as a short
 *    "registration" marker before inserting the account and drops it after the commit, so either
 *    the guest's create fails (marker held), or the re-check sees the new account and the claim is
 *    given back. No interleaving leaves a guest holding an account name.
 * 3. Account sessions are registered without uniqueness under `s.<door>.<base64url(sessionId)>`.
 *
 * Values are JSON `PresenceEntry` objects; the KV key encodes only what is needed to be unique.
 */
import { foldName } from '@hubbub/runtime';
import type { Logger } from '@hubbub/runtime';
import { claim, openKv, release, renew } from '@hubbub/nats';
import type { KV, NatsConnection } from '@hubbub/nats';
import { subjects } from '@hubbub/proto';

/** Bucket max age: an entry not renewed within this time disappears. Every door uses the same. */
export const DEFAULT_PRESENCE_TTL_MS = 30_000;
/** How often a holder should renew (a third of the TTL). */
export const DEFAULT_PRESENCE_RENEW_MS = 10_000;
/** Longest folded nick (bytes of UTF-8) accepted as a key. */
export const MAX_NICK_BYTES = 64;

export const PresenceKind = { Guest: 'guest', Account: 'account', Registration: 'registration' } as const;
export type PresenceKind = (typeof PresenceKind)[keyof typeof PresenceKind];

/** The JSON value of one presence key. */
export interface PresenceEntry {
  readonly kind: PresenceKind;
  /** The service that published it: `irc-binary`, `ws-messenger`, `ssh-frontend`, `p2p-relay`, `identity`. */
  readonly door: string;
  readonly sessionId: string;
  /** The nick as shown (guests: exactly as sent; accounts: the canonical username). */
  readonly nick: string;
  /** fold(nick). */
  readonly folded: string;
  /** Account sessions only. */
  readonly userId?: string;
  /** Unix ms when the session started. */
  readonly since: number;
  /** Door-specific extra fields (ssh-frontend: node, where, accepts, ...). */
  readonly extra?: Readonly<Record<string, unknown>>;
}

/** A presence entry together with its KV key and the time it was last written. */
export interface PresenceRecord extends PresenceEntry {
  readonly key: string;
  /** Unix ms of the last write (claim or renew). */
  readonly updatedAt: number;
}

/** Answers whether a folded name belongs to identity (an account, a tombstone, or a reserved name). */
export interface NameAuthority {
  isAccountName(folded: string): Promise<boolean>;
}

/** A held key: renew it periodically, release it at the end. */
export interface Lease {
  readonly key: string;
  readonly entry: PresenceEntry;
  /** Current KV revision. */
  readonly revision: number;
  /** Refreshes the entry (optionally with new extra fields). False when the claim was lost (expired or taken over). */
  renew(extra?: Readonly<Record<string, unknown>>): Promise<boolean>;
  /** Deletes the entry if still ours. Idempotent; stops auto-renew. */
  release(): Promise<boolean>;
  /**
   * Renews every `intervalMs` (default DEFAULT_PRESENCE_RENEW_MS) until released; calls `onLost`
   * once if the claim is lost, or (with the last error) once the bucket TTL has passed since the last
   * write that went through, so the entry may be gone and the nick another's. The timers do not keep
   * the process alive.
   */
  startAutoRenew(onLost?: (err?: unknown) => void, intervalMs?: number): void;
}

export type GuestClaimResult =
  | { readonly ok: true; readonly lease: Lease }
  | { readonly ok: false; readonly reason: 'taken' | 'account' | 'invalid' };

export interface GuestClaimInfo {
  readonly displayNick: string;
  readonly door: string;
  readonly sessionId: string;
  readonly extra?: Readonly<Record<string, unknown>>;
}

export interface AccountSessionInfo {
  readonly door: string;
  readonly sessionId: string;
  readonly userId: string;
  readonly username: string;
  readonly extra?: Readonly<Record<string, unknown>>;
}

export interface PresenceOptions {
  readonly nc: NatsConnection;
  /** NATS_PREFIX; the bucket is `<prefix>_presence`. */
  readonly prefix: string;
  /** Needed for guest claims; identity itself passes its own database check. */
  readonly names?: NameAuthority;
  /** Bucket TTL; only tests should change it (all users of a bucket must agree). */
  readonly ttlMs?: number;
  readonly log?: Logger;
}

function b64url(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64url');
}

/** KV key of a guest nick claim (or registration marker) for an already folded nick. */
export function nickKey(folded: string): string {
  return 'g.' + (folded.length === 0 ? '' : b64url(folded));
}

/** KV key of an account session. */
export function sessionKey(door: string, sessionId: string): string {
  return `s.${b64url(door)}.${b64url(sessionId)}`;
}

const enc = new TextEncoder();

export class Presence {
  private constructor(
    private readonly kv: KV,
    private readonly names: NameAuthority | undefined,
    private readonly log: Logger | undefined,
    readonly ttlMs: number,
  ) {}

  /** Opens (creating if missing) the presence bucket. */
  static async open(o: PresenceOptions): Promise<Presence> {
    const ttlMs = o.ttlMs ?? DEFAULT_PRESENCE_TTL_MS;
    const kv = await openKv(o.nc, subjects(o.prefix).buckets.presence, ttlMs);
    return new Presence(kv, o.names, o.log, ttlMs);
  }

  /**
   * Claims a guest nick across every door. `nick` may be given folded or as sent; it is folded
   * here. 'account' = the name belongs to identity; 'taken' = a live session holds it;
   * 'invalid' = empty or too long to be a key.
   */
  async claimGuestNick(nick: string, info: GuestClaimInfo): Promise<GuestClaimResult> {
    const folded = foldName(nick);
    if (folded.length === 0 || enc.encode(folded).length > MAX_NICK_BYTES) return { ok: false, reason: 'invalid' };
    if (!this.names) throw new Error('Presence.claimGuestNick needs a NameAuthority (identityNameAuthority)');
    if (await this.names.isAccountName(folded)) return { ok: false, reason: 'account' };
    const entry: PresenceEntry = {
      kind: PresenceKind.Guest,
      door: info.door,
      sessionId: info.sessionId,
      nick: info.displayNick,
      folded,
      since: Date.now(),
      ...(info.extra ? { extra: info.extra } : {}),
    };
    const lease = await this.create(nickKey(folded), entry);
    if (!lease) return { ok: false, reason: 'taken' };
    // Rule 2: a registration may have committed between the first check and our create.
    let isAccount: boolean;
    try {
      isAccount = await this.names.isAccountName(folded);
    } catch (e) {
      await lease.release().catch(() => undefined);
      throw e;
    }
    if (isAccount) {
      await lease.release();
      return { ok: false, reason: 'account' };
    }
    return { ok: true, lease };
  }

  /**
   * identity only: holds `fold(name)` while an account with that name is being created, so no
   * guest can claim it in between. Returns undefined when a live guest holds the nick.
   */
  async reserveName(folded: string, sessionId: string): Promise<Lease | undefined> {
    const f = foldName(folded);
    return this.create(nickKey(f), {
      kind: PresenceKind.Registration,
      door: 'identity',
      sessionId,
      nick: f,
      folded: f,
      since: Date.now(),
    });
  }

  /** Registers an account session (no uniqueness: one account may have many sessions). */
  async enterSession(info: AccountSessionInfo): Promise<Lease> {
    const entry: PresenceEntry = {
      kind: PresenceKind.Account,
      door: info.door,
      sessionId: info.sessionId,
      nick: info.username,
      folded: foldName(info.username),
      userId: info.userId,
      since: Date.now(),
      ...(info.extra ? { extra: info.extra } : {}),
    };
    const key = sessionKey(info.door, info.sessionId);
    const sent = Date.now();
    const rev = await this.kv.put(key, JSON.stringify(entry));
    return this.lease(key, entry, rev, sent);
  }

  /** The live entry for a nick (guest claim or registration marker), if any. */
  async getNick(nick: string): Promise<PresenceRecord | undefined> {
    const key = nickKey(foldName(nick));
    return this.read(key);
  }

  /** Every live entry (guests and account sessions; registration markers excluded). */
  async list(): Promise<PresenceRecord[]> {
    const out: PresenceRecord[] = [];
    const keys: string[] = [];
    for await (const k of await this.kv.keys()) keys.push(k);
    const recs = await Promise.all(keys.map((k) => this.read(k)));
    for (const r of recs) if (r && r.kind !== PresenceKind.Registration) out.push(r);
    out.sort((a, b) => (a.folded < b.folded ? -1 : a.folded > b.folded ? 1 : a.door < b.door ? -1 : 1));
    return out;
  }

  /** Live entries grouped by door. */
  async listByDoor(): Promise<Map<string, PresenceRecord[]>> {
    const m = new Map<string, PresenceRecord[]>();
    for (const r of await this.list()) {
      const l = m.get(r.door) ?? [];
      l.push(r);
      m.set(r.door, l);
    }
    return m;
  }

  /**
   * Watches the bucket: `onPut` for every live entry (current ones first) and update, `onDelete`
   * for releases and expiries (by key). Returns a stop function.
   */
  async watch(onPut: (r: PresenceRecord) => void, onDelete: (key: string) => void): Promise<() => void> {
    const it = await this.kv.watch({ key: '>' });
    const { ttlMs, log } = this;
    // NATS drops an entry past the bucket's max age without a delete marker, so a watch never hears of an
    // expiry: the entries reported live are kept here (key -> last write, oldest write first) and reported
    // deleted once ttlMs has passed since their last write.
    const live = new Map<string, number>();
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const arm = (): void => {
      if (timer || stopped) return;
      const first = live.values().next();
      if (first.done) return;
      timer = setTimeout(sweep, Math.max(0, first.value + ttlMs - Date.now()) + 1);
      timer.unref();
    };
    const sweep = (): void => {
      timer = undefined;
      if (stopped) return;
      const now = Date.now();
      for (const [key, at] of live) {
        if (now - at <= ttlMs) break;
        live.delete(key);
        try {
          onDelete(key);
        } catch (err) {
          log?.warn({ err, key, code: 'PRESENCE_WATCH_CALLBACK_FAILED' }, 'presence watch callback failed');
        }
      }
      arm();
    };
    const stop = (): void => {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      live.clear();
    };
    void (async () => {
      for await (const e of it) {
        if (e.operation === 'DEL' || e.operation === 'PURGE') {
          live.delete(e.key);
          onDelete(e.key);
          continue;
        }
        const at = e.created.getTime();
        const r = parseRecord(e.key, e.string(), at);
        if (!r || r.kind === PresenceKind.Registration) continue;
        // Already past its age (the server has not swept it yet): gone, as for read().
        if (Date.now() - at > ttlMs) {
          if (live.delete(e.key)) onDelete(e.key);
          continue;
        }
        live.delete(e.key);
        live.set(e.key, at);
        onPut(r);
        arm();
      }
    })()
      .catch((err: unknown) => log?.warn({ err, code: 'PRESENCE_WATCH_FAILED' }, 'presence watch ended'))
      .finally(stop);
    return () => {
      stop();
      it.stop();
    };
  }

  private async read(key: string): Promise<PresenceRecord | undefined> {
    const e = await this.kv.get(key);
    if (!e || e.operation !== 'PUT') return undefined;
    // Entries past the TTL may linger until the server's expiry sweep; treat them as gone.
    if (Date.now() - e.created.getTime() > this.ttlMs) return undefined;
    return parseRecord(key, e.string(), e.created.getTime());
  }

  private async create(key: string, entry: PresenceEntry): Promise<Lease | undefined> {
    let sent = Date.now();
    const rev = await claim(this.kv, key, JSON.stringify(entry));
    if (rev === undefined) {
      // A lingering expired entry (before the server's sweep) must not block a claim forever.
      const cur = await this.kv.get(key);
      if (cur && cur.operation === 'PUT' && Date.now() - cur.created.getTime() > this.ttlMs) {
        sent = Date.now();
        const taken = await renew(this.kv, key, JSON.stringify(entry), cur.revision);
        return taken === undefined ? undefined : this.lease(key, entry, taken, sent);
      }
      return undefined;
    }
    return this.lease(key, entry, rev, sent);
  }

  /** `writtenAt`: local time just before the write of `rev0` was sent (the entry lives ttlMs from later). */
  private lease(key: string, entry0: PresenceEntry, rev0: number, writtenAt0: number): Lease {
    let rev = rev0;
    let entry = entry0;
    let released = false;
    let timer: NodeJS.Timeout | undefined;
    let lapse: NodeJS.Timeout | undefined;
    // When the last write that went through was sent: the entry can be gone (and the nick another's) from
    // ttlMs after it, not earlier.
    let writtenAt = writtenAt0;
    // Renewals run one after another, each comparing and setting on the revision the previous one left (two at
    // once would race on one revision, and the loser would report a claim we hold as lost); release waits for
    // all of them, so it deletes the current revision.
    let queue: Promise<unknown> = Promise.resolve();
    const { kv, log, ttlMs } = this;
    const stopAuto = (): void => {
      if (timer) clearInterval(timer);
      if (lapse) clearTimeout(lapse);
      timer = undefined;
      lapse = undefined;
    };
    const lease: Lease = {
      key,
      get entry() {
        return entry;
      },
      get revision() {
        return rev;
      },
      renew(extra) {
        const run = async (): Promise<boolean> => {
          if (released) return false;
          if (extra) entry = { ...entry, extra };
          const sent = Date.now();
          const r = await renew(kv, key, JSON.stringify(entry), rev);
          if (r === undefined) return false;
          rev = r;
          writtenAt = sent;
          return true;
        };
        const p = queue.then(run);
        queue = p.catch(() => undefined);
        return p;
      },
      async release() {
        stopAuto();
        if (released) return false;
        released = true;
        await queue;
        return release(kv, key, rev);
      },
      startAutoRenew(onLost, intervalMs = DEFAULT_PRESENCE_RENEW_MS) {
        if (timer || released) return;
        let lastErr: unknown;
        const lost = (err?: unknown): void => {
          if (!timer) return; // released, or already reported
          stopAuto();
          onLost?.(err);
        };
        // Renewals may fail or hang (NATS unreachable): the holder is told as soon as the entry can have expired,
        // ttlMs after the last write that went through, even while a renewal still waits for its answer.
        const armLapse = (): void => {
          lapse = setTimeout(
            () => {
              lapse = undefined;
              if (Date.now() < writtenAt + ttlMs) armLapse();
              else lost(lastErr ?? new Error(`presence entry ${key} not renewed within ${ttlMs} ms`));
            },
            Math.max(0, writtenAt + ttlMs - Date.now()),
          );
          lapse.unref();
        };
        // One renewal at a time: while one waits for its answer, ticks do not queue more behind it.
        let pending = false;
        timer = setInterval(() => {
          if (pending) return;
          pending = true;
          lease
            .renew()
            .then(
              (ok) => {
                if (ok) lastErr = undefined;
                else if (!released) lost();
              },
              (err: unknown) => {
                lastErr = err;
                log?.warn({ err, key, code: 'PRESENCE_RENEW_FAILED' }, 'presence renew failed');
              },
            )
            .finally(() => {
              pending = false;
            });
        }, intervalMs);
        timer.unref();
        armLapse();
      },
    };
    return lease;
  }
}

function parseRecord(key: string, json: string, updatedAt: number): PresenceRecord | undefined {
  try {
    const v = JSON.parse(json) as PresenceEntry;
    if (typeof v !== 'object' || v === null || typeof v.kind !== 'string') return undefined;
    return { ...v, key, updatedAt };
  } catch {
    return undefined;
  }
}
