/**
 * Validation and authorization rules of message-store: who may read, post, change (issue #4
 * "Authorization"; ws-messenger spec §3.2/§3.4; irc-binary spec §3.5).
 *
 * Refusal codes: a channel or message the principal cannot read is NOT_FOUND (never PERMISSION_DENIED, so
 * private channels cannot be probed); readable but not allowed is PERMISSION_DENIED; bad input is
 * INVALID_ARGUMENT; archived is FAILED_PRECONDITION.
 */
import { errors } from '@hubbub/errors';
import { messagesV1 } from '@hubbub/proto';
import { foldName } from '@hubbub/runtime';
import type { AppError } from '@hubbub/errors';
import type { ChannelRow } from '../store/repo';

type Principal = messagesV1.Principal;
const { PrincipalKind, ChannelKind, MessageKind, Visibility } = messagesV1;

export const MAX_SLUG_BYTES = 32;
export const MAX_TITLE_BYTES = 256;
export const MAX_INFO_BYTES = 4_096;
export const MAX_MEMBERS = 1_000;
export const MAX_SUBJECT_BYTES = 512;
export const MAX_TAGS = 16;
export const MAX_TAG_BYTES = 64;
export const MAX_CLIENT_KEY_BYTES = 128;
export const MAX_DISPLAY_NAME_BYTES = 128;
export const MAX_USER_ID_BYTES = 128;
export const MAX_HISTORY_LIMIT = 100;

export const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

export const isSystem = (p: Principal | undefined): boolean => p !== undefined && p.userId.startsWith('system:');
export const isGuest = (p: Principal): boolean => p.kind === PrincipalKind.PRINCIPAL_KIND_GUEST;

const ID_RE = /^[1-9]\d{0,18}$/;
/** A decimal id (snowflake or channel id); "" and "0" are "none" where bounds are optional. */
export function isId(s: string): boolean {
  return ID_RE.test(s) && BigInt(s) < 2n ** 63n;
}

export function optionalId(s: string, field: string): string | undefined {
  if (s === '' || s === '0') return undefined;
  if (!isId(s)) throw errors.invalidArgument('BAD_ID', `${field} must be a decimal id`);
  return s;
}

/** An account's user id as identity issues it (not a guest, not a system principal). */
export function isAccountId(s: string): boolean {
  return (
    s.length > 0 &&
    utf8Bytes(s) <= MAX_USER_ID_BYTES &&
    !s.startsWith('guest:') &&
    !s.startsWith('system:') &&
    // PostgreSQL text cannot hold it (the statement would fail as INTERNAL).
    !s.includes('\u0000')
  );
}

/**
 * Checks a principal's shape. `actor` principals may change data (so not `system:`); posting ones also need
 * a display name. Every principal a caller sends goes through here, so no caller posts as `system:operator`
 * (the author of operators' broadcasts, which MessageService.adminBroadcast sets itself).
 */
export function checkPrincipal(p: Principal | undefined, use: 'reader' | 'actor' | 'poster'): Principal {
  if (!p || p.userId === '') throw errors.invalidArgument('PRINCIPAL_REQUIRED', 'a principal is required');
  if (utf8Bytes(p.userId) > MAX_USER_ID_BYTES) throw errors.invalidArgument('PRINCIPAL_INVALID', 'user id too long');
  if (utf8Bytes(p.displayName) > MAX_DISPLAY_NAME_BYTES)
    throw errors.invalidArgument('DISPLAY_NAME_TOO_LONG', `display name over ${MAX_DISPLAY_NAME_BYTES} bytes`);
  if (isSystem(p)) {
    if (use !== 'reader') throw errors.permissionDenied('SYSTEM_PRINCIPAL_READ_ONLY', 'a system principal only reads');
    return p;
  }
  const guestId = p.userId.startsWith('guest:');
  if (p.kind === PrincipalKind.PRINCIPAL_KIND_GUEST) {
    if (!guestId || p.userId.length <= 'guest:'.length)
      throw errors.invalidArgument('PRINCIPAL_INVALID', 'a guest principal has the user id guest:<nick>');
    // Sysop rights come from an account's role; a guest claiming them is a door bug, not a moderator (it could
    // post in owner-only channels and delete or archive anything).
    if (p.sysop) throw errors.invalidArgument('PRINCIPAL_INVALID', 'a guest principal cannot be a sysop');
  } else if (p.kind === PrincipalKind.PRINCIPAL_KIND_ACCOUNT) {
    if (guestId) throw errors.invalidArgument('PRINCIPAL_INVALID', 'guest:<nick> ids are guests');
  } else {
    throw errors.invalidArgument('PRINCIPAL_INVALID', 'principal kind must be ACCOUNT or GUEST');
  }
  checkNoNul(p.userId, p.displayName, p.door);
  if (use === 'poster' && p.displayName === '')
    throw errors.invalidArgument('DISPLAY_NAME_REQUIRED', 'a display name is required to post');
  return p;
}

export function checkSlug(slug: string): string {
  if (
    slug === '' ||
    utf8Bytes(slug) > MAX_SLUG_BYTES ||
    foldName(slug) !== slug ||
    // eslint-disable-next-line no-control-regex
    /[\s\u0000-\u001f\u007f]/u.test(slug)
  ) {
    throw errors.invalidArgument(
      'BAD_SLUG',
      `a slug is 1..${MAX_SLUG_BYTES} bytes, lowercase, without spaces or control characters`,
    );
  }
  if (/^c\d+$/.test(slug)) throw errors.invalidArgument('SLUG_RESERVED', 'slugs c<digits> are generated ones');
  return slug;
}

export function checkTitleInfo(title: string | undefined, info: string | undefined): void {
  checkNoNul(title, info);
  if (title !== undefined && utf8Bytes(title) > MAX_TITLE_BYTES)
    throw errors.invalidArgument('TITLE_TOO_LONG', `title over ${MAX_TITLE_BYTES} bytes`);
  if (info !== undefined && utf8Bytes(info) > MAX_INFO_BYTES)
    throw errors.invalidArgument('INFO_TOO_LONG', `info over ${MAX_INFO_BYTES} bytes`);
}

export interface Limits {
  readonly maxTextBytes: number;
  readonly maxAttachmentBytes: number;
  /**
   * The largest event NATS takes (its `max_payload`). A message whose event (proto3 JSON, where escaping can make
   * a byte six) would be larger is refused: stored, its event could never be published (docs/operations.md,
   * `OUTBOX_EVENT_REFUSED`), and no door would see it live. Undefined: not checked.
   */
  readonly maxEventBytes?: number;
}

/** Room in an event for everything besides the content: ids, names, door, channel, times, field names. */
export const EVENT_OVERHEAD_BYTES = 16_384;

export function attachmentBytes(a: messagesV1.Attachments | undefined): number {
  if (!a) return 0;
  let n = 0;
  for (const v of [a.filePicture, a.fileVideo, a.fileAudio, a.fileDocument, a.emoji])
    if (v !== undefined) n += utf8Bytes(v);
  return n;
}

export function checkTags(tags: readonly string[]): string[] {
  if (tags.length > MAX_TAGS) throw errors.invalidArgument('TOO_MANY_TAGS', `at most ${MAX_TAGS} tags`);
  const out: string[] = [];
  for (const t of tags) {
    if (t === '' || utf8Bytes(t) > MAX_TAG_BYTES)
      throw errors.invalidArgument('BAD_TAG', `a tag is 1..${MAX_TAG_BYTES} bytes`);
    if (!out.includes(t)) out.push(t);
  }
  return out;
}

/** PostgreSQL text cannot hold U+0000; such input is refused rather than altered. */
export function checkNoNul(...values: (string | undefined)[]): void {
  for (const v of values)
    if (v !== undefined && v.includes('\u0000'))
      throw errors.invalidArgument('NUL_CHARACTER', 'text must not contain the NUL character (U+0000)');
}

export function checkContent(
  m: { text: string; subject: string; tags?: readonly string[]; attachments: messagesV1.Attachments | undefined },
  limits: Limits,
): void {
  const a = m.attachments;
  checkNoNul(
    m.text,
    m.subject,
    ...(m.tags ?? []),
    a?.filePicture,
    a?.fileVideo,
    a?.fileAudio,
    a?.fileDocument,
    a?.emoji,
  );
  const textBytes = utf8Bytes(m.text);
  if (textBytes > limits.maxTextBytes)
    throw errors.invalidArgument('TEXT_TOO_LARGE', `text over ${limits.maxTextBytes} bytes`, {
      limit: String(limits.maxTextBytes),
    });
  const subjectBytes = utf8Bytes(m.subject);
  if (subjectBytes > MAX_SUBJECT_BYTES)
    throw errors.invalidArgument('SUBJECT_TOO_LONG', `subject over ${MAX_SUBJECT_BYTES} bytes`);
  const attached = attachmentBytes(m.attachments);
  if (attached > limits.maxAttachmentBytes)
    throw errors.invalidArgument('ATTACHMENTS_TOO_LARGE', `attachments over ${limits.maxAttachmentBytes} bytes`, {
      limit: String(limits.maxAttachmentBytes),
    });
  const maxEvent = limits.maxEventBytes;
  if (maxEvent === undefined) return;
  let raw = textBytes + subjectBytes + attached;
  for (const t of m.tags ?? []) raw += utf8Bytes(t) + 4;
  // JSON makes a byte at most six (\u0001): only contents that could then outgrow the event are encoded to count.
  if (raw * 6 + EVENT_OVERHEAD_BYTES <= maxEvent) return;
  const json = JSON.stringify([m.text, m.subject, m.tags ?? [], a ? messagesV1.Attachments.toJSON(a) : null]);
  if (Buffer.byteLength(json, 'utf8') + EVENT_OVERHEAD_BYTES > maxEvent)
    throw errors.invalidArgument(
      a ? 'ATTACHMENTS_TOO_LARGE' : 'TEXT_TOO_LARGE',
      `text and attachments over ${maxEvent - EVENT_OVERHEAD_BYTES} bytes once encoded for the event`,
      { limit: String(maxEvent - EVENT_OVERHEAD_BYTES) },
    );
}

const MESSAGE_KINDS: ReadonlySet<number> = new Set([
  MessageKind.MESSAGE_KIND_UNSPECIFIED,
  MessageKind.MESSAGE_KIND_NORMAL,
  MessageKind.MESSAGE_KIND_ACTION,
]);

/** Validates one new message (shape and limits; not authorization). */
export function checkNewMessage(m: messagesV1.NewMessage | undefined, limits: Limits): messagesV1.NewMessage {
  if (!m) throw errors.invalidArgument('MESSAGE_REQUIRED', 'a message is required');
  if (!isId(m.channelId)) throw errors.notFound('CHANNEL_NOT_FOUND', 'no such channel');
  // The kind is stored in a smallint: an unknown value would be stored as is, and one beyond its range would
  // fail the INSERT of the whole commit batch, i.e. the posts of every other caller gathered into it.
  if (!MESSAGE_KINDS.has(m.kind))
    throw errors.invalidArgument('BAD_MESSAGE_KIND', 'kind must be UNSPECIFIED, NORMAL or ACTION');
  checkContent(m, limits);
  checkNoNul(m.clientKey, m.recipientId);
  if (utf8Bytes(m.clientKey) > MAX_CLIENT_KEY_BYTES)
    throw errors.invalidArgument('CLIENT_KEY_TOO_LONG', `client key over ${MAX_CLIENT_KEY_BYTES} bytes`);
  if (m.replyToId !== '' && m.replyToId !== '0' && !isId(m.replyToId))
    throw errors.invalidArgument('BAD_ID', 'reply_to_id must be a decimal id');
  if (m.isPrivate && m.recipientId === '')
    throw errors.invalidArgument('PRIVATE_NEEDS_RECIPIENT', 'a private post needs a recipient');
  if (m.recipientId !== '' && utf8Bytes(m.recipientId) > MAX_USER_ID_BYTES)
    throw errors.invalidArgument('BAD_RECIPIENT', 'recipient id too long');
  return { ...m, tags: checkTags(m.tags), replyToId: m.replyToId === '0' ? '' : m.replyToId };
}

// ---- authorization

export interface ChannelView {
  readonly row: ChannelRow;
  readonly members: ReadonlySet<string>;
}

export function canRead(p: Principal | undefined, c: ChannelView): boolean {
  if (c.row.visibility === Visibility.VISIBILITY_PUBLIC) return true;
  if (!p) return false;
  return isSystem(p) || c.members.has(p.userId);
}

/** Readable or NOT_FOUND. */
export function requireReadable<C extends ChannelView>(p: Principal | undefined, c: C | undefined): C {
  if (!c || !canRead(p, c)) throw errors.notFound('CHANNEL_NOT_FOUND', 'no such channel');
  return c;
}

/** Whether the principal may read this message (private board posts: author and recipient only). */
export function canReadMessage(
  p: Principal | undefined,
  m: { isPrivate: boolean; authorId: string; recipientId: string },
): boolean {
  if (!m.isPrivate) return true;
  if (!p) return false;
  return isSystem(p) || m.authorId === p.userId || m.recipientId === p.userId;
}

export const isOwnerOrSysop = (p: Principal, c: ChannelView): boolean =>
  p.sysop || (c.row.ownerId !== '' && c.row.ownerId === p.userId);

/**
 * Post rule per channel kind. Returns whether posting makes the principal a member (public channels), or
 * throws the refusal. The channel must be readable (checked first, NOT_FOUND).
 */
export function authorizePost(p: Principal, c: ChannelView, m: messagesV1.NewMessage): { join: boolean } {
  const row = c.row;
  if (row.archived) throw errors.failedPrecondition('CHANNEL_ARCHIVED', 'the channel is archived');
  const guest = isGuest(p);
  if (guest && !(row.visibility === Visibility.VISIBILITY_PUBLIC && row.allowGuests))
    throw errors.permissionDenied('GUESTS_NOT_ALLOWED', 'guests cannot post in this channel');
  const member = c.members.has(p.userId);
  let err: AppError | undefined;
  switch (row.kind) {
    case ChannelKind.CHANNEL_KIND_CHANNEL:
      if (!isOwnerOrSysop(p, c))
        err = errors.permissionDenied('ONLY_OWNER_POSTS', 'only the owner can post in a channel');
      break;
    case ChannelKind.CHANNEL_KIND_DIRECT:
      if (!member) err = errors.permissionDenied('NOT_A_MEMBER', 'only members post here');
      break;
    case ChannelKind.CHANNEL_KIND_GROUP:
    case ChannelKind.CHANNEL_KIND_BOARD:
    default:
      if (!member && row.visibility !== Visibility.VISIBILITY_PUBLIC)
        err = errors.permissionDenied('NOT_A_MEMBER', 'only members post here');
      break;
  }
  if (err) throw err;
  if ((m.isPrivate || m.recipientId !== '') && row.kind !== ChannelKind.CHANNEL_KIND_BOARD)
    throw errors.invalidArgument('NOT_A_BOARD', 'recipients and private posts exist only in boards');
  return { join: !guest && !member && row.visibility === Visibility.VISIBILITY_PUBLIC };
}
