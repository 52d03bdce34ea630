/**
 * Request validation and coercion (spec §2.2, §2.10): reproduces pydantic v1's lenient coercion and
 * its error text, plus the leniency of spec §4 D8.
 *
 * Rules this file enforces:
 * 1. Fields are visited in the declared order (FIELDS tables below), depth first, array items in
 *    index order, so the error list comes out in the original's order.
 * 2. `null` for an optional field means "absent". Unknown keys are ignored. `meta` is never walked.
 * 3. Schema errors are all collected; the per-method "Requires" errors (methods.ts) follow them.
 */
import { JsonNumber, isJsonObject } from './json-parse';
import type { JsonObject, JsonValue } from './json-parse';
import { pyFloatRepr } from './py-json';

export type Loc = readonly (string | number)[];

export interface ValidationIssue {
  readonly loc: Loc;
  readonly msg: string;
  readonly type: string;
}

export const MAX_SAFE = 9007199254740991;

export const Issue = {
  missing: { msg: 'field required', type: 'value_error.missing' },
  none: { msg: 'none is not an allowed value', type: 'type_error.none.not_allowed' },
  str: { msg: 'str type expected', type: 'type_error.str' },
  int: { msg: 'value is not a valid integer', type: 'type_error.integer' },
  intTooBig: {
    msg: `ensure this value is less than or equal to ${MAX_SAFE}`,
    type: `value_error.number.not_le; limit_value=${MAX_SAFE}`,
  },
  intTooSmall: {
    msg: `ensure this value is greater than or equal to -${MAX_SAFE}`,
    type: `value_error.number.not_ge; limit_value=-${MAX_SAFE}`,
  },
  bool: { msg: 'value could not be parsed to a boolean', type: 'type_error.bool' },
  dict: { msg: 'value is not a valid dict', type: 'type_error.dict' },
  list: { msg: 'value is not a valid list', type: 'type_error.list' },
  minItems: { msg: 'ensure this value has at least 1 items', type: 'value_error.list.min_items; limit_value=1' },
  bytes: { msg: 'byte type expected', type: 'type_error.bytes' },
  email: { msg: 'value is not a valid email address', type: 'value_error.email' },
  invalidJson: { msg: 'Invalid JSON', type: 'value_error.json' },
  /**
   * Not pydantic's (the original stored NUL in SQLite): PostgreSQL text cannot hold U+0000, so a field that is
   * stored is refused in step 2 rather than by the backend with a wrong detail. Only for stored fields (methods.ts).
   */
  nul: { msg: 'string must not contain the NUL character U+0000', type: 'value_error.str.nul' },
} as const;
export type IssueKind = (typeof Issue)[keyof typeof Issue];

// ---------------------------------------------------------------------------------------------
// Scalar coercions. Each returns the value or an IssueKind.

type Coerced<T> = { ok: true; v: T } | { ok: false; e: IssueKind };
const ok = <T>(v: T): Coerced<T> => ({ ok: true, v });
const bad = <T>(e: IssueKind): Coerced<T> => ({ ok: false, e });

function numberToStr(n: JsonNumber): string {
  if (n.isInt) {
    // Exact digits from the source; Python's int("-0") is 0.
    return /^-0+$/.test(n.src) ? '0' : n.src;
  }
  return pyFloatRepr(n.value);
}

export function coerceStr(v: JsonValue): Coerced<string> {
  if (typeof v === 'string') return ok(v);
  if (v instanceof JsonNumber) return ok(numberToStr(v));
  if (v === true) return ok('True');
  if (v === false) return ok('False');
  return bad(Issue.str);
}

function rangeChecked(b: bigint): Coerced<number> {
  if (b > BigInt(MAX_SAFE)) return bad(Issue.intTooBig);
  if (b < -BigInt(MAX_SAFE)) return bad(Issue.intTooSmall);
  return ok(Number(b));
}

const INT_STR_RE = /^\s*[+-]?\d+\s*$/;

export function coerceInt(v: JsonValue): Coerced<number> {
  if (v instanceof JsonNumber) {
    if (v.isInt) return rangeChecked(BigInt(v.src));
    const f = v.value;
    if (!Number.isFinite(f)) return bad(Issue.int);
    const t = Math.trunc(f);
    if (!Number.isSafeInteger(t)) return t > 0 ? bad(Issue.intTooBig) : bad(Issue.intTooSmall);
    return ok(t === 0 ? 0 : t);
  }
  if (typeof v === 'string') {
    if (!INT_STR_RE.test(v)) return bad(Issue.int);
    return rangeChecked(BigInt(v.trim()));
  }
  if (v === true) return ok(1);
  if (v === false) return ok(0);
  return bad(Issue.int);
}

const TRUE_STRS = new Set(['1', 'on', 't', 'true', 'y', 'yes']);
const FALSE_STRS = new Set(['0', 'off', 'f', 'false', 'n', 'no']);

export function coerceBool(v: JsonValue): Coerced<boolean> {
  if (typeof v === 'boolean') return ok(v);
  if (v instanceof JsonNumber) {
    const f = v.value;
    if (f === 1) return ok(true);
    if (f === 0) return ok(false);
    return bad(Issue.bool);
  }
  if (typeof v === 'string') {
    const s = v.toLowerCase();
    if (TRUE_STRS.has(s)) return ok(true);
    if (FALSE_STRS.has(s)) return ok(false);
  }
  return bad(Issue.bool);
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Standard base64 with padding (RFC 4648 §4), without Buffer (protocol/ is platform-free). */
export function base64(bytes: readonly number[]): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + B64[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]! + '==';
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + '=';
  }
  return out;
}

export function coerceBytes(v: JsonValue): Coerced<string> {
  if (typeof v === 'string') return ok(v);
  if (v instanceof JsonNumber) return ok(numberToStr(v));
  if (Array.isArray(v)) {
    const bytes: number[] = [];
    for (const item of v) {
      if (!(item instanceof JsonNumber) || !item.isInt) return bad(Issue.bytes);
      const b = Number(item.src);
      if (!(b >= 0 && b <= 255)) return bad(Issue.bytes);
      bytes.push(b);
    }
    return ok(base64(bytes));
  }
  return bad(Issue.bytes);
}

const EMAIL_RE = /^[^\s@]+@([^\s@.]+\.)+[^\s@.]+$/;

export function coerceEmail(v: JsonValue): Coerced<string> {
  const s = coerceStr(v);
  if (!s.ok) return bad(Issue.email);
  if (s.v.length > 254 || !EMAIL_RE.test(s.v)) return bad(Issue.email);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Models.

export interface UserIn {
  uuid?: string | undefined;
  login?: string | undefined;
  username?: string | undefined;
  bio?: string | undefined;
  avatar?: string | undefined;
  password?: string | undefined;
  is_bot?: boolean | undefined;
  auth_id?: string | undefined;
  token_ttl?: number | undefined;
  email?: string | undefined;
}
export interface FlowIn {
  time?: number | undefined;
  type?: string | undefined;
  title?: string | undefined;
  info?: string | undefined;
  owner?: string | undefined;
  users?: string[] | undefined;
  message_start?: number | undefined;
  message_end?: number | undefined;
  uuid?: string | undefined;
}
export interface MessageIn {
  uuid?: string | undefined;
  text?: string | undefined;
  from_user?: string | undefined;
  time?: number | undefined;
  from_flow?: string | undefined;
  file_picture?: string | undefined;
  file_video?: string | undefined;
  file_audio?: string | undefined;
  file_document?: string | undefined;
  emoji?: string | undefined;
  edited_time?: number | undefined;
  edited_status?: boolean | undefined;
  client_id?: number | undefined;
}
export interface DataIn {
  time?: number | undefined;
  user?: UserIn[] | undefined;
  flow?: FlowIn[] | undefined;
  message?: MessageIn[] | undefined;
}
export interface RequestIn {
  type: string;
  /** `jsonapi.version`, or "1.0" when jsonapi is null/absent. */
  version: string;
  data?: DataIn | undefined;
}

type Scalar = (v: JsonValue) => Coerced<unknown>;

type FieldKind =
  | { k: 'scalar'; f: Scalar }
  | { k: 'strList' }
  | { k: 'model'; fields: FieldTable }
  | { k: 'modelList'; fields: FieldTable }
  | { k: 'any' };
type FieldTable = readonly (readonly [string, FieldKind])[];

const S = (f: Scalar): FieldKind => ({ k: 'scalar', f });

// Field orders are WIRE-STABLE (they decide the order of validation errors): spec §2.2.
export const USER_FIELDS: FieldTable = [
  ['uuid', S(coerceStr)],
  ['login', S(coerceStr)],
  ['username', S(coerceStr)],
  ['bio', S(coerceStr)],
  ['avatar', S(coerceBytes)],
  ['password', S(coerceStr)],
  ['is_bot', S(coerceBool)],
  ['auth_id', S(coerceStr)],
  ['token_ttl', S(coerceInt)],
  ['email', S(coerceEmail)],
];
export const FLOW_FIELDS: FieldTable = [
  ['time', S(coerceInt)],
  ['type', S(coerceStr)],
  ['title', S(coerceStr)],
  ['info', S(coerceStr)],
  ['owner', S(coerceStr)],
  ['users', { k: 'strList' }],
  ['message_start', S(coerceInt)],
  ['message_end', S(coerceInt)],
  ['uuid', S(coerceStr)],
];
export const MESSAGE_FIELDS: FieldTable = [
  ['uuid', S(coerceStr)],
  ['text', S(coerceStr)],
  ['from_user', S(coerceStr)],
  ['time', S(coerceInt)],
  ['from_flow', S(coerceStr)],
  ['file_picture', S(coerceBytes)],
  ['file_video', S(coerceBytes)],
  ['file_audio', S(coerceBytes)],
  ['file_document', S(coerceBytes)],
  ['emoji', S(coerceBytes)],
  ['edited_time', S(coerceInt)],
  ['edited_status', S(coerceBool)],
  ['client_id', S(coerceInt)],
];
export const ERRORS_FIELDS: FieldTable = [
  ['detail', S(coerceStr)],
  ['code', S(coerceInt)],
  ['status', S(coerceStr)],
  ['time', S(coerceInt)],
];
export const DATA_FIELDS: FieldTable = [
  ['time', S(coerceInt)],
  ['user', { k: 'modelList', fields: USER_FIELDS }],
  ['meta', { k: 'any' }],
  ['flow', { k: 'modelList', fields: FLOW_FIELDS }],
  ['message', { k: 'modelList', fields: MESSAGE_FIELDS }],
];

function validateModel(
  o: JsonObject,
  fields: FieldTable,
  loc: Loc,
  issues: ValidationIssue[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, kind] of fields) {
    const v = o[name];
    if (v === undefined || v === null || kind.k === 'any') continue;
    const here = [...loc, name];
    const r = validateValue(v, kind, here, issues);
    if (r !== undefined) out[name] = r;
  }
  return out;
}

function validateValue(v: JsonValue, kind: FieldKind, loc: Loc, issues: ValidationIssue[]): unknown {
  switch (kind.k) {
    case 'any':
      return undefined;
    case 'scalar': {
      const r = kind.f(v);
      if (r.ok) return r.v;
      issues.push({ loc, ...r.e });
      return undefined;
    }
    case 'model':
      if (!isJsonObject(v)) {
        issues.push({ loc, ...Issue.dict });
        return undefined;
      }
      return validateModel(v, kind.fields, loc, issues);
    case 'strList':
    case 'modelList': {
      if (!Array.isArray(v)) {
        issues.push({ loc, ...Issue.list });
        return undefined;
      }
      const before = issues.length;
      const out: unknown[] = [];
      v.forEach((item, idx) => {
        const here = [...loc, idx];
        if (item === null) {
          issues.push({ loc: here, ...Issue.none });
          return;
        }
        if (kind.k === 'strList') {
          const r = coerceStr(item);
          if (r.ok) out.push(r.v);
          else issues.push({ loc: here, ...r.e });
          return;
        }
        if (!isJsonObject(item)) {
          issues.push({ loc: here, ...Issue.dict });
          return;
        }
        out.push(validateModel(item, kind.fields, here, issues));
      });
      // A list with an invalid item is not usable (pydantic drops the whole field).
      return issues.length === before ? out : undefined;
    }
  }
}

/** The Python type name pydantic uses in "Request expected dict not <name>". */
export function pyTypeName(v: JsonValue): string {
  if (v === null) return 'NoneType';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'string') return 'str';
  if (v instanceof JsonNumber) return v.isInt ? 'int' : 'float';
  if (Array.isArray(v)) return 'list';
  return 'dict';
}

export interface SchemaResult {
  /** Present when `type` validated (requires checks need it). */
  readonly type: string | undefined;
  readonly version: string | undefined;
  readonly data: DataIn | undefined;
  /** False when `data` was present but invalid (then no "Requires" checks below it). */
  readonly dataValid: boolean;
  readonly issues: ValidationIssue[];
}

/** Step 2, schema half: validates a parsed document against the Request model. */
export function validateRequest(doc: JsonValue): SchemaResult {
  const issues: ValidationIssue[] = [];
  if (!isJsonObject(doc)) {
    issues.push({
      loc: ['__root__'],
      msg: `Request expected dict not ${pyTypeName(doc)}`,
      type: 'type_error',
    });
    return { type: undefined, version: undefined, data: undefined, dataValid: false, issues };
  }
  // type (required str)
  let type: string | undefined;
  const t = doc['type'];
  if (t === undefined) issues.push({ loc: ['type'], ...Issue.missing });
  else if (t === null) issues.push({ loc: ['type'], ...Issue.none });
  else {
    const r = coerceStr(t);
    if (r.ok) type = r.v;
    else issues.push({ loc: ['type'], ...r.e });
  }
  // jsonapi (optional; version required inside)
  let version: string | undefined = '1.0';
  const j = doc['jsonapi'];
  if (j !== undefined && j !== null) {
    if (!isJsonObject(j)) {
      issues.push({ loc: ['jsonapi'], ...Issue.dict });
      version = undefined;
    } else {
      const ver = j['version'];
      version = undefined;
      if (ver === undefined) issues.push({ loc: ['jsonapi', 'version'], ...Issue.missing });
      else if (ver === null) issues.push({ loc: ['jsonapi', 'version'], ...Issue.none });
      else {
        const r = coerceStr(ver);
        if (r.ok) version = r.v;
        else issues.push({ loc: ['jsonapi', 'version'], ...r.e });
      }
      const rev = j['revision'];
      if (rev !== undefined && rev !== null) {
        const r = coerceStr(rev);
        if (!r.ok) issues.push({ loc: ['jsonapi', 'revision'], ...r.e });
      }
    }
  }
  // meta: never walked.
  // data
  let data: DataIn | undefined;
  let dataValid = true;
  const d = doc['data'];
  if (d !== undefined && d !== null) {
    if (!isJsonObject(d)) {
      issues.push({ loc: ['data'], ...Issue.dict });
      dataValid = false;
    } else {
      data = validateModel(d, DATA_FIELDS, ['data'], issues);
    }
  }
  // errors (validated for type, otherwise ignored)
  const e = doc['errors'];
  if (e !== undefined && e !== null) {
    if (!isJsonObject(e)) issues.push({ loc: ['errors'], ...Issue.dict });
    else validateModel(e, ERRORS_FIELDS, ['errors'], issues);
  }
  return { type, version, data, dataValid, issues };
}

/** The pydantic v1 error text (spec §2.10). */
export function formatIssues(issues: readonly ValidationIssue[]): string {
  const n = issues.length;
  const lines = [`${n} validation error${n === 1 ? '' : 's'} for Request`];
  for (const i of issues) {
    lines.push(i.loc.join(' -> '));
    lines.push(`  ${i.msg} (type=${i.type})`);
  }
  return lines.join('\n');
}
