/** MessageStorePort over hubbub.messages.v1 through @hubbub/msg-client (retries only where safe). */
import { AppError, Code } from '@hubbub/errors';
import {
  PostCoalescer,
  createMessageStoreClient,
  natsPostSender,
  principal,
  systemPrincipal,
} from '@hubbub/msg-client';
import type { NatsConnection } from '@hubbub/nats';
import type { Logger } from '@hubbub/runtime';
import type { MessageStoreClient } from '@hubbub/msg-client';
import { messagesV1 } from '@hubbub/proto';
import type { Actor, ChannelInfo, ChannelKind, Files, MessageStorePort, StoredMessage } from '../app/ports';
import { isMtpVisible } from '../app/mapping';
import { isAppErrorCode } from './grpc-util';

export const DOOR = 'ws-messenger';

const UINT32_MAX = 0xffff_ffff;

const K = messagesV1.ChannelKind;

export function channelKind(k: messagesV1.ChannelKind): ChannelKind {
  switch (k) {
    case K.CHANNEL_KIND_GROUP:
      return 'group';
    case K.CHANNEL_KIND_CHANNEL:
      return 'channel';
    case K.CHANNEL_KIND_DIRECT:
      return 'chat';
    case K.CHANNEL_KIND_BOARD:
      return 'board';
    default:
      return 'unknown';
  }
}

const KIND_OF: Record<'group' | 'channel' | 'chat', messagesV1.ChannelKind> = {
  group: K.CHANNEL_KIND_GROUP,
  channel: K.CHANNEL_KIND_CHANNEL,
  chat: K.CHANNEL_KIND_DIRECT,
};

export function toChannel(c: messagesV1.Channel): ChannelInfo {
  return {
    id: c.id,
    kind: channelKind(c.kind),
    isPublic: c.visibility === messagesV1.Visibility.VISIBILITY_PUBLIC,
    name: c.slug,
    title: c.title,
    info: c.info,
    ownerId: c.ownerId,
    memberIds: c.memberIds,
    createdAtMs: c.createdAt?.getTime() ?? 0,
    changedAtMs: (c.changedAt ?? c.createdAt)?.getTime() ?? 0,
    archived: c.archived,
  };
}

export function toMessage(m: messagesV1.Message): StoredMessage {
  const a = m.attachments;
  const files: Files | undefined = a
    ? {
        file_picture: a.filePicture,
        file_video: a.fileVideo,
        file_audio: a.fileAudio,
        file_document: a.fileDocument,
        emoji: a.emoji,
      }
    : undefined;
  const createdAtMs = m.createdAt?.getTime() ?? 0;
  return {
    id: m.id,
    channelId: m.channelId,
    authorId: m.authorId,
    authorName: m.authorName,
    text: m.text,
    files,
    createdAtMs,
    changedAtMs: m.changedAt?.getTime() ?? createdAtMs,
    edited: m.edited,
    deleted: m.deleted,
  };
}

function toAttachments(f: Files | undefined): messagesV1.Attachments | undefined {
  if (!f) return undefined;
  const out: messagesV1.Attachments = {};
  if (f.file_picture !== undefined) out.filePicture = f.file_picture;
  if (f.file_video !== undefined) out.fileVideo = f.file_video;
  if (f.file_audio !== undefined) out.fileAudio = f.file_audio;
  if (f.file_document !== undefined) out.fileDocument = f.file_document;
  if (f.emoji !== undefined) out.emoji = f.emoji;
  return out;
}

export interface MessageStoreAdapter extends MessageStorePort {
  readonly client: MessageStoreClient;
  close(): void;
}

export function createMessageStoreAdapter(
  address: string,
  o: {
    deadlineMs: number;
    channels?: number;
    /** Posts go over NATS request/reply when given (gRPC stays the fallback; docs/adr/0003). */
    nats?: { nc: NatsConnection; prefix: string; log?: Logger };
  },
): MessageStoreAdapter {
  const client = createMessageStoreClient(address, {
    deadlineMs: o.deadlineMs,
    budgetMs: o.deadlineMs,
    channels: o.channels ?? 1,
  });
  const P = (a: Actor): messagesV1.Principal => principal({ userId: a.userId, displayName: a.displayName, door: DOOR });
  const SYSTEM = systemPrincipal(DOOR);
  // The send_message posts of all connections in one event-loop turn share one PostMessages call.
  const sender = o.nats ? natsPostSender({ ...o.nats, grpc: client, deadlineMs: o.deadlineMs }) : undefined;
  const coalescer = new PostCoalescer(client, sender ? { send: sender } : {});
  const orUndefined = async <T>(p: Promise<T>): Promise<T | undefined> => {
    try {
      return await p;
    } catch (e) {
      if (isAppErrorCode(e, Code.NOT_FOUND, Code.INVALID_ARGUMENT, Code.PERMISSION_DENIED)) return undefined;
      throw e;
    }
  };
  return {
    client,
    close: () => {
      sender?.close();
      client.close();
    },
    async ensurePublicChannels(names) {
      const res = await client.ensurePublicChannels(
        messagesV1.EnsurePublicChannelsRequest.fromPartial({ slugs: [...names], kind: K.CHANNEL_KIND_GROUP }),
      );
      return res.channels.map(toChannel);
    },
    async listVisibleChannels(actor) {
      const res = await client.listChannels(
        messagesV1.ListChannelsRequest.fromPartial({ principal: P(actor), includeMembers: true }),
      );
      return res.channels.map(toChannel);
    },
    async listChangedChannels(actor, sinceMs) {
      const res = await client.listChannels(
        messagesV1.ListChannelsRequest.fromPartial({
          principal: P(actor),
          includeMembers: true,
          // Since 0 is every channel; a time is needed for the read horizon (the server waits for writes in flight).
          changedSince: new Date(Math.max(1, sinceMs)),
        }),
      );
      return { channels: res.channels.map(toChannel), completeBeforeMs: res.completeBefore?.getTime() };
    },
    async visibleFlowIds(actor) {
      const res = await client.listChannels(messagesV1.ListChannelsRequest.fromPartial({ principal: P(actor) }));
      return new Set(
        res.channels
          .map(toChannel)
          .filter(isMtpVisible)
          .map((c) => c.id),
      );
    },
    async lookupChannel(actor, id) {
      const res = await orUndefined(
        client.lookupChannel(
          messagesV1.LookupChannelRequest.fromPartial({
            principal: actor ? P(actor) : SYSTEM,
            id,
            includeMembers: true,
          }),
        ),
      );
      return res?.channel ? toChannel(res.channel) : undefined;
    },
    async createChannel(actor, c) {
      const res = await client.createChannel(
        messagesV1.CreateChannelRequest.fromPartial({
          principal: P(actor),
          kind: KIND_OF[c.kind],
          title: c.title,
          info: c.info,
          visibility: messagesV1.Visibility.VISIBILITY_PRIVATE,
          memberIds: [...c.memberIds],
        }),
      );
      if (!res.channel) throw new Error('message-store returned no channel');
      return toChannel(res.channel);
    },
    async postMessage(actor, m) {
      const attachments = toAttachments(m.files);
      const res = await coalescer.post(
        P(actor),
        messagesV1.NewMessage.fromPartial({
          channelId: m.channelId,
          text: m.text,
          kind: messagesV1.MessageKind.MESSAGE_KIND_NORMAL,
          clientKey: m.clientKey,
          ...(attachments ? { attachments } : {}),
        }),
      );
      if (res.errorCode !== 0) throw new AppError(res.errorCode as Code, res.errorReason, res.errorMessage);
      if (!res.message) throw new Error('message-store returned no message');
      return toMessage(res.message);
    },
    async getMessage(actor, id) {
      const res = await orUndefined(
        client.getMessage(messagesV1.GetMessageRequest.fromPartial({ principal: P(actor), messageId: id })),
      );
      return res?.message ? toMessage(res.message) : undefined;
    },
    async editMessage(actor, id, text) {
      const res = await client.editMessage(
        messagesV1.EditMessageRequest.fromPartial({ principal: P(actor), messageId: id, text }),
      );
      if (!res.message) throw new Error('message-store returned no message');
      return toMessage(res.message);
    },
    async deleteMessage(actor, id) {
      const res = await client.deleteMessage(
        messagesV1.DeleteMessageRequest.fromPartial({ principal: P(actor), messageId: id }),
      );
      if (!res.message) throw new Error('message-store returned no message');
      return toMessage(res.message);
    },
    async sliceMessages(actor, channelId, createdSinceMs, start, limit) {
      const res = await orUndefined(
        client.sliceMessages(
          messagesV1.SliceMessagesRequest.fromPartial({
            principal: P(actor),
            channelId,
            limit,
            ...(createdSinceMs > 0 ? { createdSince: new Date(createdSinceMs) } : {}),
            // `start` is a uint32 on the wire; a client's message_start may be any int up to 2^53 (spec §2.2) and
            // one above 2^32-1 failed the encoding (500). No channel holds that many messages, so the largest
            // uint32 selects the same (nothing) and still returns the total.
            ...(start !== undefined ? { start: Math.min(start, UINT32_MAX) } : {}),
          }),
        ),
      );
      if (!res) return undefined;
      return { total: Number(res.total), start: Number(res.start), messages: res.messages.map(toMessage) };
    },
    async listChanges(actor, sinceMs, limit) {
      const res = await client.listChanges(
        messagesV1.ListChangesRequest.fromPartial({ principal: P(actor), since: new Date(sinceMs), limit }),
      );
      return {
        messages: res.messages.map(toMessage),
        more: res.more,
        completeBeforeMs: res.completeBefore?.getTime(),
      };
    },
  };
}
