/**
 * IdentityPort over hubbub.identity.v1 (gRPC). Errors stay AppErrors (@hubbub/grpc maps them).
 *
 * VerifyToken, the call behind every authenticated request that misses the door's token cache, goes over NATS
 * request/reply first when a connection is given (`<prefix>.rpc.identity.verify`, docs/adr/0004), with gRPC as
 * the fallback: NATS disconnected, draining or closed, no identity listening, identity BUSY or UNAVAILABLE, or
 * no answer in time (a read, so repeating it on gRPC is always safe). Any other error reply (UNAUTHENTICATED,
 * PERMISSION_DENIED, …) is identity's answer and is thrown as that AppError, exactly as the gRPC call would.
 */
import { Code } from '@hubbub/errors';
import { natsRpc } from '@hubbub/nats';
import type { NatsConnection } from '@hubbub/nats';
import { createClient, isAppErrorCode } from './grpc-util';
import type { PromiseClient } from '@hubbub/grpc';
import { identityV1, subjects } from '@hubbub/proto';
import type { Logger } from '@hubbub/runtime';
import type { IdentityPort, NewSession, Profile, TokenInfo } from '../app/ports';

type Def = typeof identityV1.IdentityServiceService;

export function toProfile(u: identityV1.User): Profile {
  return {
    id: u.id,
    username: u.username,
    displayName: u.displayName || u.username,
    bio: u.bio,
    avatar: u.avatar,
    isBot: u.isBot,
    deleted: u.deleted,
    updatedAtMs: (u.updatedAt ?? u.createdAt)?.getTime() ?? 0,
  };
}

function toSession(user: identityV1.User | undefined, s: identityV1.Session | undefined): NewSession {
  if (!user || !s) throw new Error('identity returned no session');
  return { userId: user.id, token: s.token, ttlSeconds: s.ttlSeconds };
}

export interface IdentityAdapter extends IdentityPort {
  waitForReady(ms: number): Promise<void>;
  /** VerifyToken calls answered over NATS, and calls made on gRPC (all of them without NATS). */
  readonly verifyStats: { readonly nats: number; readonly grpc: number };
  close(): void;
}

export interface IdentityAdapterOptions {
  /** VerifyToken over NATS first (gRPC as the fallback); absent = gRPC only. */
  readonly nats?: { readonly nc: NatsConnection; readonly prefix: string; readonly log?: Logger };
}

export function createIdentityAdapter(
  address: string,
  deadlineMs: number,
  o: IdentityAdapterOptions = {},
): IdentityAdapter {
  const c: PromiseClient<Def> = createClient(identityV1.IdentityServiceService, address, { deadlineMs });
  const R = { attempts: 2 } as const; // reads are safe to repeat once on UNAVAILABLE
  let grpcVerifies = 0;
  const verifyGrpc = (req: identityV1.VerifyTokenRequest): Promise<identityV1.VerifyTokenResponse> => {
    grpcVerifies++;
    return c.verifyToken(req, R);
  };
  const verifyNats = o.nats
    ? natsRpc({
        nc: o.nats.nc,
        subject: subjects(o.nats.prefix).rpcVerifyToken,
        request: identityV1.VerifyTokenRequest,
        response: identityV1.VerifyTokenResponse,
        timeoutMs: deadlineMs,
        retrySafe: true,
        fallback: verifyGrpc,
        name: 'VerifyToken',
        ...(o.nats.log ? { log: o.nats.log } : {}),
      })
    : undefined;
  const verify = verifyNats ?? verifyGrpc;
  return {
    waitForReady: (ms) => c.waitForReady(ms),
    verifyStats: {
      get nats() {
        return verifyNats?.stats.nats ?? 0;
      },
      get grpc() {
        return grpcVerifies;
      },
    },
    close: () => {
      verifyNats?.close();
      c.close();
    },
    async register(i) {
      const res = await c.register(
        identityV1.RegisterRequest.fromPartial({
          username: i.username,
          password: i.password,
          displayName: i.displayName,
          email: i.email,
          clientAddress: i.clientAddress,
          createSession: true,
        }),
      );
      return toSession(res.user, res.session);
    },
    async authenticate(i) {
      const res = await c.authenticate(
        identityV1.AuthenticateRequest.fromPartial({
          username: i.username,
          password: i.password,
          clientAddress: i.clientAddress,
        }),
      );
      return toSession(res.user, res.session);
    },
    async verifyToken(token, userId): Promise<TokenInfo> {
      const res = await verify(identityV1.VerifyTokenRequest.fromPartial({ token, expectedUserId: userId }));
      return {
        userId: res.userId,
        displayName: res.displayName || res.username,
        sessionId: res.sessionId,
        expiresAtMs: res.expiresAt?.getTime() ?? Date.now() + Math.max(1, res.ttlSeconds) * 1000,
      };
    },
    async getUser(id) {
      try {
        const res = await c.getUser(identityV1.GetUserRequest.fromPartial({ userId: id }), R);
        return res.user ? toProfile(res.user) : undefined;
      } catch (e) {
        if (isAppErrorCode(e, Code.NOT_FOUND, Code.INVALID_ARGUMENT)) return undefined;
        throw e;
      }
    },
    async getUserByName(username) {
      try {
        const res = await c.getUserByName(identityV1.GetUserByNameRequest.fromPartial({ username }), R);
        return res.user ? toProfile(res.user) : undefined;
      } catch (e) {
        if (isAppErrorCode(e, Code.NOT_FOUND, Code.INVALID_ARGUMENT)) return undefined;
        throw e;
      }
    },
    async getUsers(ids) {
      const out = new Map<string, Profile>();
      for (let i = 0; i < ids.length; i += 1000) {
        const res = await c.batchGetUsers(
          identityV1.BatchGetUsersRequest.fromPartial({ userIds: ids.slice(i, i + 1000) }),
          R,
        );
        for (const u of res.users) out.set(u.id, toProfile(u));
      }
      return out;
    },
    async listUsersChangedSince(sinceMs, limit) {
      const users: Profile[] = [];
      let pageToken = '';
      // The earliest of the pages' (each is complete before its own; identity's ListUsers docs).
      let completeBeforeMs: number | undefined;
      for (;;) {
        const res = await c.listUsers(
          identityV1.ListUsersRequest.fromPartial({
            pageSize: Math.min(1000, limit - users.length),
            pageToken,
            changedSince: new Date(sinceMs),
            includeDeleted: true,
          }),
          R,
        );
        users.push(...res.users.map(toProfile));
        const cb = res.completeBefore?.getTime();
        if (cb !== undefined && (completeBeforeMs === undefined || cb < completeBeforeMs)) completeBeforeMs = cb;
        pageToken = res.nextPageToken;
        if (pageToken === '' || users.length >= limit)
          return { users: users.slice(0, limit), more: pageToken !== '' || users.length > limit, completeBeforeMs };
      }
    },
    async deleteAccount(i) {
      await c.deleteAccount(
        identityV1.DeleteAccountRequest.fromPartial({
          userId: i.userId,
          password: i.password,
          username: i.username,
          clientAddress: i.clientAddress,
        }),
      );
    },
  };
}
