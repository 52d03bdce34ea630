import { messagesV1, postedAsSent, storedAsSent } from './index';

const p: messagesV1.Principal = {
  userId: '1001',
  displayName: 'alice',
  kind: messagesV1.PrincipalKind.PRINCIPAL_KIND_ACCOUNT,
  sysop: false,
  door: 'ws',
};
const m = messagesV1.NewMessage.fromPartial({
  channelId: '7',
  text: 'hello',
  kind: messagesV1.MessageKind.MESSAGE_KIND_NORMAL,
  tags: ['a', 'b'],
  clientKey: 'k1',
});
// 2026-12-07T00:00:00.123Z in the snowflake layout (ms << 19 | worker << 12 | seq)
const ms = Date.UTC(2026, 11, 7, 0, 0, 0, 123);
const id = ((BigInt(ms) << 19n) | (5n << 12n) | 42n).toString();

describe('postedAsSent / storedAsSent (the lean PostMessages reply)', () => {
  it('rebuilds the stored message: author snapshot from the principal, times from the id', () => {
    const s = postedAsSent(p, m, id);
    expect(s).toMatchObject({ id, channelId: '7', authorId: '1001', authorName: 'alice', door: 'ws', text: 'hello' });
    expect(s.createdAt?.toISOString()).toBe('2026-12-07T00:00:00.123Z');
    expect(s.changedAt?.getTime()).toBe(ms);
    expect(s).toMatchObject({ edited: false, deleted: false, clientKey: 'k1', tags: ['a', 'b'] });
    expect(storedAsSent(s, p, m)).toBe(true);
  });

  it('is false as soon as one field differs from what was sent', () => {
    const base = postedAsSent(p, m, id);
    const changed: Partial<messagesV1.Message>[] = [
      { channelId: '07' },
      { authorName: 'Alice' },
      { authorKind: messagesV1.PrincipalKind.PRINCIPAL_KIND_GUEST },
      { door: 'irc' },
      { text: 'hello ' },
      { kind: messagesV1.MessageKind.MESSAGE_KIND_UNSPECIFIED },
      { tags: ['a'] },
      { tags: ['a', 'c'] },
      { replyToId: '0' },
      { recipientId: 'x' },
      { isPrivate: true },
      { attachments: messagesV1.Attachments.fromPartial({}) },
      { createdAt: new Date(ms + 1), changedAt: new Date(ms + 1) },
      { changedAt: new Date(ms + 5) },
      { edited: true },
      { deleted: true },
      { clientKey: 'k2' },
    ];
    for (const c of changed) expect([c, storedAsSent({ ...base, ...c }, p, m)]).toEqual([c, false]);
    // attachments: the very object sent counts as equal, an equal-looking copy does not (never a guess)
    const att = messagesV1.Attachments.fromPartial({ emoji: 'x' });
    const withAtt = { ...m, attachments: att };
    expect(storedAsSent(postedAsSent(p, withAtt, id), p, withAtt)).toBe(true);
    expect(storedAsSent({ ...postedAsSent(p, withAtt, id), attachments: { ...att } }, p, withAtt)).toBe(false);
  });
});
