/**
 * PresencePort over @hubbub/presence (one NATS KV bucket shared by every door). Claims are leases
 * renewed every third of IRCB_PRESENCE_TTL_MS and released at once on close (§3.9).
 *
 * A lease can be lost while its connection lives: a renewal refused (the entry was deleted or changed behind
 * our back), or none went through within the TTL (NATS away), after which the entry may have expired. The
 * entry is then written again at once, and retried with backoff while NATS is away, until the connection
 * releases it: a guest's nick stays claimed, an account session stays listed. A nick another session claimed
 * meanwhile is theirs (logged `IRCB_PRESENCE_LOST`), never taken back.
 */
import type { Lease, Presence } from '@hubbub/presence';
import type { Logger } from '@hubbub/runtime';
import type { Account, PresenceLease, PresencePort } from '../app/ports';
import { DOOR } from './message-store-grpc';

/** Longest wait between attempts to write a lost entry again while NATS is away. */
const MAX_RETAKE_WAIT_MS = 30_000;

export function presenceAdapter(p: Presence, presenceTtlMs: number, log: Logger): PresencePort {
  const renewMs = Math.max(1, Math.floor(presenceTtlMs / 3));

  /** Renews `first`; when a lease is lost, `again()` writes the entry anew ('taken': someone else holds it). */
  const kept = (
    first: Lease,
    again: () => Promise<Lease | 'taken'>,
    what: string,
    sessionId: string,
  ): PresenceLease => {
    let lease = first;
    let released = false;
    const retake = async (err: unknown): Promise<void> => {
      log.warn({ err, code: 'IRCB_PRESENCE_LAPSED', sessionId }, `${what} lapsed; writing it again`);
      let wait = renewMs;
      while (!released) {
        try {
          const r = await again();
          if (r === 'taken') {
            log.warn({ code: 'IRCB_PRESENCE_LOST', sessionId }, `${what} now held by another session`);
            return;
          }
          if (released) {
            await r.release().catch(() => undefined);
            return;
          }
          lease = r;
          keep(r);
          log.info({ code: 'IRCB_PRESENCE_RESTORED', sessionId }, `${what} written again`);
          return;
        } catch (e) {
          log.warn({ err: e, code: 'IRCB_PRESENCE_RETRY', sessionId, retryMs: wait }, `${what} could not be written`);
          await new Promise((r) => setTimeout(r, wait).unref());
          wait = Math.min(wait * 2, MAX_RETAKE_WAIT_MS);
        }
      }
    };
    const keep = (l: Lease): void => l.startAutoRenew((err) => void retake(err), renewMs);
    keep(first);
    return {
      release: async () => {
        released = true;
        await lease.release();
      },
    };
  };

  return {
    async claimGuest(nick, sessionId) {
      const info = { displayNick: nick, door: DOOR, sessionId };
      const r = await p.claimGuestNick(nick, info);
      if (!r.ok) return undefined;
      return kept(
        r.lease,
        async () => {
          const again = await p.claimGuestNick(nick, info);
          return again.ok ? again.lease : 'taken';
        },
        'guest nick claim',
        sessionId,
      );
    },
    async enterAccountSession(account: Account, sessionId): Promise<PresenceLease> {
      const info = { door: DOOR, sessionId, userId: account.id, username: account.name };
      return kept(await p.enterSession(info), () => p.enterSession(info), 'account session', sessionId);
    },
  };
}
