/**
 * @hubbub/presence: who is online on which door, and guest-nick claims unique across every door
 * (NATS KV with leases). See presence.ts for the rules.
 */
export {
  DEFAULT_PRESENCE_RENEW_MS,
  DEFAULT_PRESENCE_TTL_MS,
  MAX_NICK_BYTES,
  Presence,
  PresenceKind,
  nickKey,
  sessionKey,
} from './presence';
export type {
  AccountSessionInfo,
  GuestClaimInfo,
  GuestClaimResult,
  Lease,
  NameAuthority,
  PresenceEntry,
  PresenceOptions,
  PresenceRecord,
} from './presence';
export { DEFAULT_NAME_CHECK_DEADLINE_MS, identityNameAuthority } from './identity-authority';
export type { UsernameChecker } from './identity-authority';
