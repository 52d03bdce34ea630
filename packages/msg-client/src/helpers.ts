/** Small helpers doors share: principals, the history fetcher for subscribeChat, snowflake decoding. */
import { messagesV1 } from '@hubbub/proto';
import type { MessageStoreClient } from './client';
import type { HistoryFetcher } from './subscribe';

/** Builds the Principal of an account or a guest (`guest:<nick>` ids are the caller's business). */
export function principal(p: {
  userId: string;
  displayName: string;
  guest?: boolean;
  sysop?: boolean;
  door: string;
}): messagesV1.Principal {
  return {
    userId: p.userId,
    displayName: p.displayName,
    kind: p.guest ? messagesV1.PrincipalKind.PRINCIPAL_KIND_GUEST : messagesV1.PrincipalKind.PRINCIPAL_KIND_ACCOUNT,
    sysop: p.sysop ?? false,
    door: p.door,
  };
}

/**
 * A door's own read-only principal (`system:<door>`): reads every channel, never posts. For internal work
 * such as gap-filling private channels; never hand it to a user's request.
 */
/**
 * A NewMessage with the defaults of a plain chat post (kind NORMAL, no subject, tags, thread,
 * recipient or attachments); `m` sets the rest.
 */
export function newMessage(
  m: Pick<messagesV1.NewMessage, 'channelId' | 'text'> & Partial<messagesV1.NewMessage>,
): messagesV1.NewMessage {
  return {
    kind: messagesV1.MessageKind.MESSAGE_KIND_NORMAL,
    subject: '',
    tags: [],
    replyToId: '',
    recipientId: '',
    isPrivate: false,
    attachments: undefined,
    clientKey: '',
    ...m,
  };
}

export function systemPrincipal(door: string): messagesV1.Principal {
  return {
    userId: `system:${door}`,
    displayName: door,
    kind: messagesV1.PrincipalKind.PRINCIPAL_KIND_UNSPECIFIED,
    sysop: false,
    door,
  };
}

/** `fetchHistory` for subscribeChat: the oldest page (100) after `afterId`, via ListMessages. */
export function historyFetcher(client: MessageStoreClient, p: messagesV1.Principal): HistoryFetcher {
  return async (channelId, afterId) => {
    const res = await client.listMessages({
      principal: p,
      channelId,
      before: '',
      after: afterId,
      limit: 100,
      includeDeleted: false,
      tags: [],
      mailbox: false,
    });
    return { messages: res.messages, more: res.more };
  };
}

/** Decodes a snowflake id: `ms` since the Unix epoch, `worker` 0..127, `seq` 0..4095. */
export function snowflakeParts(id: string): { ms: number; worker: number; seq: number } {
  const v = BigInt(id);
  return { ms: Number(v >> 19n), worker: Number((v >> 12n) & 0x7fn), seq: Number(v & 0xfffn) };
}
