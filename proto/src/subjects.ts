/**
 * NATS subjects are part of the contract (HOUSE-STYLE §3.3): declared here, next to the payload
 * types in gen/, and documented in docs/operations.md. Every subject starts with the configurable
 * prefix (default `hubbub`); event payloads are the proto3 JSON form of the named message (the RPC subjects,
 * `rpc.messages.post` and `rpc.identity.verify`, carry binary protobuf: they are the hot paths of every post and
 * every token check).
 *
 * WIRE-STABLE: subjects are used by running services and operators' scripts; never rename.
 */

/** A subject token must not contain separators or wildcards. */
export function isSubjectToken(s: string): boolean {
  return s.length > 0 && s.length <= 64 && /^[A-Za-z0-9_-]+$/.test(s);
}

function token(s: string): string {
  if (!isSubjectToken(s)) throw new Error(`invalid subject token: ${JSON.stringify(s)}`);
  return s;
}

export const ChatEvent = { Posted: 'posted', Edited: 'edited', Deleted: 'deleted' } as const;
export type ChatEvent = (typeof ChatEvent)[keyof typeof ChatEvent];

export const UserEvent = {
  Created: 'created',
  Updated: 'updated',
  Deleted: 'deleted',
  Banned: 'banned',
  Kicked: 'kicked',
} as const;
export type UserEvent = (typeof UserEvent)[keyof typeof UserEvent];

/** Subject builders bound to a prefix. */
export function subjects(prefix: string) {
  const p = token(prefix);
  return {
    /** `<p>.chat.<channelId>.<posted|edited|deleted>`, payload hubbub.messages.v1.MessageEvent. */
    chat: (channelId: string, ev: ChatEvent): string => `${p}.chat.${token(channelId)}.${ev}`,
    /** Wildcard for every chat event of every channel. */
    chatAll: `${p}.chat.>`,
    /** `<p>.chat.<channelId>.>`: every event of one channel. */
    chatChannel: (channelId: string): string => `${p}.chat.${token(channelId)}.>`,
    /** `<p>.channel.<created|updated|archived>`, payload hubbub.messages.v1.ChannelEvent. */
    channel: (ev: 'created' | 'updated' | 'archived'): string => `${p}.channel.${ev}`,
    channelAll: `${p}.channel.>`,
    /** `<p>.oneliner.posted`, payload hubbub.messages.v1.OnelinerEvent. */
    onelinerPosted: `${p}.oneliner.posted`,
    /** `<p>.identity.user.<created|updated|deleted|banned|kicked>`, payload hubbub.identity.v1.UserEvent. */
    user: (ev: UserEvent): string => `${p}.identity.user.${ev}`,
    userAll: `${p}.identity.user.>`,
    /** `<p>.identity.session.revoked`, payload hubbub.identity.v1.SessionRevokedEvent. */
    sessionRevoked: `${p}.identity.session.revoked`,
    /** `<p>.identity.session.refreshed`, payload hubbub.identity.v1.SessionRefreshedEvent. */
    sessionRefreshed: `${p}.identity.session.refreshed`,
    /**
     * `<p>.rpc.messages.post`: request/reply, queue group `message-store` (NATS services framework endpoint
     * `post-messages`). Request: binary hubbub.messages.v1.PostMessagesRequest; reply: binary
     * PostMessagesResponse, or a services-framework error (`Nats-Service-Error-Code` = gRPC canonical code,
     * `Nats-Service-Error` = `REASON: message`). The doors' hot path for posts (docs/adr/0003).
     */
    rpcPostMessages: `${p}.rpc.messages.post`,
    /**
     * `<p>.rpc.identity.verify`: request/reply, queue group `identity` (NATS services framework endpoint
     * `verify-token`). Request: binary hubbub.identity.v1.VerifyTokenRequest; reply: binary VerifyTokenResponse,
     * or a services-framework error (`Nats-Service-Error-Code` = gRPC canonical code, `Nats-Service-Error` =
     * `REASON: message`). The doors' hot path for token checks; gRPC VerifyToken is the fallback (docs/adr/0004).
     */
    rpcVerifyToken: `${p}.rpc.identity.verify`,
    /**
     * `<p>.rpc.messages.horizon.<holder>`: request/reply between message-store replicas, one subject per replica
     * (`holder` = its value in the worker-id lease bucket). Empty request; the reply is the replica's read horizon,
     * `<id> <ms>` in decimal: the lowest message id and the earliest change time (ms since the epoch) that may still
     * become visible through it (docs/adr/0007).
     */
    rpcHorizon: (holder: string): string => `${p}.rpc.messages.horizon.${token(holder)}`,
    /**
     * `<p>.admin.user.<ban|unban|kick>`: the operators' request subjects, served by identity (queue group
     * `identity`, services-framework endpoints `admin-user-*`). Request and reply are proto3 JSON:
     * hubbub.identity.v1.AdminUserRequest → AdminUserResponse. Only the operators' NATS user may publish them.
     */
    adminUser: (action: 'ban' | 'unban' | 'kick'): string => `${p}.admin.user.${action}`,
    /**
     * `<p>.admin.channel.create`: the operators' request subject, served by message-store (queue group
     * `message-store`, services-framework endpoint `admin-channel-create`). Request and reply are proto3 JSON:
     * hubbub.messages.v1.AdminChannelCreateRequest → AdminChannelCreateResponse. Operators only.
     */
    adminChannelCreate: `${p}.admin.channel.create`,
    /**
     * `<p>.admin.broadcast`: the operators' request subject, served by message-store (queue group
     * `message-store`, services-framework endpoint `admin-broadcast`). Request and reply are proto3 JSON:
     * hubbub.messages.v1.AdminBroadcastRequest → AdminBroadcastResponse. Operators only.
     */
    adminBroadcast: `${p}.admin.broadcast`,
    /** KV bucket names (bucket names allow [A-Za-z0-9_-]). */
    buckets: {
      presence: `${p}_presence`,
      workerIds: `${p}_worker_ids`,
    },
  } as const;
}
export type Subjects = ReturnType<typeof subjects>;
