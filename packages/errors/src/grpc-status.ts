/**
 * The single mapping between AppError and a gRPC status (HOUSE-STYLE §3.5 layer 3).
 *
 * On the wire: `code` = the canonical code, `details` = the safe message, trailers
 * `hubbub-reason` = reason and `hubbub-detail-<key>` = details. No cause ever crosses.
 * Kept free of @grpc/grpc-js so any package can use it; `@hubbub/grpc` adapts it to Metadata.
 */
import { AppError, Code, isCode } from './app-error';

export const REASON_TRAILER = 'hubbub-reason';
export const DETAIL_TRAILER_PREFIX = 'hubbub-detail-';

export interface GrpcStatusLike {
  readonly code: number;
  readonly details: string;
  readonly trailers: ReadonlyArray<readonly [string, string]>;
}

export function toGrpcStatus(e: unknown): GrpcStatusLike {
  const err = AppError.from(e);
  const trailers: [string, string][] = [[REASON_TRAILER, err.reason]];
  for (const [k, v] of Object.entries(err.details)) trailers.push([DETAIL_TRAILER_PREFIX + k.toLowerCase(), v]);
  return { code: err.code, details: err.message, trailers };
}

/** Rebuilds an AppError from a received gRPC status (code, details and trailers). */
export function fromGrpcStatus(
  code: number,
  details: string,
  trailer: (key: string) => string | undefined,
  allTrailerKeys: readonly string[] = [],
): AppError {
  const c: Code = isCode(code) ? code : Code.UNKNOWN;
  const reason = trailer(REASON_TRAILER) ?? (c === Code.UNAVAILABLE ? 'UNAVAILABLE' : 'GRPC_' + String(code));
  const det: Record<string, string> = {};
  for (const k of allTrailerKeys) {
    if (k.startsWith(DETAIL_TRAILER_PREFIX)) {
      const v = trailer(k);
      if (v !== undefined) det[k.slice(DETAIL_TRAILER_PREFIX.length)] = v;
    }
  }
  return new AppError(c, reason, details || 'request failed', { details: det });
}

/** AppError → NATS services framework headers (ADR-32). */
export function toNatsServiceHeaders(e: unknown): { code: string; description: string } {
  const err = AppError.from(e);
  return { code: String(err.code), description: `${err.reason}: ${err.message}` };
}
