import { TokenCache } from './token-cache';
import type { CachedToken } from './token-cache';

const tok = (userId: string, sessionId: string, expiresAtMs: number): CachedToken => ({
  userId,
  username: 'u' + userId,
  displayName: '',
  role: 1,
  sessionId,
  expiresAtMs,
  scopes: [],
});

describe('TokenCache', () => {
  let now = 1_000;
  const clock = (): number => now;

  it('expires entries at the token expiry or maxAge, whichever is first', () => {
    const c = new TokenCache(10, 500, clock);
    c.set('a', tok('1', 's1', 1_200));
    c.set('b', tok('1', 's2', 99_999));
    now = 1_199;
    expect(c.get('a')).toBeDefined();
    now = 1_200;
    expect(c.get('a')).toBeUndefined();
    expect(c.get('b')).toBeDefined();
    now = 1_500;
    expect(c.get('b')).toBeUndefined();
    now = 1_000;
  });

  it('evicts the least recently used entry beyond maxEntries', () => {
    const c = new TokenCache(2, 10_000, clock);
    c.set('a', tok('1', 's1', 9_999));
    c.set('b', tok('2', 's2', 9_999));
    c.get('a');
    c.set('c', tok('3', 's3', 9_999));
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBeDefined();
    expect(c.size).toBe(2);
  });

  it('invalidates by session and by user', () => {
    const c = new TokenCache(10, 10_000, clock);
    c.set('a', tok('1', 's1', 9_999));
    c.set('b', tok('1', 's2', 9_999));
    c.set('c', tok('2', 's3', 9_999));
    c.invalidateSession('s1');
    expect(c.get('a')).toBeUndefined();
    expect(c.get('b')).toBeDefined();
    c.invalidateUser('1');
    expect(c.get('b')).toBeUndefined();
    expect(c.get('c')).toBeDefined();
  });

  it('refuses a write read before an invalidation (of any session or user), accepts one read after', () => {
    const c = new TokenCache(10, 10_000, clock);
    for (const invalidate of [() => c.invalidateSession('s1'), () => c.invalidateUser('1'), () => c.clear()]) {
      const g = c.generation;
      invalidate();
      c.set('a', tok('1', 's1', 9_999), g);
      expect(c.get('a')).toBeUndefined();
    }
    c.set('a', tok('1', 's1', 9_999), c.generation);
    expect(c.get('a')).toBeDefined();
  });
});
