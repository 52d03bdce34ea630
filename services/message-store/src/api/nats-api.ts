/**
 * The doors' hot path for posts over NATS request/reply (docs/adr/0003): the `post-messages` endpoint of the
 * message-store NATS service, subject `<prefix>.rpc.messages.post`, queue group `message-store`.
 *
 * Request: binary PostMessagesRequest. Reply (only after the PostgreSQL commit, as on gRPC): binary
 * PostMessagesResponse, or a services-framework error whose code is the gRPC canonical code and whose
 * description is `REASON: message`. Hostile input (undecodable bytes, too many calls at once) gets an error
 * reply with a stable reason and is logged; it never throws out of the handler (@hubbub/nats
 * binaryEndpointHandler). A reply that would not fit a NATS message gets RESOURCE_EXHAUSTED `REPLY_TOO_LARGE`:
 * the batch was committed, and the door repeats the call on gRPC, where the client keys return the same messages.
 */
import { addBinaryEndpoint } from '@hubbub/nats';
import type { EndpointCallResult, Replyable, Service } from '@hubbub/nats';
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
  readonly onCall?: (result: EndpointCallResult) => void;
}

/** Serves PostMessages on NATS; returns the handler (tests drive it directly). */
export function addPostEndpoint(
  natsSvc: Service,
  service: MessageService,
  o: PostEndpointOptions,
): (m: Replyable) => Promise<void> | undefined {
  return addBinaryEndpoint(natsSvc, {
    name: POST_ENDPOINT,
    subject: o.subject,
    queue: POST_QUEUE,
    request: messagesV1.PostMessagesRequest,
    response: messagesV1.PostMessagesResponse,
    types: { package: 'hubbub.messages.v1', request: 'PostMessagesRequest', reply: 'PostMessagesResponse' },
    call: 'post',
    handle: (req) => service.postMessages(req),
    log: o.log,
    logCodes: { badRequest: 'MS_NATS_BAD_REQUEST', internal: 'MS_NATS_INTERNAL', endpoint: 'MS_NATS_ENDPOINT' },
    maxInFlight: o.maxInFlight,
    maxReplyBytes: o.maxReplyBytes,
    // The batch's events and the reply leave in one socket write, events first.
    beforeReply: () => service.flushEvents(),
    ...(o.onCall ? { onCall: o.onCall } : {}),
  });
}
