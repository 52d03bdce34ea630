import { PerAddressLimit } from './per-address';

describe('PerAddressLimit', () => {
  it('admits up to max per address, independently per address, and frees a slot on remove', () => {
    const l = new PerAddressLimit(2);
    expect(l.tryAdd('a')).toBe(true);
    expect(l.tryAdd('a')).toBe(true);
    expect(l.tryAdd('a')).toBe(false);
    expect(l.count('a')).toBe(2);
    expect(l.tryAdd('b')).toBe(true);
    l.remove('a');
    expect(l.count('a')).toBe(1);
    expect(l.tryAdd('a')).toBe(true);
    l.remove('b');
    expect(l.count('b')).toBe(0);
  });

  it('counts without a bound when max is 0', () => {
    const l = new PerAddressLimit(0);
    for (let i = 0; i < 1000; i++) expect(l.tryAdd('a')).toBe(true);
    expect(l.count('a')).toBe(1000);
  });
});
