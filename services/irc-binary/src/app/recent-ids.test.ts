import { RecentIds } from './recent-ids';

describe('RecentIds', () => {
  it('remembers an id for the ttl, then forgets it', () => {
    const r = new RecentIds(60_000);
    expect(r.add('1', 0)).toBe(true);
    expect(r.add('1', 59_999)).toBe(false);
    expect(r.add('2', 60_000)).toBe(true);
    expect(r.has('1')).toBe(false);
    expect(r.add('1', 60_001)).toBe(true);
  });
  it('is bounded by maxSize (oldest first)', () => {
    const r = new RecentIds(60_000, 1_000);
    for (let i = 0; i < 10_000; i++) r.add(String(i), 0);
    expect(r.size).toBeLessThanOrEqual(1_000);
    expect(r.has('9999')).toBe(true);
    expect(r.has('0')).toBe(false);
  });
});
