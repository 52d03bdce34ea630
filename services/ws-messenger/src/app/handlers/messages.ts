/** send_message, all_messages, delete_message, edited_message (spec §2.9 #4, #5, #10, #11; §3.6). */
import { Code } from '@hubbub/errors';
import { encodeFlow, encodeMessage } from '../../protocol/frames';
import type { MessageOut } from '../../protocol/frames';
import type { MessageIn } from '../../protocol/schema';
import { Detail } from '../../protocol/status';
import { hasCode, reasonOf } from '../backend';
import { actorOf, reply } from '../context';
import type { Ctx, Handler } from '../context';
import { fullMessage, isDecimalId, sinceMsOf, utf8Bytes } from '../mapping';
import type { Actor, Files, StoredMessage } from '../ports';

const FILE_KEYS = ['file_picture', 'file_video', 'file_audio', 'file_document', 'emoji'] as const;

/**
 * message-store's size refusals (its checkContent). Any other refusal of content is not "too large": a NUL
 * character (its NUL_CHARACTER) is refused in dispatch step 2 already, and what is left is a bug (500, logged).
 */
const SIZE_REASONS: ReadonlySet<string> = new Set(['TEXT_TOO_LARGE', 'ATTACHMENTS_TOO_LARGE']);
const isSizeRefusal = (e: unknown): boolean =>
  hasCode(e, Code.OUT_OF_RANGE) || (hasCode(e, Code.INVALID_ARGUMENT) && SIZE_REASONS.has(reasonOf(e)));

function filesOf(m: MessageIn): Files | undefined {
  if (FILE_KEYS.every((k) => m[k] === undefined)) return undefined;
  return {
    file_picture: m.file_picture,
    file_video: m.file_video,
    file_audio: m.file_audio,
    file_document: m.file_document,
    emoji: m.emoji,
  };
}

function messageBytes(text: string | undefined, files: Files | undefined): number {
  let n = utf8Bytes(text);
  if (files) for (const k of FILE_KEYS) n += utf8Bytes(files[k]);
  return n;
}

export const sendMessage: Handler = async (ctx) => {
  const actor = actorOf(ctx);
  const flowId = ctx.data.flow![0]!.uuid!;
  const m = ctx.data.message![0]!;
  const notFound = () => reply(ctx, 'NOT_FOUND', null, Detail.flowNotFound);
  if (!isDecimalId(flowId)) return notFound();
  const files = filesOf(m);
  const max = ctx.deps.limits.maxMessageBytes;
  const tooLarge = () => reply(ctx, 'BAD_REQUEST', null, Detail.messageTooLarge(max));
  if (messageBytes(m.text, files) > max) {
    // 404 comes before 400 (spec §2.9 #4): an invisible flow must not be probed by size.
    const c = await ctx.deps.msg.lookupChannel(actor, flowId);
    return c ? tooLarge() : notFound();
  }
  let stored: StoredMessage;
  try {
    stored = await ctx.deps.msg.postMessage(actor, {
      channelId: flowId,
      text: m.text ?? '',
      files,
      clientKey: ctx.conn.nextClientKey(),
    });
  } catch (e) {
    if (hasCode(e, Code.NOT_FOUND, Code.FAILED_PRECONDITION)) return notFound();
    if (hasCode(e, Code.PERMISSION_DENIED)) return reply(ctx, 'FORBIDDEN', null, Detail.channelOwnerOnly);
    if (isSizeRefusal(e)) return tooLarge();
    throw e;
  }
  const out: MessageOut = {
    uuid: stored.id,
    from_user: actor.userId,
    from_flow: flowId,
    client_id: m.client_id ?? null,
  };
  return reply(ctx, 'OK', { time: ctx.T, message: [out] });
};

const SLICE_PAGE = 100;

/**
 * Messages [start, start+count) of the flow (start undefined = the newest `count`), in pages of
 * at most 100. undefined when the flow is unknown or invisible.
 */
async function fetchRange(
  ctx: Ctx,
  actor: Actor,
  flowId: string,
  sinceMs: number,
  start: number | undefined,
  count: number,
): Promise<{ total: number; start: number; messages: StoredMessage[] } | undefined> {
  const msg = ctx.deps.msg;
  const first = await msg.sliceMessages(actor, flowId, sinceMs, start, Math.max(1, Math.min(count, SLICE_PAGE)));
  if (!first) return undefined;
  const total = first.total;
  if (count === 0) return { total, start: start ?? total, messages: [] };
  let from = first.start;
  let messages = first.messages.slice(0, count);
  if (start === undefined && count > SLICE_PAGE && total > messages.length) {
    from = Math.max(0, total - count);
    messages = [];
  }
  while (messages.length < count && from + messages.length < total) {
    const page = await msg.sliceMessages(
      actor,
      flowId,
      sinceMs,
      from + messages.length,
      Math.min(SLICE_PAGE, count - messages.length),
    );
    if (!page || page.messages.length === 0) break;
    messages = messages.concat(page.messages);
  }
  return { total, start: from, messages };
}

export const allMessages: Handler = async (ctx) => {
  const actor = actorOf(ctx);
  const flow = ctx.data.flow![0]!;
  const flowId = flow.uuid!;
  const L = ctx.deps.limits.limitMessages;
  const sinceMs = sinceMsOf(ctx.data.time);
  const notFound = () => reply(ctx, 'NOT_FOUND', { time: ctx.T, flow: [], message: [] }, Detail.flowNotFound);
  if (!isDecimalId(flowId)) return notFound();
  const s = flow.message_start === undefined ? undefined : Math.max(0, flow.message_start);
  const e = flow.message_end === undefined ? undefined : Math.max(0, flow.message_end);

  const all = async (r: { total: number; start: number; messages: StoredMessage[] }) => {
    // N ≤ L: every message, whatever the range asked.
    const got =
      r.start === 0 && r.messages.length >= r.total ? r : await fetchRange(ctx, actor, flowId, sinceMs, 0, r.total);
    return sized(ctx, flowId, got?.messages ?? [], undefined, r.total);
  };

  if (e !== undefined && e - (s ?? 0) > L) {
    const r = await fetchRange(ctx, actor, flowId, sinceMs, 0, L);
    if (!r) return notFound();
    if (r.total <= L) return all(r);
    return reply(
      ctx,
      'FORBIDDEN',
      { time: ctx.T, flow: [{ uuid: flowId, message_start: s ?? 0, message_end: r.total }], message: [] },
      Detail.tooManyMessages(L),
    );
  }
  let r;
  if (e !== undefined) {
    const from = s ?? 0;
    r = await fetchRange(ctx, actor, flowId, sinceMs, from, Math.max(0, e - from));
  } else {
    r = await fetchRange(ctx, actor, flowId, sinceMs, s, L);
  }
  if (!r) return notFound();
  if (r.total <= L) return all(r);
  const start = s ?? (e !== undefined ? 0 : r.start);
  return sized(ctx, flowId, r.messages, start, r.total);
};

/** The reply, cut after the last whole message that fits WSM_MAX_REPLY_BYTES (206 then). */
function sized(ctx: Ctx, flowId: string, messages: StoredMessage[], start: number | undefined, total: number) {
  const budget = ctx.deps.limits.maxReplyBytes - 1024;
  const encoded: string[] = [];
  let bytes = 0;
  let cut = false;
  for (const m of messages) {
    const text = encodeMessage(fullMessage(m));
    bytes += text.length + 2;
    if (bytes > budget) {
      cut = true;
      break;
    }
    encoded.push(text);
  }
  const partial = start !== undefined || cut;
  const flowText = encodeFlow(
    partial ? { uuid: flowId, message_start: start ?? 0, message_end: total } : { uuid: flowId },
  );
  return reply(ctx, partial ? 'PARTIAL_CONTENT' : 'OK', null, undefined, {
    encoded: { time: ctx.T, user: null, flow: [flowText], message: encoded },
  });
}

async function ownMessage(
  ctx: Ctx,
): Promise<{ ok: true; m: StoredMessage } | { ok: false; reply: ReturnType<typeof reply> }> {
  const actor = actorOf(ctx);
  const id = ctx.data.message![0]!.uuid!;
  const notFound = { ok: false as const, reply: reply(ctx, 'NOT_FOUND', null, Detail.messageNotFound) };
  if (!isDecimalId(id)) return notFound;
  const m = await ctx.deps.msg.getMessage(actor, id);
  if (!m || m.deleted) return notFound;
  if (m.authorId !== actor.userId) return { ok: false, reply: reply(ctx, 'FORBIDDEN', null, Detail.authorOnly) };
  return { ok: true, m };
}

function mapChangeError(ctx: Ctx, e: unknown) {
  if (hasCode(e, Code.NOT_FOUND, Code.FAILED_PRECONDITION))
    return reply(ctx, 'NOT_FOUND', null, Detail.messageNotFound);
  if (hasCode(e, Code.PERMISSION_DENIED)) return reply(ctx, 'FORBIDDEN', null, Detail.authorOnly);
  if (isSizeRefusal(e)) {
    return reply(ctx, 'BAD_REQUEST', null, Detail.messageTooLarge(ctx.deps.limits.maxMessageBytes));
  }
  throw e;
}

export const editedMessage: Handler = async (ctx) => {
  const own = await ownMessage(ctx);
  if (!own.ok) return own.reply;
  const text = ctx.data.message![0]!.text;
  if (text === undefined) return reply(ctx, 'BAD_REQUEST', null, Detail.textRequired);
  const max = ctx.deps.limits.maxMessageBytes;
  if (messageBytes(text, own.m.files) > max) return reply(ctx, 'BAD_REQUEST', null, Detail.messageTooLarge(max));
  try {
    await ctx.deps.msg.editMessage(actorOf(ctx), own.m.id, text);
  } catch (e) {
    return mapChangeError(ctx, e);
  }
  return reply(ctx, 'OK', null);
};

export const deleteMessage: Handler = async (ctx) => {
  const own = await ownMessage(ctx);
  if (!own.ok) return own.reply;
  try {
    await ctx.deps.msg.deleteMessage(actorOf(ctx), own.m.id);
  } catch (e) {
    return mapChangeError(ctx, e);
  }
  return reply(ctx, 'OK', null);
};
