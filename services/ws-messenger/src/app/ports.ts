/**
 * What the MTP application needs from the platform, in its own terms. Adapters (src/adapters/)
 * implement these over identity's and message-store's gRPC contracts and NATS events.
 *
 * Errors: ports throw AppError (@hubbub/errors) with the canonical code of the failure; the
 * handlers map codes to MTP replies. UNAVAILABLE and DEADLINE_EXCEEDED mean "backend unreachable"
 * (503).
 */

/** An identity account as MTP shows it. */
export interface Profile {
  readonly id: string;
  /** The login name (identity `username`). */
  readonly username: string;
  /** MTP `username` (identity display name). */
  readonly displayName: string;
  readonly bio: string;
  readonly avatar: string;
  readonly isBot: boolean;
  readonly deleted: boolean;
  readonly updatedAtMs: number;
}

export interface NewSession {
  readonly userId: string;
  readonly token: string;
  readonly ttlSeconds: number;
}

/** A validated session token. */
export interface TokenInfo {
  readonly userId: string;
  readonly displayName: string;
  readonly sessionId: string;
  readonly expiresAtMs: number;
}

export interface IdentityPort {
  /** Creates an account and a session. ALREADY_EXISTS, INVALID_ARGUMENT (reason), RESOURCE_EXHAUSTED. */
  register(i: {
    username: string;
    password: string;
    displayName: string;
    email: string;
    clientAddress: string;
  }): Promise<NewSession>;
  /** UNAUTHENTICATED for an unknown login or a wrong password alike; RESOURCE_EXHAUSTED when throttled. */
  authenticate(i: { username: string; password: string; clientAddress: string }): Promise<NewSession>;
  /** UNAUTHENTICATED when the token is not a live token of exactly `userId`. */
  verifyToken(token: string, userId: string): Promise<TokenInfo>;
  /** undefined when unknown (tombstones are returned with `deleted`). */
  getUser(id: string): Promise<Profile | undefined>;
  getUserByName(username: string): Promise<Profile | undefined>;
  /** Found users by id (tombstones included). */
  getUsers(ids: readonly string[]): Promise<Map<string, Profile>>;
  /** Users changed at or after `sinceMs`, ordered by (updatedAt, id), at most `limit`. */
  /** `completeBeforeMs`: every account change stamped before it is in the answer (undefined: not told). */
  listUsersChangedSince(
    sinceMs: number,
    limit: number,
  ): Promise<{ users: Profile[]; more: boolean; completeBeforeMs?: number | undefined }>;
  /** Deletes the caller's own account (password and login must match). */
  deleteAccount(i: { userId: string; password: string; username: string; clientAddress: string }): Promise<void>;
}

/** The person a request acts for (after authentication). */
export interface Actor {
  readonly userId: string;
  readonly displayName: string;
}

export type ChannelKind = 'group' | 'channel' | 'chat' | 'board' | 'unknown';

export interface ChannelInfo {
  readonly id: string;
  readonly kind: ChannelKind;
  readonly isPublic: boolean;
  /** The channel name (slug) other doors show. */
  readonly name: string;
  readonly title: string;
  readonly info: string;
  /** "" for public channels created by configuration. */
  readonly ownerId: string;
  readonly memberIds: readonly string[];
  readonly createdAtMs: number;
  readonly changedAtMs: number;
  readonly archived: boolean;
}

/** MTP's opaque file strings; undefined = absent. */
export interface Files {
  readonly file_picture?: string | undefined;
  readonly file_video?: string | undefined;
  readonly file_audio?: string | undefined;
  readonly file_document?: string | undefined;
  readonly emoji?: string | undefined;
}

export interface StoredMessage {
  readonly id: string;
  readonly channelId: string;
  readonly authorId: string;
  readonly authorName: string;
  readonly text: string;
  /** undefined when the message never had files. */
  readonly files: Files | undefined;
  readonly createdAtMs: number;
  readonly changedAtMs: number;
  readonly edited: boolean;
  readonly deleted: boolean;
}

export interface MessageStorePort {
  /** Creates the missing public channels (startup). */
  ensurePublicChannels(names: readonly string[]): Promise<ChannelInfo[]>;
  /** Public channels and the actor's memberships, ascending id, with members. */
  listVisibleChannels(actor: Actor): Promise<ChannelInfo[]>;
  /**
   * The same, changed at or after `sinceMs`; `completeBeforeMs`: every channel change stamped before it is in the
   * answer (message-store's read horizon, docs/adr/0007; undefined from a server without it).
   */
  listChangedChannels(
    actor: Actor,
    sinceMs: number,
  ): Promise<{ channels: ChannelInfo[]; completeBeforeMs: number | undefined }>;
  /** undefined when unknown or invisible. `actor` undefined = the door's own system principal. */
  lookupChannel(actor: Actor | undefined, id: string): Promise<ChannelInfo | undefined>;
  createChannel(
    actor: Actor,
    c: { kind: 'group' | 'channel' | 'chat'; title: string; info: string; memberIds: readonly string[] },
  ): Promise<ChannelInfo>;
  /** NOT_FOUND (unknown/invisible), PERMISSION_DENIED (may not post), INVALID_ARGUMENT (too large). */
  postMessage(
    actor: Actor,
    m: { channelId: string; text: string; files: Files | undefined; clientKey: string },
  ): Promise<StoredMessage>;
  /** undefined when unknown or invisible. */
  getMessage(actor: Actor, id: string): Promise<StoredMessage | undefined>;
  editMessage(actor: Actor, id: string, text: string): Promise<StoredMessage>;
  deleteMessage(actor: Actor, id: string): Promise<StoredMessage>;
  /**
   * Messages of a channel created at or after `createdSinceMs`, ascending id, indexed 0..total-1;
   * `start` undefined = the newest `limit`. `limit` ≤ 100.
   */
  sliceMessages(
    actor: Actor,
    channelId: string,
    createdSinceMs: number,
    start: number | undefined,
    limit: number,
  ): Promise<{ total: number; start: number; messages: StoredMessage[] } | undefined>;
  /**
   * Ids of the channels the actor sees as MTP flows (isMtpVisible: groups and channels, not archived), without
   * members. Readable boards and archived channels are not flows (§3.2).
   */
  visibleFlowIds(actor: Actor): Promise<ReadonlySet<string>>;
  /** Messages changed at or after `sinceMs` in readable channels (flows or not), ordered by (changedAt, id). */
  listChanges(
    actor: Actor,
    sinceMs: number,
    limit: number,
  ): Promise<{ messages: StoredMessage[]; more: boolean; completeBeforeMs: number | undefined }>;
}

export type MessageChange = 'posted' | 'edited' | 'deleted';

/** Events other services publish (NATS), as the push hub needs them. */
export interface EventsPort {
  onMessage(
    cb: (
      change: MessageChange,
      m: StoredMessage,
      channel: { id: string; isPublic: boolean; kind: ChannelKind },
    ) => void,
  ): void;
  /** A channel was created or changed (members included). */
  onChannel(cb: (c: ChannelInfo) => void): void;
  /** Sessions revoked: `sessionIds` empty and `all` true = every session of the user. */
  onSessionsRevoked(cb: (userId: string, sessionIds: readonly string[], all: boolean) => void): void;
  close(): Promise<void>;
}

export interface Clock {
  nowMs(): number;
}
