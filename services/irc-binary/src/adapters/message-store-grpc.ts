/** MessageStorePort over hubbub.messages.v1 through @hubbub/msg-client (retries only retry-safe calls). */
import { isAppError } from '@hubbub/errors';
import type { Code } from '@hubbub/errors';
import { PostCoalescer, newMessage, principal, systemPrincipal } from '@hubbub/msg-client';
import type { MessageStoreClient, PostSender } from '@hubbub/msg-client';
import { messagesV1 } from '@hubbub/proto';
import { BackendUnavailableError } from '../app/ports';
import type { Author, ChannelInfo, MessageStorePort, PostOutcome, PostRequest, StoredMessage } from '../app/ports';

export const DOOR = 'irc-binary';

const RETRYABLE: ReadonlySet<Code> = new Set<Code>([4, 14]); // DEADLINE_EXCEEDED, UNAVAILABLE

export function toStored(m: messagesV1.Message): StoredMessage {
  const a = m.attachments;
  return {
    id: BigInt(m.id),
    channelId: m.channelId,
    authorName: m.authorName,
    text: m.text,
    hasAttachments:
      a !== undefined && [a.filePicture, a.fileVideo, a.fileAudio, a.fileDocument, a.emoji].some((x) => !!x),
  };
}

function isPublicListed(c: messagesV1.Channel): boolean {
  return c.visibility === messagesV1.Visibility.VISIBILITY_PUBLIC && !c.archived;
}

function unavailable(e: unknown): never {
  if (isAppError(e) && RETRYABLE.has(e.code)) throw new BackendUnavailableError(e.message);
  throw e;
}

/**
 * `send`: how a coalesced PostMessages call travels (natsPostSender for NATS request/reply with gRPC as the
 * fallback, docs/adr/0003); default gRPC.
 */
export function messageStoreAdapter(
  client: MessageStoreClient,
  backendTimeoutMs: number,
  send?: PostSender,
): MessageStorePort {
  const opts = { deadlineMs: backendTimeoutMs, budgetMs: backendTimeoutMs };
  const system = systemPrincipal(DOOR);
  // The ordered batches of all connections in one event-loop turn share one PostMessages call.
  const coalescer = new PostCoalescer(client, { callOptions: opts, ...(send ? { send } : {}) });
  return {
    async ensurePublicChannels(names) {
      const r = await client.ensurePublicChannels({
        slugs: [...names],
        kind: messagesV1.ChannelKind.CHANNEL_KIND_UNSPECIFIED,
      });
      return r.channels.map((c) => ({ id: c.id, name: c.slug }));
    },
    async listPublicChannels() {
      const r = await client
        .listChannels(
          {
            principal: undefined,
            kind: messagesV1.ChannelKind.CHANNEL_KIND_UNSPECIFIED,
            visibility: messagesV1.Visibility.VISIBILITY_PUBLIC,
            changedSince: undefined,
            includeArchived: false,
            includeMembers: false,
            includeStats: false,
            memberOnly: false,
          },
          opts,
        )
        .catch(unavailable);
      const out: ChannelInfo[] = [];
      for (const c of r.channels) if (isPublicListed(c)) out.push({ id: c.id, name: c.slug });
      return out;
    },
    async postBatch(author: Author, posts: readonly PostRequest[]): Promise<PostOutcome[]> {
      const p =
        author.kind === 'account'
          ? principal({ userId: author.accountId, displayName: author.displayName, door: DOOR })
          : principal({
              userId: `guest:${author.displayName}`,
              displayName: author.displayName,
              guest: true,
              door: DOOR,
            });
      const results = await coalescer
        .postMany(
          p,
          posts.map((x) => newMessage({ channelId: x.channelId, text: x.content, clientKey: x.clientKey })),
        )
        .catch(unavailable);
      return results.map((res): PostOutcome =>
        res.message && res.errorCode === 0
          ? { ok: true, message: toStored(res.message) }
          : { ok: false, reason: res.errorReason || `code ${res.errorCode}` },
      );
    },
    async listMessages(q) {
      const r = await client
        .listMessages(
          {
            principal: system,
            channelId: q.channelId,
            before: q.before === 0n ? '' : q.before.toString(),
            after: q.after === 0n ? '' : q.after.toString(),
            limit: q.limit,
            includeDeleted: false,
            tags: [],
            mailbox: false,
          },
          opts,
        )
        .catch(unavailable);
      return r.messages.filter((m) => !m.deleted).map(toStored);
    },
  };
}
