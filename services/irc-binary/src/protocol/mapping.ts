/**
 * Mapping platform data onto the wire's limits (§3.6) and reading snowflakes (§2.7). Pure.
 */
import {
  ATTACHMENT_PLACEHOLDER,
  ELLIPSIS,
  MAX_CONTENT_BYTES,
  MAX_NICK_BYTES,
  SNOWFLAKE_SEQUENCE_MASK,
  SNOWFLAKE_TIME_SHIFT,
  SNOWFLAKE_WORKER_MASK,
  SNOWFLAKE_WORKER_SHIFT,
  TRUNCATED_CONTENT_BYTES,
} from './constants';
import { utf8Length, utf8Prefix } from './utf8';

/** §3.6 nick field: the author display name cut to at most 32 bytes on a code-point boundary. */
export function toWireNick(displayName: string): string {
  if (displayName.length <= MAX_NICK_BYTES / 4) return displayName;
  return utf8Prefix(displayName, MAX_NICK_BYTES).text;
}

/**
 * §3.6 content field: text over 1024 bytes becomes its longest prefix of at most 1021 bytes plus
 * "…"; an empty text with attachments becomes "[attachment]".
 */
export function toWireContent(text: string, hasAttachments: boolean): string {
  if (text.length === 0) return hasAttachments ? ATTACHMENT_PLACEHOLDER : '';
  if (text.length <= MAX_CONTENT_BYTES / 4) return text;
  if (utf8Length(text) <= MAX_CONTENT_BYTES) return text;
  return utf8Prefix(text, TRUNCATED_CONTENT_BYTES).text + ELLIPSIS;
}

/** §3.6/§3.7: only names of at most 32 UTF-8 bytes can be put on the wire. */
export function fitsWireName(name: string, maxBytes = 32): boolean {
  return name.length <= maxBytes / 4 || utf8Length(name) <= maxBytes;
}

export interface SnowflakeParts {
  readonly ms: number;
  readonly worker: number;
  readonly seq: number;
}

/** §2.7: `ms = id >> 19`, `worker = (id >> 12) & 0x7f`, `seq = id & 0xfff`. */
export function decodeSnowflake(id: bigint): SnowflakeParts {
  return {
    ms: Number(id >> SNOWFLAKE_TIME_SHIFT),
    worker: Number((id >> SNOWFLAKE_WORKER_SHIFT) & SNOWFLAKE_WORKER_MASK),
    seq: Number(id & SNOWFLAKE_SEQUENCE_MASK),
  };
}
