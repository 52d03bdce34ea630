/**
 * get_update (spec §2.9 #3, §3.5): users, visible flows and messages changed at or after T, with
 * 206 paging by whole seconds.
 */
import { encodeFlow, encodeMessage, encodeUser } from '../../protocol/frames';
import { actorOf, reply } from '../context';
import type { Handler } from '../context';
import { fullFlow, fullMessage, isMtpVisible, profile, sec, sinceMsOf } from '../mapping';

interface Item {
  /** change second */
  readonly c: number;
  /** 0 user, 1 flow, 2 message: the order within one second */
  readonly kind: 0 | 1 | 2;
  readonly id: string;
  readonly text: string;
}

const cmpId = (a: string, b: string): number =>
  a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0;
const cmpItem = (a: Item, b: Item): number => a.c - b.c || a.kind - b.kind || cmpId(a.id, b.id);

export const getUpdate: Handler = async (ctx) => {
  const actor = actorOf(ctx);
  const since = Math.max(0, ctx.data.time ?? 0);
  const sinceMs = sinceMsOf(since);
  const max = ctx.deps.limits.updateMaxItems;
  const [users, channels, changes] = await Promise.all([
    ctx.deps.identity.listUsersChangedSince(sinceMs, max + 1),
    ctx.deps.msg.listChangedChannels(actor, sinceMs),
    ctx.deps.msg.listChanges(actor, sinceMs, max + 1),
  ]);
  const items: Item[] = [];
  for (const u of users.users) {
    if (u.updatedAtMs < sinceMs) continue;
    items.push({ c: sec(u.updatedAtMs), kind: 0, id: u.id, text: encodeUser(profile(u, false)) });
  }
  for (const ch of channels.channels) {
    if (!isMtpVisible(ch) || ch.changedAtMs < sinceMs) continue;
    items.push({ c: sec(ch.changedAtMs), kind: 1, id: ch.id, text: encodeFlow(fullFlow(ch)) });
  }
  // Messages of flows only (§2.9 #3, D6): a readable board or an archived channel is not a flow, all_flow and push
  // leave it out, and a client must not get messages of a flow it cannot know. (Asked only when there are any.)
  const flows = changes.messages.length > 0 ? await ctx.deps.msg.visibleFlowIds(actor) : undefined;
  for (const m of changes.messages) {
    if (m.changedAtMs < sinceMs || !flows!.has(m.channelId)) continue;
    items.push({ c: sec(m.changedAtMs), kind: 2, id: m.id, text: encodeMessage(fullMessage(m)) });
  }
  items.sort(cmpItem);

  // A truncated list is only complete for seconds before its last item's second.
  let completeBefore = Infinity;
  const lastSec = (xs: readonly { changedAtMs?: number; updatedAtMs?: number }[]) =>
    sec(xs[xs.length - 1]?.changedAtMs ?? xs[xs.length - 1]?.updatedAtMs ?? 0);
  if (users.more && users.users.length > 0) completeBefore = Math.min(completeBefore, lastSec(users.users));
  if (changes.more && changes.messages.length > 0) completeBefore = Math.min(completeBefore, lastSec(changes.messages));

  const budget = ctx.deps.limits.maxReplyBytes - 1024;
  const total = items.reduce((n, i) => n + i.text.length + 2, 0);
  let chosen: Item[];
  let dataTime: number;
  let partial = false;
  if (items.length <= max && total <= budget && completeBefore === Infinity) {
    chosen = items;
    dataTime = ctx.T;
  } else {
    partial = true;
    chosen = [];
    let bytes = 0;
    let i = 0;
    let lastIncluded: number | undefined;
    while (i < items.length) {
      const s = items[i]!.c;
      let j = i;
      let groupBytes = 0;
      while (j < items.length && items[j]!.c === s) groupBytes += items[j++]!.text.length + 2;
      if (s >= completeBefore || chosen.length + (j - i) > max || bytes + groupBytes > budget) break;
      for (let k = i; k < j; k++) chosen.push(items[k]!);
      bytes += groupBytes;
      lastIncluded = s;
      i = j;
    }
    if (lastIncluded !== undefined) dataTime = lastIncluded + 1;
    else {
      // The earliest second alone does not fit: as many of its items as fit (spec §3.5 rule 3).
      const s = items[0]?.c ?? since;
      for (const it of items) {
        if (it.c !== s || chosen.length >= max || bytes + it.text.length + 2 > budget) break;
        chosen.push(it);
        bytes += it.text.length + 2;
      }
      dataTime = s + 1;
    }
  }
  // The next poll starts at dataTime: no later than the second in which message-store or identity may still commit
  // changes (their read horizons, in their own clocks: a change stamped earlier but committed after these reads would
  // otherwise never be reported; docs/adr/0007). Never before the client's own time.
  const horizon = Math.min(
    changes.completeBeforeMs ?? Infinity,
    channels.completeBeforeMs ?? Infinity,
    users.completeBeforeMs ?? Infinity,
  );
  if (horizon !== Infinity && sec(horizon) < dataTime) dataTime = Math.max(sec(horizon), Math.min(since, dataTime));
  const pick = (kind: 0 | 1 | 2) => chosen.filter((i) => i.kind === kind).map((i) => i.text);
  return reply(ctx, partial ? 'PARTIAL_CONTENT' : 'OK', null, undefined, {
    encoded: { time: dataTime, user: pick(0), flow: pick(1), message: pick(2) },
  });
};
