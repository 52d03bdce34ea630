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

/** identity's answer that credentials or a token are not valid (a refusal, not an outage). */
export function isCredentialRefusal(e: unknown): boolean {
  return hasCode(e, Code.UNAUTHENTICATED, Code.PERMISSION_DENIED, Code.NOT_FOUND, Code.INVALID_ARGUMENT);
}

export function reasonOf(e: unknown): string {
  return isAppError(e) ? e.reason : '';
}
