/**
 * The failed-login ledger (table `login_failures`): the throttles' counters shared by every identity instance and
 * kept across restarts. One row per throttle key (`<kind>:<key>`); times are epoch milliseconds of the caller's clock.
 * A failure is counted atomically in SQL with the same window and lock rules as Throttle, so instances failing the
 * same key at once both count.
 */
import type { Knex } from '@hubbub/db';
import type { FailureState, ThrottleSettings } from '../app/throttle';

interface Row {
  key: string;
  failures: number;
  first_fail_at: string | number;
  last_fail_at: string | number;
  locked_until: string | number;
}

const state = (r: Row): FailureState => ({
  failures: Number(r.failures),
  firstFailAt: Number(r.first_fail_at),
  lastFailAt: Number(r.last_fail_at),
  lockedUntil: Number(r.locked_until),
});

export class LoginFailureLedger {
  constructor(private readonly knex: Knex) {}

  /** The stored state of each key that has a row. */
  async read(keys: readonly string[]): Promise<Map<string, FailureState>> {
    const out = new Map<string, FailureState>();
    if (keys.length === 0) return out;
    const rows = (await this.knex('login_failures').whereIn('key', [...new Set(keys)])) as Row[];
    for (const r of rows) out.set(r.key, state(r));
    return out;
  }

  /** Counts one failure of `key` at `at`; returns the state after it. */
  async fail(key: string, at: number, s: ThrottleSettings): Promise<FailureState> {
    // `fresh`: the row's window is over (or it holds no failure), so this failure starts a new one.
    const fresh = `(f.failures = 0 OR EXCLUDED.last_fail_at - f.first_fail_at > ?::bigint)`;
    const res = await this.knex.raw<{ rows: Row[] }>(
      `INSERT INTO login_failures AS f (key, failures, first_fail_at, last_fail_at, locked_until)
       VALUES (?, 1, ?::bigint, ?::bigint, CASE WHEN 1 >= ?::integer THEN ?::bigint ELSE 0::bigint END)
       ON CONFLICT (key) DO UPDATE SET
         failures = CASE WHEN ${fresh} THEN 1 ELSE f.failures + 1 END,
         first_fail_at = CASE WHEN ${fresh} THEN EXCLUDED.last_fail_at ELSE f.first_fail_at END,
         last_fail_at = EXCLUDED.last_fail_at,
         locked_until = CASE WHEN (CASE WHEN ${fresh} THEN 1 ELSE f.failures + 1 END) >= ?::integer
           THEN EXCLUDED.last_fail_at + ?::bigint ELSE f.locked_until END
       RETURNING key, failures, first_fail_at, last_fail_at, locked_until`,
      [key, at, at, s.lockFailures, at + s.lockMs, s.windowMs, s.windowMs, s.windowMs, s.lockFailures, s.lockMs],
    );
    return state(res.rows[0]!);
  }

  /**
   * A fixed-window event count in the same table (`failures` = events, `first_fail_at` = the window's start): counts
   * one event of `key` at `at` unless `max` are already counted in the window. Returns 0 when counted, else the ms
   * until the window ends. Registrations per address use it, so every instance shares one limit.
   */
  async take(key: string, at: number, max: number, windowMs: number): Promise<number> {
    const fresh = `(EXCLUDED.last_fail_at - f.first_fail_at >= ?::bigint)`;
    const res = await this.knex.raw<{ rows: Row[] }>(
      `INSERT INTO login_failures AS f (key, failures, first_fail_at, last_fail_at, locked_until)
       VALUES (?, 1, ?::bigint, ?::bigint, 0)
       ON CONFLICT (key) DO UPDATE SET
         failures = CASE WHEN ${fresh} THEN 1 ELSE LEAST(f.failures + 1, ?::integer + 1) END,
         first_fail_at = CASE WHEN ${fresh} THEN EXCLUDED.last_fail_at ELSE f.first_fail_at END,
         last_fail_at = EXCLUDED.last_fail_at
       RETURNING key, failures, first_fail_at, last_fail_at, locked_until`,
      [key, at, at, windowMs, max, windowMs],
    );
    const r = state(res.rows[0]!);
    return r.failures <= max ? 0 : Math.max(1, r.firstFailAt + windowMs - at);
  }

  /** Forgets `key` and every key that starts with `prefix` (when given); returns how many rows went. */
  async clearAll(key: string, prefix?: string): Promise<number> {
    const q = this.knex('login_failures').where({ key });
    if (prefix !== undefined) q.orWhere('key', 'like', `${prefix.replace(/[\\%_]/g, (c) => '\\' + c)}%`);
    return ((await q.delete().returning('key')) as unknown[]).length;
  }

  /** Forgets `key` (a success, a password reset). */
  async clear(key: string): Promise<void> {
    await this.knex('login_failures').where({ key }).delete();
  }

  /** Deletes rows whose window ended before `at - windowMs` and that hold no lock at `at`; returns how many. */
  async prune(at: number, windowMs: number): Promise<number> {
    const rows = await this.knex('login_failures')
      .where('last_fail_at', '<', at - windowMs)
      .andWhere('locked_until', '<=', at)
      .delete()
      .returning('key');
    return (rows as unknown[]).length;
  }
}
