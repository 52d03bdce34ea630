/** What every MTP handler receives (spec §2.9). */
import type { Logger } from '@hubbub/runtime';
import type { Reply } from '../protocol/frames';
import type { DataIn } from '../protocol/schema';
import type { StatusName } from '../protocol/status';
import type { PushHub, PushTarget } from './push-hub';
import type { Actor, Clock, IdentityPort, MessageStorePort, TokenInfo } from './ports';
import type { TokenCache } from './token-cache';

/** The connection as the application sees it. */
export interface ConnContext extends PushTarget {
  /** The peer's address (X-Forwarded-For only from trusted proxies). */
  readonly clientAddress: string;
  /** A fresh idempotency key: instance, connection and request sequence (spec §3.7). */
  nextClientKey(): string;
  /** State machine bookkeeping (spec §3.1): subscribed to `userId`, or not (undefined). */
  setSubscribed(userId: string | undefined): void;
}

export interface Limits {
  readonly maxReplyBytes: number;
  readonly maxMessageBytes: number;
  readonly limitMessages: number;
  readonly limitUsers: number;
  readonly updateMaxItems: number;
  readonly maxFlowUsers: number;
}

export interface AppDeps {
  readonly identity: IdentityPort;
  readonly msg: MessageStorePort;
  readonly hub: PushHub;
  readonly tokens: TokenCache;
  readonly clock: Clock;
  readonly log: Logger;
  readonly limits: Limits;
}

export interface Ctx {
  /** `type` as sent (aliases stay aliases). */
  readonly type: string;
  readonly data: DataIn;
  readonly nowMs: number;
  /** `now` in Unix seconds, once per request. */
  readonly T: number;
  /** Set for authenticated methods. */
  readonly actor: Actor | undefined;
  readonly token: TokenInfo | undefined;
  readonly conn: ConnContext;
  readonly deps: AppDeps;
}

export type Handler = (ctx: Ctx) => Promise<Reply>;

/** A reply of the method itself (`type` = as sent). */
export function reply(
  ctx: Ctx,
  status: StatusName,
  data: Reply['data'],
  detail?: string,
  extra: Partial<Pick<Reply, 'encoded'>> = {},
): Reply {
  return { type: ctx.type, status, detail, data, time: ctx.T, ...extra };
}

/** The authenticated actor; handlers behind `auth: true` always have one. */
export function actorOf(ctx: Ctx): Actor {
  if (!ctx.actor) throw new Error('handler needs an authenticated actor');
  return ctx.actor;
}
