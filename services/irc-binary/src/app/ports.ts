/**
 * What the application needs from the world (HOUSE-STYLE §3.2). Adapters implement these against
 * message-store (gRPC), identity (gRPC), presence (NATS KV) and NATS events; tests use the
 * in-memory twins in adapters/memory.ts.
 */
import type { Logger } from '@hubbub/runtime';
import type { ServerFrame } from '../protocol/events';

/** A public channel (§3.7). `name` is message-store's slug. */
export interface ChannelInfo {
  readonly id: string;
  readonly name: string;
}

/** A stored message as the door needs it (message-store's Message). */
export interface StoredMessage {
  readonly id: bigint;
  readonly channelId: string;
  readonly authorName: string;
  readonly text: string;
  readonly hasAttachments: boolean;
}

/** A live "posted" event (§3.6). */
export interface PostedEvent {
  readonly message: StoredMessage;
  readonly channelName: string;
  readonly isPublic: boolean;
}

/** Who posts: an identity account or a guest (§3.4 "Effects of acceptance"). */
export type Author =
  | { readonly kind: 'account'; readonly accountId: string; readonly displayName: string }
  | { readonly kind: 'guest'; readonly displayName: string };

export interface PostRequest {
  readonly channelId: string;
  readonly content: string;
  /** Idempotency key unique to the frame: instance id, connection id, frame sequence (§3.5 rule 5). */
  readonly clientKey: string;
}

export type PostOutcome =
  { readonly ok: true; readonly message: StoredMessage } | { readonly ok: false; readonly reason: string };

/** Thrown (or rejected with) by ports when the backend cannot be reached in time. */
export class BackendUnavailableError extends Error {
  override readonly name = 'BackendUnavailableError';
}

export interface MessageStorePort {
  /** Creates the missing channels as public, in order (§3.11). */
  ensurePublicChannels(names: readonly string[]): Promise<ChannelInfo[]>;
  /** Public, not archived channels in creation order (§3.7), any name length. */
  listPublicChannels(): Promise<ChannelInfo[]>;
  /** One ordered batch; outcomes in request order. Rejects when message-store is unavailable. */
  postBatch(author: Author, posts: readonly PostRequest[]): Promise<PostOutcome[]>;
  /**
   * §3.8: not deleted messages with after < id < before (0 = no bound): the oldest `limit` when only
   * `after` is set, else the newest `limit`; ascending id.
   */
  listMessages(q: { channelId: string; before: bigint; after: bigint; limit: number }): Promise<StoredMessage[]>;
}

export interface Account {
  readonly id: string;
  /** Canonical spelling, as identity stores it. */
  readonly name: string;
}

export interface IdentityPort {
  /** The account whose name folds to fold(name), if any (§3.4 "account name"). */
  lookupAccount(name: string): Promise<Account | undefined>;
  /** True when `token` is a live app password of the account usable on irc-binary. */
  verifyAppPassword(account: Account, token: string, clientAddress: string): Promise<boolean>;
  /** The account that registered this SHA-256 DER fingerprint (64 lowercase hex), if any. */
  lookupByCertFingerprint(fingerprint: string): Promise<Account | undefined>;
  /**
   * Which of these accounts are banned now or deleted (the others are absent from the map). Throws
   * BackendUnavailableError when identity does not answer.
   */
  revokedAccounts(ids: readonly string[]): Promise<Map<string, AccountRevocation>>;
}

/** A held presence entry; released at once when the connection closes (§3.9). */
export interface PresenceLease {
  release(): Promise<void>;
}

export interface PresencePort {
  /** Atomic, cross-door, case-insensitive (fold) guest nick claim (§3.4 row 4). */
  claimGuest(nick: string, sessionId: string): Promise<PresenceLease | undefined>;
  /** Registers an account session for "who is online" (no uniqueness). */
  enterAccountSession(account: Account, sessionId: string): Promise<PresenceLease>;
}

export interface EventHandlers {
  onPosted(ev: PostedEvent): void;
  onChannelsChanged(): void;
  /** True when the message id was already delivered here (lets the adapter skip decoding it). */
  seen(id: string): boolean;
  /** The event connection came back: fill the gap from history. */
  onReconnect(): void;
  /** The event bus connection was lost (gap fill after the reconnect starts from this point). */
  onDisconnect?(): void;
  /** An account was banned, deleted or kicked (identity's user events): its connections must end at once. */
  onAccountRevoked?(accountId: string, why: AccountRevocation): void;
}

/** `kicked`: an operator ended the account's sessions (it may log in again). */
export type AccountRevocation = 'banned' | 'deleted' | 'kicked';

/** Live platform events (§3.6, §3.7). */
export interface EventSource {
  start(handlers: EventHandlers): Promise<void>;
  close(): Promise<void>;
}

/** Counters of §5.1. */
export interface DoorMetrics {
  connectionOpened(): void;
  connectionClosed(code: string): void;
  posted(n: number): void;
  dropped(
    reason: 'rate_limited' | 'rate_limited_address' | 'unknown_channel' | 'store_unavailable' | 'refused',
    n?: number,
  ): void;
  delivered(n: number): void;
  /** A LIST_MESSAGES request waited for its turn (IRCB_HISTORY_RATE_PER_S). */
  historyDelayed(): void;
  auth(result: 'accepted' | 'refused' | 'unavailable'): void;
}

/**
 * What the application may do to one connection (implemented by the transport). Replies go through
 * here so that they keep request order with every other byte of the connection.
 */
export interface ConnectionHandle {
  readonly id: string;
  readonly peerAddress: string;
  readonly isTls: boolean;
  /** SHA-256 of the client's DER certificate (64 lowercase hex) when one was presented. */
  readonly clientCertFingerprint: string | undefined;
  readonly log: Logger;
  readonly isOpen: boolean;
  /** Answers the pending AUTHENTICATE (ACK 02 01 / 02 00). */
  acknowledge(success: boolean, countFailure: boolean): void;
  /** Sends a reply frame (READY only). */
  send(frame: ServerFrame): void;
  /** Queues bytes encoded once and shared by every recipient (READY only). */
  enqueueShared(bytes: Uint8Array): void;
  /** The application's queue fell below IRCB_MAX_PENDING_FRAMES: reading may resume. */
  resumeReading(): void;
  /** Ends the connection (the protocol has no error frame for it); `code` is logged and counted. */
  close(code: string, graceful?: boolean): void;
}
