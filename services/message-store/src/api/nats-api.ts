/**
 * The doors' hot path for posts over NATS request/reply (docs/adr/0003): the `post-messages` endpoint of the
 * message-store NATS service, subject `<prefix>.rpc.messages.post`, queue group `message-store`.
 *
 * Request: binary PostMessagesRequest. Reply (only after the PostgreSQL commit, as on gRPC): binary
 * PostMessagesResponse, or a services-framework error whose code is the gRPC canonical code and whose
 * description is `REASON: message`. Hostile input (undecodable bytes, too many calls at once) gets an error
 * reply with a stable reason and is logged; it never throws out of the handler.
 */
import { AppError, Code, errors } from '@hubbub/errors';
import { respondAppError, respondBytes } from '@hubbub/nats';
import type { Replyable, Service } from '@hubbub/nats';
import { messagesV1 } from '@hubbub/proto';
import type { Logger } from '@hubbub/runtime';
import type { MessageService } from '../app/message-service';

export const POST_ENDPOINT = 'post-messages';
export const POST_QUEUE = 'message-store';

export interface PostEndpointOptions {
  readonly subject: string;
  readonly log: Logger;
  /** Calls handled at once; more get RESOURCE_EXHAUSTED (the door falls back to gRPC). */
  readonly maxInFlight: number;
  /** Largest reply the NATS server accepts (its max_payload). */
  readonly maxReplyBytes: () => number;
  readonly onCall?: (result: 'ok' | 'error' | 'refused') => void;
}

/** Serves PostMessages on NATS; returns the handler (tests drive it directly). */
export function addPostEndpoint(
  natsSvc: Service,
  service: MessageService,
  o: PostEndpointOptions,
): (m: Replyable) => Promise<void> {
  let inFlight = 0;
  const fail = (m: Replyable, e: AppError): void => {
    service.flushEvents();
    // Never throws (a reply on a connection closed meanwhile is dropped): the caller times out and retries.
    respondAppError(m, e);
  };
  const handle = async (m: Replyable): Promise<void> => {
    if (inFlight >= o.maxInFlight) {
      o.onCall?.('refused');
      fail(m, errors.resourceExhausted('BUSY', 'too many post calls in flight; use gRPC or retry'));
      return;
    }
    let req: messagesV1.PostMessagesRequest;
    try {
      req = messagesV1.PostMessagesRequest.decode(m.data);
    } catch (err) {
      o.onCall?.('refused');
      o.log.warn({ err, code: 'MS_NATS_BAD_REQUEST', bytes: m.data.length }, 'undecodable PostMessagesRequest on NATS');
      fail(m, errors.invalidArgument('BAD_REQUEST', 'not a PostMessagesRequest'));
      return;
    }
    inFlight++;
    try {
      const out = messagesV1.PostMessagesResponse.encode(await service.postMessages(req)).finish();
      if (out.length > o.maxReplyBytes()) {
        // Committed, but the answer does not fit a NATS message: the door repeats the call on gRPC, where
        // the client keys return the same messages.
        o.onCall?.('error');
        fail(m, errors.resourceExhausted('REPLY_TOO_LARGE', `reply of ${out.length} bytes exceeds max_payload`));
        return;
      }
      o.onCall?.('ok');
      // The batch's events and this reply leave in one socket write, events first.
      service.flushEvents();
      respondBytes(m, out);
    } catch (e) {
      const err = AppError.from(e);
      o.onCall?.('error');
      if (err.code === Code.INTERNAL) o.log.error({ err: e, code: 'MS_NATS_INTERNAL' }, 'post over NATS failed');
      fail(m, err);
    } finally {
      inFlight--;
    }
  };
  natsSvc.addEndpoint(POST_ENDPOINT, {
    subject: o.subject,
    queue: POST_QUEUE,
    handler: (err, m) => {
      if (err) {
        o.log.warn({ err, code: 'MS_NATS_ENDPOINT' }, 'post endpoint subscription error');
        return;
      }
      void handle(m);
    },
    metadata: { request: 'hubbub.messages.v1.PostMessagesRequest', reply: 'hubbub.messages.v1.PostMessagesResponse' },
  });
  return handle;
}
