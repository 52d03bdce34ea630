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
 * logged with its `by` (IDENTITY_ADMIN_ACTION; refusals IDENTITY_ADMIN_REFUSED; failures IDENTITY_ADMIN_INTERNAL).
 * Bad input (more than 4 kB, anything but one JSON object of the request type, a `by` that is not one line of at
 * most 64 bytes) gets INVALID_ARGUMENT and never throws out of the handler (@hubbub/nats operator endpoints).
 */
import { addOperatorEndpoint, encodeJson, operatorHandler } from '@hubbub/nats';
import type { OperatorEndpoint, OperatorEndpointsOptions, Replyable, Service } from '@hubbub/nats';
import { identityV1 } from '@hubbub/proto';
import type { Logger } from '@hubbub/runtime';
import type { IdentityApp } from '../app/identity';

export const ADMIN_QUEUE = 'identity';
export type AdminAction = 'ban' | 'unban' | 'kick';
/** Largest request accepted (a name, a reason and a time fit easily). */
export const MAX_ADMIN_REQUEST_BYTES = 4_096;

export type AdminApp = Pick<IdentityApp, 'resolveAccount' | 'ban' | 'unban' | 'kick'>;

export interface AdminOptions {
  readonly log: Logger;
  /** Largest reply the NATS server accepts (its max_payload). */
  readonly maxReplyBytes: () => number;
}

function operatorOptions(o: AdminOptions): OperatorEndpointsOptions {
  return {
    queue: ADMIN_QUEUE,
    package: 'hubbub.identity.v1',
    log: o.log,
    maxReplyBytes: o.maxReplyBytes,
    logCodes: {
      action: 'IDENTITY_ADMIN_ACTION',
      refused: 'IDENTITY_ADMIN_REFUSED',
      internal: 'IDENTITY_ADMIN_INTERNAL',
      replyTooLarge: 'IDENTITY_ADMIN_REPLY_TOO_LARGE',
      endpoint: 'IDENTITY_ADMIN_ENDPOINT',
    },
  };
}

function endpoint(app: AdminApp, action: AdminAction, subject: string): OperatorEndpoint<identityV1.AdminUserRequest> {
  return {
    name: `admin-user-${action}`,
    action,
    subject,
    request: identityV1.AdminUserRequest,
    types: { request: 'AdminUserRequest', reply: 'AdminUserResponse' },
    maxRequestBytes: MAX_ADMIN_REQUEST_BYTES,
    by: (req) => req.by,
    run: async (req, by) => {
      const userId = await app.resolveAccount({ userId: req.userId, username: req.username });
      let res: identityV1.AdminUserResponse;
      if (action === 'ban') {
        res = { ...(await app.ban({ userId, reason: req.reason, until: req.until, by })), sessionsRevoked: 0 };
      } else if (action === 'unban') {
        res = { ...(await app.unban({ userId, by })), sessionsRevoked: 0 };
      } else {
        res = await app.kick({ userId, reason: req.reason, by });
      }
      return { reply: encodeJson(identityV1.AdminUserResponse, res), fields: { userId } };
    },
  };
}

/** The handler of one action (tests drive it directly; the subject is not used). */
export function adminHandler(app: AdminApp, action: AdminAction, o: AdminOptions): (m: Replyable) => Promise<void> {
  return operatorHandler(endpoint(app, action, ''), operatorOptions(o));
}

/** Registers the three endpoints on identity's NATS service. */
export function addAdminEndpoints(
  natsSvc: Service,
  app: AdminApp,
  o: AdminOptions & { readonly subject: (action: AdminAction) => string },
): void {
  const oo = operatorOptions(o);
  for (const action of ['ban', 'unban', 'kick'] as const)
    addOperatorEndpoint(natsSvc, endpoint(app, action, o.subject(action)), oo);
}
