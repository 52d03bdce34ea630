/** IdentityPort over hubbub.identity.v1 (CheckUsername, VerifyAppPassword, LookupByCertFingerprint, BatchGetUsers). */
import { Code, isAppError } from '@hubbub/errors';
import type { PromiseClient } from '@hubbub/grpc';
import { identityV1 } from '@hubbub/proto';
import { foldName } from '@hubbub/runtime';
import { BackendUnavailableError } from '../app/ports';
import type { Account, AccountRevocation, IdentityPort } from '../app/ports';

export type IdentityClient = PromiseClient<typeof identityV1.IdentityServiceService>;

/** Answers that mean "no" (not "identity is down"). */
const REFUSALS: ReadonlySet<number> = new Set([
  Code.UNAUTHENTICATED,
  Code.NOT_FOUND,
  Code.PERMISSION_DENIED,
  Code.RESOURCE_EXHAUSTED,
  Code.INVALID_ARGUMENT,
  Code.FAILED_PRECONDITION,
]);

function refusalOrThrow<T>(e: unknown, refusal: T): T {
  if (isAppError(e) && REFUSALS.has(e.code)) return refusal;
  throw new BackendUnavailableError(isAppError(e) ? `${e.reason}: ${e.message}` : String(e));
}

export function identityAdapter(client: IdentityClient, backendTimeoutMs: number): IdentityPort {
  const opts = { deadlineMs: backendTimeoutMs };
  return {
    async lookupAccount(name) {
      try {
        const r = await client.checkUsername({ username: foldName(name) }, opts);
        if (r.status !== identityV1.UsernameStatus.USERNAME_STATUS_TAKEN || !r.userId) return undefined;
        return { id: r.userId, name: r.canonicalUsername || name };
      } catch (e) {
        return refusalOrThrow(e, undefined);
      }
    },
    async verifyAppPassword(account: Account, token, clientAddress) {
      try {
        const r = await client.verifyAppPassword(
          { username: account.name, secret: token, clientAddress, protocol: 'irc' },
          opts,
        );
        return r.user?.id === account.id;
      } catch (e) {
        return refusalOrThrow(e, false);
      }
    },
    async revokedAccounts(ids) {
      const out = new Map<string, AccountRevocation>();
      if (ids.length === 0) return out;
      let r;
      try {
        r = await client.batchGetUsers({ userIds: [...ids] }, opts);
      } catch (e) {
        throw new BackendUnavailableError(isAppError(e) ? `${e.reason}: ${e.message}` : String(e));
      }
      const now = Date.now();
      for (const u of r.users) {
        if (u.deleted) out.set(u.id, 'deleted');
        else if (u.ban && (u.ban.until === undefined || u.ban.until.getTime() > now)) out.set(u.id, 'banned');
      }
      return out;
    },
    async lookupByCertFingerprint(fingerprint) {
      try {
        const r = await client.lookupByCertFingerprint({ fingerprint }, opts);
        return r.user ? { id: r.user.id, name: r.user.username } : undefined;
      } catch (e) {
        return refusalOrThrow(e, undefined);
      }
    },
  };
}
