import { createLogger } from '@hubbub/runtime';
import { waitFor } from '@hubbub/testing';
import { PushHub } from './push-hub';
import type { PushTarget } from './push-hub';
import type { ChannelInfo, MessageStorePort, StoredMessage } from './ports';

const log = createLogger({ service: 'test', level: 'silent' });
const NOW = 1_700_000_000_000;
const MAX_AGE = 60_000;
let now = NOW;
const clock = { nowMs: () => now };
beforeEach(() => {
  now = NOW;
});
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

function target(id: string): PushTarget & { frames: Buffer[]; ended: number } {
  const t = {
    id,
    frames: [] as Buffer[],
    ended: 0,
    push: (f: Buffer) => void t.frames.push(f),
    subscriptionEnded: () => void t.ended++,
  };
  return t;
}
const token = (userId: string, sessionId = 's', expiresAtMs = NOW + 60_000) => ({
  userId,
  displayName: userId,
  sessionId,
  expiresAtMs,
});
const msg = (id: string, channelId: string): StoredMessage => ({
  id,
  channelId,
  authorId: '1',
  authorName: 'one',
  text: 'hi',
  files: undefined,
  createdAtMs: NOW,
  changedAtMs: NOW,
  edited: false,
  deleted: false,
});
const channel = (id: string, members: string[], isPublic = false): ChannelInfo => ({
  id,
  kind: 'group',
  isPublic,
  name: `c${id}`,
  title: 't',
  info: '',
  ownerId: isPublic ? '' : (members[0] ?? ''),
  memberIds: members,
  createdAtMs: NOW,
  changedAtMs: NOW,
  archived: false,
});

function hub(lookup: (id: string) => Promise<ChannelInfo | undefined> = async () => undefined): PushHub {
  const msgPort = { lookupChannel: (_a: unknown, id: string) => lookup(id) } as unknown as MessageStorePort;
  return new PushHub({ msg: msgPort, log, clock, factsMaxAgeMs: MAX_AGE });
}

/**
 * message-store's side: the channels as they are now (changed without any event when a test loses one),
 * the lookups asked, and answers held back while `hold` is set. An answer is read when asked, like a real read.
 */
function fakeStore() {
  const st = {
    channels: new Map<string, ChannelInfo>(),
    lookups: [] as string[],
    hold: false,
    fail: false,
    held: [] as (() => void)[],
    release: () => {
      for (const r of st.held.splice(0)) r();
    },
    lookup: async (id: string): Promise<ChannelInfo | undefined> => {
      st.lookups.push(id);
      if (st.fail) throw new Error('message-store unavailable');
      const answer = st.channels.get(id);
      if (st.hold) await new Promise<void>((r) => st.held.push(r));
      return answer;
    },
  };
  return st;
}
/** The message ids pushed to a target, in order (flow frames left out). */
const ids = (t: { frames: Buffer[] }): string[] =>
  t.frames.flatMap((f) => {
    const m = /"message": \[\{"uuid": "(\d+)"/.exec(f.toString());
    return m ? [m[1]!] : [];
  });
/** Outlives the clock moves of the channel-facts tests. */
const longToken = (userId: string) => token(userId, 's', NOW + 3_600_000);
const priv = { id: '9', isPublic: false, kind: 'group' as const };

describe('PushHub', () => {
  it('encodes a public-channel update once and writes the same bytes to every subscriber', () => {
    const h = hub();
    const a = target('a');
    const b = target('b');
    h.subscribe(a, token('1'), 'tok1');
    h.subscribe(b, token('2'), 'tok2');
    h.onMessage('posted', msg('100', '5'), { id: '5', isPublic: true, kind: 'group' });
    expect(a.frames).toHaveLength(1);
    expect(b.frames[0]).toBe(a.frames[0]);
    expect(a.frames[0]!.toString()).toBe(
      `{"type": "update", "jsonapi": {"version": "1.0", "revision": "17"}, "meta": null, "data": {"time": ${NOW / 1000}, "user": [], "meta": null, "flow": [], "message": [{"uuid": "100", "text": "hi", "from_user": "1", "time": ${NOW / 1000}, "from_flow": "5", "file_picture": null, "file_video": null, "file_audio": null, "file_document": null, "emoji": null, "edited_time": null, "edited_status": false, "client_id": null}]}, "errors": {"detail": "Request fulfilled, document follows", "code": 200, "status": "OK", "time": ${NOW / 1000}}}`,
    );
  });

  it('delivers private changes to current members only, in order, after a membership lookup', async () => {
    let resolve!: (c: ChannelInfo) => void;
    const h = hub(() => new Promise((r) => (resolve = r)));
    const member = target('m');
    const outsider = target('o');
    h.subscribe(member, token('1'), 'tok1');
    h.subscribe(outsider, token('3'), 'tok3');
    h.onMessage('posted', msg('1', '9'), { id: '9', isPublic: false, kind: 'group' });
    h.onMessage('posted', msg('2', '9'), { id: '9', isPublic: false, kind: 'group' });
    resolve(channel('9', ['1', '2']));
    await waitFor(() => member.frames.length === 2, 1_000, 'two frames');
    expect(member.frames.map((f) => /"uuid": "(\d+)"/.exec(f.toString())![1])).toEqual(['1', '2']);
    expect(outsider.frames).toEqual([]);
    // a member removed later stops receiving (authorization at delivery time)
    h.onChannel(channel('9', ['2']));
    const before = member.frames.length;
    h.onMessage('posted', msg('3', '9'), { id: '9', isPublic: false, kind: 'group' });
    expect(member.frames.length).toBe(before);
  });

  it('pushes flows to their members and ends revoked or expired subscriptions with the final 401 frame', () => {
    const h = hub();
    const a = target('a');
    const b = target('b');
    h.subscribe(a, token('1', 's1'), 'tok1');
    h.subscribe(b, token('2', 's2', NOW + 10), 'tok2');
    h.onChannel(channel('4', ['1']));
    expect(a.frames).toHaveLength(1);
    expect(a.frames[0]!.toString()).toContain('"flow": [{"time": ');
    expect(b.frames).toEqual([]);
    h.onSessionsRevoked('1', ['other'], false);
    expect(a.ended).toBe(0);
    h.onSessionsRevoked('1', ['s1'], false);
    expect(a.ended).toBe(1);
    expect(a.frames[1]!.toString()).toBe(
      `{"type": "update", "jsonapi": {"version": "1.0", "revision": "17"}, "meta": null, "data": null, "errors": {"detail": "Authentication User failed", "code": 401, "status": "Unauthorized", "time": ${NOW / 1000}}}`,
    );
    h.sweep(NOW + 10);
    expect(b.ended).toBe(1);
    expect(h.size).toBe(0);
  });

  it('recheck asks identity once per token and ends the subscriptions whose token it refuses', async () => {
    const h = hub();
    const [a1, a2, b, c] = [target('a1'), target('a2'), target('b'), target('c')];
    h.subscribe(a1, token('1', 'sa'), 'revoked-token');
    h.subscribe(a2, token('1', 'sa'), 'revoked-token');
    h.subscribe(b, token('2', 'sb'), 'good-token');
    h.subscribe(c, token('3', 'sc'), 'other-good');
    const asked: string[] = [];
    const refusal = new Error('TOKEN_INVALID');
    const n = await h.recheck(
      async (t, userId) => {
        asked.push(`${t}/${userId}`);
        if (t === 'revoked-token') throw refusal;
        return { userId };
      },
      (e) => e === refusal,
      2,
    );
    expect(n).toBe(2);
    expect(asked.sort()).toEqual(['good-token/2', 'other-good/3', 'revoked-token/1']);
    expect([a1.ended, a2.ended, b.ended, c.ended]).toEqual([1, 1, 0, 0]);
    expect(a1.frames.at(-1)!.toString()).toContain('"code": 401');
    expect(h.size).toBe(2);
  });

  it('recheck stops at the first failure that is not a refusal and keeps the subscriptions', async () => {
    const h = hub();
    const a = target('a');
    h.subscribe(a, token('1'), 'tok1');
    const down = new Error('identity unavailable');
    await expect(
      h.recheck(
        async () => {
          throw down;
        },
        () => false,
      ),
    ).rejects.toBe(down);
    expect(a.ended).toBe(0);
    expect(h.size).toBe(1);
  });
});

describe('PushHub channel facts (lost channel events)', () => {
  /** Users 1 and 2 subscribed as targets a and b, over a fake store that counts lookups. */
  const twoSubscribers = () => {
    const st = fakeStore();
    const h = hub(st.lookup);
    const [a, b] = [target('a'), target('b')];
    h.subscribe(a, longToken('1'), 'tok1');
    h.subscribe(b, longToken('2'), 'tok2');
    return { st, h, a, b };
  };

  it('a member whose removal event was lost stops receiving once the cached facts expire', async () => {
    const { st, h, a, b } = twoSubscribers();
    h.onChannel(channel('9', ['1', '2']));
    h.onMessage('posted', msg('1', '9'), priv);
    // user 1 is removed in message-store, but the channel event never arrives
    st.channels.set('9', channel('9', ['2']));
    now += MAX_AGE - 1;
    h.onMessage('posted', msg('2', '9'), priv);
    expect(st.lookups).toEqual([]); // still fresh: the bound is the age, not every event
    now += 1;
    h.onMessage('posted', msg('3', '9'), priv);
    await flush();
    h.onMessage('posted', msg('4', '9'), priv);
    await flush();
    expect(ids(a)).toEqual(['1', '2']);
    expect(ids(b)).toEqual(['1', '2', '3', '4']);
    expect(st.lookups).toEqual(['9']);
  });

  it('after a reconnect signal the next event looks the members up again: a removed member stops receiving', async () => {
    const { st, h, a, b } = twoSubscribers();
    h.onChannel(channel('9', ['1', '2']));
    h.onMessage('posted', msg('1', '9'), priv);
    // removed while NATS was disconnected: the event is gone
    st.channels.set('9', channel('9', ['2']));
    h.forgetChannels();
    h.onMessage('posted', msg('2', '9'), priv);
    await flush();
    h.onMessage('posted', msg('3', '9'), priv);
    await flush();
    expect(ids(a)).toEqual(['1']);
    expect(ids(b)).toEqual(['1', '2', '3']);
    expect(st.lookups).toEqual(['9']);
  });

  it('fresh facts cause no lookup; stale ones one lookup per flow (not per subscriber or event); public never', async () => {
    const st = fakeStore();
    const h = hub(st.lookup);
    const users = ['1', '2', '3', '4', '5'];
    const ts = users.map((u) => target(u));
    ts.forEach((t, i) => h.subscribe(t, longToken(users[i]!), `tok${i}`));
    h.onChannel(channel('9', users));
    h.onChannel(channel('5', [], true));
    const pub = { id: '5', isPublic: true, kind: 'group' as const };
    for (let i = 0; i < 10; i++) {
      h.onMessage('posted', msg(`${100 + i}`, '9'), priv);
      h.onMessage('posted', msg(`${200 + i}`, '5'), pub);
    }
    h.onMessage('posted', msg('300', '6'), { id: '6', isPublic: true, kind: 'channel' }); // never announced
    expect(st.lookups).toEqual([]);
    expect(ts.every((t) => ids(t).length === 21)).toBe(true);

    now += MAX_AGE;
    st.channels.set('9', channel('9', users));
    st.hold = true;
    for (let i = 0; i < 10; i++) {
      h.onMessage('posted', msg(`${400 + i}`, '9'), priv);
      h.onMessage('posted', msg(`${500 + i}`, '5'), pub);
    }
    // public pushes are not held behind anything; private ones wait for the one lookup
    expect(ts.every((t) => ids(t).length === 31)).toBe(true);
    expect(st.lookups).toEqual(['9']);
    st.release();
    await flush();
    expect(ts.every((t) => ids(t).length === 41)).toBe(true);
    for (let i = 0; i < 10; i++) h.onMessage('posted', msg(`${600 + i}`, '9'), priv);
    expect(st.lookups).toEqual(['9']);
    expect(ts.every((t) => ids(t).length === 51)).toBe(true);
  });

  it('keeps per-channel arrival order across a refresh and applies the refreshed members to all queued events', async () => {
    const { st, h, a, b } = twoSubscribers();
    h.onChannel(channel('9', ['1', '2']));
    st.channels.set('9', channel('9', ['2']));
    now += MAX_AGE;
    st.hold = true;
    for (const id of ['1', '2', '3']) h.onMessage('posted', msg(id, '9'), priv);
    await flush();
    expect(ids(b)).toEqual([]); // nothing overtakes the pending refresh
    st.release();
    h.onMessage('posted', msg('4', '9'), priv); // arrives before the answer is processed: still queued behind it
    await flush();
    h.onMessage('posted', msg('5', '9'), priv);
    expect(ids(b)).toEqual(['1', '2', '3', '4', '5']);
    expect(ids(a)).toEqual([]);
    expect(st.lookups).toEqual(['9']);
  });

  it('ignores a channel event older than the facts held: a re-published old member list brings nobody back', async () => {
    const { st, h, a, b } = twoSubscribers();
    const at = (members: string[], changedAtMs: number): ChannelInfo => ({ ...channel('9', members), changedAtMs });
    h.onChannel(at(['1', '2'], NOW));
    h.onChannel(at(['2'], NOW + 5)); // user 1 removed
    const flowsOfA = a.frames.length;
    h.onChannel(at(['1', '2'], NOW)); // the first event again, from an outbox sweep
    expect(a.frames.length).toBe(flowsOfA); // not pushed to the removed member either
    h.onMessage('posted', msg('1', '9'), priv);
    await flush();
    expect(ids(a)).toEqual([]);
    expect(ids(b)).toEqual(['1']);
    expect(st.lookups).toEqual([]);
    // The same change time again is the same change (a duplicate): applied as before.
    h.onChannel(at(['1', '2'], NOW + 9));
    h.onChannel(at(['1', '2'], NOW + 9));
    h.onMessage('posted', msg('2', '9'), priv);
    await flush();
    expect(ids(a)).toEqual(['2']);
  });

  it('a channel event that arrives during a lookup wins over the (older) answer', async () => {
    const { st, h, a, b } = twoSubscribers();
    st.channels.set('9', channel('9', ['1', '2']));
    st.hold = true;
    h.onMessage('posted', msg('1', '9'), priv); // unknown channel: lookup, read before the removal
    h.onChannel(channel('9', ['2'])); // the removal's event, while the answer is on its way
    st.release();
    await flush();
    h.onMessage('posted', msg('2', '9'), priv);
    await flush();
    expect(ids(a)).toEqual([]);
    expect(ids(b)).toEqual(['1', '2']);
    expect(st.lookups).toEqual(['9']);
  });

  it('a failed refresh drops the stale facts (fail closed) and the next event asks again', async () => {
    const st = fakeStore();
    const h = hub(st.lookup);
    const a = target('a');
    h.subscribe(a, longToken('1'), 'tok1');
    h.onChannel(channel('9', ['1']));
    st.channels.set('9', channel('9', ['1']));
    now += MAX_AGE;
    st.fail = true;
    h.onMessage('posted', msg('1', '9'), priv);
    await flush();
    expect(ids(a)).toEqual([]);
    st.fail = false;
    h.onMessage('posted', msg('2', '9'), priv);
    await flush();
    expect(ids(a)).toEqual(['2']);
    expect(st.lookups).toEqual(['9', '9']);
  });

  it('an answer to a lookup sent before a reconnect serves the queued events but is not kept', async () => {
    const st = fakeStore();
    const h = hub(st.lookup);
    const a = target('a');
    h.subscribe(a, longToken('1'), 'tok1');
    st.channels.set('9', channel('9', ['1']));
    st.hold = true;
    h.onMessage('posted', msg('1', '9'), priv);
    h.forgetChannels();
    st.release();
    await flush();
    st.hold = false;
    st.channels.set('9', channel('9', [])); // removed while disconnected
    h.onMessage('posted', msg('2', '9'), priv);
    await flush();
    expect(ids(a)).toEqual(['1']);
    expect(st.lookups).toEqual(['9', '9']);
  });
});
