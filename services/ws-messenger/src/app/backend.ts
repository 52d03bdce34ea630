/** Classification of backend failures (AppError codes from the gRPC adapters). */
import { Code, isAppError } from '@hubbub/errors';

/** identity / message-store could not be reached in time: 503 (spec §2.6, §5). */
export function isUnavailable(e: unknown): boolean {
  return (
    isAppError(e) && (e.code === Code.UNAVAILABLE || e.code === Code.DEADLINE_EXCEEDED || e.code === Code.CANCELLED)
  );
}

export function hasCode(e: unknown, ...codes: Code[]): boolean {
  return isAppError(e) && codes.includes(e.code);
}

export function reasonOf(e: unknown): string {
  return isAppError(e) ? e.reason : '';
}
