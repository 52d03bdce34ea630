/**
 * dum-dum-irc protocol v2 wire constants (PROTOCOL.md = specs/irc-binary.md §2).
 *
 * WIRE-STABLE: every value in this file is on the wire or is a limit the original clients rely on;
 * never renumber or change one.
 */

/** §2.2: the only protocol version this server speaks. */
export const PROTOCOL_VERSION = 2;

/** §2.2 maximum varchar lengths, in UTF-8 bytes. */
export const MAX_NICK_BYTES = 32;
export const MAX_CHANNEL_NAME_BYTES = 32;
export const MAX_CONTENT_BYTES = 1024;

/** §2.2: messages per LIST_MESSAGES reply. */
export const HISTORY_PAGE = 100;

/** §2.3: the largest client frame (SEND_MESSAGE: 1 + 1+32 + 2+1024). One incomplete frame is at most this. */
export const MAX_CLIENT_FRAME_BYTES = 1 + 1 + MAX_CHANNEL_NAME_BYTES + 2 + MAX_CONTENT_BYTES;

/** §2.4: byte-length prefixes of the list replies. */
export const MAX_LIST_CHANNELS_BYTES = 0xffff;
export const MAX_LIST_MESSAGES_BYTES = 0xffffff;

/** §2.4: one Message record is at most 8 + 33 + 33 + 1026 bytes. */
export const MAX_MESSAGE_RECORD_BYTES = 8 + 1 + MAX_CHANNEL_NAME_BYTES + 1 + MAX_NICK_BYTES + 2 + MAX_CONTENT_BYTES;

/** §3.6: a content over MAX_CONTENT_BYTES is cut to this many bytes, then ELLIPSIS is appended. */
export const TRUNCATED_CONTENT_BYTES = MAX_CONTENT_BYTES - 3;
export const ELLIPSIS = '\u2026';
/** §3.6: the content shown for an empty text that has attachments. */
export const ATTACHMENT_PLACEHOLDER = '[attachment]';

/**
 * §2.3 client → server type bytes.
 * WIRE-STABLE: values are on the wire; never renumber.
 */
export const ClientType = {
  Hello: 0x00,
  Authenticate: 0x02,
  SendMessage: 0x03,
  ListChannels: 0x04,
  ListMessages: 0x05,
} as const;
export type ClientType = (typeof ClientType)[keyof typeof ClientType];

/**
 * §2.4 server → client type bytes (a separate number space from ClientType).
 * WIRE-STABLE: values are on the wire; never renumber.
 */
export const ServerType = {
  Hello: 0x00,
  IncompatibleVersion: 0x01,
  AcknowledgeAuthentication: 0x02,
  SendMessage: 0x03,
  ListChannels: 0x04,
  ListMessages: 0x05,
} as const;
export type ServerType = (typeof ServerType)[keyof typeof ServerType];

/** True when `b` is a client → server type byte of §2.3. */
export function isClientType(b: number): b is ClientType {
  return b === 0x00 || (b >= 0x02 && b <= 0x05);
}

/** True when `b` is a server → client type byte of §2.4. */
export function isServerType(b: number): b is ServerType {
  return b <= 0x05;
}

/** Snowflake layout (§2.7): 1 zero bit, 44 bits of ms since the Unix epoch, 7 bits worker, 12 bits sequence. */
export const SNOWFLAKE_TIME_SHIFT = 19n;
export const SNOWFLAKE_WORKER_SHIFT = 12n;
export const SNOWFLAKE_WORKER_MASK = 0x7fn;
export const SNOWFLAKE_SEQUENCE_MASK = 0xfffn;
