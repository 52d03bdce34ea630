/**
 * The lean PostMessages reply (PostMessagesRequest.lean_reply, PostResult.as_sent): message-store answers a post
 * it stored exactly as sent with the new id alone, and the caller rebuilds the stored Message from its own
 * request. Both ends use these two functions, so they agree by construction: message-store sets `as_sent` only
 * when `storedAsSent` holds, and the door expands with `postedAsSent`.
 *
 * WIRE-STABLE: what `postedAsSent` returns is the meaning of `as_sent`; a different rebuild needs a new flag.
 */
import type { Message, NewMessage, Principal } from '../gen/hubbub/messages/v1/messages';

/** Milliseconds of a message id (the snowflake layout of ARCHITECTURE.md: 44 bits of ms above 19 bits). */
function idMs(id: string): number {
  return Number(BigInt(id) >> 19n);
}

/** The Message a post stored exactly as sent became, given its id. */
export function postedAsSent(p: Principal, m: NewMessage, id: string): Message {
  const at = new Date(idMs(id));
  return {
    id,
    channelId: m.channelId,
    authorId: p.userId,
    authorName: p.displayName,
    authorKind: p.kind,
    door: p.door,
    text: m.text,
    kind: m.kind,
    subject: m.subject,
    tags: m.tags,
    replyToId: m.replyToId,
    recipientId: m.recipientId,
    isPrivate: m.isPrivate,
    attachments: m.attachments,
    createdAt: at,
    changedAt: new Date(at.getTime()),
    edited: false,
    deleted: false,
    clientKey: m.clientKey,
  };
}

function sameTags(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Whether `postedAsSent(p, m, stored.id)` equals `stored` (the request as sent, `p` and `m`). Attachments count
 * as equal only when they are the very object sent or both absent: a lean reply is an optimisation, never a
 * guess.
 */
export function storedAsSent(stored: Message, p: Principal, m: NewMessage): boolean {
  const t = stored.createdAt?.getTime();
  return (
    stored.channelId === m.channelId &&
    stored.authorId === p.userId &&
    stored.authorName === p.displayName &&
    stored.authorKind === p.kind &&
    stored.door === p.door &&
    stored.text === m.text &&
    stored.kind === m.kind &&
    stored.subject === m.subject &&
    sameTags(stored.tags, m.tags) &&
    stored.replyToId === m.replyToId &&
    stored.recipientId === m.recipientId &&
    stored.isPrivate === m.isPrivate &&
    stored.attachments === m.attachments &&
    t !== undefined &&
    t === idMs(stored.id) &&
    stored.changedAt?.getTime() === t &&
    !stored.edited &&
    !stored.deleted &&
    stored.clientKey === m.clientKey
  );
}
