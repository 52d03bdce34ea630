/** register_user, authentication/auth, user_info, delete_user (spec §2.9 #1, #2, #8, #9). */
import { Code } from '@hubbub/errors';
import type { UserOut } from '../../protocol/frames';
import { Detail } from '../../protocol/status';
import { hasCode, isCredentialRefusal, reasonOf } from '../backend';
import { actorOf, reply } from '../context';
import type { Ctx, Handler } from '../context';
import { GUEST_PREFIX, SYSTEM_PREFIX, guestProfile, isDecimalId, profile, systemProfile } from '../mapping';
import type { Profile } from '../ports';

const firstUser = (ctx: Ctx) => ctx.data.user?.[0] ?? {};

export const registerUser: Handler = async (ctx) => {
  const u = firstUser(ctx);
  if (u.login === undefined || u.password === undefined) return reply(ctx, 'UNAUTHORIZED', null);
  try {
    const s = await ctx.deps.identity.register({
      username: u.login,
      password: u.password,
      displayName: u.username ?? u.login,
      email: u.email ?? '',
      clientAddress: ctx.conn.clientAddress,
    });
    const user: UserOut = { uuid: s.userId, auth_id: s.token, token_ttl: s.ttlSeconds };
    return reply(ctx, 'CREATED', { time: ctx.T, user: [user] });
  } catch (e) {
    if (hasCode(e, Code.ALREADY_EXISTS)) return reply(ctx, 'CONFLICT', null);
    if (hasCode(e, Code.RESOURCE_EXHAUSTED)) return reply(ctx, 'TOO_MANY_REQUESTS', null, Detail.tooManyAttempts);
    if (hasCode(e, Code.INVALID_ARGUMENT, Code.FAILED_PRECONDITION)) {
      const pw = reasonOf(e).includes('PASSWORD');
      return reply(ctx, 'BAD_REQUEST', null, pw ? Detail.passwordRules : Detail.loginRules);
    }
    throw e;
  }
};

export const authentication: Handler = async (ctx) => {
  const u = firstUser(ctx);
  const none = { time: ctx.T, user: [] };
  if (u.login === undefined) return reply(ctx, 'NOT_FOUND', none);
  const known = async (): Promise<boolean> => {
    const p = await ctx.deps.identity.getUserByName(u.login!);
    return p !== undefined && !p.deleted;
  };
  if (u.password === undefined) return reply(ctx, (await known()) ? 'UNAUTHORIZED' : 'NOT_FOUND', none);
  try {
    const s = await ctx.deps.identity.authenticate({
      username: u.login,
      password: u.password,
      clientAddress: ctx.conn.clientAddress,
    });
    return reply(ctx, 'OK', { time: ctx.T, user: [{ uuid: s.userId, auth_id: s.token, token_ttl: s.ttlSeconds }] });
  } catch (e) {
    if (hasCode(e, Code.RESOURCE_EXHAUSTED)) return reply(ctx, 'TOO_MANY_REQUESTS', none, Detail.tooManyAttempts);
    if (isCredentialRefusal(e)) {
      return reply(ctx, (await known()) ? 'UNAUTHORIZED' : 'NOT_FOUND', none);
    }
    throw e;
  }
};

export const userInfo: Handler = async (ctx) => {
  const list = ctx.data.user ?? [];
  const { limitUsers } = ctx.deps.limits;
  if (list.length > limitUsers) {
    return reply(ctx, 'TOO_MANY_REQUESTS', { time: ctx.T, user: [] }, Detail.tooManyUsers(limitUsers));
  }
  const wanted = list.slice(1).map((u) => u.uuid);
  const ids = [...new Set(wanted.filter(isDecimalId))];
  const found: Map<string, Profile> =
    ids.length > 0 ? await ctx.deps.identity.getUsers(ids) : new Map<string, Profile>();
  const users: UserOut[] = [];
  let missing = false;
  for (const id of wanted) {
    if (id !== undefined && id.startsWith(GUEST_PREFIX) && id.length > GUEST_PREFIX.length) {
      users.push(guestProfile(id));
      continue;
    }
    if (id !== undefined && id.startsWith(SYSTEM_PREFIX) && id.length > SYSTEM_PREFIX.length) {
      users.push(systemProfile(id));
      continue;
    }
    const p = id === undefined ? undefined : found.get(id);
    if (p) users.push(profile(p, true));
    else missing = true;
  }
  if (missing) return reply(ctx, 'UNKNOWN_ERROR', { time: ctx.T, user: users }, Detail.userNotFound);
  return reply(ctx, 'OK', { time: ctx.T, user: users });
};

export const deleteUser: Handler = async (ctx) => {
  const actor = actorOf(ctx);
  const u = firstUser(ctx);
  if (u.login === undefined || u.password === undefined) return reply(ctx, 'NOT_FOUND', null, Detail.userNotFound);
  try {
    await ctx.deps.identity.deleteAccount({
      userId: actor.userId,
      password: u.password,
      username: u.login,
      clientAddress: ctx.conn.clientAddress,
    });
  } catch (e) {
    if (
      hasCode(
        e,
        Code.UNAUTHENTICATED,
        Code.PERMISSION_DENIED,
        Code.NOT_FOUND,
        Code.INVALID_ARGUMENT,
        Code.FAILED_PRECONDITION,
        Code.RESOURCE_EXHAUSTED,
      )
    ) {
      return reply(ctx, 'NOT_FOUND', null, Detail.userNotFound);
    }
    throw e;
  }
  // identity also publishes the revocation; do not wait for it (spec §3.3: refused within 1 s).
  ctx.deps.tokens.revoke(actor.userId, [], true);
  ctx.deps.hub.onSessionsRevoked(actor.userId, [], true);
  return reply(ctx, 'OK', null);
};
