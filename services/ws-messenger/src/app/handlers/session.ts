/** ping_pong, subscribe, unsubscribe (spec §2.8, §2.9 #12). */
import { reply } from '../context';
import type { Handler } from '../context';

export const pingPong: Handler = async (ctx) => reply(ctx, 'OK', null);

export const subscribe: Handler = async (ctx) => {
  // Active before the reply is written: later changes are pushed (held until the reply is out).
  ctx.deps.hub.subscribe(ctx.conn, ctx.token!, ctx.data.user?.[0]?.auth_id ?? '');
  ctx.conn.setSubscribed(ctx.token!.userId);
  return reply(ctx, 'OK', { time: ctx.T });
};

export const unsubscribe: Handler = async (ctx) => {
  ctx.deps.hub.unsubscribe(ctx.conn);
  ctx.conn.setSubscribed(undefined);
  return reply(ctx, 'OK', null);
};
