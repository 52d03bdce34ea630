/**
 * Platform records → MTP objects (spec §2.4, §2.9 notation, §3.2). Every time is Unix seconds.
 */
import type { FlowOut, MessageOut, UserOut } from '../protocol/frames';
import type { ChannelInfo, Profile, StoredMessage } from './ports';

export const sec = (ms: number): number => Math.floor(ms / 1000);

/**
 * The latest instant a stored change can carry: a snowflake holds 44 bits of milliseconds (spec §2.4, year 2527).
 * A client's `data.time` is any int up to 2^53 (§2.2), far beyond what a Date or the backends' timestamps hold
 * (the request failed with 500); clamped here it matches nothing later, exactly as the spec's time filter says.
 */
export const MAX_CHANGE_MS = 2 ** 44 - 1;

/** A request's `data.time` (seconds; null/absent = 0, negative = 0) as the milliseconds to filter from. */
export const sinceMsOf = (seconds: number | undefined): number =>
  Math.min(Math.max(0, seconds ?? 0) * 1000, MAX_CHANGE_MS);

export const GUEST_PREFIX = 'guest:';
export const DELETED_TEXT = 'Message deleted';

/** MTP flow `type` of a channel; undefined = not shown over MTP (boards). */
export function flowType(c: ChannelInfo): 'group' | 'channel' | 'chat' | undefined {
  if (c.isPublic) return c.kind === 'channel' ? 'channel' : c.kind === 'group' ? 'group' : undefined;
  return c.kind === 'group' || c.kind === 'channel' || c.kind === 'chat' ? c.kind : undefined;
}

export function isMtpVisible(c: ChannelInfo): boolean {
  return !c.archived && flowType(c) !== undefined;
}

const orNull = (s: string): string | null => (s === '' ? null : s);

/** "full flow": public channels are groups titled by their name, without an owner (§3.2). */
export function fullFlow(c: ChannelInfo): FlowOut {
  return {
    time: sec(c.createdAtMs),
    type: flowType(c) ?? null,
    title: c.isPublic ? c.name : orNull(c.title),
    info: orNull(c.info),
    owner: c.isPublic ? null : orNull(c.ownerId),
    users: c.memberIds.filter((id) => !id.startsWith(GUEST_PREFIX)),
    uuid: c.id,
  };
}

/** "full message" (§2.9): deleted ones in their deleted form, `client_id` null. */
export function fullMessage(m: StoredMessage): MessageOut {
  const changed = m.edited || m.deleted;
  const f = m.files;
  return {
    uuid: m.id,
    text: m.deleted ? DELETED_TEXT : m.text,
    from_user: m.authorId,
    time: sec(m.createdAtMs),
    from_flow: m.channelId,
    file_picture: m.deleted ? '' : (f?.file_picture ?? null),
    file_video: m.deleted ? '' : (f?.file_video ?? null),
    file_audio: m.deleted ? '' : (f?.file_audio ?? null),
    file_document: m.deleted ? '' : (f?.file_document ?? null),
    emoji: m.deleted ? '' : (f?.emoji ?? null),
    edited_time: changed ? sec(m.changedAtMs) : null,
    edited_status: changed,
    client_id: null,
  };
}

/** "profile" (with login) or "profile-no-login" (§2.9, user_info / get_update). */
export function profile(p: Profile, withLogin: boolean): UserOut {
  if (p.deleted) {
    return {
      uuid: p.id,
      login: withLogin ? 'User deleted' : null,
      username: 'User deleted',
      bio: 'deleted',
      avatar: '',
      is_bot: false,
    };
  }
  return {
    uuid: p.id,
    login: withLogin ? p.username : null,
    username: p.displayName,
    bio: orNull(p.bio),
    avatar: orNull(p.avatar),
    is_bot: p.isBot,
  };
}

/**
 * Authors that are not people: message-store's operator broadcasts come from `system:operator` (display name
 * `system`, a name identity reserves). `user_info` finds them, so clients resolving authors show "system".
 */
export const SYSTEM_PREFIX = 'system:';

export function systemProfile(id: string): UserOut {
  return { uuid: id, login: null, username: 'system', bio: null, avatar: null, is_bot: true };
}

export function guestProfile(id: string): UserOut {
  return {
    uuid: id,
    login: null,
    username: `${id.slice(GUEST_PREFIX.length)} (guest)`,
    bio: null,
    avatar: null,
    is_bot: false,
  };
}

/** UTF-8 length without allocating (a lone surrogate counts as U+FFFD, 3 bytes, as encoding writes it). */
export function utf8Bytes(s: string | undefined): number {
  return s === undefined ? 0 : Buffer.byteLength(s, 'utf8');
}

/**
 * A platform id (identity user id, channel id, snowflake): a positive int64 (spec §2.4, bit 63 zero). Anything
 * larger matches nothing; handing it on made identity's int64 parse fail as INTERNAL, so the caller got 500
 * instead of "unknown user".
 */
export const isDecimalId = (s: string | undefined): s is string =>
  s !== undefined && /^[1-9]\d{0,18}$/.test(s) && (s.length < 19 || s <= '9223372036854775807');
