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

  it('counts an IPv6 address as its /64 and an IPv4-mapped address as its IPv4 address', () => {
    const l = new PerAddressLimit(2);
    expect(l.tryAdd('2001:db8:0:1::a')).toBe(true);
    expect(l.tryAdd('2001:DB8:0:1:ffff:1:2:3')).toBe(true);
    expect(l.tryAdd('2001:db8:0:1::beef')).toBe(false); // the same /64, whatever the spelling
    expect(l.tryAdd('2001:db8:0:2::a')).toBe(true); // the next /64
    expect(l.count('2001:db8:0:1::1')).toBe(2);
    l.remove('2001:db8:0:1::a');
    expect(l.tryAdd('2001:db8:0:1::c')).toBe(true);
    expect(l.tryAdd('::ffff:192.0.2.7')).toBe(true);
    expect(l.tryAdd('192.0.2.7')).toBe(true);
    expect(l.tryAdd('192.0.2.7')).toBe(false);
    expect(l.tryAdd('192.0.2.8')).toBe(true);
  });
});
