/**
 * The one application error of hubbub (HOUSE-STYLE §3.5, modelled on connect-es ConnectError).
 *
 * `code` is a closed set mirroring gRPC canonical codes; `reason` is a specific UPPER_SNAKE string
 * such as `NICK_IN_USE`; `message` is safe to show a user. `cause` never leaves the process.
 */

// WIRE-STABLE: numeric values are gRPC canonical status codes; never renumber.
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type Code = (typeof Code)[keyof typeof Code];
export type CodeName = keyof typeof Code;

const CODE_NAMES = new Map<number, CodeName>(
  (Object.entries(Code) as [CodeName, Code][]).map(([name, value]) => [value, name]),
);

/** Returns the UPPER_SNAKE name of a code, e.g. `NOT_FOUND`. */
export function codeName(code: Code): CodeName {
  return CODE_NAMES.get(code) ?? 'UNKNOWN';
}

/** Returns true when `n` is one of the canonical codes. */
export function isCode(n: unknown): n is Code {
  return typeof n === 'number' && CODE_NAMES.has(n);
}

const BRAND = Symbol.for('@hubbub/errors/AppError');

export interface AppErrorOptions {
  readonly details?: Readonly<Record<string, string>>;
  readonly cause?: unknown;
}

export class AppError extends Error {
  override readonly name = 'AppError';
  readonly code: Code;
  readonly reason: string;
  readonly details: Readonly<Record<string, string>>;
  readonly [BRAND] = true;

  constructor(code: Code, reason: string, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.reason = reason;
    this.details = options.details ?? {};
  }

  /**
   * Turns anything into an AppError. Unknown errors become INTERNAL with a generic message; their
   * cause is kept for the log and never serialized.
   */
  static from(e: unknown): AppError {
    if (isAppError(e)) return e;
    return new AppError(Code.INTERNAL, 'INTERNAL', 'internal error', { cause: e });
  }

  /** The safe, serializable face of the error (no cause, no stack). */
  toJSON(): { code: CodeName; reason: string; message: string; details: Readonly<Record<string, string>> } {
    return { code: codeName(this.code), reason: this.reason, message: this.message, details: this.details };
  }
}

/** Brand check that works across package copies (no bare instanceof across boundaries). */
export function isAppError(e: unknown): e is AppError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
}

/** Shorthands for the codes services throw most. */
export const errors = {
  invalidArgument: (reason: string, message: string, details?: Record<string, string>): AppError =>
    new AppError(Code.INVALID_ARGUMENT, reason, message, details ? { details } : {}),
  notFound: (reason: string, message: string): AppError => new AppError(Code.NOT_FOUND, reason, message),
  alreadyExists: (reason: string, message: string): AppError => new AppError(Code.ALREADY_EXISTS, reason, message),
  permissionDenied: (reason: string, message: string): AppError =>
    new AppError(Code.PERMISSION_DENIED, reason, message),
  unauthenticated: (reason: string, message: string): AppError => new AppError(Code.UNAUTHENTICATED, reason, message),
  resourceExhausted: (reason: string, message: string, details?: Record<string, string>): AppError =>
    new AppError(Code.RESOURCE_EXHAUSTED, reason, message, details ? { details } : {}),
  failedPrecondition: (reason: string, message: string): AppError =>
    new AppError(Code.FAILED_PRECONDITION, reason, message),
  unavailable: (reason: string, message: string, cause?: unknown): AppError =>
    new AppError(Code.UNAVAILABLE, reason, message, cause === undefined ? {} : { cause }),
  internal: (reason: string, cause?: unknown): AppError =>
    new AppError(Code.INTERNAL, reason, 'internal error', cause === undefined ? {} : { cause }),
} as const;
