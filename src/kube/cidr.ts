/**
 * IP addresses and CIDR ranges as Kubernetes objects and KubeProxyConfiguration spell them: strict
 * IPv4 dotted quads or IPv6 text, parsed to a family and a 128-bit number so that ranges can be matched
 * without strings. Addresses in the IPVS model are canonical text (src/ipvs/model.ts): canonicalIp() gives it.
 */
import type { Family } from '../ipvs/model';
import { formatIpv4, formatIpv6, inetPton4, inetPton6 } from '../ipvs/rules/inet';

export interface Ip {
  family: Family;
  /** The address as a number (IPv4: 32 bits, IPv6: 128 bits). */
  value: bigint;
}

export interface Cidr {
  family: Family;
  /** The network address (host bits cleared). */
  base: bigint;
  prefix: number;
}

const bitsOf = (f: Family): number => (f === 'inet' ? 32 : 128);

/** A literal IPv4 or IPv6 address, or null. IPv4-mapped IPv6 ("::ffff:1.2.3.4") counts as IPv6. */
export function parseIp(text: string): Ip | null {
  if (text.includes(':')) {
    const b = inetPton6(text);
    if (!b) return null;
    let v = 0n;
    for (const byte of b) v = (v << 8n) | BigInt(byte);
    return { family: 'inet6', value: v };
  }
  const v4 = inetPton4(text);
  return v4 === null ? null : { family: 'inet', value: BigInt(v4) };
}

/** The canonical text of an address (what the IPVS model and `ipvsadm -n` use), or null if not an address. */
export function canonicalIp(text: string): string | null {
  const ip = parseIp(text);
  return ip && formatIp(ip);
}

export function formatIp(ip: Ip): string {
  if (ip.family === 'inet') return formatIpv4(Number(ip.value));
  const b = new Uint8Array(16);
  let v = ip.value;
  for (let i = 15; i >= 0; i--) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return formatIpv6(b);
}

/** "10.0.0.0/8", "fd00::/64" (host bits may be set, as Go's ParseCIDR allows), or null. */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/');
  if (slash < 0) return null;
  const ip = parseIp(text.slice(0, slash));
  const p = text.slice(slash + 1);
  if (!ip || !/^(0|[1-9]\d{0,2})$/.test(p)) return null;
  const prefix = Number(p);
  const bits = bitsOf(ip.family);
  if (prefix > bits) return null;
  const mask = prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << BigInt(bits - prefix);
  return { family: ip.family, base: ip.value & mask, prefix };
}

export function cidrContains(c: Cidr, ip: Ip): boolean {
  if (c.family !== ip.family) return false;
  const bits = bitsOf(c.family);
  const shift = BigInt(bits - c.prefix);
  return ip.value >> shift === c.base >> shift;
}

export function formatCidr(c: Cidr): string {
  return `${formatIp({ family: c.family, value: c.base })}/${c.prefix}`;
}

export function isLoopback(ip: Ip): boolean {
  return ip.family === 'inet' ? ip.value >> 24n === 127n : ip.value === 1n;
}

/** fe80::/10 */
export function isLinkLocal6(ip: Ip): boolean {
  return ip.family === 'inet6' && ip.value >> 118n === 0x3fan;
}
