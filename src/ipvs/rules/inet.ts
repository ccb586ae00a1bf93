/**
 * Address text as glibc reads and writes it: inet_aton (the lenient IPv4 parser ipvsadm uses for
 * addresses and masks), inet_pton (strict IPv4/IPv6), inet_ntop/inet_ntoa (canonical output).
 * IPv4 addresses are unsigned 32-bit numbers in host order; IPv6 addresses are 16 bytes.
 */
import { hexValue, isCSpace, isDigit, strtoulBase0At } from './cnum';
import type { Family } from '../model';

const INET_ATON_MAX = [0xffffffff, 0xffffff, 0xffff, 0xff];

/** inet_aton(): a, a.b, a.b.c, a.b.c.d with C-style hex/octal/decimal parts; blanks may end it. */
export function inetAton(s: string): number | null {
  const parts: number[] = [];
  let i = 0;
  let val = 0;
  for (;;) {
    if (!isDigit(s[i])) return null;
    const r = strtoulBase0At(s, i);
    if (r === null || r.value > 0xffffffffn) return null;
    val = Number(r.value);
    i = r.end;
    if (s[i] === '.') {
      if (parts.length > 2 || val > 0xff) return null;
      parts.push(val);
      i++;
    } else break;
  }
  const c = s[i];
  if (c !== undefined && !isCSpace(c)) return null;
  if (val > INET_ATON_MAX[parts.length]) return null;
  let word = 0;
  parts.forEach((p, k) => {
    word |= p << (24 - 8 * k);
  });
  return ((word | val) >>> 0) as number;
}

/** inet_pton(AF_INET): exactly four decimal octets, no leading zeros. */
export function inetPton4(s: string): number | null {
  // Character codes, no array: this runs for every address of a 110k-line rule file.
  let word = 0;
  let octets = 0;
  let cur = 0;
  let sawDigit = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (sawDigit && cur === 0) return null;
      const nv = cur * 10 + (c - 48);
      if (nv > 255) return null;
      cur = nv;
      if (!sawDigit) {
        if (octets + 1 > 4) return null;
        sawDigit = true;
      }
    } else if (c === 46 && sawDigit) {
      if (octets + 1 === 4) return null;
      word = word * 256 + cur;
      octets++;
      cur = 0;
      sawDigit = false;
    } else return null;
  }
  if (!sawDigit) return null;
  if (octets + 1 < 4) return null;
  return word * 256 + cur;
}

/** inet_pton(AF_INET6) as glibc implements it (including a trailing dotted quad). */
export function inetPton6(s: string): Uint8Array | null {
  const out = new Uint8Array(16);
  let tp = 0;
  let colonp = -1;
  let i = 0;
  const n = s.length;
  if (n === 0) return null;
  if (s[0] === ':') {
    i++;
    if (i === n || s[i] !== ':') return null;
  }
  let curtok = i;
  let seen = 0;
  let val = 0;
  while (i < n) {
    const ch = s[i++];
    const d = hexValue(ch);
    if (d >= 0) {
      if (seen === 4) return null;
      val = (val << 4) | d;
      if (val > 0xffff) return null;
      seen++;
      continue;
    }
    if (ch === ':') {
      curtok = i;
      if (seen === 0) {
        if (colonp >= 0) return null;
        colonp = tp;
        continue;
      } else if (i === n) return null;
      if (tp + 2 > 16) return null;
      out[tp++] = (val >> 8) & 0xff;
      out[tp++] = val & 0xff;
      seen = 0;
      val = 0;
      continue;
    }
    if (ch === '.' && tp + 4 <= 16) {
      const v4 = inetPton4(s.slice(curtok));
      if (v4 !== null) {
        out[tp++] = v4 >>> 24;
        out[tp++] = (v4 >>> 16) & 0xff;
        out[tp++] = (v4 >>> 8) & 0xff;
        out[tp++] = v4 & 0xff;
        seen = 0;
        break;
      }
    }
    return null;
  }
  if (seen > 0) {
    if (tp + 2 > 16) return null;
    out[tp++] = (val >> 8) & 0xff;
    out[tp++] = val & 0xff;
  }
  if (colonp >= 0) {
    if (tp === 16) return null;
    const moved = tp - colonp;
    for (let k = 1; k <= moved; k++) {
      out[16 - k] = out[colonp + moved - k];
      out[colonp + moved - k] = 0;
    }
    tp = 16;
  }
  if (tp !== 16) return null;
  return out;
}

/** inet_ntoa / inet_ntop(AF_INET) of a host-order address. */
export function formatIpv4(addr: number): string {
  const a = addr >>> 0;
  return `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;
}

/** inet_ntop(AF_INET6) as glibc writes it (lower-case, longest zero run compressed, v4-mapped tail). */
export function formatIpv6(bytes: Uint8Array): string {
  const words: number[] = [];
  for (let k = 0; k < 8; k++) words.push((bytes[2 * k] << 8) | bytes[2 * k + 1]);
  let bestBase = -1;
  let bestLen = 0;
  let curBase = -1;
  let curLen = 0;
  for (let k = 0; k < 8; k++) {
    if (words[k] === 0) {
      if (curBase === -1) {
        curBase = k;
        curLen = 1;
      } else curLen++;
    } else if (curBase !== -1) {
      if (bestBase === -1 || curLen > bestLen) {
        bestBase = curBase;
        bestLen = curLen;
      }
      curBase = -1;
    }
  }
  if (curBase !== -1 && (bestBase === -1 || curLen > bestLen)) {
    bestBase = curBase;
    bestLen = curLen;
  }
  if (bestBase !== -1 && bestLen < 2) bestBase = -1;
  let out = '';
  for (let k = 0; k < 8; k++) {
    if (bestBase !== -1 && k >= bestBase && k < bestBase + bestLen) {
      if (k === bestBase) out += ':';
      continue;
    }
    if (k !== 0) out += ':';
    if (k === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff))) {
      out += `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
      return out;
    }
    out += words[k].toString(16);
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) out += ':';
  return out;
}

/** Canonical text → the four big-endian 32-bit words ipvsadm's comparators use (IPv4: [addr, 0, 0, 0]). */
export function addressWords(family: Family, text: string): [number, number, number, number] {
  if (family === 'inet') {
    const v = inetPton4(text) ?? inetAton(text);
    if (v === null) throw new Error(`not an IPv4 address: ${text}`);
    return [v, 0, 0, 0];
  }
  const b = inetPton6(text);
  if (b === null) throw new Error(`not an IPv6 address: ${text}`);
  const w = (k: number): number => ((b[k] << 24) | (b[k + 1] << 16) | (b[k + 2] << 8) | b[k + 3]) >>> 0;
  return [w(0), w(4), w(8), w(12)];
}

/** Canonical text of an address in the model (what `ipvsadm -n` prints). */
export function canonicalAddress(family: Family, text: string): string | null {
  if (family === 'inet') {
    const v = inetPton4(text) ?? inetAton(text);
    return v === null ? null : formatIpv4(v);
  }
  const b = inetPton6(text);
  return b === null ? null : formatIpv6(b);
}
