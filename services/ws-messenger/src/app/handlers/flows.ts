/** add_flow and all_flow (spec §2.9 #6, #7; §3.2). */
import { Code } from '@hubbub/errors';
import { Detail } from '../../protocol/status';
import { hasCode, reasonOf } from '../backend';
import { actorOf, reply } from '../context';
import type { Handler } from '../context';
import type { ChannelInfo } from '../ports';
import { fullFlow, isDecimalId, isMtpVisible, utf8Bytes } from '../mapping';

const FLOW_TYPES = new Set(['chat', 'group', 'channel']);
const MAX_TITLE_BYTES = 256;
const MAX_INFO_BYTES = 4096;
/** message-store's checkTitleInfo length reasons (its NUL_CHARACTER is refused in dispatch step 2 already). */
const TITLE_INFO_REASONS = new Set(['TITLE_TOO_LONG', 'INFO_TOO_LONG']);

export const addFlow: Handler = async (ctx) => {
  const actor = actorOf(ctx);
  const f = ctx.data.flow![0]!;
  const fail = (status: 'BAD_REQUEST' | 'FORBIDDEN' | 'NOT_FOUND', detail: string) =>
    reply(ctx, status, { time: ctx.T, flow: [] }, detail);
  // Checks in the order of the spec's table; nothing is written unless all pass.
  const type = f.type;
  if (type === undefined || !FLOW_TYPES.has(type)) return fail('BAD_REQUEST', Detail.wrongFlowType);
  const users = [...new Set(f.users ?? [])];
  const maxUsers = ctx.deps.limits.maxFlowUsers;
  if (users.length > maxUsers) return fail('BAD_REQUEST', Detail.tooManyFlowUsers(maxUsers));
  if (type === 'chat' && users.length !== 2) return fail('BAD_REQUEST', Detail.twoUsersOnly);
  if (utf8Bytes(f.title) > MAX_TITLE_BYTES || utf8Bytes(f.info) > MAX_INFO_BYTES) {
    return fail('BAD_REQUEST', Detail.titleTooLong);
  }
  if (f.owner !== undefined && f.owner !== actor.userId) return fail('FORBIDDEN', Detail.ownerMustBeCaller);
  if (type === 'chat' && !users.includes(actor.userId)) return fail('FORBIDDEN', Detail.chatMustIncludeCaller);
  if (users.some((u) => !isDecimalId(u))) return fail('NOT_FOUND', Detail.userNotFound);
  const others = users.filter((u) => u !== actor.userId);
  if (others.length > 0) {
    const found = await ctx.deps.identity.getUsers(others);
    if (others.some((u) => !found.get(u) || found.get(u)!.deleted)) return fail('NOT_FOUND', Detail.userNotFound);
  }
  let c: ChannelInfo;
  try {
    c = await ctx.deps.msg.createChannel(actor, {
      kind: type as 'chat' | 'group' | 'channel',
      title: f.title ?? '',
      info: f.info ?? '',
      memberIds: users,
    });
  } catch (e) {
    // message-store's own length limits (in bytes, like ours): the same 400 row (#4).
    if (hasCode(e, Code.INVALID_ARGUMENT) && TITLE_INFO_REASONS.has(reasonOf(e))) {
      return fail('BAD_REQUEST', Detail.titleTooLong);
    }
    throw e;
  }
  return reply(ctx, 'OK', { time: ctx.T, flow: [fullFlow(c)] });
};

export const allFlow: Handler = async (ctx) => {
  const channels = (await ctx.deps.msg.listVisibleChannels(actorOf(ctx))).filter(isMtpVisible);
  if (channels.length === 0) return reply(ctx, 'NOT_FOUND', { time: ctx.T, flow: [] });
  return reply(ctx, 'OK', { time: ctx.T, flow: channels.map(fullFlow) });
};
