/**
 * Conntrack map entries as typed records, encoded and decoded from the layout the addon
 * computes with the C compiler from bpf/include/ipvs_bpf_abi.h (no offsets restated here).
 */
import * as net from 'net';
import { native, NativeLayout, StructLayout } from './native';

export const layout: NativeLayout = native.layout();

export type FlowKind = 'SNAT' | 'REPLY' | 'FWD';
export type L4Proto = 'tcp' | 'udp' | 'sctp';
export type Family = 4 | 6;

const PROTO_NUM: Record<L4Proto, number> = { tcp: 6, udp: 17, sctp: 132 };

export interface Endpoint { addr: string; port: number }

/** Key: the tuple of a packet as the program that looks it up sees it. */
export interface FlowKey { kind: FlowKind; proto: L4Proto; src: Endpoint; dst: Endpoint }

/** Value: the tuple after the full NAT, plus flags and what BPF recorded. */
export interface FlowValue {
  src: Endpoint;
  dst: Endpoint;
  flags: number;
  lastSeen: number;
  packets: bigint;
  bytes: bigint;
}

export type FlowValueInit = Pick<FlowValue, 'src' | 'dst'> & Partial<Omit<FlowValue, 'src' | 'dst'>>;

const KEY_FIELDS = ['family', 'proto', 'kind', 'pad', 'sport', 'dport', 'saddr', 'daddr'] as const;
const VALUE_FIELDS = ['saddr', 'daddr', 'sport', 'dport', 'flags', 'last_seen', 'pad', 'packets', 'bytes'] as const;

function checkLayout(s: StructLayout, names: readonly string[], what: string): void {
  for (const n of names) {
    if (!s.fields[n]) throw new Error(`ABI ${layout.abiVersion}: ${what} has no field ${n}`);
  }
}
checkLayout(layout.key, KEY_FIELDS, 'key');
checkLayout(layout.value, VALUE_FIELDS, 'value');

export function familyOf(addr: string): Family {
  const v = net.isIP(addr);
  if (v !== 4 && v !== 6) throw new Error(`not an IP address: ${addr}`);
  return v;
}

/** 16-byte network-order address (IPv4 in the first 4 bytes). */
export function addrToBytes(addr: string): Buffer {
  const out = Buffer.alloc(16);
  if (familyOf(addr) === 4) {
    addr.split('.').forEach((p, i) => out.writeUInt8(Number(p), i));
    return out;
  }
  const sl = new net.SocketAddress({ address: addr, family: 'ipv6' }).address;
  const [head, tail] = sl.includes('::') ? sl.split('::') : [sl, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export function bytesToAddr(b: Buffer, family: Family): string {
  if (family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return new net.SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

function put(buf: Buffer, s: StructLayout, name: string, v: number | bigint | Buffer, be = false): void {
  const f = s.fields[name];
  if (Buffer.isBuffer(v)) {
    v.copy(buf, f.offset, 0, f.size);
    return;
  }
  switch (f.size) {
    case 1: buf.writeUInt8(Number(v), f.offset); break;
    case 2: if (be) buf.writeUInt16BE(Number(v), f.offset); else buf.writeUInt16LE(Number(v), f.offset); break;
    case 4: buf.writeUInt32LE(Number(v), f.offset); break;
    case 8: buf.writeBigUInt64LE(BigInt(v), f.offset); break;
    default: throw new Error(`field ${name}: size ${f.size}`);
  }
}

function get(buf: Buffer, s: StructLayout, name: string, be = false): number {
  const f = s.fields[name];
  switch (f.size) {
    case 1: return buf.readUInt8(f.offset);
    case 2: return be ? buf.readUInt16BE(f.offset) : buf.readUInt16LE(f.offset);
    case 4: return buf.readUInt32LE(f.offset);
    default: throw new Error(`field ${name}: size ${f.size}`);
  }
}

function slice(buf: Buffer, s: StructLayout, name: string): Buffer {
  const f = s.fields[name];
  return buf.subarray(f.offset, f.offset + f.size);
}

function checkFamilies(a: string, b: string): Family {
  const fa = familyOf(a);
  if (familyOf(b) !== fa) throw new Error(`mixed address families: ${a} / ${b}`);
  return fa;
}

export function encodeKey(k: FlowKey): Buffer {
  const fam = checkFamilies(k.src.addr, k.dst.addr);
  const b = Buffer.alloc(layout.key.size);
  put(b, layout.key, 'family', fam === 4 ? layout.af.INET : layout.af.INET6);
  put(b, layout.key, 'proto', PROTO_NUM[k.proto]);
  put(b, layout.key, 'kind', layout.kinds[k.kind]);
  put(b, layout.key, 'sport', k.src.port, true);
  put(b, layout.key, 'dport', k.dst.port, true);
  put(b, layout.key, 'saddr', addrToBytes(k.src.addr));
  put(b, layout.key, 'daddr', addrToBytes(k.dst.addr));
  return b;
}

export function decodeKey(b: Buffer): FlowKey {
  const fam: Family = get(b, layout.key, 'family') === layout.af.INET ? 4 : 6;
  const pnum = get(b, layout.key, 'proto');
  const proto = (Object.keys(PROTO_NUM) as L4Proto[]).find((p) => PROTO_NUM[p] === pnum);
  const knum = get(b, layout.key, 'kind');
  const kind = (Object.keys(layout.kinds) as FlowKind[]).find((k) => layout.kinds[k] === knum);
  if (!proto || !kind) throw new Error(`undecodable key: proto ${pnum} kind ${knum}`);
  return {
    kind,
    proto,
    src: { addr: bytesToAddr(slice(b, layout.key, 'saddr'), fam), port: get(b, layout.key, 'sport', true) },
    dst: { addr: bytesToAddr(slice(b, layout.key, 'daddr'), fam), port: get(b, layout.key, 'dport', true) },
  };
}

export function encodeValue(v: FlowValueInit): Buffer {
  checkFamilies(v.src.addr, v.dst.addr);
  const b = Buffer.alloc(layout.value.size);
  put(b, layout.value, 'saddr', addrToBytes(v.src.addr));
  put(b, layout.value, 'daddr', addrToBytes(v.dst.addr));
  put(b, layout.value, 'sport', v.src.port, true);
  put(b, layout.value, 'dport', v.dst.port, true);
  put(b, layout.value, 'flags', v.flags ?? 0);
  put(b, layout.value, 'last_seen', v.lastSeen ?? 0);
  put(b, layout.value, 'packets', v.packets ?? 0n);
  put(b, layout.value, 'bytes', v.bytes ?? 0n);
  return b;
}

export function decodeValue(b: Buffer, family: Family): FlowValue {
  const f = layout.value.fields;
  return {
    src: { addr: bytesToAddr(slice(b, layout.value, 'saddr'), family), port: get(b, layout.value, 'sport', true) },
    dst: { addr: bytesToAddr(slice(b, layout.value, 'daddr'), family), port: get(b, layout.value, 'dport', true) },
    flags: get(b, layout.value, 'flags'),
    lastSeen: get(b, layout.value, 'last_seen'),
    packets: b.readBigUInt64LE(f.packets.offset),
    bytes: b.readBigUInt64LE(f.bytes.offset),
  };
}

export function keyFamily(k: FlowKey): Family {
  return familyOf(k.src.addr);
}
