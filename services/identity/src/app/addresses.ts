/** Client addresses and CIDR ranges for address bans and throttling keys. */
import { BlockList, isIP } from 'node:net';
import { normalizeAddress } from '@hubbub/runtime';

// The canonical form and the counting key of an address are shared with the doors' per-address limits.
export { addressThrottleKey, normalizeAddress } from '@hubbub/runtime';

export interface Cidr {
  readonly text: string;
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

/** Parses `1.2.3.4`, `1.2.3.0/24`, `2001:db8::/32`; undefined when invalid. */
export function parseCidr(s: string): Cidr | undefined {
  const [addrRaw, prefixRaw, extra] = s.trim().split('/');
  if (addrRaw === undefined || extra !== undefined) return undefined;
  const address = normalizeAddress(addrRaw);
  const v = isIP(address);
  if (v === 0) return undefined;
  const max = v === 4 ? 32 : 128;
  let prefix = max;
  if (prefixRaw !== undefined) {
    if (!/^\d{1,3}$/.test(prefixRaw)) return undefined;
    prefix = Number(prefixRaw);
    if (prefix > max) return undefined;
  }
  return {
    text: prefix === max ? address : `${address}/${prefix}`,
    address,
    prefix,
    family: v === 4 ? 'ipv4' : 'ipv6',
  };
}

/** Index of CIDRs; `match` returns the first that contains the address. */
export function cidrMatcher(cidrs: readonly string[]): (address: string) => string | undefined {
  const entries = cidrs.map((c) => ({ c, p: parseCidr(c) })).filter((e) => e.p !== undefined);
  return (address) => {
    const a = normalizeAddress(address);
    const fam = isIP(a);
    if (fam === 0) return undefined;
    for (const { c, p } of entries) {
      const bl = new BlockList();
      bl.addSubnet(p!.address, p!.prefix, p!.family);
      if (bl.check(a, fam === 4 ? 'ipv4' : 'ipv6')) return c;
    }
    return undefined;
  };
}
