/**
 * The operators' NATS request subjects (ARCHITECTURE.md "admin … request subjects, allowed only to the
 * operators' NATS user"): `<prefix>.admin.user.{ban,unban,kick}`, served by identity as services-framework
 * endpoints `admin-user-ban|unban|kick` (queue group `identity`), so `nats micro info identity` lists them.
 *
 *   nats req hubbub.admin.user.ban   '{"username":"mallory","reason":"spam","until":"2026-12-01T00:00:00Z"}'
 *   nats req hubbub.admin.user.unban '{"username":"mallory"}'
 *   nats req hubbub.admin.user.kick  '{"username":"mallory","reason":"cool down"}'
 *
 * Request and reply are proto3 JSON (AdminUserRequest → AdminUserResponse), readable in the NATS CLI. Errors
 * are services-framework errors (gRPC canonical code, `REASON: message`). Who may publish here is NATS's
 * business (deploy/nats/hubbub-auth.conf gives `hubbub.admin.>` to the operator user only); every action is
 * logged with its `by`. Bad input gets INVALID_ARGUMENT and never throws out of the handler.
 */
import { AppError, Code, errors } from '@hubbub/errors';
import { decodeJson, encodeJson, respondAppError, respondBytes } from '@hubbub/nats';
import type { Replyable, Service } from '@hubbub/nats';
import { identityV1 } from '@hubbub/proto';
import type { Logger } from '@hubbub/runtime';
import type { IdentityApp } from '../app/identity';

export const ADMIN_QUEUE = 'identity';
export type AdminAction = 'ban' | 'unban' | 'kick';
const DEFAULT_BY = 'nats-operator';
/** Largest request accepted (a name, a reason and a time fit easily). */
const MAX_REQUEST_BYTES = 4_096;

/** The handler of one action (tests drive it directly). */
export function adminHandler(
  app: Pick<IdentityApp, 'resolveAccount' | 'ban' | 'unban' | 'kick'>,
  action: AdminAction,
  log: Logger,
): (m: Replyable) => Promise<void> {
  return async (m) => {
    try {
      if (m.data.length > MAX_REQUEST_BYTES)
        throw errors.invalidArgument('REQUEST_TOO_LARGE', `requests are at most ${MAX_REQUEST_BYTES} bytes`);
      let req: identityV1.AdminUserRequest;
      try {
        req = decodeJson(identityV1.AdminUserRequest, m.data);
      } catch {
        throw errors.invalidArgument('BAD_REQUEST', 'not the JSON of hubbub.identity.v1.AdminUserRequest');
      }
      const by = req.by || DEFAULT_BY;
      const userId = await app.resolveAccount({ userId: req.userId, username: req.username });
      let res: identityV1.AdminUserResponse;
      if (action === 'ban') {
        res = { ...(await app.ban({ userId, reason: req.reason, until: req.until, by })), sessionsRevoked: 0 };
      } else if (action === 'unban') {
        res = { ...(await app.unban({ userId, by })), sessionsRevoked: 0 };
      } else {
        res = await app.kick({ userId, reason: req.reason, by });
      }
      log.info({ action, userId, by, code: 'IDENTITY_ADMIN_ACTION' }, 'operator action over NATS');
      respondBytes(m, encodeJson(identityV1.AdminUserResponse, res));
    } catch (e) {
      const err = AppError.from(e);
      if (err.code === Code.INTERNAL)
        log.error({ err: e, action, code: 'IDENTITY_ADMIN_INTERNAL' }, 'admin action failed');
      else log.warn({ action, reason: err.reason, code: 'IDENTITY_ADMIN_REFUSED' }, 'admin action refused');
      respondAppError(m, err);
    }
  };
}

/** Registers the three endpoints on identity's NATS service. */
export function addAdminEndpoints(
  natsSvc: Service,
  app: Pick<IdentityApp, 'resolveAccount' | 'ban' | 'unban' | 'kick'>,
  o: { subject: (action: AdminAction) => string; log: Logger },
): void {
  for (const action of ['ban', 'unban', 'kick'] as const) {
    const handle = adminHandler(app, action, o.log);
    natsSvc.addEndpoint(`admin-user-${action}`, {
      subject: o.subject(action),
      queue: ADMIN_QUEUE,
      handler: (err, m) => {
        if (err) {
          o.log.warn({ err, code: 'IDENTITY_ADMIN_ENDPOINT' }, 'admin endpoint subscription error');
          return;
        }
        void handle(m);
      },
      metadata: { request: 'hubbub.identity.v1.AdminUserRequest', reply: 'hubbub.identity.v1.AdminUserResponse' },
    });
  }
}
