/**
 * IP address text <-> bytes for the wire. Text is canonical as model.ts wants it, what `ipvsadm -n` prints:
 * IPv4 dotted quad; IPv6 as glibc's inet_ntop writes it (lower case, no leading zeros, the longest run of two
 * or more zero groups shortened to "::", the first on a tie, IPv4-mapped and IPv4-compatible addresses with a
 * dotted quad). The IPv6 text itself is rules/inet.ts's, the one implementation the rule files use too, so a
 * rule's address and the kernel's compare equal.
 */
import { isIPv4, isIPv6 } from 'net';
import type { Family } from '../model';
import { formatIpv6, inetPton6 } from '../rules/inet';

export class AddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AddressError';
  }
}

/** The family an address text belongs to, or null when it is neither. */
export function familyOf(text: string): Family | null {
  if (isIPv4(text)) return 'inet';
  if (isIPv6(text)) return 'inet6';
  return null;
}

/**
 * Writes the dotted quad `text` into out[off, off + 4) and returns true when it is one that net.isIPv4()
 * accepts (four decimal octets 0-255 without leading zeros); otherwise returns false.
 */
function parseDottedQuad(text: string, out: Buffer, off: number): boolean {
  const n = text.length;
  let part = 0;
  let digits = 0;
  let v = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? text.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || part > 3) return false;
      out[off + part++] = v;
      digits = 0;
      v = 0;
      continue;
    }
    const d = c - 48;
    if (d < 0 || d > 9 || (digits === 1 && v === 0)) return false;
    v = v * 10 + d;
    if (++digits > 3 || v > 255) return false;
  }
  return part === 4;
}

/** 4 bytes (inet) or 16 bytes (inet6) in network order. Throws AddressError when text is not of `family`. */
export function addressToBytes(family: Family, text: string): Buffer {
  if (family === 'inet') {
    // Every byte is written: the unzeroed pool allocation is safe (Buffer.alloc costs an ArrayBuffer each).
    const out = Buffer.allocUnsafe(4);
    if (!parseDottedQuad(text, out, 0)) throw new AddressError(`not an IPv4 address: "${text}"`);
    return out;
  }
  const bytes = isIPv6(text) && !text.includes('%') ? inetPton6(text) : null;
  if (bytes === null) throw new AddressError(`not an IPv6 address: "${text}"`);
  const out = Buffer.allocUnsafe(16);
  out.set(bytes);
  return out;
}

/** Canonical text of an address held in `bytes` (the first 4 bytes for inet, 16 for inet6). */
export function bytesToAddress(family: Family, bytes: Buffer): string {
  if (family === 'inet') {
    if (bytes.length < 4) throw new AddressError(`IPv4 address needs 4 bytes, got ${bytes.length}`);
    return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  }
  if (bytes.length < 16) throw new AddressError(`IPv6 address needs 16 bytes, got ${bytes.length}`);
  return formatIpv6(bytes.length === 16 ? bytes : bytes.subarray(0, 16));
}

/** Re-renders any valid address text of `family` canonically. */
export function canonicalAddress(family: Family, text: string): string {
  return bytesToAddress(family, addressToBytes(family, text));
}
