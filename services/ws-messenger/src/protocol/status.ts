/**
 * The MTP status table (spec §2.5). The set is closed: a reply can only carry one of these rows, so
 * a typo in a handler is a compile error, not a wire bug.
 *
 * WIRE-STABLE: codes, phrases and default details are on the wire byte for byte.
 */
export const Status = {
  OK: { code: 200, status: 'OK', detail: 'Request fulfilled, document follows' },
  CREATED: { code: 201, status: 'Created', detail: 'Document created, URL follows' },
  PARTIAL_CONTENT: { code: 206, status: 'Partial Content', detail: 'Partial content follows' },
  BAD_REQUEST: { code: 400, status: 'Bad Request', detail: 'Bad request syntax or unsupported method' },
  UNAUTHORIZED: { code: 401, status: 'Unauthorized', detail: 'No permission -- see authorization schemes' },
  FORBIDDEN: { code: 403, status: 'Forbidden', detail: 'Request forbidden -- authorization will not help' },
  NOT_FOUND: { code: 404, status: 'Not Found', detail: 'Nothing matches the given URI' },
  METHOD_NOT_ALLOWED: {
    code: 405,
    status: 'Method Not Allowed',
    detail: 'Specified method is invalid for this resource',
  },
  CONFLICT: { code: 409, status: 'Conflict', detail: 'Request conflict' },
  UNSUPPORTED_MEDIA_TYPE: { code: 415, status: 'Unsupported Media Type', detail: 'Entity body in unsupported format' },
  TOO_MANY_REQUESTS: {
    code: 429,
    status: 'Too Many Requests',
    detail: 'The user has sent too many requests in a given amount of time ("rate limiting")',
  },
  INTERNAL_SERVER_ERROR: { code: 500, status: 'Internal Server Error', detail: 'Server got itself in trouble' },
  SERVICE_UNAVAILABLE: {
    code: 503,
    status: 'Service Unavailable',
    detail: 'The server cannot process the request due to a high load',
  },
  VERSION_NOT_SUPPORTED: { code: 505, status: 'Version Not Supported', detail: 'Cannot fulfill request' },
  UNKNOWN_ERROR: { code: 520, status: 'Unknown Error', detail: 'Full description: Unknown Error' },
} as const;
export type StatusName = keyof typeof Status;
export type StatusRow = (typeof Status)[StatusName];

/** Detail texts of the reply catalogue (§2.12) that are not a status's default. */
export const Detail = {
  rateLimited: 'Request rate limit exceeded',
  serviceUnavailable: 'Service temporarily unavailable',
  userNotAuthenticated: 'User was not authenticated',
  authFailed: 'Authentication User failed',
  loginRules: 'Login does not meet the server rules',
  passwordRules: 'Password does not meet the server rules',
  tooManyAttempts: 'Too many attempts, try again later',
  flowNotFound: 'No results matched the query for Flow',
  messageNotFound: 'No results matched the query for Message',
  userNotFound: 'No results matched the query for UserConfig',
  channelOwnerOnly: 'Only the owner can post in a channel',
  authorOnly: 'Only the author can edit or delete a message',
  textRequired: 'Message text is required',
  wrongFlowType: 'Wrong flow type',
  twoUsersOnly: 'Must be two users only',
  titleTooLong: 'Flow title or info too long',
  ownerMustBeCaller: 'Owner must be the requesting user',
  chatMustIncludeCaller: 'Requesting user must be a member of the chat',
  messageTooLarge: (maxBytes: number): string => `Message too large (max ${maxBytes} bytes)`,
  tooManyFlowUsers: (max: number): string => `Too many users in flow (max ${max})`,
  tooManyMessages: (limit: number): string => `Requested more messages than server limit (${limit})`,
  tooManyUsers: (limit: number): string => `Requested more ${limit} users than server limit`,
  internal: (ref: string): string => `Server got itself in trouble (ref ${ref})`,
} as const;

/** Stable machine codes for logs and metrics (spec §5). */
export const WsmErrorCode = {
  FrameTooLarge: 'WSM_ERR_FRAME_TOO_LARGE',
  NotJson: 'WSM_ERR_NOT_JSON',
  Validation: 'WSM_ERR_VALIDATION',
  RateLimited: 'WSM_ERR_RATE_LIMITED',
  Version: 'WSM_ERR_VERSION',
  Auth: 'WSM_ERR_AUTH',
  UnknownType: 'WSM_ERR_UNKNOWN_TYPE',
  BackendUnavailable: 'WSM_ERR_BACKEND_UNAVAILABLE',
  Internal: 'WSM_ERR_INTERNAL',
  SlowConsumer: 'WSM_ERR_SLOW_CONSUMER',
  AuthTimeout: 'WSM_ERR_AUTH_TIMEOUT',
  PingTimeout: 'WSM_ERR_PING_TIMEOUT',
  TooManyConnections: 'WSM_ERR_TOO_MANY_CONNECTIONS',
  /** A connection kept sending malformed frames (415) with its rate bucket overdrawn: closed 1008. */
  MalformedFlood: 'WSM_ERR_MALFORMED_FLOOD',
  /** A push subscription ended because identity refused its token on a recheck (a missed revocation). */
  SubscriptionRevoked: 'WSM_SUBSCRIPTION_REVOKED',
  SubscriptionRecheckFailed: 'WSM_ERR_SUBSCRIPTION_RECHECK',
  /**
   * X-Forwarded-For arrived from a peer that is not in WSM_TRUSTED_PROXIES (ignored): most likely a proxy that should
   * be listed, without which every client behind it shares its address for the per-address limits.
   */
  UntrustedForwarded: 'WSM_UNTRUSTED_FORWARDED',
} as const;
export type WsmErrorCode = (typeof WsmErrorCode)[keyof typeof WsmErrorCode];

/** WebSocket close codes and reasons used by the transport (spec §2.1, §3.1). */
export const CloseCode = {
  GoingAway: 1001,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
} as const;
export const CloseReason = {
  slowConsumer: 'slow consumer',
  authTimeout: 'authentication timeout',
  malformedFlood: 'malformed flood',
} as const;
