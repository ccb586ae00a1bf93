/**
 * IP address text <-> bytes. Text is canonical as model.ts wants it: IPv4 dotted quad; IPv6 per RFC 5952
 * (lower case, no leading zeros, the longest run of two or more zero groups shortened to "::", the first
 * such run on a tie; IPv4-mapped addresses as ::ffff:a.b.c.d, RFC 5952 section 5).
 */
import { isIPv4, isIPv6 } from 'net';
import type { Family } from '../model';

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

function parseV4(text: string, out: Buffer, off: number): void {
  const parts = text.split('.');
  for (let i = 0; i < 4; i++) out[off + i] = Number(parts[i]);
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
  if (!isIPv6(text) || text.includes('%')) throw new AddressError(`not an IPv6 address: "${text}"`);
  const out = Buffer.allocUnsafe(16);
  let body = text;
  let tailV4: string | null = null;
  const lastColon = body.lastIndexOf(':');
  if (body.indexOf('.', lastColon) >= 0) {
    tailV4 = body.slice(lastColon + 1);
    body = body.slice(0, lastColon + 1) + '0:0';
  }
  const halves = body.split('::');
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length > 1 && halves[1] ? halves[1].split(':') : [];
  const groups: number[] = head.map((g) => parseInt(g, 16));
  const fill = 8 - head.length - tail.length;
  for (let i = 0; i < fill; i++) groups.push(0);
  for (const g of tail) groups.push(parseInt(g, 16));
  for (let i = 0; i < 8; i++) out.writeUInt16BE(groups[i], i * 2);
  if (tailV4 !== null) parseV4(tailV4, out, 12);
  return out;
}

function formatV4(b: Buffer, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** Canonical text of an address held in `bytes` (the first 4 bytes for inet, 16 for inet6). */
export function bytesToAddress(family: Family, bytes: Buffer): string {
  if (family === 'inet') {
    if (bytes.length < 4) throw new AddressError(`IPv4 address needs 4 bytes, got ${bytes.length}`);
    return formatV4(bytes, 0);
  }
  if (bytes.length < 16) throw new AddressError(`IPv6 address needs 16 bytes, got ${bytes.length}`);
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(bytes.readUInt16BE(i * 2));
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff)
    return `::ffff:${formatV4(bytes, 12)}`;
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string =>
    g
      .slice(from, to)
      .map((x) => x.toString(16))
      .join(':');
  if (bestLen < 2) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
}

/** Re-renders any valid address text of `family` canonically. */
export function canonicalAddress(family: Family, text: string): string {
  return bytesToAddress(family, addressToBytes(family, text));
}

