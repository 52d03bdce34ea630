import { LruSet } from './lru-set';

describe('LruSet', () => {
  it('reports a repeated key as already present', () => {
    const s = new LruSet(3);
    expect(s.add('a')).toBe(true);
    expect(s.add('a')).toBe(false);
    expect(s.size).toBe(1);
  });

  it('forgets the least recently used key beyond its capacity', () => {
    const s = new LruSet(2);
    s.add('a');
    s.add('b');
    s.has('a'); // a is now the most recent
    s.add('c');
    expect(s.has('b')).toBe(false);
    expect(s.has('a')).toBe(true);
    expect(s.has('c')).toBe(true);
    expect(s.size).toBe(2);
  });

  it('rejects a capacity below 1', () => {
    expect(() => new LruSet(0)).toThrow(RangeError);
  });
});
