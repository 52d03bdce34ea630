import { createLogger } from '@hubbub/runtime';
import { waitFor } from '@hubbub/testing';
import { PushHub } from './push-hub';
import type { PushTarget } from './push-hub';
import type { ChannelInfo, MessageStorePort, StoredMessage } from './ports';

const log = createLogger({ service: 'test', level: 'silent' });
const NOW = 1_700_000_000_000;
const clock = { nowMs: () => NOW };

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
  return new PushHub({ msg: msgPort, log, clock });
}

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
