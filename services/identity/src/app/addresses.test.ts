import { BlockList } from 'node:net';
import { addressThrottleKey, cidrMatcher, normalizeAddress, parseCidr } from './addresses';

describe('addresses', () => {
  it('normalises mapped and bracketed addresses', () => {
    expect(normalizeAddress('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(normalizeAddress('[::1]')).toBe('::1');
    expect(normalizeAddress('FE80::1%eth0')).toBe('fe80::1');
  });
  it('parses CIDRs', () => {
    expect(parseCidr('10.0.0.0/8')?.text).toBe('10.0.0.0/8');
    expect(parseCidr('10.0.0.1')?.text).toBe('10.0.0.1');
    expect(parseCidr('10.0.0.0/33')).toBeUndefined();
    expect(parseCidr('nope')).toBeUndefined();
    expect(parseCidr('2001:db8::/32')?.family).toBe('ipv6');
  });
  it('matches addresses against ranges', () => {
    const m = cidrMatcher(['10.0.0.0/8', '2001:db8::/32']);
    expect(m('10.1.2.3')).toBe('10.0.0.0/8');
    expect(m('::ffff:10.1.2.3')).toBe('10.0.0.0/8');
    expect(m('11.0.0.1')).toBeUndefined();
    expect(m('2001:db8::5')).toBe('2001:db8::/32');
    expect(m('garbage')).toBeUndefined();
  });

  describe('addressThrottleKey', () => {
    it('keys every spelling of one IPv6 address by its canonical /64', () => {
      for (const a of [
        '2001:db8::1',
        '2001:0db8:0:0:0:0:0:1',
        '2001:0DB8:0000:0000:0000:0000:0000:0001',
        '[2001:db8::1]',
        ' 2001:db8::1 ',
        '2001:db8::1%eth0',
        '2001:db8::0.0.0.1',
        '2001:db8:0:0::1',
      ])
        expect([a, addressThrottleKey(a)]).toEqual([a, '2001:db8::/64']);
      expect(addressThrottleKey('2001:db8:0:1:abcd:ef01:2345:6789')).toBe('2001:db8:0:1::/64');
      expect(addressThrottleKey('2001:DB8:0:1::FFFF')).toBe('2001:db8:0:1::/64');
      expect(addressThrottleKey('2001:db8:0:1:ffff:ffff:1.2.3.4')).toBe('2001:db8:0:1::/64');
      expect(addressThrottleKey('::1')).toBe('::/64');
      expect(addressThrottleKey('::')).toBe('::/64');
      expect(addressThrottleKey('0:0:0:1::5')).toBe('0:0:0:1::/64');
      expect(addressThrottleKey('1:0:0:2:3:4:5:6')).toBe('1:0:0:2::/64');
      expect(addressThrottleKey('fe80::1%eth0')).toBe('fe80::/64');
      // NAT64 (RFC 6052): an IPv6 address like any other, so its /64.
      expect(addressThrottleKey('64:ff9b::1.2.3.4')).toBe('64:ff9b::/64');
      expect(addressThrottleKey('64:ff9b::102:304')).toBe('64:ff9b::/64');
    });

    it('groups addresses of one /64 and separates neighbouring /64s', () => {
      const k = addressThrottleKey('2001:db8:aa:1::1');
      expect(addressThrottleKey('2001:db8:aa:1:ffff:ffff:ffff:ffff')).toBe(k);
      expect(addressThrottleKey('2001:db8:aa:1:8000::')).toBe(k);
      expect(addressThrottleKey('2001:db8:aa:0:ffff:ffff:ffff:ffff')).toBe('2001:db8:aa::/64');
      expect(addressThrottleKey('2001:db8:aa:2::')).toBe('2001:db8:aa:2::/64');
      expect(addressThrottleKey('2001:db9:aa:1::1')).toBe('2001:db9:aa:1::/64');
    });

    it('agrees with node:net on random addresses in many spellings', () => {
      const hex = (g: number, pad: boolean, upper: boolean): string => {
        const t = pad ? g.toString(16).padStart(4, '0') : g.toString(16);
        return upper ? t.toUpperCase() : t;
      };
      // Seeded (mulberry32), so a failure reproduces.
      let seed = 0x5eed;
      const random = (): number => {
        seed = (seed + 0x6d2b79f5) | 0;
        let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
      for (let i = 0; i < 500; i++) {
        // Zeros are common in real addresses and are what compression is about.
        const g = Array.from({ length: 8 }, () => (random() < 0.4 ? 0 : Math.floor(random() * 65536)));
        if (g.slice(0, 6).join(':') === '0:0:0:0:0:65535') continue;
        const pad = i % 2 === 0;
        const upper = i % 3 === 0;
        const full = g.map((x) => hex(x, pad, upper)).join(':');
        const dotted = [
          ...g.slice(0, 6).map((x) => hex(x, pad, upper)),
          `${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`,
        ].join(':');
        // The WHATWG URL parser writes the RFC 5952 compressed form.
        const compressed = new URL(`http://[${full}]/`).hostname.slice(1, -1);
        const keys = new Set([full, dotted, compressed].map(addressThrottleKey));
        expect(keys.size).toBe(1);
        const key = [...keys][0]!;
        expect(key).toMatch(/^[0-9a-f:]*::\/64$/);
        // The key is the canonical text of the /64 that holds the address.
        const net = key.slice(0, -3);
        expect(new URL(`http://[${net}]/`).hostname).toBe(`[${net}]`);
        const bl = new BlockList();
        bl.addSubnet(net, 64, 'ipv6');
        expect(bl.check(compressed, 'ipv6')).toBe(true);
        const other = [...g];
        other[3] = (other[3]! + 1) % 65536;
        expect(bl.check(other.map((x) => x.toString(16)).join(':'), 'ipv6')).toBe(false);
        expect(addressThrottleKey(other.map((x) => x.toString(16)).join(':'))).not.toBe(key);
      }
    });

    it('keeps IPv4, also IPv4-mapped in any spelling, as the exact IPv4 address', () => {
      expect(addressThrottleKey('192.0.2.7')).toBe('192.0.2.7');
      expect(addressThrottleKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
      expect(addressThrottleKey('::FFFF:192.0.2.7')).toBe('192.0.2.7');
      expect(addressThrottleKey('[::ffff:192.0.2.7]')).toBe('192.0.2.7');
      expect(addressThrottleKey('::ffff:c000:207')).toBe('192.0.2.7');
      expect(addressThrottleKey('0:0:0:0:0:ffff:192.0.2.7')).toBe('192.0.2.7');
      expect(addressThrottleKey('0000:0000:0000:0000:0000:FFFF:C000:0207')).toBe('192.0.2.7');
      expect(addressThrottleKey('192.0.2.8')).not.toBe(addressThrottleKey('192.0.2.7'));
    });

    it('leaves what is not an IP address as normalizeAddress gives it', () => {
      for (const a of [
        '',
        'cli',
        'bootstrap',
        'Some Door',
        'garbage::',
        '1.2.3',
        '1.2.3.256',
        '01.2.3.4',
        '2001:db8::/64',
        'x'.repeat(100),
        '2001:db8::1::2',
        ':::',
        'g::1',
      ])
        expect(addressThrottleKey(a)).toBe(normalizeAddress(a));
    });
  });
});
