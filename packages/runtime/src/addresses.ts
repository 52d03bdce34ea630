/**
 * Client addresses as every service counts them: one canonical form, and one counting key (an IPv6 address counts as
 * its /64), for identity's login throttles and the doors' per-address connection limits alike.
 */
import { isIP } from 'node:net';

/** Canonical form of a client address (IPv4-mapped IPv6 → IPv4; zone ids dropped; lowercase). */
export function normalizeAddress(a: string): string {
  let t = a.trim().toLowerCase();
  if (t.startsWith('[') && t.includes(']')) t = t.slice(1, t.indexOf(']'));
  const pct = t.indexOf('%');
  if (pct >= 0) t = t.slice(0, pct);
  if (t.startsWith('::ffff:') && isIP(t.slice(7)) === 4) t = t.slice(7);
  return t;
}

/** The eight 16-bit groups of an address `isIP` accepts as IPv6 (compressed, dotted IPv4 tail, any case). */
function ipv6Groups(a: string): number[] {
  const groups = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const [b0, b1, b2, b3] = g.split('.').map(Number) as [number, number, number, number];
        out.push((b0 << 8) | b1, (b2 << 8) | b3);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const dc = a.indexOf('::');
  if (dc < 0) return groups(a);
  const head = groups(a.slice(0, dc));
  const tail = groups(a.slice(dc + 2));
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/**
 * The key the per-address login throttle and registration limit count under. One IPv6 host usually holds a
 * whole /64 (privacy addresses, SLAAC) and can hop between its addresses at will, so an IPv6 address counts as
 * its /64, written canonically (`2001:db8:0:1::/64`, whatever the spelling of the address). IPv4, also written
 * IPv4-mapped (`::ffff:1.2.3.4`, `::ffff:102:304`), stays the exact IPv4 address. Anything else (empty, a door's
 * odd string) stays as normalizeAddress returns it. Stored addresses (sessions, last login) and the "known
 * address" check keep the full address; only counting is coarser.
 */
export function addressThrottleKey(address: string): string {
  const a = normalizeAddress(address);
  const fam = isIP(a);
  if (fam !== 6) return a;
  const g = ipv6Groups(a);
  if (g.slice(0, 6).join(':') === '0:0:0:0:0:65535') return `${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`;
  // RFC 5952 form of the prefix: the last four groups are zero, and no earlier run of zeros can be as long, so the
  // "::" always goes at the end (after the last non-zero group of the first four).
  const head = g.slice(0, 4);
  while (head.length > 0 && head[head.length - 1] === 0) head.pop();
  return `${head.map((x) => x.toString(16)).join(':')}::/64`;
}
