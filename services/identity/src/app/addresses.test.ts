import { cidrMatcher, normalizeAddress, parseCidr } from './addresses';

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
});
