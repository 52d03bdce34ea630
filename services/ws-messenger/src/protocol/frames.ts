/**
 * Reply and push frames (spec §2.3): every key always present, in the fixed order, `null` where
 * empty, formatted like Python's `json.dumps`. `password` and `email` are always null.
 *
 * WIRE-STABLE: key orders below are on the wire byte for byte.
 */
import { pyBool, pyInt, pyList, pyStr, pyStrOrNull } from './py-json';
import { Status } from './status';
import type { StatusName } from './status';

export interface UserOut {
  uuid?: string | null;
  login?: string | null;
  username?: string | null;
  bio?: string | null;
  avatar?: string | null;
  is_bot?: boolean | null;
  auth_id?: string | null;
  token_ttl?: number | null;
}
export interface FlowOut {
  time?: number | null;
  type?: string | null;
  title?: string | null;
  info?: string | null;
  owner?: string | null;
  users?: readonly string[] | null;
  message_start?: number | null;
  message_end?: number | null;
  uuid?: string | null;
}
export interface MessageOut {
  uuid?: string | null;
  text?: string | null;
  from_user?: string | null;
  time?: number | null;
  from_flow?: string | null;
  file_picture?: string | null;
  file_video?: string | null;
  file_audio?: string | null;
  file_document?: string | null;
  emoji?: string | null;
  edited_time?: number | null;
  edited_status?: boolean | null;
  client_id?: number | null;
}
export interface DataOut {
  time: number | null;
  user?: readonly UserOut[] | null;
  flow?: readonly FlowOut[] | null;
  message?: readonly MessageOut[] | null;
}

const JSONAPI = '{"version": "1.0", "revision": "17"}';

export function encodeUser(u: UserOut): string {
  return (
    `{"uuid": ${pyStrOrNull(u.uuid)}, "login": ${pyStrOrNull(u.login)}, "username": ${pyStrOrNull(u.username)}, ` +
    `"bio": ${pyStrOrNull(u.bio)}, "avatar": ${pyStrOrNull(u.avatar)}, "password": null, ` +
    `"is_bot": ${pyBool(u.is_bot)}, "auth_id": ${pyStrOrNull(u.auth_id)}, "token_ttl": ${pyInt(u.token_ttl)}, ` +
    `"email": null}`
  );
}

export function encodeFlow(f: FlowOut): string {
  return (
    `{"time": ${pyInt(f.time)}, "type": ${pyStrOrNull(f.type)}, "title": ${pyStrOrNull(f.title)}, ` +
    `"info": ${pyStrOrNull(f.info)}, "owner": ${pyStrOrNull(f.owner)}, "users": ${pyList(f.users, pyStr)}, ` +
    `"message_start": ${pyInt(f.message_start)}, "message_end": ${pyInt(f.message_end)}, "uuid": ${pyStrOrNull(f.uuid)}}`
  );
}

export function encodeMessage(m: MessageOut): string {
  return (
    `{"uuid": ${pyStrOrNull(m.uuid)}, "text": ${pyStrOrNull(m.text)}, "from_user": ${pyStrOrNull(m.from_user)}, ` +
    `"time": ${pyInt(m.time)}, "from_flow": ${pyStrOrNull(m.from_flow)}, ` +
    `"file_picture": ${pyStrOrNull(m.file_picture)}, "file_video": ${pyStrOrNull(m.file_video)}, ` +
    `"file_audio": ${pyStrOrNull(m.file_audio)}, "file_document": ${pyStrOrNull(m.file_document)}, ` +
    `"emoji": ${pyStrOrNull(m.emoji)}, "edited_time": ${pyInt(m.edited_time)}, ` +
    `"edited_status": ${pyBool(m.edited_status)}, "client_id": ${pyInt(m.client_id)}}`
  );
}

/**
 * Data with pre-encoded items (push frames encode each item once per event and reuse the text for
 * every subscriber).
 */
export interface EncodedData {
  time: number | null;
  user?: readonly string[] | null;
  flow?: readonly string[] | null;
  message?: readonly string[] | null;
}

const id = (s: string): string => s;

export function encodeEncodedData(d: EncodedData): string {
  return (
    `{"time": ${pyInt(d.time)}, "user": ${pyList(d.user, id)}, "meta": null, ` +
    `"flow": ${pyList(d.flow, id)}, "message": ${pyList(d.message, id)}}`
  );
}

export function encodeData(d: DataOut | null): string {
  if (d === null) return 'null';
  return encodeEncodedData({
    time: d.time,
    user: d.user === undefined || d.user === null ? null : d.user.map(encodeUser),
    flow: d.flow === undefined || d.flow === null ? null : d.flow.map(encodeFlow),
    message: d.message === undefined || d.message === null ? null : d.message.map(encodeMessage),
  });
}

export interface Reply {
  /** The request's `type` as sent, `"error"` for dispatcher replies, `"update"` for push. */
  readonly type: string;
  readonly status: StatusName;
  /** Overrides the status's default detail. */
  readonly detail?: string | undefined;
  readonly data: DataOut | null;
  /** Pre-encoded data items; used instead of `data` when present (size-bounded replies, push). */
  readonly encoded?: EncodedData | undefined;
  /** Unix seconds, once per request (spec §2.3). */
  readonly time: number;
}

/** The whole envelope around already-encoded `data` text. */
export function encodeEnvelope(
  type: string,
  status: StatusName,
  detail: string | undefined,
  dataText: string,
  time: number,
): string {
  const s = Status[status];
  return (
    `{"type": ${pyStr(type)}, "jsonapi": ${JSONAPI}, "meta": null, "data": ${dataText}, ` +
    `"errors": {"detail": ${pyStr(detail ?? s.detail)}, "code": ${s.code}, "status": ${pyStr(s.status)}, "time": ${time}}}`
  );
}

export function encodeReply(r: Reply): string {
  const dataText = r.encoded ? encodeEncodedData(r.encoded) : encodeData(r.data);
  return encodeEnvelope(r.type, r.status, r.detail, dataText, r.time);
}

/** The `type` of replies produced by the dispatcher (spec §2.3). */
export const ERROR_TYPE = 'error';
export const UPDATE_TYPE = 'update';
