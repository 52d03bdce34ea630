/**
 * PostCoalescer: a door's posts, from all its connections, gathered into PostMessages calls with one
 * principal per message. What arrives in one event-loop turn goes out as one call (at most `maxBatch`
 * messages, at most `maxInFlight` calls at once; what arrives meanwhile forms the next call), so the cost of
 * a gRPC call is shared by every connection posting at that moment instead of paid per message.
 *
 * Ordering: `postMany` keeps one author's messages consecutive and in order inside one call (when they fit in
 * `maxBatch`), and message-store assigns ids in request order, so a connection with one batch in flight gets
 * increasing ids. Each message has its own outcome (`PostResult.errorCode`); a failed call rejects every
 * message of it with the call's AppError. Calls are retry-safe when every message carries a client key.
 */
import { Batcher } from '@hubbub/runtime';
import { postedAsSent } from '@hubbub/proto';
import type { messagesV1 } from '@hubbub/proto';
import type { MessageStoreClient, MsgCallOptions } from './client';
import type { PostSender } from './nats-post';

export interface PostCoalescerOptions {
  /** Messages per call; default 256 (message-store accepts up to its MESSAGE_STORE_MAX_BATCH_MESSAGES). */
  readonly maxBatch?: number;
  /** Calls in flight at once; default 4 (what arrives meanwhile forms the next, larger call). */
  readonly maxInFlight?: number;
  readonly callOptions?: MsgCallOptions;
  /** How a call is sent; default the gRPC client's postMessages (doors pass natsPostSender). */
  readonly send?: PostSender;
  /**
   * Ask for the lean reply (PostMessagesRequest.lean_reply); default true. Results are the same either way: the
   * coalescer rebuilds the messages stored as sent (PostResult.as_sent) with @hubbub/proto postedAsSent.
   */
  readonly leanReply?: boolean;
}

export const DEFAULT_COALESCE_MAX_BATCH = 256;
export const DEFAULT_COALESCE_MAX_IN_FLIGHT = 4;

interface Item {
  readonly principal: messagesV1.Principal;
  readonly message: messagesV1.NewMessage;
}

export class PostCoalescer {
  private readonly batcher: Batcher<Item, messagesV1.PostResult>;

  constructor(client: MessageStoreClient, o: PostCoalescerOptions = {}) {
    const send: PostSender = o.send ?? ((req, opts) => client.postMessages(req, opts));
    this.batcher = new Batcher<Item, messagesV1.PostResult>({
      windowMs: 0,
      maxItems: Math.max(1, o.maxBatch ?? DEFAULT_COALESCE_MAX_BATCH),
      maxInFlight: Math.max(1, o.maxInFlight ?? DEFAULT_COALESCE_MAX_IN_FLIGHT),
      run: async (items) => {
        // One author's batch (the common case for irc-binary) carries its principal once.
        const first = items[0]!.principal;
        const shared = items.every((i) => i.principal === first);
        const res = await send(
          {
            principal: shared ? first : undefined,
            principals: shared ? [] : items.map((i) => i.principal),
            messages: items.map((i) => i.message),
            // Posts stored as sent come back as their ids; rebuilt here from the request (docs/adr/0005).
            leanReply: o.leanReply ?? true,
          },
          o.callOptions,
        );
        const results = res.results;
        for (let i = 0; i < results.length; i++) {
          const r = results[i]!;
          const item = items[i];
          if (r.asSent && r.message && item) {
            results[i] = { ...r, message: postedAsSent(item.principal, item.message, r.message.id), asSent: false };
          }
        }
        return results;
      },
    });
  }

  /** Calls made and messages sent so far (metrics). */
  get stats(): { readonly batches: number; readonly items: number; readonly maxBatch: number } {
    return this.batcher.stats;
  }

  post(principal: messagesV1.Principal, message: messagesV1.NewMessage): Promise<messagesV1.PostResult> {
    return this.batcher.submit({ principal, message });
  }

  /** One author's ordered messages; results in the same order. */
  postMany(
    principal: messagesV1.Principal,
    messages: readonly messagesV1.NewMessage[],
  ): Promise<messagesV1.PostResult[]> {
    return this.batcher.submitMany(messages.map((message) => ({ principal, message })));
  }

  /** Refuses new posts; resolves when every queued post has been answered. */
  close(): Promise<void> {
    return this.batcher.close();
  }
}
