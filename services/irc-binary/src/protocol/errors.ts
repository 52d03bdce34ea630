/**
 * Protocol errors (HOUSE-STYLE §3.5, spec §5.1). Two faces: `code` is the stable machine code for
 * logs and metrics; `wireCode` is what the peer is told. dum-dum-irc v2 has no error frame, so
 * every closing error is told to the peer the same way: the connection closes and no further
 * byte is sent.
 */

/**
 * Stable error codes (listed in README.md "Error codes"). The `IRCB_DROP_*` codes are not errors of
 * the connection: the frame is dropped and the connection stays.
 */
export const ErrorCode = {
  UnknownType: 'IRCB_ERR_UNKNOWN_TYPE',
  State: 'IRCB_ERR_STATE',
  EarlyData: 'IRCB_ERR_EARLY_DATA',
  Length: 'IRCB_ERR_LENGTH',
  BadUtf8: 'IRCB_ERR_BAD_UTF8',
  TlsHandshake: 'IRCB_ERR_TLS_HANDSHAKE',
  HelloTimeout: 'IRCB_ERR_HELLO_TIMEOUT',
  TlsTimeout: 'IRCB_ERR_TLS_TIMEOUT',
  AuthTimeout: 'IRCB_ERR_AUTH_TIMEOUT',
  AuthAttempts: 'IRCB_ERR_AUTH_ATTEMPTS',
  SlowReader: 'IRCB_ERR_SLOW_READER',
  ConnLimit: 'IRCB_ERR_CONN_LIMIT',
  IdentityUnavailable: 'IRCB_ERR_IDENTITY_UNAVAILABLE',
  StoreUnavailable: 'IRCB_ERR_STORE_UNAVAILABLE',
  DropUnknownChannel: 'IRCB_DROP_UNKNOWN_CHANNEL',
  DropRateLimited: 'IRCB_DROP_RATE_LIMITED',
  /** Local misuse of the protocol core (our bug), e.g. sending a frame the state does not allow. */
  LocalMisuse: 'IRCB_ERR_LOCAL_MISUSE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * What the peer is told. There is no error frame (§2.1, §5.1): a protocol error closes the
 * connection without sending anything more.
 */
export const WireCode = {
  /** Close the TCP connection; send no further byte. */
  CloseSilently: 'close-silently',
} as const;
export type WireCode = (typeof WireCode)[keyof typeof WireCode];

/** `remote`: the peer broke the protocol. `local`: our own misuse of the core (a bug). */
export type ErrorSide = 'local' | 'remote';

const BRAND = Symbol.for('@hubbub/irc-binary/ProtocolError');

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly [BRAND] = true;
  readonly wireCode: WireCode = WireCode.CloseSilently;

  constructor(
    readonly code: ErrorCode,
    readonly side: ErrorSide,
    message: string,
  ) {
    super(message);
  }
}

/** Brand check (no bare instanceof across package copies). */
export function isProtocolError(e: unknown): e is ProtocolError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
}

export function remoteError(code: ErrorCode, message: string): ProtocolError {
  return new ProtocolError(code, 'remote', message);
}

export function localError(message: string): ProtocolError {
  return new ProtocolError(ErrorCode.LocalMisuse, 'local', message);
}
