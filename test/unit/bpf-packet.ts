/**
 * Test helper: builds Ethernet frames and checks their checksums from scratch
 * (independent of the BPF code, which updates them incrementally).
 */
import { addrToBytes, bytesToAddr, familyOf } from '../../src/bpf/abi';

export const TCP = 6;
export const UDP = 17;
export const ICMP = 1;
export const ICMP6 = 58;

export interface L4Spec {
  proto: number;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  tcpFlags?: number; // default ACK
  payload?: Buffer;
  udpZeroCsum?: boolean;
  ttl?: number;
  fragOffset?: number; // IPv4 only: sets MF + offset
}

export const ACK = 0x10;
export const SYN = 0x02;
export const FIN = 0x01;

function sum16(b: Buffer, acc = 0): number {
  for (let i = 0; i + 1 < b.length; i += 2) acc += b.readUInt16BE(i);
  if (b.length & 1) acc += b[b.length - 1] << 8;
  return acc;
}
function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return acc;
}
export function inetChecksum(b: Buffer, acc = 0): number {
  return ~fold(sum16(b, acc)) & 0xffff;
}
function pseudo(src: Buffer, dst: Buffer, proto: number, len: number): number {
  return sum16(Buffer.concat([src, dst])) + proto + len;
}

function addrBuf(a: string): Buffer {
  return familyOf(a) === 4 ? addrToBytes(a).subarray(0, 4) : addrToBytes(a);
}

/** IP packet (no Ethernet header). */
export function ipPacket(s: L4Spec): Buffer {
  const v6 = familyOf(s.src) === 6;
  const payload = s.payload ?? Buffer.from('hello ipvs-bpf data path');
  let l4: Buffer;
  if (s.proto === TCP) {
    l4 = Buffer.alloc(20 + payload.length);
    l4.writeUInt16BE(s.sport, 0);
    l4.writeUInt16BE(s.dport, 2);
    l4.writeUInt32BE(1000, 4);
    l4.writeUInt32BE(2000, 8);
    l4[12] = 5 << 4;
    l4[13] = s.tcpFlags ?? ACK;
    l4.writeUInt16BE(65535, 14);
    payload.copy(l4, 20);
  } else if (s.proto === UDP) {
    l4 = Buffer.alloc(8 + payload.length);
    l4.writeUInt16BE(s.sport, 0);
    l4.writeUInt16BE(s.dport, 2);
    l4.writeUInt16BE(l4.length, 4);
    payload.copy(l4, 8);
  } else {
    l4 = Buffer.from(payload);
  }
  const src = addrBuf(s.src);
  const dst = addrBuf(s.dst);
  const csOff = s.proto === TCP ? 16 : s.proto === UDP ? 6 : s.proto === ICMP || s.proto === ICMP6 ? 2 : -1;
  if (csOff >= 0 && !(s.proto === UDP && s.udpZeroCsum)) {
    const ps = s.proto === ICMP ? 0 : pseudo(src, dst, s.proto, l4.length);
    let c = inetChecksum(l4, ps);
    if (c === 0 && s.proto === UDP) c = 0xffff;
    l4.writeUInt16BE(c, csOff);
  }
  if (v6) {
    const h = Buffer.alloc(40);
    h.writeUInt32BE(0x60000000, 0);
    h.writeUInt16BE(l4.length, 4);
    h[6] = s.proto;
    h[7] = s.ttl ?? 64;
    src.copy(h, 8);
    dst.copy(h, 24);
    return Buffer.concat([h, l4]);
  }
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + l4.length, 2);
  h.writeUInt16BE(0x1234, 4);
  if (s.fragOffset !== undefined) h.writeUInt16BE(0x2000 | s.fragOffset, 6);
  h[8] = s.ttl ?? 64;
  h[9] = s.proto;
  src.copy(h, 12);
  dst.copy(h, 16);
  h.writeUInt16BE(inetChecksum(h), 10);
  return Buffer.concat([h, l4]);
}

/** ICMP / ICMPv6 error from src to dst quoting `inner` (an IP packet). */
export function icmpError(src: string, dst: string, inner: Buffer): Buffer {
  const v6 = familyOf(src) === 6;
  const icmp = Buffer.alloc(8);
  icmp[0] = v6 ? 1 : 3; // destination unreachable
  icmp[1] = v6 ? 4 : 3; // port unreachable
  return ipPacket({ proto: v6 ? ICMP6 : ICMP, src, dst, sport: 0, dport: 0, payload: Buffer.concat([icmp, inner]) });
}

export function ether(dst: string, src: string, ip: Buffer): Buffer {
  const h = Buffer.alloc(14);
  Buffer.from(dst.replace(/:/g, ''), 'hex').copy(h, 0);
  Buffer.from(src.replace(/:/g, ''), 'hex').copy(h, 6);
  h.writeUInt16BE((ip[0] >> 4) === 6 ? 0x86dd : 0x0800, 12);
  return Buffer.concat([h, ip]);
}

export interface Parsed {
  v6: boolean;
  src: string;
  dst: string;
  proto: number;
  ttl: number;
  sport: number;
  dport: number;
  l4: Buffer;
  /** every checksum in the packet checked from scratch (IP header, L4, ICMP, embedded) */
  checksumsOk: boolean;
  l4Csum: number;
  inner?: Parsed;
}

/** Parses an IP packet and verifies all checksums independently. `quoted`: inside an ICMP error. */
export function parseIp(p: Buffer, quoted = false): Parsed {
  const v6 = p[0] >> 4 === 6;
  const hl = v6 ? 40 : (p[0] & 15) * 4;
  const proto = v6 ? p[6] : p[9];
  const src = v6 ? bytesToAddr(p.subarray(8, 24), 6) : bytesToAddr(p.subarray(12, 16), 4);
  const dst = v6 ? bytesToAddr(p.subarray(24, 40), 6) : bytesToAddr(p.subarray(16, 20), 4);
  const l4 = p.subarray(hl);
  let ok = v6 ? true : inetChecksum(p.subarray(0, hl)) === 0;
  const srcB = v6 ? p.subarray(8, 24) : p.subarray(12, 16);
  const dstB = v6 ? p.subarray(24, 40) : p.subarray(16, 20);
  let l4Csum = 0;
  let inner: Parsed | undefined;
  const full = !quoted;
  if (proto === TCP && full) {
    l4Csum = l4.readUInt16BE(16);
    ok = ok && inetChecksum(l4, pseudo(srcB, dstB, proto, l4.length)) === 0;
  } else if (proto === UDP && full) {
    l4Csum = l4.readUInt16BE(6);
    if (l4Csum !== 0) ok = ok && inetChecksum(l4, pseudo(srcB, dstB, proto, l4.length)) === 0;
  } else if (proto === ICMP || proto === ICMP6) {
    l4Csum = l4.readUInt16BE(2);
    ok = ok && inetChecksum(l4, proto === ICMP6 ? pseudo(srcB, dstB, proto, l4.length) : 0) === 0;
    inner = parseIp(l4.subarray(8), true);
    ok = ok && inner.checksumsOk;
  } else if (quoted && (proto === TCP || proto === UDP)) {
    // the quoted packet is complete in our tests: its L4 checksum must be right too
    l4Csum = l4.readUInt16BE(proto === TCP ? 16 : 6);
    if (!(proto === UDP && l4Csum === 0)) ok = ok && inetChecksum(l4, pseudo(srcB, dstB, proto, l4.length)) === 0;
  }
  const ports = proto === TCP || proto === UDP;
  return {
    v6, src, dst, proto, ttl: v6 ? p[7] : p[8],
    sport: ports ? l4.readUInt16BE(0) : 0, dport: ports ? l4.readUInt16BE(2) : 0,
    l4, checksumsOk: ok, l4Csum, inner,
  };
}

export function parseEther(f: Buffer): { dst: string; src: string; ip: Parsed } {
  const mac = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
  return { dst: mac(f.subarray(0, 6)), src: mac(f.subarray(6, 12)), ip: parseIp(f.subarray(14)) };
}
