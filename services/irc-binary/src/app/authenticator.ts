/**
 * AUTHENTICATE (spec §3.4): the four rows, first match decides.
 *
 *   1 invalid nick                      → refuse
 *   2 `name#token`                      → account via app password (never on plaintext by default)
 *   3 fold(nick) is an account name     → account via a registered TLS client certificate
 *   4 otherwise                         → guest via an atomic cross-door presence claim of fold(nick)
 *
 * Backend calls are bounded by IRCB_BACKEND_TIMEOUT_MS; an unreachable backend refuses without
 * counting a failure (IRCB_ERR_IDENTITY_UNAVAILABLE). The token never leaves this function: it is
 * not logged, stored, or put in an error.
 */
import { hasInvisibleCharacter } from '@hubbub/runtime';
import type { Logger } from '@hubbub/runtime';
import { isValidNick, splitToken } from './nick';
import { BackendUnavailableError } from './ports';
import type { Account, Author, IdentityPort, PresenceLease, PresencePort } from './ports';

export type AuthResult =
  | {
      readonly accepted: true;
      /** The effective nick: the canonical account name, or the guest nick exactly as sent. */
      readonly nick: string;
      readonly author: Author;
      readonly account?: Account;
      readonly lease?: PresenceLease;
      readonly method: 'token' | 'certificate' | 'guest';
    }
  | { readonly accepted: false; readonly countFailure: boolean; readonly why: string };

export interface AuthContext {
  readonly isTls: boolean;
  readonly clientCertFingerprint: string | undefined;
  readonly peerAddress: string;
  readonly sessionId: string;
}

export interface AuthenticatorOptions {
  readonly identity: IdentityPort;
  readonly presence: PresencePort;
  readonly allowPlaintextTokens: boolean;
  readonly backendTimeoutMs: number;
  readonly log: Logger;
}

/** Rejects with BackendUnavailableError when `p` does not settle within `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BackendUnavailableError(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

const refused = (why: string, countFailure = true): AuthResult => ({ accepted: false, countFailure, why });

export class Authenticator {
  constructor(private readonly o: AuthenticatorOptions) {}

  async authenticate(nick: string, ctx: AuthContext): Promise<AuthResult> {
    const running = this.check(nick, ctx);
    try {
      return await withTimeout(running, this.o.backendTimeoutMs, 'authentication');
    } catch (e) {
      // A claim that completes after the deadline is given back at once. A failing release must not
      // become an unhandled rejection (that ends the process); the lease expires with its TTL.
      running
        .then(
          (r) => (r.accepted ? r.lease?.release() : undefined),
          () => undefined,
        )
        .catch((err: unknown) =>
          this.o.log.warn(
            { code: 'IRCB_PRESENCE_RELEASE_FAILED', err: err instanceof Error ? err.message : String(err) },
            'late presence claim could not be given back',
          ),
        );
      // Identity or presence unreachable (§3.4): refuse, do not count.
      this.o.log.warn(
        { code: 'IRCB_ERR_IDENTITY_UNAVAILABLE', err: e instanceof Error ? e.message : String(e) },
        'identity or presence unavailable during AUTHENTICATE',
      );
      return refused('backend unavailable', false);
    }
  }

  private async check(nick: string, ctx: AuthContext): Promise<AuthResult> {
    // Row 1.
    if (!isValidNick(nick)) return refused('invalid nick');
    const { identity, presence } = this.o;
    // Row 2.
    const split = splitToken(nick);
    if (split) {
      if (!ctx.isTls && !this.o.allowPlaintextTokens) return refused('app password on plaintext');
      const account = await identity.lookupAccount(split.name);
      if (!account) return refused('token for a name that is not an account');
      if (!(await identity.verifyAppPassword(account, split.token, ctx.peerAddress)))
        return refused('app password refused');
      return { accepted: true, nick: account.name, author: authorOf(account), account, method: 'token' };
    }
    // Row 3.
    const account = await identity.lookupAccount(nick);
    if (account) {
      if (ctx.clientCertFingerprint === undefined) return refused('account name without proof');
      const owner = await identity.lookupByCertFingerprint(ctx.clientCertFingerprint);
      if (!owner || owner.id !== account.id) return refused('client certificate not registered to the account');
      return { accepted: true, nick: account.name, author: authorOf(account), account, method: 'certificate' };
    }
    // Row 4. A guest nick that looks like another name (an account's, a guest's) but for characters that render as
    // nothing would impersonate it on this door, where guests are not marked: refused (README, deliberate differences).
    if (hasInvisibleCharacter(nick)) return refused('invisible character in a guest nick');
    const lease = await presence.claimGuest(nick, ctx.sessionId);
    if (!lease) return refused('nick in use');
    return { accepted: true, nick, author: { kind: 'guest', displayName: nick }, lease, method: 'guest' };
  }
}

function authorOf(a: Account): Author {
  return { kind: 'account', accountId: a.id, displayName: a.name };
}

export { BackendUnavailableError };
