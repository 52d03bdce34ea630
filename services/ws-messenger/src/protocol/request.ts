/**
 * Dispatch steps 1, 2 and 4 of spec §2.6 as pure functions: text in, either a validated request or
 * the dispatcher's reply out. Step 3 (rate) lives in rate-limit.ts; steps 5 and 6 need identity and
 * live in app/.
 */
import { PARSE_FAILED, isJsonObject, parseJson } from './json-parse';
import { checkRequires, checkStored, isSupportedVersion, METHODS } from './methods';
import type { MethodSpec } from './methods';
import { formatIssues, Issue, validateRequest } from './schema';
import type { DataIn } from './schema';
import { ERROR_TYPE } from './frames';
import type { Reply } from './frames';
import { WsmErrorCode } from './status';

export interface DecodedRequest {
  readonly ok: true;
  /** `type` as sent (aliases stay aliases). */
  readonly type: string;
  readonly version: string;
  /** undefined for an unknown method. */
  readonly spec: MethodSpec | undefined;
  readonly data: DataIn;
}
export interface DecodeFailure {
  readonly ok: false;
  readonly code: WsmErrorCode;
  readonly reply: Reply;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Binary frames are UTF-8 text (spec §2.1); invalid UTF-8 → undefined (the not-JSON reply). */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

export function invalidJsonReply(time: number): Reply {
  return {
    type: ERROR_TYPE,
    status: 'UNSUPPORTED_MEDIA_TYPE',
    detail: formatIssues([{ loc: ['__root__'], ...Issue.invalidJson }]),
    data: null,
    time,
  };
}

/** Steps 1 and 2: parse and validate. `text` undefined = undecodable bytes. */
export function decodeRequest(text: string | undefined, time: number): DecodedRequest | DecodeFailure {
  const doc = text === undefined ? PARSE_FAILED : parseJson(text);
  if (doc === PARSE_FAILED) return { ok: false, code: WsmErrorCode.NotJson, reply: invalidJsonReply(time) };
  const r = validateRequest(doc);
  const issues = [...r.issues];
  if (isJsonObject(doc) && r.type !== undefined) issues.push(...checkRequires(doc, r.type));
  if (r.type !== undefined && r.data !== undefined) issues.push(...checkStored(r.data, r.type));
  if (issues.length > 0 || r.type === undefined || r.version === undefined || r.data === undefined) {
    return {
      ok: false,
      code: WsmErrorCode.Validation,
      reply: { type: ERROR_TYPE, status: 'UNSUPPORTED_MEDIA_TYPE', detail: formatIssues(issues), data: null, time },
    };
  }
  return { ok: true, type: r.type, version: r.version, spec: METHODS.get(r.type), data: r.data };
}

/** Step 4. */
export function versionReply(version: string, time: number): Reply | undefined {
  if (isSupportedVersion(version)) return undefined;
  return { type: ERROR_TYPE, status: 'VERSION_NOT_SUPPORTED', data: null, time };
}

export function rateLimitedReply(time: number): Reply {
  return { type: ERROR_TYPE, status: 'TOO_MANY_REQUESTS', detail: 'Request rate limit exceeded', data: null, time };
}
