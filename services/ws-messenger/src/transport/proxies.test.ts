import { proxyMatcher } from './proxies';

describe('proxyMatcher (WSM_TRUSTED_PROXIES)', () => {
  it('matches addresses and CIDR ranges of both families, in any spelling', () => {
    const m = proxyMatcher(['127.0.0.1', '10.0.0.0/8', 'fd00::/8', '2001:db8::1']);
    for (const a of ['127.0.0.1', '::ffff:127.0.0.1', '10.1.2.3', '10.255.255.255', 'fd12::1', '2001:DB8:0:0::1'])
      expect([a, m(a)]).toEqual([a, true]);
    for (const a of ['127.0.0.2', '11.0.0.1', 'fe80::1', '2001:db8::2', '', 'not an address'])
      expect([a, m(a)]).toEqual([a, false]);
  });

  it('trusts nobody when empty, and refuses entries that are neither an address nor a range', () => {
    expect(proxyMatcher([])('127.0.0.1')).toBe(false);
    for (const bad of ['localhost', '10.0.0.0/33', '10.0.0.0/x', 'fd00::/129', '1.2.3', '10.0.0.0/-1'])
      expect(() => proxyMatcher([bad])).toThrow(/WSM_TRUSTED_PROXIES/);
  });
});
