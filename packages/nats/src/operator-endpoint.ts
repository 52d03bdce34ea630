/**
 * Operator request subjects (ARCHITECTURE.md: `<prefix>.admin.…`, allowed only to the operators' NATS user):
 * services-framework endpoints whose request and reply are proto3 JSON, so the NATS CLI can drive them
 * (`nats req hubbub.admin.user.ban '{"username":"mallory"}'`) and `nats micro info <service>` lists them.
 *
 * One handler shape for every service that serves such subjects (identity, message-store):
 * - a request larger than the endpoint's `maxRequestBytes`, or anything but one JSON object of the request type,
 *   gets INVALID_ARGUMENT (`REQUEST_TOO_LARGE`, `BAD_REQUEST`); ts-proto's fromJSON alone would read `[]` or
 *   `"x"` as an empty request;
 * - `by` (the operator's name, logged with every action) is one line of at most 64 bytes, `nats-operator` when
 *   left empty; anything else is INVALID_ARGUMENT `BY_INVALID`;
 * - the outcome is logged with the service's stable codes: done (`action`), refused (`refused`, with the
 *   status and reason), failed (`internal`), done but the reply does not fit in one NATS message
 *   (`replyTooLarge`, answered RESOURCE_EXHAUSTED `REPLY_TOO_LARGE`);
 * - AppErrors become services-framework errors (gRPC canonical code, `REASON: message`); the handler never
 *   throws, and a reply that cannot be published is dropped.
 *
 * Who may publish on these subjects is NATS's business (deploy/nats/hubbub-auth.conf).
 */
import { AppError, Code, errors } from '@hubbub/errors';
import type { Logger } from '@hubbub/runtime';
import { respondAppError, respondBytes } from './rpc';
import type { Replyable } from './rpc';
import type { Service } from './service';
import { decodeJson } from './typed-subject';
import type { JsonCodec } from './typed-subject';

/** The `by` of a request that names no operator. */
export const DEFAULT_OPERATOR = 'nats-operator';
/** Longest `by` (an operator's name for the log). */
export const MAX_OPERATOR_NAME_BYTES = 64;

/** What one action produced: the JSON reply and the fields its log line carries (ids, names, counts). */
export interface OperatorResult {
  readonly reply: Uint8Array;
  readonly fields?: Record<string, unknown>;
}

export interface OperatorEndpoint<Req> {
  /** Services-framework endpoint name, e.g. `admin-user-ban`. */
  readonly name: string;
  /** Logged as `action`, e.g. `ban`. */
  readonly action: string;
  readonly subject: string;
  readonly request: JsonCodec<Req>;
  /** Proto message names (in the options' package) of request and reply, for texts and endpoint metadata. */
  readonly types: { readonly request: string; readonly reply: string };
  readonly maxRequestBytes: number;
  /** The request's `by` field ('' = not given). */
  readonly by: (req: Req) => string;
  /** The work; `by` is checked (or the default). Its AppErrors become error replies. */
  readonly run: (req: Req, by: string) => Promise<OperatorResult>;
}

export interface OperatorEndpointsOptions {
  /** Queue group (the service's name). */
  readonly queue: string;
  /** Proto package of the request and reply types, e.g. `hubbub.identity.v1`. */
  readonly package: string;
  readonly log: Logger;
  /** Largest reply the NATS server accepts (its max_payload). */
  readonly maxReplyBytes: () => number;
  /** Stable log codes. */
  readonly logCodes: {
    readonly action: string;
    readonly refused: string;
    readonly internal: string;
    readonly replyTooLarge: string;
    readonly endpoint: string;
  };
}

const isSpace = (b: number | undefined): boolean => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;

/** One JSON object of the request type, at most `maxBytes`; anything else is INVALID_ARGUMENT. */
function decodeOperatorRequest<T>(codec: JsonCodec<T>, typeName: string, data: Uint8Array, maxBytes: number): T {
  if (data.length > maxBytes)
    throw errors.invalidArgument('REQUEST_TOO_LARGE', `requests are at most ${maxBytes} bytes`);
  try {
    let i = 0;
    while (isSpace(data[i])) i++;
    if (data[i] !== 0x7b) throw new Error('not a JSON object');
    return decodeJson(codec, data);
  } catch {
    throw errors.invalidArgument('BAD_REQUEST', `not the JSON of ${typeName}`);
  }
}

/** The operator's name: the default when empty, else one line of at most MAX_OPERATOR_NAME_BYTES bytes. */
function operatorName(by: string): string {
  if (by === '') return DEFAULT_OPERATOR;
  // eslint-disable-next-line no-control-regex
  if (Buffer.byteLength(by, 'utf8') > MAX_OPERATOR_NAME_BYTES || /[\u0000-\u001f\u007f]/.test(by))
    throw errors.invalidArgument('BY_INVALID', `by is one line of at most ${MAX_OPERATOR_NAME_BYTES} bytes`);
  return by;
}

/** The handler of one operator endpoint (tests drive it directly): answers, logs the outcome, never throws. */
export function operatorHandler<Req>(
  e: OperatorEndpoint<Req>,
  o: OperatorEndpointsOptions,
): (m: Replyable) => Promise<void> {
  const { action } = e;
  const typeName = `${o.package}.${e.types.request}`;
  return async (m) => {
    let by: string | undefined;
    try {
      const req = decodeOperatorRequest(e.request, typeName, m.data, e.maxRequestBytes);
      by = operatorName(e.by(req));
      const done = await e.run(req, by);
      o.log.info({ action, by, ...done.fields, code: o.logCodes.action }, 'operator action over NATS');
      const max = o.maxReplyBytes();
      if (done.reply.length > max) {
        // Done (the line above has the ids), but the answer cannot travel in one NATS message.
        o.log.warn(
          { action, by, bytes: done.reply.length, max, code: o.logCodes.replyTooLarge },
          'operator reply too large for NATS',
        );
        respondAppError(
          m,
          errors.resourceExhausted('REPLY_TOO_LARGE', `done, but the reply exceeds ${max} bytes (see the log)`),
        );
        return;
      }
      respondBytes(m, done.reply);
    } catch (err) {
      const app = AppError.from(err);
      try {
        if (app.code === Code.INTERNAL)
          o.log.error({ err, action, by, code: o.logCodes.internal }, 'operator action failed');
        else
          o.log.warn(
            { action, by, status: app.code, reason: app.reason, code: o.logCodes.refused },
            'operator action refused',
          );
      } finally {
        respondAppError(m, app);
      }
    }
  };
}

/** Registers one endpoint on a service's NATS service (queue group `o.queue`); returns its handler. */
export function addOperatorEndpoint<Req>(
  svc: Service,
  e: OperatorEndpoint<Req>,
  o: OperatorEndpointsOptions,
): (m: Replyable) => Promise<void> {
  const handle = operatorHandler(e, o);
  svc.addEndpoint(e.name, {
    subject: e.subject,
    queue: o.queue,
    handler: (err, m) => {
      if (err) {
        o.log.warn({ err, endpoint: e.name, code: o.logCodes.endpoint }, 'operator endpoint subscription error');
        return;
      }
      void handle(m);
    },
    metadata: { request: `${o.package}.${e.types.request}`, reply: `${o.package}.${e.types.reply}` },
  });
  return handle;
}
