/**
 * The operators' NATS request subjects served by message-store (ARCHITECTURE.md "admin (broadcast, kick, ban,
 * channel create) … request subjects, allowed only to the operators' NATS user"): `<prefix>.admin.channel.create`
 * and `<prefix>.admin.broadcast`, services-framework endpoints `admin-channel-create` and `admin-broadcast`
 * (queue group `message-store`), so `nats micro info message-store` lists them.
 *
 *   nats req hubbub.admin.channel.create '{"slug":"announcements","title":"News","kind":"CHANNEL_KIND_CHANNEL"}'
 *   nats req hubbub.admin.broadcast      '{"text":"maintenance at 22:00","channels":["general"]}'
 *
 * Request and reply are proto3 JSON (hubbub.messages.v1.AdminChannelCreateRequest → AdminChannelCreateResponse,
 * AdminBroadcastRequest → AdminBroadcastResponse), readable in the NATS CLI. Errors are services-framework errors
 * (gRPC canonical code, `REASON: message`). Who may publish here is NATS's business (deploy/nats/hubbub-auth.conf
 * gives `hubbub.admin.>` to the operator user only); every action is logged with its `by`
 * (MESSAGE_STORE_ADMIN_ACTION; refusals MESSAGE_STORE_ADMIN_REFUSED; failures MESSAGE_STORE_ADMIN_INTERNAL;
 * an answer too large for NATS, which the broadcast's up-front size check makes rare,
 * MESSAGE_STORE_ADMIN_REPLY_TOO_LARGE).
 * Bad input gets an error reply and never throws out of the handler (@hubbub/nats operator endpoints: one JSON
 * object of the request type within its size limit, `by` one line of at most 64 bytes).
 */
import { addOperatorEndpoint, encodeJson, operatorHandler } from '@hubbub/nats';
import type { OperatorEndpoint, OperatorEndpointsOptions, Replyable, Service } from '@hubbub/nats';
import { messagesV1 } from '@hubbub/proto';
import type { Logger } from '@hubbub/runtime';
import type { MessageService } from '../app/message-service';

export const ADMIN_QUEUE = 'message-store';
/** Largest channel-create request: slug, title (256 bytes) and info (4096 bytes), JSON-escaped, fit easily. */
export const MAX_CHANNEL_CREATE_REQUEST_BYTES = 32 * 1024;
/** Largest broadcast request: the text JSON-escaped (at most 6 bytes per byte) plus 1,000 escaped slugs. */
export function maxBroadcastRequestBytes(maxTextBytes: number): number {
  return 6 * maxTextBytes + 256 * 1024;
}

export type AdminApp = Pick<MessageService, 'adminCreateChannel' | 'adminBroadcast' | 'flushEvents'>;

export interface AdminOptions {
  readonly log: Logger;
  /** The service's message text limit (sizes the broadcast request limit). */
  readonly maxTextBytes: number;
  /** Largest reply the NATS server accepts (its max_payload). */
  readonly maxReplyBytes: () => number;
}

function operatorOptions(o: AdminOptions): OperatorEndpointsOptions {
  return {
    queue: ADMIN_QUEUE,
    package: 'hubbub.messages.v1',
    log: o.log,
    maxReplyBytes: o.maxReplyBytes,
    logCodes: {
      action: 'MESSAGE_STORE_ADMIN_ACTION',
      refused: 'MESSAGE_STORE_ADMIN_REFUSED',
      internal: 'MESSAGE_STORE_ADMIN_INTERNAL',
      replyTooLarge: 'MESSAGE_STORE_ADMIN_REPLY_TOO_LARGE',
      endpoint: 'MESSAGE_STORE_ADMIN_ENDPOINT',
    },
  };
}

function channelCreate(app: AdminApp, subject: string): OperatorEndpoint<messagesV1.AdminChannelCreateRequest> {
  return {
    name: 'admin-channel-create',
    action: 'channel-create',
    subject,
    request: messagesV1.AdminChannelCreateRequest,
    types: { request: 'AdminChannelCreateRequest', reply: 'AdminChannelCreateResponse' },
    maxRequestBytes: MAX_CHANNEL_CREATE_REQUEST_BYTES,
    by: (req) => req.by,
    run: async (req) => {
      const res = await app.adminCreateChannel(req);
      const c = res.channel!;
      return {
        reply: encodeJson(messagesV1.AdminChannelCreateResponse, res),
        fields: { channelId: c.id, slug: c.slug, kind: c.kind, visibility: c.visibility, ownerId: c.ownerId },
      };
    },
  };
}

function broadcast(
  app: AdminApp,
  subject: string,
  o: AdminOptions,
): OperatorEndpoint<messagesV1.AdminBroadcastRequest> {
  return {
    name: 'admin-broadcast',
    action: 'broadcast',
    subject,
    request: messagesV1.AdminBroadcastRequest,
    types: { request: 'AdminBroadcastRequest', reply: 'AdminBroadcastResponse' },
    maxRequestBytes: maxBroadcastRequestBytes(o.maxTextBytes),
    by: (req) => req.by,
    run: async (req) => {
      const res = await app.adminBroadcast(req, { maxReplyBytes: o.maxReplyBytes() });
      // The messages' events leave before the reply (as for posts over gRPC and NATS).
      app.flushEvents();
      return {
        reply: encodeJson(messagesV1.AdminBroadcastResponse, { messages: res.messages }),
        fields: {
          channelIds: res.messages.map((x) => x.channelId),
          messageIds: res.messages.map((x) => x.id),
          duplicates: res.duplicates,
          textBytes: Buffer.byteLength(req.text, 'utf8'),
        },
      };
    },
  };
}

/** `<prefix>.admin.channel.create` (tests drive it directly; the subject is not used). */
export function channelCreateHandler(app: AdminApp, o: AdminOptions): (m: Replyable) => Promise<void> {
  return operatorHandler(channelCreate(app, ''), operatorOptions(o));
}

/** `<prefix>.admin.broadcast` (tests drive it directly; the subject is not used). */
export function broadcastHandler(app: AdminApp, o: AdminOptions): (m: Replyable) => Promise<void> {
  return operatorHandler(broadcast(app, '', o), operatorOptions(o));
}

/** Registers both endpoints on message-store's NATS service. */
export function addAdminEndpoints(
  natsSvc: Service,
  app: AdminApp,
  o: AdminOptions & { readonly subjects: { readonly channelCreate: string; readonly broadcast: string } },
): void {
  const oo = operatorOptions(o);
  addOperatorEndpoint(natsSvc, channelCreate(app, o.subjects.channelCreate), oo);
  addOperatorEndpoint(natsSvc, broadcast(app, o.subjects.broadcast, o), oo);
}
