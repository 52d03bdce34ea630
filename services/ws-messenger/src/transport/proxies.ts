/**
 * WSM_TRUSTED_PROXIES: the peers whose X-Forwarded-For is believed, as addresses or CIDR ranges (`10.0.0.0/8`,
 * `fd00::/8`), so that a proxy whose address changes (an ingress's pods) can be listed by its network.
 */
import { BlockList, isIP } from 'node:net';
import { normalizeAddress } from '@hubbub/runtime';

export type ProxyMatcher = (address: string) => boolean;

/** Throws on an entry that is neither an address nor a CIDR range (a configuration error, at start). */
export function proxyMatcher(entries: readonly string[]): ProxyMatcher {
  if (entries.length === 0) return () => false;
  const list = new BlockList();
  for (const raw of entries) {
    const e = raw.trim();
    const slash = e.indexOf('/');
    const addr = normalizeAddress(slash < 0 ? e : e.slice(0, slash));
    const family = isIP(addr);
    const bits = slash < 0 ? undefined : Number(e.slice(slash + 1));
    const max = family === 4 ? 32 : 128;
    if (family === 0 || (bits !== undefined && (!Number.isInteger(bits) || bits < 0 || bits > max)))
      throw new Error(`WSM_TRUSTED_PROXIES: ${JSON.stringify(raw)} is neither an address nor a CIDR range`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, bits, type);
  }
  return (address: string) => {
    const a = normalizeAddress(address);
    const family = isIP(a);
    return family !== 0 && list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  };
}
