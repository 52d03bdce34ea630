import { PerAddressLimit, PerAddressRate } from './per-address';

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

describe('PerAddressRate', () => {
  it("one bucket for all of an address's connections (an IPv6 /64 as one), refilled at the rate", () => {
    const r = new PerAddressRate(10, 3);
    const a1 = r.join('2001:db8:0:1::a', 0);
    const a2 = r.join('2001:db8:0:1::b', 0);
    const b = r.join('192.0.2.1', 0);
    expect(a1).toBe(a2);
    expect([r.wait(a1, 0), r.wait(a2, 0), r.wait(a1, 0)]).toEqual([0, 0, 0]);
    expect(r.wait(a2, 0)).toBe(100); // empty: one token in 100 ms at 10/s
    expect(r.wait(b, 0)).toBe(0); // another address has its own
    expect(r.wait(a1, 50)).toBe(50);
    expect(r.wait(a1, 100)).toBe(0);
    expect(r.wait(a1, 100)).toBe(100);
  });

  it('keeps a bucket while the address has connections, forgets it after the last leaves', () => {
    const r = new PerAddressRate(1, 1);
    const k = r.join('198.51.100.7', 0);
    r.join('::ffff:198.51.100.7', 0); // the same address
    expect(r.wait(k, 0)).toBe(0);
    r.leave(k);
    expect(r.size).toBe(1);
    expect(r.wait(k, 0)).toBe(1_000); // still spent for the connection left
    r.leave(k);
    expect(r.size).toBe(0);
    const again = r.join('198.51.100.7', 0);
    expect(r.wait(again, 0)).toBe(0); // a fresh bucket
  });

  it('does not limit when the rate is 0', () => {
    const r = new PerAddressRate(0, 1);
    const k = r.join('192.0.2.9', 0);
    for (let i = 0; i < 100; i++) expect(r.wait(k, 0)).toBe(0);
  });
});
