import { identityV1 } from '@hubbub/proto';
import { accountRevocation } from './nats-events';

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
