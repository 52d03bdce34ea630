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
 * Bad input gets an error reply and never throws out of the handler.
 */
import { AppError, Code, errors } from '@hubbub/errors';
import { decodeJson, encodeJson, respondAppError, respondBytes } from '@hubbub/nats';
import type { JsonCodec, Replyable, Service } from '@hubbub/nats';
import { messagesV1 } from '@hubbub/proto';
import type { Logger } from '@hubbub/runtime';
import type { MessageService } from '../app/message-service';

export const ADMIN_QUEUE = 'message-store';
export type AdminAction = 'channel-create' | 'broadcast';
const DEFAULT_BY = 'nats-operator';
/** Longest `by` (an operator's name for the log). */
export const MAX_BY_BYTES = 64;
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

interface Done {
  readonly reply: Uint8Array;
  /** Logged with MESSAGE_STORE_ADMIN_ACTION. */
  readonly fields: Record<string, unknown>;
}

function decode<T>(codec: JsonCodec<T>, type: string, data: Uint8Array, maxBytes: number): T {
  if (data.length > maxBytes)
    throw errors.invalidArgument('REQUEST_TOO_LARGE', `requests are at most ${maxBytes} bytes`);
  try {
    // A JSON object, nothing else (ts-proto's fromJSON would read `[]` or `"x"` as an empty request).
    let i = 0;
    while (i < data.length && (data[i] === 0x20 || data[i] === 0x09 || data[i] === 0x0a || data[i] === 0x0d)) i++;
    if (data[i] !== 0x7b) throw new Error('not a JSON object');
    return decodeJson(codec, data);
  } catch {
    throw errors.invalidArgument('BAD_REQUEST', `not the JSON of hubbub.messages.v1.${type}`);
  }
}

function byOf(by: string): string {
  if (by === '') return DEFAULT_BY;
  // eslint-disable-next-line no-control-regex
  if (Buffer.byteLength(by, 'utf8') > MAX_BY_BYTES || /[\u0000-\u001f\u007f]/.test(by))
    throw errors.invalidArgument('BY_INVALID', `by is one line of at most ${MAX_BY_BYTES} bytes`);
  return by;
}

/** Runs one action: answers the reply or the error, logs the outcome, never throws. */
function serve(
  action: AdminAction,
  log: Logger,
  maxReplyBytes: () => number,
  run: (m: Replyable, setBy: (by: string) => void) => Promise<Done>,
): (m: Replyable) => Promise<void> {
  return async (m) => {
    let by: string | undefined;
    try {
      const done = await run(m, (b) => (by = b));
      log.info({ action, by, ...done.fields, code: 'MESSAGE_STORE_ADMIN_ACTION' }, 'operator action over NATS');
      const max = maxReplyBytes();
      if (done.reply.length > max) {
        // Done (the line above has the ids), but the answer cannot travel in one NATS message.
        log.warn(
          { action, by, bytes: done.reply.length, max, code: 'MESSAGE_STORE_ADMIN_REPLY_TOO_LARGE' },
          'admin reply too large for NATS',
        );
        respondAppError(
          m,
          errors.resourceExhausted('REPLY_TOO_LARGE', `done, but the reply exceeds ${max} bytes (see the log)`),
        );
        return;
      }
      respondBytes(m, done.reply);
    } catch (e) {
      const err = AppError.from(e);
      if (err.code === Code.INTERNAL)
        log.error({ err: e, action, by, code: 'MESSAGE_STORE_ADMIN_INTERNAL' }, 'admin action failed');
      else
        log.warn(
          { action, by, status: err.code, reason: err.reason, code: 'MESSAGE_STORE_ADMIN_REFUSED' },
          'admin action refused',
        );
      respondAppError(m, err);
    }
  };
}

/** `<prefix>.admin.channel.create` (tests drive it directly). */
export function channelCreateHandler(app: AdminApp, o: AdminOptions): (m: Replyable) => Promise<void> {
  return serve('channel-create', o.log, o.maxReplyBytes, async (m, setBy) => {
    const req = decode(
      messagesV1.AdminChannelCreateRequest,
      'AdminChannelCreateRequest',
      m.data,
      MAX_CHANNEL_CREATE_REQUEST_BYTES,
    );
    setBy(byOf(req.by));
    const res = await app.adminCreateChannel(req);
    const c = res.channel!;
    return {
      reply: encodeJson(messagesV1.AdminChannelCreateResponse, res),
      fields: { channelId: c.id, slug: c.slug, kind: c.kind, visibility: c.visibility, ownerId: c.ownerId },
    };
  });
}

/** `<prefix>.admin.broadcast` (tests drive it directly). */
export function broadcastHandler(app: AdminApp, o: AdminOptions): (m: Replyable) => Promise<void> {
  const maxRequest = maxBroadcastRequestBytes(o.maxTextBytes);
  return serve('broadcast', o.log, o.maxReplyBytes, async (m, setBy) => {
    const req = decode(messagesV1.AdminBroadcastRequest, 'AdminBroadcastRequest', m.data, maxRequest);
    setBy(byOf(req.by));
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
  });
}

/** Registers both endpoints on message-store's NATS service. */
export function addAdminEndpoints(
  natsSvc: Service,
  app: AdminApp,
  o: AdminOptions & { readonly subjects: { readonly channelCreate: string; readonly broadcast: string } },
): void {
  const endpoints = [
    {
      name: 'admin-channel-create',
      subject: o.subjects.channelCreate,
      handle: channelCreateHandler(app, o),
      types: ['AdminChannelCreateRequest', 'AdminChannelCreateResponse'],
    },
    {
      name: 'admin-broadcast',
      subject: o.subjects.broadcast,
      handle: broadcastHandler(app, o),
      types: ['AdminBroadcastRequest', 'AdminBroadcastResponse'],
    },
  ] as const;
  for (const e of endpoints) {
    natsSvc.addEndpoint(e.name, {
      subject: e.subject,
      queue: ADMIN_QUEUE,
      handler: (err, m) => {
        if (err) {
          o.log.warn(
            { err, endpoint: e.name, code: 'MESSAGE_STORE_ADMIN_ENDPOINT' },
            'admin endpoint subscription error',
          );
          return;
        }
        void e.handle(m);
      },
      metadata: { request: `hubbub.messages.v1.${e.types[0]}`, reply: `hubbub.messages.v1.${e.types[1]}` },
    });
  }
}
