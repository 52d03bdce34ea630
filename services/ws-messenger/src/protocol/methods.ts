/**
 * The MTP method table (spec §2.6, §2.7, §2.8, §2.9 "Requires"). Names are matched exactly
 * (case-sensitive); aliases map to their canonical method and the reply keeps the name as sent.
 *
 * WIRE-STABLE: method names are on the wire.
 */
import { isJsonObject } from './json-parse';
import type { JsonObject, JsonValue } from './json-parse';
import { Issue } from './schema';
import type { DataIn, FlowIn, MessageIn, UserIn, ValidationIssue } from './schema';

export const Method = {
  RegisterUser: 'register_user',
  Authentication: 'authentication',
  GetUpdate: 'get_update',
  SendMessage: 'send_message',
  AllMessages: 'all_messages',
  AddFlow: 'add_flow',
  AllFlow: 'all_flow',
  UserInfo: 'user_info',
  DeleteUser: 'delete_user',
  DeleteMessage: 'delete_message',
  EditedMessage: 'edited_message',
  PingPong: 'ping_pong',
  Subscribe: 'subscribe',
  Unsubscribe: 'unsubscribe',
} as const;
export type Method = (typeof Method)[keyof typeof Method];

/** Per-method required fields below `data` (checked after the schema, in this order). */
export type Requirement = 'flow' | 'flow.uuid' | 'message' | 'message.uuid';

/**
 * The text fields of `user[0]`, `flow[0]` and `message[0]` a method hands to storage (identity, message-store:
 * PostgreSQL text, which cannot hold U+0000), each list in field order (spec §2.2). Step 2 refuses a NUL in
 * them (Issue.nul); fields only compared or looked up (login and password of authentication, ids) are not here.
 */
export interface StoredFields {
  readonly user?: readonly (keyof UserIn)[];
  readonly flow?: readonly (keyof FlowIn)[];
  readonly message?: readonly (keyof MessageIn)[];
}

export interface MethodSpec {
  readonly method: Method;
  /** true: only for an authenticated caller; false: only for a caller that is NOT authenticated. */
  readonly auth: boolean;
  readonly requires: readonly Requirement[];
  readonly stores: StoredFields;
}

const spec = (
  method: Method,
  auth: boolean,
  requires: readonly Requirement[] = [],
  stores: StoredFields = {},
): MethodSpec => ({
  method,
  auth,
  requires,
  stores,
});

/** The password is not among them: identity keeps only its hash. */
const REGISTER_STORES: StoredFields = { user: ['login', 'username', 'email'] };
const SEND_STORES: StoredFields = {
  message: ['text', 'file_picture', 'file_video', 'file_audio', 'file_document', 'emoji'],
};

/** Every accepted `type` value, aliases included (`auth`: MTP rev 1.15; `ping-pong`: same). */
export const METHODS: ReadonlyMap<string, MethodSpec> = new Map([
  ['register_user', spec(Method.RegisterUser, false, [], REGISTER_STORES)],
  ['authentication', spec(Method.Authentication, false)],
  ['auth', spec(Method.Authentication, false)],
  ['get_update', spec(Method.GetUpdate, true)],
  ['send_message', spec(Method.SendMessage, true, ['flow', 'flow.uuid', 'message'], SEND_STORES)],
  ['all_messages', spec(Method.AllMessages, true, ['flow', 'flow.uuid'])],
  ['add_flow', spec(Method.AddFlow, true, ['flow'], { flow: ['title', 'info'] })],
  ['all_flow', spec(Method.AllFlow, true)],
  ['user_info', spec(Method.UserInfo, true)],
  ['delete_user', spec(Method.DeleteUser, true)],
  ['delete_message', spec(Method.DeleteMessage, true, ['message', 'message.uuid'])],
  ['edited_message', spec(Method.EditedMessage, true, ['message', 'message.uuid'], { message: ['text'] })],
  ['ping_pong', spec(Method.PingPong, true)],
  ['ping-pong', spec(Method.PingPong, true)],
  ['subscribe', spec(Method.Subscribe, true)],
  ['unsubscribe', spec(Method.Unsubscribe, true)],
]);

const absent = (v: JsonValue | undefined): boolean => v === undefined || v === null;

function requireList(d: JsonObject, key: string, issues: ValidationIssue[]): void {
  const v = d[key];
  if (absent(v)) issues.push({ loc: ['data', key], ...Issue.missing });
  else if (Array.isArray(v) && v.length === 0) issues.push({ loc: ['data', key], ...Issue.minItems });
}

function requireFirstUuid(d: JsonObject, key: string, issues: ValidationIssue[]): void {
  const list = d[key];
  if (!Array.isArray(list)) return;
  const first = list[0];
  if (!isJsonObject(first)) return;
  if (absent(first['uuid'])) issues.push({ loc: ['data', key, 0, 'uuid'], ...Issue.missing });
}

/**
 * Step 2, "Requires" half (spec §2.9): every request with a usable `type` needs `data` and a
 * non-empty `data.user`; known methods add their own fields. Works on the raw document, because a
 * field that is present but invalid already has its schema error and must not get a second one.
 */
export function checkRequires(doc: JsonObject, type: string): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const d = doc['data'];
  if (absent(d)) {
    issues.push({ loc: ['data'], ...Issue.missing });
    return issues;
  }
  if (!isJsonObject(d)) return issues;
  requireList(d, 'user', issues);
  const m = METHODS.get(type);
  for (const r of m?.requires ?? []) {
    if (r === 'flow' || r === 'message') requireList(d, r, issues);
    else requireFirstUuid(d, r === 'flow.uuid' ? 'flow' : 'message', issues);
  }
  return issues;
}

/**
 * Step 2, after "Requires": a NUL character in a field the method stores (StoredFields) is a validation error,
 * not a backend refusal answered with an unrelated detail. Works on the validated data (only the items the
 * method reads: index 0).
 */
export function checkStored(data: DataIn, type: string): ValidationIssue[] {
  const stores = METHODS.get(type)?.stores;
  if (!stores) return [];
  const issues: ValidationIssue[] = [];
  for (const list of ['user', 'flow', 'message'] as const) {
    const first = data[list]?.[0] as Readonly<Record<string, unknown>> | undefined;
    if (!first) continue;
    for (const field of stores[list] ?? []) {
      const v = first[field];
      if (typeof v === 'string' && v.includes('\u0000')) issues.push({ loc: ['data', list, 0, field], ...Issue.nul });
    }
  }
  return issues;
}

const VERSION_RE = /^(\d+)(?:\.(\d+))?$/;

/** Step 4 (spec §2.6): `<digits>` or `<digits>.<digits>` with major 1; any minor. */
export function isSupportedVersion(version: string): boolean {
  const m = VERSION_RE.exec(version);
  return m !== null && Number(m[1]) === 1;
}
