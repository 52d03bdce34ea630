/**
 * Positive token validations (spec §3.3): kept at most `ttlMs` and never beyond the token's expiry;
 * dropped at once when identity publishes a revocation for the session or the user.
 */
import type { TokenInfo } from './ports';

interface Entry {
  readonly info: TokenInfo;
  readonly until: number;
}

export class TokenCache {
  private readonly byToken = new Map<string, Entry>();
  private readonly byUser = new Map<string, Set<string>>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 100_000,
  ) {}

  get(token: string, userId: string, nowMs: number): TokenInfo | undefined {
    const e = this.byToken.get(token);
    if (!e) return undefined;
    if (e.until <= nowMs || e.info.userId !== userId) {
      if (e.until <= nowMs) this.delete(token);
      return undefined;
    }
    return e.info;
  }

  put(token: string, info: TokenInfo, nowMs: number): void {
    if (this.ttlMs <= 0) return;
    if (this.byToken.size >= this.maxEntries) {
      const oldest = this.byToken.keys().next();
      if (!oldest.done) this.delete(oldest.value);
    }
    this.byToken.set(token, { info, until: Math.min(nowMs + this.ttlMs, info.expiresAtMs) });
    let s = this.byUser.get(info.userId);
    if (!s) this.byUser.set(info.userId, (s = new Set()));
    s.add(token);
  }

  /** Drops the user's cached sessions (all of them when `sessionIds` is empty or `all`). */
  revoke(userId: string, sessionIds: readonly string[], all: boolean): void {
    const tokens = this.byUser.get(userId);
    if (!tokens) return;
    const ids = new Set(sessionIds);
    for (const t of [...tokens]) {
      const e = this.byToken.get(t);
      if (all || ids.size === 0 || (e && ids.has(e.info.sessionId))) this.delete(t);
    }
  }

  get size(): number {
    return this.byToken.size;
  }

  private delete(token: string): void {
    const e = this.byToken.get(token);
    this.byToken.delete(token);
    if (!e) return;
    const s = this.byUser.get(e.info.userId);
    s?.delete(token);
    if (s && s.size === 0) this.byUser.delete(e.info.userId);
  }
}
