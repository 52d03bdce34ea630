/**
 * identity's application logic: one method per RPC of hubbub.identity.v1, against knex, an event
 * sink and (optionally) the presence name reservation.
 *
 * Rules this file enforces:
 * 1. No hash, salt or token leaves a method, except a new token or app password in the response
 *    that creates it.
 * 2. Every credential failure is UNAUTHENTICATED / INVALID_CREDENTIALS with the same message, and an
 *    unknown account costs the same scrypt work as a wrong password (a dummy hash).
 * 3. Password, app-password and delete/publish secret checks pass the per-account and per-address
 *    throttles first; refused attempts never reach the KDF.
 * 4. Every write that can make a cached token verification wrong (revoke, ban, delete, role or
 *    name change, refresh) invalidates the cache before it returns, and publishes an event other
 *    instances use to do the same. Events can be lost (NATS down): a cached entry past its expiry is
 *    read again from the database, never grounds to refuse, and no entry outlives the cache's maximum age.
 * 5. All timestamps come from `now()` (millisecond precision), so paging cursors are exact.
 */
import { randomBytes, createHash, X509Certificate } from 'node:crypto';
import { AppError, Code, errors } from '@hubbub/errors';
import type { Knex } from '@hubbub/db';
import { identityV1 } from '@hubbub/proto';
import { LogGate, foldName } from '@hubbub/runtime';
import type { Logger } from '@hubbub/runtime';
import { addressThrottleKey, cidrMatcher, normalizeAddress, parseCidr } from './addresses';
import { normalizeE2EFingerprint, parseBundle } from './e2e-bundle';
import { hashPassword, needsRehash, verifyPassword } from './passwords';
import type { ScryptParams } from './passwords';
import {
  hashToken,
  tokenHashBase64,
  isAppPasswordScope,
  isTokenShaped,
  newAppPassword,
  newSessionToken,
  normalizeAppPassword,
  scopeAllows,
} from './secrets';
import { normalizeSshFingerprint, parseSshKeyBlob, parseSshKeyLine } from './ssh-keys';
import { RateLimiter, Throttle } from './throttle';
import type { FailureState, ThrottleSettings } from './throttle';
import { LoginFailureLedger } from '../store/login-failures';
import { TokenCache } from './token-cache';
import type { CachedToken } from './token-cache';
import {
  FOLDED_USERNAME_PATTERN,
  MAX_AVATAR_LENGTH,
  MAX_BIO_LENGTH,
  MAX_DISPLAY_NAME_LENGTH,
  MAX_SECRET_BYTES,
  checkPassword,
  checkUsername,
  isReservedName,
  isSafeLine,
  isSafeText,
  isValidEmail,
} from './usernames';
import {
  ROLE_TO_DB,
  idStr,
  isBanActive,
  textArray,
  toAddressBan,
  toAppPassword,
  toCert,
  toE2EKey,
  toPrivate,
  toSshKey,
  toUser,
  uniqueViolation,
} from '../store/rows';
import type { AddressBanRow, AppPasswordRow, CertRow, E2EKeyRow, SshKeyRow, UserRow } from '../store/rows';

const { Role, UserEventType, UsernameStatus, CredentialKind } = identityV1;

/** Where events go (NATS in production, an array in unit tests). */
export interface EventSink {
  userEvent(ev: identityV1.UserEvent): void;
  sessionsRevoked(ev: identityV1.SessionRevokedEvent): void;
  sessionRefreshed(ev: identityV1.SessionRefreshedEvent): void;
}

/** Holds a folded name in presence while an account with it is created (see @hubbub/presence). */
export interface NameReserver {
  /** Undefined when a live guest (or another registration) holds the name; else a release function. */
  reserve(
    folded: string,
  ): Promise<{ release(): Promise<unknown>; heldBy?: never } | { heldBy: 'guest' | 'registration' }>;
  /** Who holds the name in presence right now (a live guest, a registration in progress), without taking it. */
  holder(folded: string): Promise<'guest' | 'registration' | undefined>;
}

export interface IdentitySettings {
  readonly sessionTtlS: number;
  readonly maxSessionTtlS: number;
  readonly kdf: ScryptParams;
  readonly appPasswordKdf: ScryptParams;
  readonly accountThrottle: ThrottleSettings;
  readonly addressThrottle: ThrottleSettings;
  readonly registrationsPerHour: number;
  readonly tokenCacheSize: number;
  readonly tokenCacheMs: number;
}

export const INVALID_CREDENTIALS_TEXT = 'Invalid username or password';
export const NAME_IN_USE_BY_GUEST_TEXT = 'That name is in use by a guest right now';
export const TOO_MANY_ATTEMPTS_TEXT = 'Too many attempts, try again later';
export const MAX_SSH_KEYS = 20;
export const MAX_APP_PASSWORDS = 20;
export const MAX_CERTIFICATES = 20;
export const MAX_BATCH_IDS = 1000;
export const MAX_PAGE_SIZE = 1000;
export const DEFAULT_PAGE_SIZE = 100;
export const DEFAULT_ISSUED_TOKEN_TTL_S = 300;
export const MAX_ISSUED_TOKEN_TTL_S = 86_400;
export const GUEST_USERNAME = 'guest';

const invalidCredentials = (): AppError => errors.unauthenticated('INVALID_CREDENTIALS', INVALID_CREDENTIALS_TEXT);
const tokenInvalid = (): AppError => errors.unauthenticated('TOKEN_INVALID', 'Invalid or expired token');
const userNotFound = (): AppError => errors.notFound('USER_NOT_FOUND', 'No such user');

/** A ban's or kick's reason: one line of at most 500 characters (it is logged and shown to operators). */
function checkReason(reason: string): void {
  if (reason.length > 500 || !isSafeLine(reason))
    throw errors.invalidArgument('REASON_INVALID', 'reason must be one line of at most 500 characters');
}

/** Who acted (an operator's name, `cli`, `system`): stored with bans, so one line of at most 64 bytes. */
function checkBy(by: string): void {
  if (Buffer.byteLength(by) > 64 || !isSafeLine(by))
    throw errors.invalidArgument('BY_INVALID', 'by must be one line of at most 64 bytes');
}

/**
 * google.protobuf.Timestamp's valid range, 0001-01-01T00:00:00Z … 9999-12-31T23:59:59.999Z. A Timestamp off that
 * range (a huge `seconds` from a non-JS client) decodes to an invalid Date or a year PostgreSQL or proto3 JSON cannot
 * hold; it would pass "must be in the future" and fail in SQL as INTERNAL, so it is refused up front.
 */
const MIN_TIMESTAMP_MS = -62_135_596_800_000;
const MAX_TIMESTAMP_MS = 253_402_300_799_999;

function checkTimestamp(t: Date | undefined, field: string, reason: string): void {
  if (t === undefined) return;
  const ms = t.getTime();
  // NaN fails both comparisons.
  if (!(ms >= MIN_TIMESTAMP_MS && ms <= MAX_TIMESTAMP_MS))
    throw errors.invalidArgument(reason, `${field} must be a time between 0001-01-01 and 9999-12-31 UTC`);
}

/** Longest client address stored with a session or a login (an IPv6 address with a port fits). */
export const MAX_CLIENT_ADDRESS_LENGTH = 64;

/**
 * A client address as stored (sessions, last login): normalized, one line of at most MAX_CLIENT_ADDRESS_LENGTH
 * characters. It is the caller's report, stored per session and read back into the known-address cache, so
 * megabytes of text are refused, and so is a NUL byte, which PostgreSQL refuses (INTERNAL after a good password).
 */
function storedAddress(address: string): string {
  const a = normalizeAddress(address);
  if (a.length > MAX_CLIENT_ADDRESS_LENGTH || !isSafeLine(a))
    throw errors.invalidArgument(
      'CLIENT_ADDRESS_INVALID',
      `client_address must be one line of at most ${MAX_CLIENT_ADDRESS_LENGTH} characters`,
    );
  return a;
}

/** A certificate's SHA-256 as given (colons, spaces and case ignored), or undefined when it is not 64 hex digits. */
function certFingerprintOf(s: string): string | undefined {
  const fp = s.replace(/[:\s]/g, '').toLowerCase();
  return /^[0-9a-f]{64}$/.test(fp) ? fp : undefined;
}

/** PostgreSQL's bigint (every id column) ends here; a larger decimal fails in SQL as INTERNAL. */
const MAX_DB_ID = 9_223_372_036_854_775_807n;

/** A decimal row id (leading zeros allowed when `zeros`) that fits a bigint column. */
function isDbId(id: string, zeros = false): boolean {
  return (zeros ? /^\d{1,19}$/ : /^[1-9]\d{0,18}$/).test(id) && BigInt(id) <= MAX_DB_ID;
}

function requireUserId(id: string, field = 'user_id'): string {
  if (!isDbId(id)) throw errors.invalidArgument('USER_ID_INVALID', `${field} must be a decimal user id`);
  return id;
}

function banned(u: UserRow): AppError {
  const until = u.ban_until ? `until ${u.ban_until.toISOString()}` : 'permanently';
  return new AppError(Code.PERMISSION_DENIED, 'ACCOUNT_BANNED', `Account banned ${until}: ${u.ban_reason ?? ''}`, {
    details: { until: u.ban_until?.toISOString() ?? '', reason: u.ban_reason ?? '' },
  });
}

/**
 * A throttle key of bounded size: the throttles keep up to 200,000 keys, and a caller-chosen name (no account has
 * a name longer than 24 characters) must not pin megabytes per failed attempt. Long keys are replaced by their hash.
 */
function boundedKey(key: string): string {
  return key.length <= 64 ? key : 'sha256:' + createHash('sha256').update(key).digest('base64');
}

/** An address that logged in to an account within this long passes the account's delay and lock (its own pair throttle). */
export const KNOWN_ADDRESS_MS = 30 * 24 * 3600 * 1000;
/** How long an account's known addresses are reused before they are read again. */
const KNOWN_ADDRESS_CACHE_MS = 60_000;
const KNOWN_ADDRESS_CACHE_ENTRIES = 10_000;
/** At most this many distinct recent addresses are read per account. */
const KNOWN_ADDRESS_MAX = 64;
/** Sessions deleted per statement by pruneSessions. */
const SESSION_PRUNE_BATCH = 5_000;
/** IDENTITY_REGISTRATIONS_PER_HOUR's window. */
const REGISTRATION_WINDOW_MS = 3_600_000;
/** Shortest time between two IDENTITY_NAME_HOLDER_UNAVAILABLE warnings. */
const HOLDER_WARN_INTERVAL_MS = 10_000;
/** How far back ListUsers(changed_since)'s complete_before may lag behind the database's clock (changesHorizon). */
export const HORIZON_MAX_LAG_MS = 60_000;

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => '\\' + c);
}

export class IdentityApp {
  readonly cache: TokenCache;
  private readonly accountThrottle: Throttle;
  private readonly addressThrottle: Throttle;
  /** Per (account, known address): what throttles a known address while its account is delayed or locked. */
  private readonly pairThrottle: Throttle;
  /** Account throttle key → the addresses it logged in from recently (read from sessions, cached briefly). */
  private readonly knownAddresses = new Map<string, { addrs: Set<string>; at: number }>();
  private readonly registrations: RateLimiter;
  /** IDENTITY_HORIZON_CAPPED and IDENTITY_TRACK_ACTIVITIES_OFF lines: one per HOLDER_WARN_INTERVAL_MS. */
  private readonly horizonWarns: LogGate;
  /** The latest complete_before this instance answered (ms): its change stamps never go below it. */
  private horizonFloor = 0;
  private dummyHash: string | undefined;
  private dummyAppHash: string | undefined;
  /** IDENTITY_NAME_HOLDER_UNAVAILABLE lines: one per HOLDER_WARN_INTERVAL_MS. */
  private readonly holderWarns: LogGate;
  /** The throttles' counters shared by every instance (store/login-failures.ts). */
  private readonly ledger: LoginFailureLedger;
  /** IDENTITY_THROTTLE_LEDGER_FAILED lines: one per HOLDER_WARN_INTERVAL_MS. */
  private readonly ledgerWarns: LogGate;

  constructor(
    private readonly knex: Knex,
    private readonly s: IdentitySettings,
    private readonly events: EventSink,
    private readonly log: Logger,
    private readonly names: NameReserver | undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.cache = new TokenCache(s.tokenCacheSize, s.tokenCacheMs, now);
    this.horizonWarns = new LogGate(HOLDER_WARN_INTERVAL_MS, now);
    this.accountThrottle = new Throttle(s.accountThrottle, now);
    this.addressThrottle = new Throttle(s.addressThrottle, now);
    this.pairThrottle = new Throttle(s.accountThrottle, now);
    this.registrations = new RateLimiter(s.registrationsPerHour, REGISTRATION_WINDOW_MS, now);
    this.ledger = new LoginFailureLedger(knex);
    this.holderWarns = new LogGate(HOLDER_WARN_INTERVAL_MS, now);
    this.ledgerWarns = new LogGate(HOLDER_WARN_INTERVAL_MS, now);
  }

  private date(): Date {
    return new Date(this.now());
  }

  /**
   * The stamp of an account change (`updated_at`): the database's clock while the writing statement runs, after
   * its transaction's start is in pg_stat_activity — what changesHorizon relies on (see there). In milliseconds,
   * like every time on the API and the listing's page cursor; never below a complete_before this instance has
   * answered (the database's clock stepping back).
   */
  private changeStamp(): Knex.Raw {
    return this.knex.raw(`greatest(date_trunc('milliseconds', clock_timestamp()), ?::timestamptz)`, [
      new Date(this.horizonFloor),
    ]);
  }

  /**
   * A time before which every account change of every identity instance is committed, so a poller may continue
   * from it (ListUsersResponse.complete_before); read before the listing, whose snapshot is taken after it.
   *
   * Changes are stamped with the database's clock_timestamp() inside their transaction, and PostgreSQL publishes a
   * transaction's start (pg_stat_activity.xact_start) before its first statement runs, and clears it only after
   * the commit is visible. So a change stamped before this statement began either belongs to a transaction still
   * open now — whose start, no later than the stamp, bounds the answer — or has committed, and the listing's
   * later snapshot sees it. Every open transaction in this database under this role counts, whichever instance
   * (or anyone else) holds it: no instance-to-instance protocol. Both this and the stamps are cut to
   * milliseconds, which keeps a stamp at or after the cut start of its transaction.
   *
   * When that cannot be known, the answer lags HORIZON_MAX_LAG_MS instead (pollers get that minute again):
   * track_activities is off (no starts are published; IDENTITY_TRACK_ACTIVITIES_OFF), or a transaction has been
   * open for longer than that (a stuck connection, a long migration; IDENTITY_HORIZON_CAPPED) — pollers would
   * otherwise be sent ever further back, and a change it commits after that minute can be missed.
   */
  private async changesHorizon(): Promise<Date> {
    const r = await this.knex.raw<{ rows: { now: Date; oldest: Date | null; tracked: boolean }[] }>(
      `SELECT date_trunc('milliseconds', statement_timestamp()) AS now,
         date_trunc('milliseconds', min(xact_start)) AS oldest,
         current_setting('track_activities')::bool AS tracked
       FROM pg_stat_activity
       WHERE datname = current_database() AND usename = current_user AND pid <> pg_backend_pid()
         AND xact_start IS NOT NULL`,
    );
    const { now, oldest, tracked } = r.rows[0]!;
    const floor = now.getTime() - HORIZON_MAX_LAG_MS;
    let t: number;
    if (!tracked) {
      t = floor;
      const leftOut = this.horizonWarns.due();
      if (leftOut !== undefined)
        this.log.error(
          { code: 'IDENTITY_TRACK_ACTIVITIES_OFF', leftOut },
          'PostgreSQL track_activities is off: ListUsers(changed_since) reports complete only up to a minute ago',
        );
    } else if (oldest === null || oldest >= now) t = now.getTime();
    else if (oldest.getTime() >= floor) t = oldest.getTime();
    else {
      t = floor;
      const leftOut = this.horizonWarns.due();
      if (leftOut !== undefined)
        this.log.warn(
          { code: 'IDENTITY_HORIZON_CAPPED', openSince: oldest.toISOString(), leftOut },
          'an identity database transaction has been open for over a minute; ListUsers(changed_since) no longer waits for it',
        );
    }
    if (t > this.horizonFloor) this.horizonFloor = t;
    return new Date(t);
  }

  /** Creates the shared guest account; precomputes the dummy hashes. Idempotent. */
  async init(): Promise<void> {
    this.dummyHash = await hashPassword(randomBytes(16), this.s.kdf);
    this.dummyAppHash = await hashPassword(randomBytes(16), this.s.appPasswordKdf);
    const now = this.date();
    await this.knex.raw(
      `INSERT INTO users (username, username_fold, display_name, role, created_at, updated_at)
       VALUES (?, ?, ?, 'guest', ?, ?) ON CONFLICT (username_fold) DO NOTHING`,
      [GUEST_USERNAME, GUEST_USERNAME, 'Guest', now, now],
    );
  }

  /** Creates a sysop `name` with `password` unless an account with that name exists. */
  async bootstrapSysop(spec: string): Promise<boolean> {
    const i = spec.indexOf(':');
    const name = spec.slice(0, i);
    const password = spec.slice(i + 1);
    const existing = await this.userByFold(foldName(name));
    if (existing) {
      // Left as it is: a later start must not undo an operator's change (role, password, ban).
      this.log.info({ username: existing.username, role: existing.role }, 'bootstrap sysop exists; left unchanged');
      return false;
    }
    const r = await this.register({
      username: name,
      password,
      displayName: '',
      email: '',
      bio: '',
      avatar: '',
      isBot: false,
      clientAddress: 'bootstrap',
      sshPublicKey: '',
      createSession: false,
      sessionTtlSeconds: 0,
    });
    await this.setRole({ userId: r.user!.id, role: Role.ROLE_SYSOP, by: 'bootstrap' });
    return true;
  }

  // ---------------------------------------------------------------- lookups

  private async userById(id: string): Promise<UserRow | undefined> {
    return (await this.knex<UserRow>('users').where({ id }).first()) ?? undefined;
  }

  private async userByFold(folded: string): Promise<UserRow | undefined> {
    // Only folds of valid usernames are stored; anything else (a NUL byte PostgreSQL refuses, megabytes of text)
    // is nobody, answered without a query: a lookup by a hostile name must not fail as INTERNAL.
    if (!FOLDED_USERNAME_PATTERN.test(folded)) return undefined;
    return (await this.knex<UserRow>('users').where({ username_fold: folded }).first()) ?? undefined;
  }

  /** A live (not deleted, not the guest account) user or NOT_FOUND. */
  private async liveUser(id: string): Promise<UserRow> {
    const u = await this.userById(requireUserId(id));
    if (!u || u.deleted_at !== null || u.role === 'guest') throw userNotFound();
    return u;
  }

  private user(u: UserRow): identityV1.User {
    return toUser(u, this.now());
  }

  // ---------------------------------------------------------------- throttling

  /** The key `address` counts under in the address throttle and the registration limit (an IPv6 /64). */
  private addressKey(address: string): string {
    return boundedKey(addressThrottleKey(address));
  }

  private throttleKeys(username: string, address: string): { acct: string; addr: string } {
    return { acct: boundedKey(foldName(username)), addr: this.addressKey(address) };
  }

  /**
   * The shared ledger's counters of these keys into the local throttles. When the ledger cannot be read, the local
   * counters stand (logged at most once per HOLDER_WARN_INTERVAL_MS): throttling degrades to per instance.
   */
  private async syncThrottles(keys: readonly { t: Throttle; kind: string; key: string }[]): Promise<void> {
    const ids = keys.map((k) => `${k.kind}:${k.key}`);
    let rows: Map<string, FailureState>;
    try {
      rows = await this.ledger.read(ids);
    } catch (err) {
      this.ledgerWarn(err);
      return;
    }
    keys.forEach((k, i) => k.t.adopt(k.key, rows.get(ids[i]!)));
  }

  /** Counts a failure of `key` in the ledger and adopts the shared result. */
  private async ledgerFail(t: Throttle, kind: string, key: string): Promise<void> {
    try {
      t.adopt(key, await this.ledger.fail(`${kind}:${key}`, this.now(), t.settings));
    } catch (err) {
      this.ledgerWarn(err);
    }
  }

  private async ledgerClear(kind: string, key: string): Promise<void> {
    try {
      await this.ledger.clear(`${kind}:${key}`);
    } catch (err) {
      this.ledgerWarn(err);
    }
  }

  private ledgerWarn(err: unknown): void {
    const leftOut = this.ledgerWarns.due();
    if (leftOut === undefined) return;
    this.log.warn(
      { err, code: 'IDENTITY_THROTTLE_LEDGER_FAILED', leftOut },
      'login failure ledger unavailable; throttling with this instance counters only',
    );
  }

  /**
   * Counts a registration from `addrKey` against IDENTITY_REGISTRATIONS_PER_HOUR, shared by every instance through
   * the ledger (this instance's own limiter when the ledger fails). 0 = allowed, else ms until the hour ends.
   */
  private async takeRegistration(addrKey: string): Promise<number> {
    try {
      return await this.ledger.take(`r:${addrKey}`, this.now(), this.s.registrationsPerHour, REGISTRATION_WINDOW_MS);
    } catch (err) {
      this.ledgerWarn(err);
      return this.registrations.take(addrKey);
    }
  }

  /**
   * Deletes sessions that expired or were revoked more than KNOWN_ADDRESS_MS ago (so every session a known address
   * needs is kept), at most `maxRows` per call in batches of SESSION_PRUNE_BATCH; returns how many.
   */
  async pruneSessions(maxRows = 100_000): Promise<number> {
    const cutoff = new Date(this.now() - KNOWN_ADDRESS_MS);
    let total = 0;
    while (total < maxRows) {
      const ids = this.knex('sessions')
        .select('id')
        .where('expires_at', '<', cutoff)
        .orWhere('revoked_at', '<', cutoff)
        .limit(SESSION_PRUNE_BATCH);
      const rows = (await this.knex('sessions').whereIn('id', ids).delete().returning('id')) as unknown[];
      total += rows.length;
      if (rows.length < SESSION_PRUNE_BATCH) break;
    }
    return total;
  }

  /** Deletes the ledger's rows that no longer throttle anything (run periodically by the server). */
  async pruneLoginFailures(): Promise<number> {
    const windowMs = Math.max(this.s.accountThrottle.windowMs, this.s.addressThrottle.windowMs, REGISTRATION_WINDOW_MS);
    return this.ledger.prune(this.now(), windowMs);
  }

  private checkThrottle(a: { t: Throttle; key: string }, addr: string): void {
    for (const v of [a.t.check(a.key), this.addressThrottle.check(addr)]) {
      if (!v.ok) {
        const retry = Math.ceil(v.retryAfterMs);
        throw errors.resourceExhausted('LOGIN_THROTTLED', TOO_MANY_ATTEMPTS_TEXT, {
          retry_after_ms: String(retry),
          locked: String(v.locked),
        });
      }
    }
  }

  /**
   * Whether `addr` logged in to the account named `username` within KNOWN_ADDRESS_MS (a session created from it,
   * or its last login). Read only while the account is delayed or locked, and cached per account for a minute, so
   * hammering a locked account costs at most one query a minute.
   */
  private async isKnownAddress(acct: string, username: string, addr: string): Promise<boolean> {
    if (addr === '') return false;
    const t = this.now();
    let e = this.knownAddresses.get(acct);
    if (!e || t - e.at > KNOWN_ADDRESS_CACHE_MS) {
      const addrs = new Set<string>();
      const u = await this.userByFold(foldName(username));
      if (u && u.deleted_at === null && u.role !== 'guest') {
        if (u.last_login_address) addrs.add(u.last_login_address);
        const rows = await this.knex('sessions')
          .distinct('client_address')
          .where({ user_id: u.id })
          .whereNotNull('client_address')
          .where('created_at', '>', new Date(t - KNOWN_ADDRESS_MS))
          .limit(KNOWN_ADDRESS_MAX);
        for (const r of rows as { client_address: string }[]) addrs.add(r.client_address);
      }
      e = { addrs, at: t };
      this.knownAddresses.delete(acct);
      this.knownAddresses.set(acct, e);
      while (this.knownAddresses.size > KNOWN_ADDRESS_CACHE_ENTRIES) {
        const oldest = this.knownAddresses.keys().next();
        if (oldest.done) break;
        this.knownAddresses.delete(oldest.value);
      }
    }
    return e.addrs.has(addr);
  }

  /**
   * Runs a credential check under the throttles. `check` returns the user on success.
   *
   * Rules: failures count per account and per address. While an account is delayed or locked, an address it
   * logged in from recently (isKnownAddress) is throttled by its own (account, address) counter instead, with the
   * account's settings: strangers guessing a password cannot lock its owner out, and the owner's address gets no
   * more guesses than any other key. A success from a known address leaves the account's lock in place.
   */
  private async throttled<T>(username: string, address: string, check: () => Promise<T | undefined>): Promise<T> {
    const { acct, addr } = this.throttleKeys(username, address);
    await this.syncThrottles([
      { t: this.accountThrottle, kind: 'a', key: acct },
      { t: this.addressThrottle, kind: 'd', key: addr },
    ]);
    let a = { t: this.accountThrottle, kind: 'a', key: acct };
    // Known addresses are stored in full, so that check takes the full address (bounded, as it always was); the
    // pair counter is keyed like the address throttle, so hopping between known addresses of one /64 does not
    // multiply the owner's guesses.
    if (
      !this.accountThrottle.check(acct).ok &&
      (await this.isKnownAddress(acct, username, boundedKey(normalizeAddress(address))))
    ) {
      a = { t: this.pairThrottle, kind: 'p', key: boundedKey(`${acct}\n${addr}`) };
      await this.syncThrottles([a]);
    }
    this.checkThrottle(a, addr);
    a.t.begin(a.key);
    this.addressThrottle.begin(addr);
    let ok = false;
    try {
      const r = await check();
      ok = r !== undefined;
      if (!ok) throw invalidCredentials();
      return r as T;
    } finally {
      a.t.done(a.key, ok);
      // A success clears the account's failures only: logging in to one's own account must not
      // reset an address that is guessing others' passwords.
      if (ok) {
        this.addressThrottle.abandon(addr);
        await this.ledgerClear(a.kind, a.key);
      } else {
        this.addressThrottle.done(addr, false);
        await Promise.all([this.ledgerFail(a.t, a.kind, a.key), this.ledgerFail(this.addressThrottle, 'd', addr)]);
      }
    }
  }

  /** Password check with dummy work for unknown accounts. Undefined = wrong. */
  private async checkAccountPassword(u: UserRow | undefined, password: string): Promise<UserRow | undefined> {
    if (Buffer.byteLength(password) > MAX_SECRET_BYTES) return undefined;
    const usable = u !== undefined && u.deleted_at === null && u.password_hash !== null && u.role !== 'guest';
    const ok = await verifyPassword(password, usable ? u.password_hash! : this.dummyHash!);
    if (!usable || !ok) return undefined;
    if (needsRehash(u.password_hash!, this.s.kdf)) {
      const h = await hashPassword(password, this.s.kdf);
      await this.knex('users').where({ id: u.id }).update({ password_hash: h });
    }
    return u;
  }

  /** App password check across the account's app passwords (dummy work for unknown accounts). */
  private async checkAppPassword(
    u: UserRow | undefined,
    secret: string,
    protocol: string,
  ): Promise<{ u: UserRow; ap: AppPasswordRow } | undefined> {
    const norm = normalizeAppPassword(secret);
    const usable = u !== undefined && u.deleted_at === null && u.role !== 'guest';
    const rows = usable && norm ? await this.knex<AppPasswordRow>('app_passwords').where({ user_id: u.id }) : [];
    if (!norm || rows.length === 0) {
      await verifyPassword(secret.slice(0, 64), this.dummyAppHash!);
      return undefined;
    }
    for (const ap of rows) {
      if (await verifyPassword(norm, ap.secret_hash)) {
        if (!scopeAllows(textArray(ap.scopes), protocol)) return undefined;
        await this.knex('app_passwords').where({ id: ap.id }).update({ last_used_at: this.date() });
        return { u: u!, ap };
      }
    }
    return undefined;
  }

  // ---------------------------------------------------------------- sessions

  private clampTtl(ttl: number): number {
    if (ttl < 0) throw errors.invalidArgument('TTL_INVALID', 'ttl must not be negative');
    if (ttl === 0) return this.s.sessionTtlS;
    return Math.min(ttl, this.s.maxSessionTtlS);
  }

  private async createSession(
    db: Knex | Knex.Transaction,
    userId: string,
    ttlS: number,
    scopes: string[],
    address: string,
  ): Promise<identityV1.Session> {
    const token = newSessionToken();
    const now = this.now();
    const expiresAt = new Date(now + ttlS * 1000);
    const rows = await db('sessions')
      .insert({
        token_hash: hashToken(token),
        user_id: userId,
        scopes,
        created_at: new Date(now),
        expires_at: expiresAt,
        client_address: address || null,
      })
      .returning<{ id: string | number }[]>('id');
    return { token, sessionId: idStr(rows[0]!.id), expiresAt, ttlSeconds: ttlS };
  }

  private publishUser(type: identityV1.UserEventType, u: UserRow, by: string): void {
    this.events.userEvent({ type, user: this.user(u), at: this.date(), by });
  }

  private revoked(userId: string, sessionIds: string[], all: boolean, reason: string): void {
    if (all) this.cache.invalidateUser(userId);
    for (const s of sessionIds) this.cache.invalidateSession(s);
    if (!all && sessionIds.length === 0) return;
    this.events.sessionsRevoked({ userId, sessionIds, allSessions: all, reason, at: this.date() });
  }

  private async revokeAll(userId: string, reason: string): Promise<number> {
    const rows = await this.knex('sessions')
      .where({ user_id: userId })
      .whereNull('revoked_at')
      .update({ revoked_at: this.date() })
      .returning<{ id: string }[]>('id');
    this.revoked(userId, [], true, reason);
    return rows.length;
  }

  /**
   * Inserts one row of a per-account table (SSH keys, app passwords, certificates) unless the account has `max`
   * already. The count and the insert run in one transaction holding the account row's lock: without it,
   * concurrent adds all counted below the limit and all inserted.
   */
  private async insertUnderLimit<R>(
    table: string,
    userId: string,
    max: number,
    limit: () => AppError,
    row: Record<string, unknown>,
  ): Promise<R> {
    return this.knex.transaction(async (trx) => {
      await trx('users').where({ id: userId }).forUpdate().first('id');
      const [{ n }] = (await trx(table).where({ user_id: userId }).count({ n: '*' })) as [{ n: string | number }];
      if (Number(n) >= max) throw limit();
      const [r] = (await trx(table).insert(row).returning('*')) as R[];
      return r!;
    });
  }

  // ================================================================= accounts

  async register(req: identityV1.RegisterRequest): Promise<identityV1.RegisterResponse> {
    const name = checkUsername(req.username);
    if (!name.ok) throw errors.invalidArgument(name.reason, name.message);
    const pw = checkPassword(req.password, req.username);
    if (!pw.ok) throw errors.invalidArgument('PASSWORD_INVALID', pw.message);
    if (req.email !== '' && !isValidEmail(req.email))
      throw errors.invalidArgument('EMAIL_INVALID', 'Email is not valid');
    const displayName = req.displayName === '' ? req.username : req.displayName;
    this.checkProfileFields({ displayName, bio: req.bio, avatar: req.avatar });
    const key = req.sshPublicKey.trim() === '' ? undefined : parseSshKeyLine(req.sshPublicKey);
    if (key && !key.ok) throw errors.invalidArgument(key.reason, key.message);
    const ttl = req.createSession ? this.clampTtl(req.sessionTtlSeconds) : 0;
    const addr = storedAddress(req.clientAddress);
    if (await this.userByFold(name.folded)) throw errors.alreadyExists('USERNAME_TAKEN', 'That name is taken');
    const wait = await this.takeRegistration(this.addressKey(req.clientAddress));
    if (wait > 0) {
      throw errors.resourceExhausted('REGISTRATION_THROTTLED', TOO_MANY_ATTEMPTS_TEXT, {
        retry_after_ms: String(wait),
      });
    }
    const hash = await hashPassword(req.password, this.s.kdf);

    const hold = this.names ? await this.names.reserve(name.folded) : undefined;
    if (hold && 'heldBy' in hold) {
      throw hold.heldBy === 'guest'
        ? errors.alreadyExists('NAME_IN_USE_BY_GUEST', NAME_IN_USE_BY_GUEST_TEXT)
        : errors.alreadyExists('USERNAME_TAKEN', 'That name is taken');
    }
    try {
      const now = this.date();
      const out = await this.knex.transaction(async (trx) => {
        const [u] = (await trx('users')
          .insert({
            username: req.username,
            username_fold: name.folded,
            display_name: displayName,
            email: req.email === '' ? null : req.email,
            bio: req.bio,
            avatar: req.avatar,
            is_bot: req.isBot,
            password_hash: hash,
            created_at: now,
            updated_at: this.changeStamp(),
          })
          .returning('*')) as UserRow[];
        if (key?.ok) {
          await trx('ssh_keys').insert({
            user_id: u!.id,
            algorithm: key.key.algorithm,
            fingerprint: key.key.fingerprint,
            key_blob: key.key.blob,
            bits: key.key.bits,
            comment: key.key.comment,
            created_at: now,
          });
        }
        const session = req.createSession ? await this.createSession(trx, idStr(u!.id), ttl, [], addr) : undefined;
        return { u: u!, session };
      });
      this.publishUser(UserEventType.USER_EVENT_TYPE_CREATED, out.u, 'self');
      this.log.info({ userId: idStr(out.u.id), username: out.u.username }, 'account created');
      return { user: this.user(out.u), session: out.session };
    } catch (e) {
      const c = uniqueViolation(e);
      if (c !== undefined) {
        if (c.includes('ssh_keys') || c.includes('fingerprint'))
          throw errors.alreadyExists('SSH_KEY_EXISTS', 'That key is already registered');
        throw errors.alreadyExists('USERNAME_TAKEN', 'That name is taken');
      }
      throw e;
    } finally {
      if (hold && !('heldBy' in hold)) await hold.release().catch(() => undefined);
    }
  }

  private checkProfileFields(f: {
    displayName?: string | undefined;
    bio?: string | undefined;
    avatar?: string | undefined;
  }): void {
    if (
      f.displayName !== undefined &&
      ([...f.displayName].length > MAX_DISPLAY_NAME_LENGTH || !isSafeLine(f.displayName))
    )
      throw errors.invalidArgument(
        'DISPLAY_NAME_INVALID',
        `Display name must be at most ${MAX_DISPLAY_NAME_LENGTH} characters without control characters`,
      );
    if (f.bio !== undefined && ([...f.bio].length > MAX_BIO_LENGTH || !isSafeText(f.bio)))
      throw errors.invalidArgument(
        'BIO_INVALID',
        `Bio must be at most ${MAX_BIO_LENGTH} characters without control characters`,
      );
    if (f.avatar !== undefined && (f.avatar.length > MAX_AVATAR_LENGTH || !isSafeLine(f.avatar)))
      throw errors.invalidArgument('AVATAR_INVALID', `Avatar must be at most ${MAX_AVATAR_LENGTH} characters`);
  }

  private requireCredentials(username: string, secret: string): void {
    if (username === '') throw errors.invalidArgument('USERNAME_REQUIRED', 'username is required');
    if (secret === '') throw errors.invalidArgument('PASSWORD_REQUIRED', 'password is required');
  }

  async authenticate(req: identityV1.AuthenticateRequest): Promise<identityV1.AuthenticateResponse> {
    this.requireCredentials(req.username, req.password);
    const ttl = this.clampTtl(req.sessionTtlSeconds);
    const addr = storedAddress(req.clientAddress);
    const u = await this.throttled(req.username, req.clientAddress, async () =>
      this.checkAccountPassword(await this.userByFold(foldName(req.username)), req.password),
    );
    if (isBanActive(u, this.now())) throw banned(u);
    const session = await this.createSession(this.knex, idStr(u.id), ttl, [], addr);
    await this.knex('users')
      .where({ id: u.id })
      .update({ last_login_at: this.date(), last_login_address: addr || null });
    return { user: this.user(u), session };
  }

  async verifyPassword(req: identityV1.VerifyPasswordRequest): Promise<identityV1.VerifyPasswordResponse> {
    this.requireCredentials(req.username, req.secret);
    const r = await this.throttled(req.username, req.clientAddress, async () => {
      const u = await this.userByFold(foldName(req.username));
      const byPassword = await this.checkAccountPassword(u, req.secret);
      if (byPassword) return { u: byPassword, kind: CredentialKind.CREDENTIAL_KIND_PASSWORD };
      const byApp = normalizeAppPassword(req.secret)
        ? await this.checkAppPassword(u, req.secret, req.protocol)
        : undefined;
      return byApp ? { u: byApp.u, kind: CredentialKind.CREDENTIAL_KIND_APP_PASSWORD } : undefined;
    });
    return { user: this.user(r.u), kind: r.kind };
  }

  /**
   * What Register would decide about the name, without registering: AVAILABLE exactly when Register would accept
   * it. Refusals say why: an account (live or deleted) with the same fold is TAKEN (with its id and canonical
   * name), a reserved fold is RESERVED, anything off the username rules is INVALID (also a compatibility form,
   * such as fullwidth letters, of a free name: Register takes names as typed), and a name a registration in progress
   * holds in presence is TAKEN. A name a live guest holds is refused with USERNAME_STATUS_UNSPECIFIED and the
   * message Register gives (the enum has no "in use" value): TAKEN or RESERVED would read as an account name to
   * @hubbub/presence, which asks again after a guest's claim and would then refuse every guest its own nick.
   */
  async checkUsername(req: identityV1.CheckUsernameRequest): Promise<identityV1.CheckUsernameResponse> {
    const refused = (status: identityV1.UsernameStatus, message: string): identityV1.CheckUsernameResponse => ({
      status,
      message,
      userId: '',
      canonicalUsername: '',
    });
    const folded = foldName(req.username);
    const existing = folded === '' ? undefined : await this.userByFold(folded);
    if (existing) {
      return {
        status:
          existing.role === 'guest' ? UsernameStatus.USERNAME_STATUS_RESERVED : UsernameStatus.USERNAME_STATUS_TAKEN,
        message: 'That name is taken',
        userId: existing.role === 'guest' ? '' : idStr(existing.id),
        canonicalUsername: existing.username,
      };
    }
    if (isReservedName(folded)) return refused(UsernameStatus.USERNAME_STATUS_RESERVED, 'That name is reserved');
    // The rules Register applies, to the name as given (its fold was checked above).
    const c = checkUsername(req.username);
    if (!c.ok) return refused(UsernameStatus.USERNAME_STATUS_INVALID, c.message);
    const holder = await this.nameHolder(c.folded);
    if (holder === 'registration') return refused(UsernameStatus.USERNAME_STATUS_TAKEN, 'That name is taken');
    if (holder === 'guest') return refused(UsernameStatus.USERNAME_STATUS_UNSPECIFIED, NAME_IN_USE_BY_GUEST_TEXT);
    return { status: UsernameStatus.USERNAME_STATUS_AVAILABLE, message: '', userId: '', canonicalUsername: '' };
  }

  /**
   * Who holds `folded` in presence. CheckUsername's answer is advice (Register takes the name in presence and
   * decides): when presence cannot be read, the database's answer is given and a warning logged, at most one per
   * HOLDER_WARN_INTERVAL_MS (`IDENTITY_NAME_HOLDER_UNAVAILABLE`, with the number left out since the last one).
   */
  private async nameHolder(folded: string): Promise<'guest' | 'registration' | undefined> {
    if (!this.names) return undefined;
    try {
      return await this.names.holder(folded);
    } catch (err) {
      const leftOut = this.holderWarns.due();
      if (leftOut !== undefined)
        this.log.warn(
          { err, code: 'IDENTITY_NAME_HOLDER_UNAVAILABLE', leftOut },
          'presence not readable: CheckUsername answered from the database alone',
        );
      return undefined;
    }
  }

  async getUser(req: identityV1.GetUserRequest): Promise<identityV1.GetUserResponse> {
    const u = await this.userById(requireUserId(req.userId));
    if (!u) throw userNotFound();
    return { user: this.user(u), private: req.includePrivate ? toPrivate(u) : undefined };
  }

  async getUserByName(req: identityV1.GetUserByNameRequest): Promise<identityV1.GetUserByNameResponse> {
    if (req.username === '') throw errors.invalidArgument('USERNAME_REQUIRED', 'username is required');
    const u = await this.userByFold(foldName(req.username));
    if (!u) throw userNotFound();
    return { user: this.user(u) };
  }

  async batchGetUsers(req: identityV1.BatchGetUsersRequest): Promise<identityV1.BatchGetUsersResponse> {
    if (req.userIds.length > MAX_BATCH_IDS)
      throw errors.invalidArgument('TOO_MANY_IDS', `At most ${MAX_BATCH_IDS} ids per call`);
    const valid = [...new Set(req.userIds.filter((id) => isDbId(id)))];
    const rows =
      valid.length === 0 ? [] : await this.knex<UserRow>('users').whereIn('id', valid).whereNot({ role: 'guest' });
    const byId = new Map(rows.map((r) => [idStr(r.id), r]));
    const users: identityV1.User[] = [];
    const notFoundIds: string[] = [];
    const seen = new Set<string>();
    for (const id of req.userIds) {
      if (seen.has(id)) continue;
      seen.add(id);
      const r = byId.get(id);
      if (r) users.push(this.user(r));
      else notFoundIds.push(id);
    }
    return { users, notFoundIds };
  }

  async listUsers(req: identityV1.ListUsersRequest): Promise<identityV1.ListUsersResponse> {
    const size = req.pageSize <= 0 ? DEFAULT_PAGE_SIZE : Math.min(req.pageSize, MAX_PAGE_SIZE);
    if (req.query.length > 64) throw errors.invalidArgument('QUERY_TOO_LONG', 'query must be at most 64 characters');
    if (!isSafeLine(req.query))
      throw errors.invalidArgument('QUERY_INVALID', 'query must not contain control characters');
    checkTimestamp(req.changedSince, 'changed_since', 'CHANGED_SINCE_INVALID');
    const q = this.knex<UserRow>('users').whereNot({ role: 'guest' });
    if (req.query !== '') {
      const like = '%' + escapeLike(foldName(req.query)) + '%';
      void q.where((w) => void w.where('username_fold', 'like', like).orWhereRaw('lower(display_name) like ?', [like]));
    }
    const byChange = req.changedSince !== undefined;
    // A poller continues from a time: tell it up to when the answer is complete (changesHorizon).
    const completeBefore = byChange ? await this.changesHorizon() : undefined;
    if (!byChange && !req.includeDeleted) void q.whereNull('deleted_at');
    let cursor: string[] = [];
    if (req.pageToken !== '') {
      cursor = Buffer.from(req.pageToken, 'base64url').toString('utf8').split('\n');
      // Every part is checked: the cursor goes into the query, and a forged one must not fail there as INTERNAL.
      const ok =
        cursor.length === 3 &&
        isDbId(cursor[2]!) &&
        (byChange
          ? cursor[0] === 'c' && /^\d{1,15}$/.test(cursor[1]!)
          : cursor[0] === 'n' && FOLDED_USERNAME_PATTERN.test(cursor[1]!));
      if (!ok) throw errors.invalidArgument('PAGE_TOKEN_INVALID', 'page_token is not from this listing');
    }
    if (byChange) {
      void q.where('updated_at', '>=', req.changedSince!);
      if (cursor.length) {
        const t = new Date(Number(cursor[1]));
        void q.whereRaw('(updated_at, id) > (?, ?)', [t, cursor[2]!]);
      }
      void q.orderBy([{ column: 'updated_at' }, { column: 'id' }]);
    } else {
      if (cursor.length) void q.whereRaw('(username_fold, id) > (?, ?)', [cursor[1]!, cursor[2]!]);
      void q.orderBy([{ column: 'username_fold' }, { column: 'id' }]);
    }
    const rows = await q.limit(size + 1);
    const page = rows.slice(0, size);
    const last = page[page.length - 1];
    const next =
      rows.length > size && last
        ? Buffer.from(
            (byChange
              ? ['c', String(last.updated_at.getTime()), idStr(last.id)]
              : ['n', last.username_fold, idStr(last.id)]
            ).join('\n'),
          ).toString('base64url')
        : '';
    return { users: page.map((r) => this.user(r)), nextPageToken: next, completeBefore };
  }

  async updateProfile(req: identityV1.UpdateProfileRequest): Promise<identityV1.UpdateProfileResponse> {
    const u = await this.liveUser(req.userId);
    this.checkProfileFields(req);
    if (req.email !== undefined && req.email !== '' && !isValidEmail(req.email))
      throw errors.invalidArgument('EMAIL_INVALID', 'Email is not valid');
    const patch: Record<string, unknown> = { updated_at: this.changeStamp() };
    if (req.displayName !== undefined) patch['display_name'] = req.displayName === '' ? u.username : req.displayName;
    if (req.bio !== undefined) patch['bio'] = req.bio;
    if (req.avatar !== undefined) patch['avatar'] = req.avatar;
    if (req.email !== undefined) patch['email'] = req.email === '' ? null : req.email;
    if (req.isBot !== undefined) patch['is_bot'] = req.isBot;
    const [row] = (await this.knex('users').where({ id: u.id }).update(patch).returning('*')) as UserRow[];
    this.cache.invalidateUser(idStr(u.id));
    this.publishUser(UserEventType.USER_EVENT_TYPE_UPDATED, row!, 'self');
    return { user: this.user(row!) };
  }

  async changePassword(req: identityV1.ChangePasswordRequest): Promise<identityV1.ChangePasswordResponse> {
    const u = await this.liveUser(req.userId);
    if (req.currentPassword === '') throw errors.invalidArgument('PASSWORD_REQUIRED', 'current password is required');
    const pw = checkPassword(req.newPassword, u.username);
    if (!pw.ok) throw errors.invalidArgument('PASSWORD_INVALID', pw.message);
    try {
      await this.throttled(u.username, req.clientAddress, () => this.checkAccountPassword(u, req.currentPassword));
    } catch (e) {
      if (e instanceof AppError && e.reason === 'INVALID_CREDENTIALS')
        throw errors.unauthenticated('INVALID_CREDENTIALS', 'Current password is wrong');
      throw e;
    }
    const hash = await hashPassword(req.newPassword, this.s.kdf);
    await this.knex('users').where({ id: u.id }).update({ password_hash: hash });
    if (req.revokeSessions) await this.revokeAll(idStr(u.id), 'password_changed');
    return {};
  }

  async resetPassword(req: identityV1.ResetPasswordRequest): Promise<identityV1.ResetPasswordResponse> {
    const u = req.userId !== '' ? await this.liveUser(req.userId) : await this.liveByName(req.username);
    const pw = checkPassword(req.newPassword, u.username);
    if (!pw.ok) throw errors.invalidArgument('PASSWORD_INVALID', pw.message);
    const hash = await hashPassword(req.newPassword, this.s.kdf);
    await this.knex('users').where({ id: u.id }).update({ password_hash: hash });
    await this.revokeAll(idStr(u.id), 'password_reset');
    this.accountThrottle.reset(u.username_fold);
    await this.ledgerClear('a', u.username_fold);
    return {};
  }

  private async liveByName(name: string): Promise<UserRow> {
    if (name === '') throw errors.invalidArgument('USERNAME_REQUIRED', 'username or user_id is required');
    const u = await this.userByFold(foldName(name));
    if (!u || u.deleted_at !== null || u.role === 'guest') throw userNotFound();
    return u;
  }

  async deleteAccount(req: identityV1.DeleteAccountRequest): Promise<identityV1.DeleteAccountResponse> {
    requireUserId(req.userId);
    if (req.password === '') throw errors.invalidArgument('PASSWORD_REQUIRED', 'password is required');
    const u0 = await this.userById(req.userId);
    const u = await this.throttled(u0?.username ?? req.userId, req.clientAddress, async () => {
      const ok = await this.checkAccountPassword(u0, req.password);
      if (!ok) return undefined;
      if (req.username !== '' && foldName(req.username) !== ok.username_fold) return undefined;
      return ok;
    });
    const now = this.date();
    const row = await this.knex.transaction(async (trx) => {
      const [r] = (await trx('users')
        .where({ id: u.id })
        .whereNull('deleted_at')
        .update({
          display_name: '',
          email: null,
          bio: '',
          avatar: '',
          password_hash: null,
          preferences: '{}',
          is_bot: false,
          deleted_at: now,
          updated_at: this.changeStamp(),
        })
        .returning('*')) as UserRow[];
      await trx('ssh_keys').where({ user_id: u.id }).delete();
      await trx('app_passwords').where({ user_id: u.id }).delete();
      await trx('client_certificates').where({ user_id: u.id }).delete();
      await trx('e2e_keys').where({ user_id: u.id }).whereNull('revoked_at').update({ revoked_at: now });
      await trx('sessions').where({ user_id: u.id }).whereNull('revoked_at').update({ revoked_at: now });
      return r;
    });
    if (!row) throw userNotFound();
    this.revoked(idStr(u.id), [], true, 'deleted');
    this.publishUser(UserEventType.USER_EVENT_TYPE_DELETED, row, 'self');
    this.log.info({ userId: idStr(u.id) }, 'account deleted');
    return {};
  }

  async setRole(req: identityV1.SetRoleRequest): Promise<identityV1.SetRoleResponse> {
    if (req.role !== Role.ROLE_USER && req.role !== Role.ROLE_SYSOP)
      throw errors.invalidArgument('ROLE_INVALID', 'role must be ROLE_USER or ROLE_SYSOP');
    const u = await this.liveUser(req.userId);
    const [row] = (await this.knex('users')
      .where({ id: u.id })
      .update({ role: ROLE_TO_DB[req.role], updated_at: this.changeStamp() })
      .returning('*')) as UserRow[];
    this.cache.invalidateUser(idStr(u.id));
    this.publishUser(UserEventType.USER_EVENT_TYPE_UPDATED, row!, req.by || 'system');
    return { user: this.user(row!) };
  }

  async ban(req: identityV1.BanRequest): Promise<identityV1.BanResponse> {
    const u = await this.liveUser(req.userId);
    checkReason(req.reason);
    checkBy(req.by);
    checkTimestamp(req.until, 'until', 'UNTIL_INVALID');
    if (req.until && req.until.getTime() <= this.now())
      throw errors.invalidArgument('UNTIL_INVALID', 'until must be in the future');
    const [row] = (await this.knex('users')
      .where({ id: u.id })
      .update({
        ban_reason: req.reason,
        ban_until: req.until ?? null,
        ban_by: req.by,
        banned_at: this.date(),
        updated_at: this.changeStamp(),
      })
      .returning('*')) as UserRow[];
    await this.revokeAll(idStr(u.id), 'banned');
    this.publishUser(UserEventType.USER_EVENT_TYPE_BANNED, row!, req.by || 'system');
    this.log.info({ userId: idStr(u.id), until: req.until, by: req.by }, 'account banned');
    return { user: this.user(row!) };
  }

  async unban(req: identityV1.UnbanRequest): Promise<identityV1.UnbanResponse> {
    const u = await this.liveUser(req.userId);
    const [row] = (await this.knex('users')
      .where({ id: u.id })
      .update({ ban_reason: null, ban_until: null, ban_by: null, banned_at: null, updated_at: this.changeStamp() })
      .returning('*')) as UserRow[];
    this.cache.invalidateUser(idStr(u.id));
    this.publishUser(UserEventType.USER_EVENT_TYPE_UPDATED, row!, req.by || 'system');
    return { user: this.user(row!) };
  }

  /**
   * Operators (NATS `<prefix>.admin.user.*`): the account named by user id or by name (fold comparison),
   * live, or NOT_FOUND.
   */
  async resolveAccount(ref: { userId: string; username: string }): Promise<string> {
    if (ref.userId !== '') return idStr((await this.liveUser(ref.userId)).id);
    if (ref.username === '' || ref.username.length > 64)
      throw errors.invalidArgument('USER_REQUIRED', 'username or user_id is required');
    const u = await this.userByFold(foldName(ref.username));
    if (!u || u.deleted_at !== null || u.role === 'guest') throw userNotFound();
    return idStr(u.id);
  }

  /** Ends every session of the account now (it may log in again) and tells the doors (user event `kicked`). */
  async kick(req: { userId: string; reason: string; by: string }): Promise<identityV1.AdminUserResponse> {
    const u = await this.liveUser(req.userId);
    checkReason(req.reason);
    const revoked = await this.revokeAll(idStr(u.id), 'kicked');
    this.publishUser(UserEventType.USER_EVENT_TYPE_KICKED, u, req.by || 'system');
    this.log.info({ userId: idStr(u.id), by: req.by, reason: req.reason, revoked }, 'account kicked');
    return { user: this.user(u), sessionsRevoked: revoked };
  }

  async recordLogin(req: identityV1.RecordLoginRequest): Promise<identityV1.RecordLoginResponse> {
    const u = await this.liveUser(req.userId);
    const addr = storedAddress(req.clientAddress);
    const protocol = req.protocol.slice(0, 32);
    if (!isSafeLine(protocol)) throw errors.invalidArgument('PROTOCOL_INVALID', 'protocol must be one line');
    await this.knex('users')
      .where({ id: u.id })
      .update({
        last_login_at: this.date(),
        last_login_address: addr || null,
        last_login_protocol: protocol || null,
      });
    return {
      previousAt: u.last_login_at ?? undefined,
      previousAddress: u.last_login_address ?? '',
      previousProtocol: u.last_login_protocol ?? '',
    };
  }

  private prefs(u: UserRow): Record<string, string> {
    const p = typeof u.preferences === 'string' ? (JSON.parse(u.preferences) as Record<string, string>) : u.preferences;
    return { ...(p ?? {}) };
  }

  async getPreferences(req: identityV1.GetPreferencesRequest): Promise<identityV1.GetPreferencesResponse> {
    return { preferences: this.prefs(await this.liveUser(req.userId)) };
  }

  async setPreferences(req: identityV1.SetPreferencesRequest): Promise<identityV1.SetPreferencesResponse> {
    const u = await this.liveUser(req.userId);
    const merged = this.prefs(u);
    for (const [k, v] of Object.entries(req.preferences)) {
      if (!/^[a-z0-9_.-]{1,64}$/.test(k))
        throw errors.invalidArgument('PREFERENCE_KEY_INVALID', `bad preference key "${k.slice(0, 64)}"`);
      if (v.length > 1024)
        throw errors.invalidArgument('PREFERENCE_VALUE_INVALID', `value of "${k}" is longer than 1024`);
      // jsonb cannot hold U+0000.
      if (v.includes('\u0000'))
        throw errors.invalidArgument('PREFERENCE_VALUE_INVALID', `value of "${k}" contains a NUL character`);
      if (v === '') delete merged[k];
      else merged[k] = v;
    }
    if (Object.keys(merged).length > 64) throw errors.invalidArgument('TOO_MANY_PREFERENCES', 'at most 64 preferences');
    await this.knex('users')
      .where({ id: u.id })
      .update({ preferences: JSON.stringify(merged) });
    return { preferences: merged };
  }

  async getGuestAccount(): Promise<identityV1.GetGuestAccountResponse> {
    const u = await this.userByFold(GUEST_USERNAME);
    if (!u) throw errors.internal('GUEST_ACCOUNT_MISSING');
    return { user: this.user(u) };
  }

  // ================================================================= address bans

  private async activeAddressBans(): Promise<AddressBanRow[]> {
    return this.knex<AddressBanRow>('address_bans').where(
      (w) => void w.whereNull('until').orWhere('until', '>', this.date()),
    );
  }

  async banAddress(req: identityV1.BanAddressRequest): Promise<identityV1.BanAddressResponse> {
    const c = parseCidr(req.cidr);
    if (!c) throw errors.invalidArgument('CIDR_INVALID', 'Not an IPv4/IPv6 address or CIDR');
    checkTimestamp(req.until, 'until', 'UNTIL_INVALID');
    if (req.until && req.until.getTime() <= this.now())
      throw errors.invalidArgument('UNTIL_INVALID', 'until must be in the future');
    checkReason(req.reason);
    checkBy(req.by);
    const row = {
      cidr: c.text,
      reason: req.reason,
      until: req.until ?? null,
      banned_by: req.by,
      created_at: this.date(),
    };
    await this.knex('address_bans').insert(row).onConflict('cidr').merge();
    return { ban: toAddressBan(row) };
  }

  async unbanAddress(req: identityV1.UnbanAddressRequest): Promise<identityV1.UnbanAddressResponse> {
    const c = parseCidr(req.cidr);
    if (!c) throw errors.invalidArgument('CIDR_INVALID', 'Not an IPv4/IPv6 address or CIDR');
    const n = await this.knex('address_bans').where({ cidr: c.text }).delete();
    if (n === 0) throw errors.notFound('BAN_NOT_FOUND', 'No ban for that address');
    return {};
  }

  async checkAddressBan(req: identityV1.CheckAddressBanRequest): Promise<identityV1.CheckAddressBanResponse> {
    const a = normalizeAddress(req.address);
    if (parseCidr(a) === undefined) throw errors.invalidArgument('ADDRESS_INVALID', 'Not an IP address');
    const bans = await this.activeAddressBans();
    const hit = cidrMatcher(bans.map((b) => b.cidr))(a);
    const row = hit === undefined ? undefined : bans.find((b) => b.cidr === hit);
    const addrKey = this.addressKey(a);
    await this.syncThrottles([{ t: this.addressThrottle, kind: 'd', key: addrKey }]);
    return {
      banned: row !== undefined,
      ban: row ? toAddressBan(row) : undefined,
      // Failed logins count per throttle key (an IPv6 address's /64), so that is what is looked up.
      throttledSeconds: Math.ceil(this.addressThrottle.lockedForMs(addrKey) / 1000),
    };
  }

  async clearLoginFailures(req: identityV1.ClearLoginFailuresRequest): Promise<identityV1.ClearLoginFailuresResponse> {
    if ((req.username === '') === (req.address === ''))
      throw errors.invalidArgument('TARGET_REQUIRED', 'give exactly one of username and address');
    if (req.username !== '') {
      const acct = boundedKey(foldName(req.username));
      this.accountThrottle.reset(acct);
      // The pair counters of its known addresses (`p:<account>\n<address>`) go too.
      for (const k of this.pairThrottle.keysWithPrefix(`${acct}\n`)) this.pairThrottle.reset(k);
      return { cleared: await this.ledger.clearAll(`a:${acct}`, `p:${acct}\n`) };
    }
    const a = normalizeAddress(req.address);
    if (parseCidr(a) === undefined) throw errors.invalidArgument('ADDRESS_INVALID', 'Not an IP address');
    const key = this.addressKey(a);
    this.addressThrottle.reset(key);
    return { cleared: await this.ledger.clearAll(`d:${key}`) };
  }

  async listBans(): Promise<identityV1.ListBansResponse> {
    const users = await this.knex<UserRow>('users')
      .whereNotNull('banned_at')
      .whereNull('deleted_at')
      .where((w) => void w.whereNull('ban_until').orWhere('ban_until', '>', this.date()))
      .orderBy('username_fold');
    return { users: users.map((u) => this.user(u)), addresses: (await this.activeAddressBans()).map(toAddressBan) };
  }

  // ================================================================= tokens

  async verifyToken(req: identityV1.VerifyTokenRequest): Promise<identityV1.VerifyTokenResponse> {
    if (!isTokenShaped(req.token)) throw tokenInvalid();
    const ck = tokenHashBase64(req.token);
    // One time for the whole verification: the cache lookup, the database read and the expiry check.
    const nowMs = this.now();
    let t = this.cachedToken(ck, nowMs);
    if (!t) {
      const generation = this.cache.generation;
      const key = Buffer.from(ck, 'base64');
      const now = new Date(nowMs);
      const row = await this.knex('sessions as s')
        .join('users as u', 'u.id', 's.user_id')
        .where('s.token_hash', key)
        .whereNull('s.revoked_at')
        .where('s.expires_at', '>', now)
        .whereNull('u.deleted_at')
        .where((w) => void w.whereNull('u.banned_at').orWhere('u.ban_until', '<=', now))
        .first<VerifyRow | undefined>(
          's.id as sid',
          's.user_id',
          's.expires_at',
          's.scopes',
          'u.username',
          'u.display_name',
          'u.role',
        );
      if (!row) throw tokenInvalid();
      t = {
        userId: idStr(row.user_id),
        username: row.username,
        displayName: row.display_name,
        role: ROLE_NUM[row.role] ?? Role.ROLE_USER,
        sessionId: idStr(row.sid),
        expiresAtMs: row.expires_at.getTime(),
        scopes: textArray(row.scopes),
      };
      this.cache.set(ck, t, generation);
    }
    return this.tokenResponse(t, this.checkToken(t, req, nowMs));
  }

  /**
   * The cached verification of token hash `ck`, unless the expiry it holds has passed by `nowMs`. Such an entry is
   * never grounds to refuse: the session may have been refreshed since it was cached (on another instance, which
   * announces revocations but not refreshes), so it is dropped and the database read again.
   */
  private cachedToken(ck: string, nowMs: number): CachedToken | undefined {
    const t = this.cache.get(ck);
    if (t === undefined || t.expiresAtMs > nowMs) return t;
    this.cache.delete(ck);
    return undefined;
  }

  /**
   * verifyToken for a cached token, synchronous and encoded: the VerifyTokenResponse bytes (memoized per
   * ttl_seconds value), or undefined when the token is not cached (then verifyToken reads the database). The same
   * checks and errors as verifyToken. The doors' hot path over NATS (docs/adr/0004).
   */
  verifyTokenCached(req: identityV1.VerifyTokenRequest): Uint8Array | undefined {
    if (!isTokenShaped(req.token)) throw tokenInvalid();
    const nowMs = this.now();
    const t = this.cachedToken(tokenHashBase64(req.token), nowMs);
    if (!t) return undefined;
    const ttlSeconds = this.checkToken(t, req, nowMs);
    const memo = t.reply;
    if (memo !== undefined && memo.ttlSeconds === ttlSeconds) return memo.bytes;
    const bytes = identityV1.VerifyTokenResponse.encode(this.tokenResponse(t, ttlSeconds)).finish();
    t.reply = { ttlSeconds, bytes };
    return bytes;
  }

  /** The per-call checks of a known token at `nowMs`; its ttl_seconds. */
  private checkToken(t: CachedToken, req: identityV1.VerifyTokenRequest, nowMs: number): number {
    const remainingMs = t.expiresAtMs - nowMs;
    if (remainingMs <= 0) throw tokenInvalid();
    if (req.expectedUserId !== '' && req.expectedUserId !== t.userId) throw tokenInvalid();
    if (req.requiredScope !== '' && t.scopes.length > 0 && !t.scopes.includes(req.requiredScope))
      throw errors.permissionDenied('TOKEN_SCOPE', `token lacks the scope "${req.requiredScope.slice(0, 64)}"`);
    return Math.max(1, Math.floor(remainingMs / 1000));
  }

  /** The answer for a token that passed checkToken (its result is `ttlSeconds`). */
  private tokenResponse(t: CachedToken, ttlSeconds: number): identityV1.VerifyTokenResponse {
    return {
      userId: t.userId,
      username: t.username,
      displayName: t.displayName,
      role: t.role,
      sessionId: t.sessionId,
      expiresAt: new Date(t.expiresAtMs),
      ttlSeconds,
      scopes: [...t.scopes],
    };
  }

  async refreshToken(req: identityV1.RefreshTokenRequest): Promise<identityV1.RefreshTokenResponse> {
    if (!isTokenShaped(req.token)) throw tokenInvalid();
    const ttl = this.clampTtl(req.ttlSeconds);
    const v = await this.verifyToken({ token: req.token, expectedUserId: '', requiredScope: '' });
    if (v.scopes.length > 0)
      throw errors.permissionDenied('TOKEN_NOT_REFRESHABLE', 'scoped tokens cannot be refreshed');
    const now = this.now();
    const expiresAt = new Date(now + ttl * 1000);
    // The session may have expired since it was verified (a slow read, a busy pool): an expired session stays dead.
    const n = await this.knex('sessions')
      .where({ token_hash: hashToken(req.token) })
      .whereNull('revoked_at')
      .where('expires_at', '>', new Date(now))
      .update({ expires_at: expiresAt });
    this.cache.invalidateSession(v.sessionId);
    if (n === 0) throw tokenInvalid();
    // Other instances drop their cached verification too, so they report the new expiry at once.
    this.events.sessionRefreshed({ userId: v.userId, sessionId: v.sessionId, expiresAt, at: new Date(now) });
    return { expiresAt, ttlSeconds: ttl };
  }

  async revokeToken(req: identityV1.RevokeTokenRequest): Promise<identityV1.RevokeTokenResponse> {
    let q;
    if (req.token !== '') {
      if (!isTokenShaped(req.token)) return {};
      q = this.knex('sessions').where({ token_hash: hashToken(req.token) });
    } else {
      requireUserId(req.userId);
      if (!isDbId(req.sessionId, true)) throw errors.invalidArgument('SESSION_ID_INVALID', 'session_id is required');
      q = this.knex('sessions').where({ id: req.sessionId, user_id: req.userId });
    }
    const rows = await q
      .whereNull('revoked_at')
      .update({ revoked_at: this.date() })
      .returning<{ id: string; user_id: string }[]>(['id', 'user_id']);
    for (const r of rows) this.revoked(idStr(r.user_id), [idStr(r.id)], false, 'logout');
    return {};
  }

  async revokeAllTokens(req: identityV1.RevokeAllTokensRequest): Promise<identityV1.RevokeAllTokensResponse> {
    const u = await this.userById(requireUserId(req.userId));
    if (!u) throw userNotFound();
    return { revoked: await this.revokeAll(idStr(u.id), 'revoke_all') };
  }

  async issueToken(req: identityV1.IssueTokenRequest): Promise<identityV1.IssueTokenResponse> {
    const u = await this.liveUser(req.userId);
    if (isBanActive(u, this.now())) throw banned(u);
    if (req.scopes.length === 0 || req.scopes.length > 16 || req.scopes.some((s) => !/^[a-z0-9._-]{1,64}$/.test(s)))
      throw errors.invalidArgument('SCOPES_INVALID', 'scopes: 1-16 items of [a-z0-9._-]{1,64}');
    if (req.ttlSeconds < 0 || req.ttlSeconds > MAX_ISSUED_TOKEN_TTL_S)
      throw errors.invalidArgument('TTL_INVALID', `ttl_seconds must be 0..${MAX_ISSUED_TOKEN_TTL_S}`);
    const ttl = req.ttlSeconds === 0 ? DEFAULT_ISSUED_TOKEN_TTL_S : req.ttlSeconds;
    return { session: await this.createSession(this.knex, idStr(u.id), ttl, [...new Set(req.scopes)], '') };
  }

  // ================================================================= SSH keys

  async addSshKey(req: identityV1.AddSshKeyRequest): Promise<identityV1.AddSshKeyResponse> {
    const u = await this.liveUser(req.userId);
    const k = parseSshKeyLine(req.publicKey);
    if (!k.ok) throw errors.invalidArgument(k.reason, k.message);
    try {
      const row = await this.insertUnderLimit<SshKeyRow>(
        'ssh_keys',
        idStr(u.id),
        MAX_SSH_KEYS,
        () => errors.failedPrecondition('SSH_KEY_LIMIT', `You already have ${MAX_SSH_KEYS} keys`),
        {
          user_id: u.id,
          algorithm: k.key.algorithm,
          fingerprint: k.key.fingerprint,
          key_blob: k.key.blob,
          bits: k.key.bits,
          comment: k.key.comment,
          created_at: this.date(),
        },
      );
      return { key: toSshKey(row) };
    } catch (e) {
      if (uniqueViolation(e) !== undefined)
        throw errors.alreadyExists('SSH_KEY_EXISTS', 'That key is already registered');
      throw e;
    }
  }

  async listSshKeys(req: identityV1.ListSshKeysRequest): Promise<identityV1.ListSshKeysResponse> {
    const u = await this.liveUser(req.userId);
    const rows = await this.knex<SshKeyRow>('ssh_keys').where({ user_id: u.id }).orderBy('id');
    return { keys: rows.map(toSshKey) };
  }

  async removeSshKey(req: identityV1.RemoveSshKeyRequest): Promise<identityV1.RemoveSshKeyResponse> {
    const u = await this.liveUser(req.userId);
    const fp = normalizeSshFingerprint(req.key);
    const q = this.knex('ssh_keys').where({ user_id: u.id });
    if (fp) void q.where({ fingerprint: fp });
    else if (isDbId(req.key, true)) void q.where({ id: req.key });
    else throw errors.invalidArgument('SSH_KEY_REF_INVALID', 'key must be a key id or a SHA256: fingerprint');
    if ((await q.delete()) === 0) throw errors.notFound('SSH_KEY_NOT_FOUND', 'No such key');
    return {};
  }

  private async keyWithUser(fingerprint: string): Promise<{ k: SshKeyRow; u: UserRow } | undefined> {
    const k = await this.knex<SshKeyRow>('ssh_keys').where({ fingerprint }).first();
    if (!k) return undefined;
    const u = await this.userById(idStr(k.user_id));
    if (!u || u.deleted_at !== null) return undefined;
    return { k, u };
  }

  async authenticateSshKey(req: identityV1.AuthenticateSshKeyRequest): Promise<identityV1.AuthenticateSshKeyResponse> {
    if (req.username === '') throw errors.invalidArgument('USERNAME_REQUIRED', 'username is required');
    let fp: string | undefined;
    if (req.keyBlob.length > 0) {
      const p = parseSshKeyBlob(Buffer.from(req.keyBlob));
      if (!p.ok) throw errors.invalidArgument(p.reason, p.message);
      fp = p.key.fingerprint;
    } else {
      fp = normalizeSshFingerprint(req.fingerprint);
      if (!fp) throw errors.invalidArgument('SSH_FINGERPRINT_INVALID', 'key_blob or a SHA256: fingerprint is required');
    }
    const hit = await this.keyWithUser(fp);
    if (!hit || hit.u.username_fold !== foldName(req.username)) throw invalidCredentials();
    if (req.keyBlob.length > 0 && !Buffer.from(req.keyBlob).equals(Buffer.from(hit.k.key_blob)))
      throw invalidCredentials();
    await this.knex('ssh_keys').where({ id: hit.k.id }).update({ last_used_at: this.date() });
    return { user: this.user(hit.u), key: toSshKey(hit.k) };
  }

  async findSshKey(req: identityV1.FindSshKeyRequest): Promise<identityV1.FindSshKeyResponse> {
    const fp = normalizeSshFingerprint(req.fingerprint);
    if (!fp) throw errors.invalidArgument('SSH_FINGERPRINT_INVALID', 'fingerprint must be SHA256:<base64>');
    const hit = await this.keyWithUser(fp);
    if (!hit) throw errors.notFound('SSH_KEY_NOT_FOUND', 'No account has that key');
    return { user: this.user(hit.u), key: toSshKey(hit.k) };
  }

  // ================================================================= app passwords

  async createAppPassword(req: identityV1.CreateAppPasswordRequest): Promise<identityV1.CreateAppPasswordResponse> {
    const u = await this.liveUser(req.userId);
    const name = req.name.trim();
    if ([...name].length < 1 || [...name].length > 32 || !isSafeLine(name))
      throw errors.invalidArgument('APP_PASSWORD_NAME_INVALID', 'Name must be 1-32 characters');
    const scopes = req.scopes.length === 0 ? ['all'] : [...new Set(req.scopes)];
    const bad = scopes.filter((s) => !isAppPasswordScope(s));
    if (bad.length > 0)
      throw errors.invalidArgument(
        'APP_PASSWORD_SCOPE_INVALID',
        `Unknown scope ${bad.join(', ').slice(0, 64)} (ssh, irc, ws, p2p, all)`,
      );
    const limit = (): AppError =>
      errors.failedPrecondition('APP_PASSWORD_LIMIT', `You already have ${MAX_APP_PASSWORDS} app passwords`);
    // Checked before the KDF too, so a full account costs no hashing.
    const [{ n }] = (await this.knex('app_passwords').where({ user_id: u.id }).count({ n: '*' })) as [
      { n: string | number },
    ];
    if (Number(n) >= MAX_APP_PASSWORDS) throw limit();
    const secret = newAppPassword();
    const hash = await hashPassword(secret, this.s.appPasswordKdf);
    try {
      const row = await this.insertUnderLimit<AppPasswordRow>('app_passwords', idStr(u.id), MAX_APP_PASSWORDS, limit, {
        user_id: u.id,
        name,
        scopes,
        secret_hash: hash,
        created_at: this.date(),
      });
      return { appPassword: toAppPassword(row), secret };
    } catch (e) {
      if (uniqueViolation(e) !== undefined)
        throw errors.alreadyExists('APP_PASSWORD_EXISTS', 'An app password with that name exists');
      throw e;
    }
  }

  async listAppPasswords(req: identityV1.ListAppPasswordsRequest): Promise<identityV1.ListAppPasswordsResponse> {
    const u = await this.liveUser(req.userId);
    const rows = await this.knex<AppPasswordRow>('app_passwords').where({ user_id: u.id }).orderBy('id');
    return { appPasswords: rows.map(toAppPassword) };
  }

  async revokeAppPassword(req: identityV1.RevokeAppPasswordRequest): Promise<identityV1.RevokeAppPasswordResponse> {
    const u = await this.liveUser(req.userId);
    if (req.appPassword === '' || req.appPassword.length > 64 || !isSafeLine(req.appPassword))
      throw errors.invalidArgument('APP_PASSWORD_REF_INVALID', 'app_password (id or name) is required');
    const n = await this.knex('app_passwords')
      .where({ user_id: u.id })
      .where((w) => {
        void w.where({ name: req.appPassword });
        if (isDbId(req.appPassword, true)) void w.orWhere({ id: req.appPassword });
      })
      .delete();
    if (n === 0) throw errors.notFound('APP_PASSWORD_NOT_FOUND', 'No such app password');
    return {};
  }

  async verifyAppPassword(req: identityV1.VerifyAppPasswordRequest): Promise<identityV1.VerifyAppPasswordResponse> {
    this.requireCredentials(req.username, req.secret);
    const r = await this.throttled(req.username, req.clientAddress, async () =>
      this.checkAppPassword(await this.userByFold(foldName(req.username)), req.secret, req.protocol),
    );
    if (isBanActive(r.u, this.now())) throw banned(r.u);
    return { user: this.user(r.u), appPassword: toAppPassword(r.ap) };
  }

  // ================================================================= client certificates

  private certFingerprint(req: identityV1.AddClientCertificateRequest): string {
    if (req.certificate.length > 0) {
      let der = Buffer.from(req.certificate);
      const text = der.toString('latin1');
      if (text.includes('-----BEGIN CERTIFICATE-----')) {
        const m = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(text);
        if (!m) throw errors.invalidArgument('CERTIFICATE_INVALID', 'Not a PEM certificate');
        der = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
      }
      try {
        const x = new X509Certificate(der);
        return createHash('sha256').update(x.raw).digest('hex');
      } catch {
        throw errors.invalidArgument('CERTIFICATE_INVALID', 'Not a valid X.509 certificate (DER or PEM)');
      }
    }
    const fp = certFingerprintOf(req.fingerprint);
    if (!fp)
      throw errors.invalidArgument(
        'CERT_FINGERPRINT_INVALID',
        'fingerprint must be 64 hex digits (SHA-256 of the DER certificate)',
      );
    return fp;
  }

  async addClientCertificate(
    req: identityV1.AddClientCertificateRequest,
  ): Promise<identityV1.AddClientCertificateResponse> {
    const u = await this.liveUser(req.userId);
    const fp = this.certFingerprint(req);
    if (req.name.length > 64 || !isSafeLine(req.name))
      throw errors.invalidArgument('CERT_NAME_INVALID', 'name must be at most 64 characters');
    try {
      const row = await this.insertUnderLimit<CertRow>(
        'client_certificates',
        idStr(u.id),
        MAX_CERTIFICATES,
        () => errors.failedPrecondition('CERTIFICATE_LIMIT', `You already have ${MAX_CERTIFICATES} certificates`),
        { fingerprint: fp, user_id: u.id, name: req.name, created_at: this.date() },
      );
      return { certificate: toCert(row) };
    } catch (e) {
      if (uniqueViolation(e) !== undefined)
        throw errors.alreadyExists('CERTIFICATE_EXISTS', 'That certificate is already registered');
      throw e;
    }
  }

  async listClientCertificates(
    req: identityV1.ListClientCertificatesRequest,
  ): Promise<identityV1.ListClientCertificatesResponse> {
    const u = await this.liveUser(req.userId);
    const rows = await this.knex<CertRow>('client_certificates').where({ user_id: u.id }).orderBy('created_at');
    return { certificates: rows.map(toCert) };
  }

  async removeClientCertificate(
    req: identityV1.RemoveClientCertificateRequest,
  ): Promise<identityV1.RemoveClientCertificateResponse> {
    const u = await this.liveUser(req.userId);
    // A malformed fingerprint (a NUL byte PostgreSQL refuses, megabytes of text) is nobody's certificate.
    const fp = certFingerprintOf(req.fingerprint);
    const n = fp ? await this.knex('client_certificates').where({ user_id: u.id, fingerprint: fp }).delete() : 0;
    if (n === 0) throw errors.notFound('CERTIFICATE_NOT_FOUND', 'No such certificate');
    return {};
  }

  async lookupByCertFingerprint(
    req: identityV1.LookupByCertFingerprintRequest,
  ): Promise<identityV1.LookupByCertFingerprintResponse> {
    const fp = certFingerprintOf(req.fingerprint);
    if (!fp) throw errors.invalidArgument('CERT_FINGERPRINT_INVALID', 'fingerprint must be 64 hex digits');
    const c = await this.knex<CertRow>('client_certificates').where({ fingerprint: fp }).first();
    const u = c ? await this.userById(idStr(c.user_id)) : undefined;
    if (!u || u.deleted_at !== null) throw errors.notFound('CERTIFICATE_NOT_FOUND', 'No account has that certificate');
    if (isBanActive(u, this.now())) throw banned(u);
    return { user: this.user(u) };
  }

  // ================================================================= E2E key directory

  async publishE2EKey(req: identityV1.PublishE2EKeyRequest): Promise<identityV1.PublishE2EKeyResponse> {
    this.requireCredentials(req.username, req.secret);
    const b = parseBundle(Buffer.from(req.bundle));
    if (!b.ok) throw errors.invalidArgument(b.reason, b.message);
    const r = await this.verifyPassword({
      username: req.username,
      secret: req.secret,
      protocol: 'p2p',
      clientAddress: req.clientAddress,
    });
    const u = (await this.userById(r.user!.id))!;
    if (isBanActive(u, this.now())) throw banned(u);
    if (foldName(b.bundle.name) !== u.username_fold)
      throw errors.invalidArgument('BUNDLE_NAME_MISMATCH', 'The bundle name must be the account name');
    const now = this.date();
    try {
      const row = await this.knex.transaction(async (trx) => {
        const cur = await trx<E2EKeyRow>('e2e_keys').where({ user_id: u.id, is_current: true }).forUpdate().first();
        if (cur && cur.fingerprint === b.bundle.fingerprint) {
          if (cur.revoked_at)
            throw errors.failedPrecondition('E2E_KEY_REVOKED', 'That key was revoked; publish a new one');
          return cur;
        }
        if (cur && !cur.revoked_at && !req.replace)
          throw errors.alreadyExists(
            'E2E_KEY_EXISTS',
            'This account already has a different key; replace it explicitly',
          );
        const other = await trx<E2EKeyRow>('e2e_keys').where({ fingerprint: b.bundle.fingerprint }).first();
        if (other)
          throw errors.alreadyExists('E2E_KEY_IN_USE', 'That key was published before and cannot be published again');
        if (cur) await trx('e2e_keys').where({ id: cur.id }).update({ is_current: false });
        const [ins] = (await trx('e2e_keys')
          .insert({
            user_id: u.id,
            fingerprint: b.bundle.fingerprint,
            bundle: b.bundle.raw,
            ed25519: b.bundle.ed25519,
            x25519: b.bundle.x25519,
            bundle_created_at: new Date(b.bundle.createdAtMs),
            published_at: now,
            is_current: true,
          })
          .returning('*')) as E2EKeyRow[];
        return ins!;
      });
      return { key: toE2EKey(row, u, this.now()) };
    } catch (e) {
      if (uniqueViolation(e) !== undefined)
        throw errors.alreadyExists('E2E_KEY_EXISTS', 'A key was published concurrently; retry');
      throw e;
    }
  }

  async getE2EKey(req: identityV1.GetE2EKeyRequest): Promise<identityV1.GetE2EKeyResponse> {
    let k: E2EKeyRow | undefined;
    let u: UserRow | undefined;
    if (req.username !== '') {
      u = await this.userByFold(foldName(req.username));
      k = u ? await this.knex<E2EKeyRow>('e2e_keys').where({ user_id: u.id, is_current: true }).first() : undefined;
    } else if (req.fingerprint !== '') {
      const fp = normalizeE2EFingerprint(req.fingerprint);
      if (!fp) throw errors.invalidArgument('E2E_FINGERPRINT_INVALID', 'fingerprint must be 64 hex digits');
      k = await this.knex<E2EKeyRow>('e2e_keys').where({ fingerprint: fp }).first();
      u = k ? await this.userById(idStr(k.user_id)) : undefined;
    } else {
      throw errors.invalidArgument('E2E_LOOKUP_INVALID', 'username or fingerprint is required');
    }
    if (!k || !u) throw errors.notFound('E2E_KEY_NOT_FOUND', 'No key published');
    return { key: toE2EKey(k, u, this.now()) };
  }

  async getE2EKeyHistory(req: identityV1.GetE2EKeyHistoryRequest): Promise<identityV1.GetE2EKeyHistoryResponse> {
    const u =
      req.userId !== ''
        ? await this.userById(requireUserId(req.userId))
        : req.username !== ''
          ? await this.userByFold(foldName(req.username))
          : undefined;
    if (req.userId === '' && req.username === '')
      throw errors.invalidArgument('USER_REQUIRED', 'user_id or username is required');
    if (!u) throw userNotFound();
    const rows = await this.knex<E2EKeyRow>('e2e_keys')
      .where({ user_id: u.id })
      .orderBy([
        { column: 'published_at', order: 'desc' },
        { column: 'id', order: 'desc' },
      ]);
    return { keys: rows.map((k) => toE2EKey(k, u, this.now())) };
  }

  async revokeE2EKey(req: identityV1.RevokeE2EKeyRequest): Promise<identityV1.RevokeE2EKeyResponse> {
    const u = await this.liveUser(req.userId);
    const fp = normalizeE2EFingerprint(req.fingerprint);
    if (!fp) throw errors.invalidArgument('E2E_FINGERPRINT_INVALID', 'fingerprint must be 64 hex digits');
    const [row] = (await this.knex('e2e_keys')
      .where({ user_id: u.id, fingerprint: fp })
      .update({ revoked_at: this.knex.raw('coalesce(revoked_at, ?)', [this.date()]) })
      .returning('*')) as E2EKeyRow[];
    if (!row) throw errors.notFound('E2E_KEY_NOT_FOUND', 'No such key for this account');
    return { key: toE2EKey(row, u, this.now()) };
  }
}

/** The columns VerifyToken reads on a cache miss. */
interface VerifyRow {
  sid: string;
  user_id: string;
  expires_at: Date;
  scopes: string[] | string;
  username: string;
  display_name: string;
  role: string;
}

const ROLE_NUM: Record<string, identityV1.Role> = {
  user: Role.ROLE_USER,
  sysop: Role.ROLE_SYSOP,
  guest: Role.ROLE_GUEST,
};
