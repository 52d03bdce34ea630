import { identityV1, messagesV1 } from '@hubbub/proto';
import { encodeJson } from '@hubbub/nats';
import { accountRevocation, peekMessageId } from './nats-events';

describe('peekMessageId', () => {
  it('finds the message id in the proto3 JSON of a MessageEvent', () => {
    const ev = messagesV1.MessageEvent.fromPartial({
      kind: messagesV1.MessageEventKind.MESSAGE_EVENT_KIND_POSTED,
      message: { id: '941303251838349312', channelId: '7', text: 'has "id":"1" inside' },
      channel: { id: '7', slug: 'general' },
    });
    expect(peekMessageId(encodeJson(messagesV1.MessageEvent, ev))).toBe('941303251838349312');
  });
  it('returns undefined when the shape is unexpected (the caller decodes fully)', () => {
    expect(peekMessageId(Buffer.from('{"kind":"x"}'))).toBeUndefined();
    expect(peekMessageId(Buffer.from('{"message":{"id":"12x"}}'))).toBeUndefined();
  });
});

describe('accountRevocation', () => {
  const T = identityV1.UserEventType;
  const NOW = Date.UTC(2026, 10, 23);
  const ev = (type: identityV1.UserEventType, until?: Date): identityV1.UserEvent =>
    identityV1.UserEvent.fromPartial({
      type,
      user: {
        id: '42',
        username: 'mallory',
        ...(type === T.USER_EVENT_TYPE_BANNED ? { ban: { reason: 'x', until } } : {}),
      },
    });
  it('a permanent ban or one that ends later ends the sessions; deletion too', () => {
    expect(accountRevocation(ev(T.USER_EVENT_TYPE_BANNED), NOW)).toBe('banned');
    expect(accountRevocation(ev(T.USER_EVENT_TYPE_BANNED, new Date(NOW + 60_000)), NOW)).toBe('banned');
    expect(accountRevocation(ev(T.USER_EVENT_TYPE_DELETED), NOW)).toBe('deleted');
    expect(accountRevocation(ev(T.USER_EVENT_TYPE_KICKED), NOW)).toBe('kicked');
  });
  it('a ban already over, other event types and events without a user change nothing', () => {
    expect(accountRevocation(ev(T.USER_EVENT_TYPE_BANNED, new Date(NOW - 1)), NOW)).toBeUndefined();
    expect(accountRevocation(ev(T.USER_EVENT_TYPE_UPDATED), NOW)).toBeUndefined();
    expect(accountRevocation(ev(T.USER_EVENT_TYPE_CREATED), NOW)).toBeUndefined();
    expect(
      accountRevocation(identityV1.UserEvent.fromPartial({ type: T.USER_EVENT_TYPE_DELETED }), NOW),
    ).toBeUndefined();
  });
});
