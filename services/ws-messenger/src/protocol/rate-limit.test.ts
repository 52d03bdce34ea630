import { TokenBucket } from './rate-limit';
import { ConnectionMachine } from './machine';

describe('TokenBucket', () => {
  it('allows the burst, then refills at the rate (R32)', () => {
    const b = new TokenBucket(5, 5);
    const got = Array.from({ length: 20 }, () => b.take(1000));
    expect(got.filter(Boolean)).toHaveLength(5);
    expect(b.take(1100)).toBe(false);
    expect(b.take(1200)).toBe(true);
  });
  it('is off at rate 0', () => {
    const b = new TokenBucket(0, 0);
    expect(Array.from({ length: 1000 }, () => b.take(0)).every(Boolean)).toBe(true);
  });
});

describe('ConnectionMachine', () => {
  it('moves OPEN → SUBSCRIBED → OPEN and ends in CLOSED', () => {
    const m = new ConnectionMachine();
    expect(m.state).toBe('OPEN');
    expect(m.apply('token_ended')).toBe(false);
    m.apply('subscribe', 'u1');
    expect([m.state, m.subscribedUser]).toEqual(['SUBSCRIBED', 'u1']);
    m.apply('subscribe', 'u2');
    expect(m.subscribedUser).toBe('u2');
    m.apply('token_ended');
    expect([m.state, m.subscribedUser]).toEqual(['OPEN', undefined]);
    m.apply('close');
    expect(m.apply('subscribe', 'u1')).toBe(false);
    expect(m.state).toBe('CLOSED');
  });
});
