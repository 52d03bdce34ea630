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
    expect(Array.from({ length: 1000 }, () => b.charge(0)).every((c) => c === 'ok')).toBe(true);
  });
  it('charges malformed frames: the burst, then an overdraft of one burst, then exhausted', () => {
    const b = new TokenBucket(5, 5);
    const got = Array.from({ length: 12 }, () => b.charge(1000));
    expect(got).toEqual([
      ...Array<string>(5).fill('ok'),
      ...Array<string>(5).fill('overdrawn'),
      'exhausted',
      'exhausted',
    ]);
  });
  it('an overdraft is paid back by the refill before requests pass again', () => {
    const b = new TokenBucket(5, 5);
    for (let i = 0; i < 10; i++) b.charge(1000);
    // 5 tokens owed: 1 s of refill brings the bucket to 0, one more token takes another 200 ms
    expect(b.take(2000)).toBe(false);
    expect(b.take(2200)).toBe(true);
    expect(b.charge(2200)).toBe('overdrawn');
  });
  it('requests over the rate never overdraw: a refused take leaves the bucket as it was', () => {
    const b = new TokenBucket(5, 5);
    for (let i = 0; i < 100; i++) b.take(1000);
    expect(b.take(1200)).toBe(true);
    expect(Array.from({ length: 6 }, () => b.charge(1200))).toEqual([
      ...Array<string>(5).fill('overdrawn'),
      'exhausted',
    ]);
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
