/**
 * In-process LRU of verified session tokens, keyed by the token's SHA-256 (never the token).
 * An entry lives until the earliest of: the token's expiry, `maxAgeMs` after it was cached (a
 * bound on staleness if an invalidation were missed), eviction by size, or an invalidation
 * (revocation, ban, delete, role or profile change) by session id or user id. Invalidations come
 * from this instance's own writes and from NATS events of other instances.
 */
export interface CachedToken {
  readonly userId: string;
  readonly username: string;
  readonly displayName: string;
  readonly role: number;
  readonly sessionId: string;
  readonly expiresAtMs: number;
  readonly scopes: readonly string[];
  /**
   * The encoded VerifyTokenResponse for one `ttlSeconds` value (the only field that changes, once a second), so a
   * cached token is answered without building or encoding a message (identity's VerifyToken fast path).
   */
  reply?: { readonly ttlSeconds: number; readonly bytes: Uint8Array };
}

interface Slot {
  readonly v: CachedToken;
  readonly validUntilMs: number;
}

export class TokenCache {
  private readonly map = new Map<string, Slot>();
  private readonly byUser = new Map<string, Set<string>>();
  private readonly bySession = new Map<string, string>();
  /** Bumped by every invalidation (see `generation`). */
  private gen = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxAgeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.map.size;
  }

  /**
   * Taken before a database read that will fill the cache, and passed to `set`: a verification read before an
   * invalidation (a revocation, ban, delete committing while the read was in flight) must not be cached after it,
   * or a revoked token would verify until `maxAgeMs`. Any invalidation refuses such a write; the next call reads again.
   */
  get generation(): number {
    return this.gen;
  }

  get(key: string): CachedToken | undefined {
    const s = this.map.get(key);
    if (!s) return undefined;
    if (this.now() >= s.validUntilMs) {
      this.delete(key);
      return undefined;
    }
    // LRU: move to the newest position.
    this.map.delete(key);
    this.map.set(key, s);
    return s.v;
  }

  set(key: string, v: CachedToken, generation?: number): void {
    if (this.maxEntries <= 0) return;
    if (generation !== undefined && generation !== this.gen) return;
    this.delete(key);
    this.map.set(key, { v, validUntilMs: Math.min(v.expiresAtMs, this.now() + this.maxAgeMs) });
    let u = this.byUser.get(v.userId);
    if (!u) this.byUser.set(v.userId, (u = new Set()));
    u.add(key);
    this.bySession.set(v.sessionId, key);
    while (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next().value;
      if (oldest === undefined) break;
      this.delete(oldest);
    }
  }

  delete(key: string): void {
    const s = this.map.get(key);
    if (!s) return;
    this.map.delete(key);
    const u = this.byUser.get(s.v.userId);
    u?.delete(key);
    if (u && u.size === 0) this.byUser.delete(s.v.userId);
    if (this.bySession.get(s.v.sessionId) === key) this.bySession.delete(s.v.sessionId);
  }

  invalidateSession(sessionId: string): void {
    this.gen++;
    const k = this.bySession.get(sessionId);
    if (k !== undefined) this.delete(k);
  }

  invalidateUser(userId: string): void {
    this.gen++;
    const u = this.byUser.get(userId);
    if (!u) return;
    for (const k of [...u]) this.delete(k);
  }

  clear(): void {
    this.gen++;
    this.map.clear();
    this.byUser.clear();
    this.bySession.clear();
  }
}
