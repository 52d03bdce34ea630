/**
 * One MTP request, end to end (spec §2.6): decode → rate → version → authenticate → dispatch.
 * Every path ends in exactly one reply; nothing a peer sends throws out of `handle`.
 */
import { randomBytes } from 'node:crypto';
import { ERROR_TYPE, encodeReply } from '../protocol/frames';
import type { Reply } from '../protocol/frames';
import type { RequestRate } from '../protocol/rate-limit';
import { decodeRequest, rateLimitedReply, versionReply } from '../protocol/request';
import { Detail, Status, WsmErrorCode } from '../protocol/status';
import { isCredentialRefusal, isUnavailable } from './backend';
import { HANDLERS } from './commands';
import type { AppDeps, ConnContext, Ctx } from './context';
import { isDecimalId, sec } from './mapping';
import type { TokenInfo } from './ports';

export interface DispatchResult {
  readonly text: string;
  /** Canonical method or "error"/"unknown" (bounded metric label). */
  readonly label: string;
  readonly code: number;
  /** WSM_ERR_* for dispatcher-level failures. */
  readonly error?: string;
  /** The request authenticated successfully (or logged in / registered). */
  readonly authenticated: boolean;
  /**
   * A malformed frame (415) that found the connection's bucket overdrawn to its limit: the peer keeps sending
   * malformed frames faster than its rate. The transport writes this reply, then closes the connection.
   */
  readonly flood?: boolean;
}

type AuthOutcome = { ok: true; token: TokenInfo } | { ok: false; detail: string } | { ok: 'unavailable' };

export class Dispatcher {
  constructor(private readonly deps: AppDeps) {}

  async handle(conn: ConnContext, text: string | undefined, bucket: RequestRate): Promise<DispatchResult> {
    const nowMs = this.deps.clock.nowMs();
    const T = sec(nowMs);
    const decoded = decodeRequest(text, T);
    if (!decoded.ok) {
      // Steps 1–2 come before the rate check (§2.6) and keep their 415, but the frame was read and parsed all
      // the same: it is charged to the bucket, or an unbounded stream of them would cost nothing (TokenBucket).
      const flood = bucket.charge(nowMs) === 'exhausted';
      return { ...this.out(decoded.reply, 'error', decoded.code, false), ...(flood ? { flood } : {}) };
    }
    if (!bucket.take(nowMs)) return this.out(rateLimitedReply(T), 'error', WsmErrorCode.RateLimited, false);
    const bad = versionReply(decoded.version, T);
    if (bad) return this.out(bad, 'error', WsmErrorCode.Version, false);

    const spec = decoded.spec;
    const label = spec?.method ?? 'unknown';
    const errorReply = (status: Reply['status'], detail?: string): Reply => ({
      type: ERROR_TYPE,
      status,
      detail,
      data: null,
      time: T,
    });
    let auth: AuthOutcome | undefined;
    try {
      auth = await this.authenticate(decoded.data.user?.[0], nowMs, spec?.auth !== false);
      if (auth.ok === 'unavailable') {
        return this.out(
          errorReply('SERVICE_UNAVAILABLE', Detail.serviceUnavailable),
          'error',
          WsmErrorCode.BackendUnavailable,
          false,
        );
      }
      const authed = auth.ok === true;
      if (!spec || spec.auth !== authed) {
        if (authed) return this.out(errorReply('METHOD_NOT_ALLOWED'), 'error', WsmErrorCode.UnknownType, true);
        return this.out(
          errorReply('UNAUTHORIZED', (auth as { detail: string }).detail),
          'error',
          WsmErrorCode.Auth,
          false,
        );
      }
      const token = auth.ok === true ? auth.token : undefined;
      const ctx: Ctx = {
        type: decoded.type,
        data: decoded.data,
        nowMs,
        T,
        actor: token ? { userId: token.userId, displayName: token.displayName } : undefined,
        token,
        conn,
        deps: this.deps,
      };
      const r = await HANDLERS[spec.method](ctx);
      const ok = r.status === 'OK' || r.status === 'CREATED';
      return this.out(r, label, undefined, authed || ok);
    } catch (e) {
      if (isUnavailable(e)) {
        // Inside a handler the reply keeps the method's type (spec §2.12 "any handled method").
        const type = auth !== undefined ? decoded.type : ERROR_TYPE;
        const r: Reply = {
          type,
          status: 'SERVICE_UNAVAILABLE',
          detail: Detail.serviceUnavailable,
          data: null,
          time: T,
        };
        this.deps.log.warn({ err: e, code: WsmErrorCode.BackendUnavailable, method: label }, 'backend unavailable');
        return this.out(r, label, WsmErrorCode.BackendUnavailable, auth?.ok === true);
      }
      const ref = randomBytes(6).toString('hex');
      this.deps.log.error({ err: e, ref, code: WsmErrorCode.Internal, method: label }, 'request failed');
      return this.out(errorReply('INTERNAL_SERVER_ERROR', Detail.internal(ref)), label, WsmErrorCode.Internal, false);
    }
  }

  /** Step 5 (spec §3.3). `needDetail`: distinguish unknown users (only for methods that need auth). */
  private async authenticate(
    u: { uuid?: string | undefined; auth_id?: string | undefined } | undefined,
    nowMs: number,
    needDetail: boolean,
  ): Promise<AuthOutcome> {
    const notAuth = { ok: false as const, detail: Detail.userNotAuthenticated };
    const failed = { ok: false as const, detail: Detail.authFailed };
    const uuid = u?.uuid;
    if (!isDecimalId(uuid)) return notAuth;
    const token = u?.auth_id;
    const { identity, tokens } = this.deps;
    try {
      if (token !== undefined && token !== '') {
        const cached = tokens.get(token, uuid, nowMs);
        if (cached) return { ok: true, token: cached };
        try {
          const info = await identity.verifyToken(token, uuid);
          tokens.put(token, info, this.deps.clock.nowMs());
          return { ok: true, token: info };
        } catch (e) {
          if (!isCredentialRefusal(e)) throw e;
        }
      }
      if (!needDetail) return notAuth;
      const p = await identity.getUser(uuid);
      return p ? failed : notAuth;
    } catch (e) {
      if (isUnavailable(e)) return { ok: 'unavailable' };
      throw e;
    }
  }

  private out(r: Reply, label: string, error: string | undefined, authenticated: boolean): DispatchResult {
    return {
      text: encodeReply(r),
      label,
      code: Status[r.status].code,
      authenticated,
      ...(error === undefined ? {} : { error }),
    };
  }
}
