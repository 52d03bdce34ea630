/** Small shared helpers for the gRPC adapters. */
import { isAppError } from '@hubbub/errors';
import type { Code } from '@hubbub/errors';

export { createClient } from '@hubbub/grpc';

export function isAppErrorCode(e: unknown, ...codes: Code[]): boolean {
  return isAppError(e) && codes.includes(e.code);
}
