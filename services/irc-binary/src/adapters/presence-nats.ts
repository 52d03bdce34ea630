/**
 * PresencePort over @hubbub/presence (one NATS KV bucket shared by every door). Claims are leases
 * renewed every third of IRCB_PRESENCE_TTL_MS and released at once on close (§3.9).
 */
import type { Presence } from '@hubbub/presence';
import type { Logger } from '@hubbub/runtime';
import type { Account, PresenceLease, PresencePort } from '../app/ports';
import { DOOR } from './message-store-grpc';

export function presenceAdapter(p: Presence, presenceTtlMs: number, log: Logger): PresencePort {
  const renewMs = Math.max(1, Math.floor(presenceTtlMs / 3));
  return {
    async claimGuest(nick, sessionId) {
      const r = await p.claimGuestNick(nick, { displayNick: nick, door: DOOR, sessionId });
      if (!r.ok) return undefined;
      r.lease.startAutoRenew(
        (err) => log.warn({ err, code: 'IRCB_PRESENCE_LOST', sessionId }, 'guest nick claim lost'),
        renewMs,
      );
      return { release: async () => void (await r.lease.release()) };
    },
    async enterAccountSession(account: Account, sessionId): Promise<PresenceLease> {
      const lease = await p.enterSession({ door: DOOR, sessionId, userId: account.id, username: account.name });
      lease.startAutoRenew(undefined, renewMs);
      return { release: async () => void (await lease.release()) };
    },
  };
}
