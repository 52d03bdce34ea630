/**
 * The NameAuthority doors use: identity's CheckUsername RPC. A name is an account name when an
 * account (live or deleted: tombstones keep their names) has it, or when it is reserved.
 * Names that break the username rules can never be accounts, so they are free for guests.
 */
import { identityV1 } from '@hubbub/proto';
import type { NameAuthority } from './presence';

/** The slice of identity's promise client this needs (structural, so no gRPC dependency here). */
export interface UsernameChecker {
  checkUsername(
    req: identityV1.CheckUsernameRequest,
    opts?: { deadlineMs?: number },
  ): Promise<identityV1.CheckUsernameResponse>;
}

export const DEFAULT_NAME_CHECK_DEADLINE_MS = 2_000;

export function identityNameAuthority(
  client: UsernameChecker,
  deadlineMs = DEFAULT_NAME_CHECK_DEADLINE_MS,
): NameAuthority {
  return {
    async isAccountName(folded) {
      const r = await client.checkUsername({ username: folded }, { deadlineMs });
      return (
        r.status === identityV1.UsernameStatus.USERNAME_STATUS_TAKEN ||
        r.status === identityV1.UsernameStatus.USERNAME_STATUS_RESERVED
      );
    },
  };
}
