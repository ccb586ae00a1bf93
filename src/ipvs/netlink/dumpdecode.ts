/**
 * A specialised decoder for the message listing reads most: one real server of an IPVS_CMD_GET_DEST dump
 * (100k of them for a 10k x 10 table). It reads the attribute bytes straight into the model, without the
 * generic decoder's intermediate records (tlv.ts + codec.ts), which cost most of a listing's CPU and garbage.
 *
 * The layout is still the one of attributes.ts: every id below is looked up there, and the wire type the
 * code reads is checked against the table when this module loads, so a table edit cannot silently diverge.
 * Its result is the same as decodeDestination(decodeAttrs(CMD_ATTRS, ...).dest) (a unit test compares both).
 */
import { ZERO_STATS, type DestinationState, type Family, type Stats } from '../model';
import { bytesToAddress } from './address';
import { CMD_ATTRS, DEST_ATTRS, STATS64_ATTRS, STATS_ATTRS, type AttrTable, type TableShape } from './attributes';
import { decodeStats, FAMILY, FORWARD, TUNNEL_TYPE, WireValueError } from './codec';
import { IP_VS_CONN_F_FWD_MASK, IP_VS_CONN_F_TUNNEL_TYPE_IPIP, IP_VS_TUNNEL_ENCAP_FLAG_CSUM, IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM, NLA_HDRLEN, NLA_TYPE_MASK } from './constants';
import { decodeAttrs, MalformedAttributeError } from './tlv';
import { endianness } from 'os';

const HOST_LE = endianness() === 'LE';

/** The id of `name` in `table`, which must have the wire type this decoder reads. */
function idOf<S extends TableShape>(table: AttrTable<S>, name: keyof S & string, type: string): number {
  const spec = table.attrs[name];
  if (spec.type !== type) throw new Error(`dumpdecode: ${table.name}.${name} is ${spec.type} in attributes.ts, decoder reads ${type}`);
  return spec.id;
}

const CMD_DEST = idOf(CMD_ATTRS, 'dest', 'nested');
/** What the decoder does with each dest attribute id: a small slot number, so the switch below is a jump table. */
const enum Slot {
  Skip,
  Addr,
  Port,
  Fwd,
  Weight,
  UThresh,
  LThresh,
  Active,
  Inact,
  Persist,
  Stats,
  Af,
  Stats64,
  TunType,
  TunPort,
  TunFlags,
}
const DEST_SLOTS: readonly (readonly [keyof typeof DEST_ATTRS.attrs, string, Slot])[] = [
  ['addr', 'nfaddr', Slot.Addr],
  ['port', 'be16', Slot.Port],
  ['fwdMethod', 'u32', Slot.Fwd],
  ['weight', 'u32', Slot.Weight],
  ['uThresh', 'u32', Slot.UThresh],
  ['lThresh', 'u32', Slot.LThresh],
  ['activeConns', 'u32', Slot.Active],
  ['inactConns', 'u32', Slot.Inact],
  ['persistConns', 'u32', Slot.Persist],
  ['stats', 'nested', Slot.Stats],
  ['addrFamily', 'u16', Slot.Af],
  ['stats64', 'nested', Slot.Stats64],
  ['tunType', 'u8', Slot.TunType],
  ['tunPort', 'be16', Slot.TunPort],
  ['tunFlags', 'u16', Slot.TunFlags],
];
const SLOT_OF_ID = new Uint8Array(DEST_ATTRS.maxId + 1); // 0 = Slot.Skip
for (const [name, type, slot] of DEST_SLOTS) SLOT_OF_ID[idOf(DEST_ATTRS, name, type)] = slot;
if (DEST_SLOTS.length !== Object.keys(DEST_ATTRS.attrs).length) throw new Error('dumpdecode: DEST_ATTRS has attributes the decoder does not read');
const MAX_DEST_ID = DEST_ATTRS.maxId;
if (DEST_ATTRS.attrs.stats.table !== STATS_ATTRS || DEST_ATTRS.attrs.stats64.table !== STATS64_ATTRS) {
  throw new Error('dumpdecode: dest stats nests are not STATS_ATTRS / STATS64_ATTRS');
}

function u16(buf: Buffer, off: number): number {
  return HOST_LE ? buf[off] | (buf[off + 1] << 8) : (buf[off] << 8) | buf[off + 1];
}

function u32(buf: Buffer, off: number): number {
  return HOST_LE
    ? (buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16)) + buf[off + 3] * 0x1000000
    : buf[off] * 0x1000000 + ((buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]);
}

function need(name: string, len: number, min: number): void {
  if (len < min) throw new MalformedAttributeError(`netlink attribute dest.${name}: ${len} bytes, need ${min}`);
}

/**
 * Shared, frozen values for what most real servers have: no counters read (or all zero), and the four
 * tunnel-flag combinations. A listing of 100k real servers then allocates one object per server, not three; a consumer
 * that tried to change one in place would throw (strict mode) rather than change them all.
 */
const NO_COUNTERS: Stats = ZERO_STATS as Stats;
const TUNNEL_FLAGS = [0, 1, 2, 3].map((bits) =>
  Object.freeze({ noCsum: false, csum: (bits & 1) !== 0, remCsum: (bits & 2) !== 0 }),
);

/** Stats field of each IPVS_STATS_ATTR_* id of STATS64_ATTRS (all u64; checked at load). */
const STATS64_FIELD: readonly (keyof Stats | undefined)[] = STATS64_ATTRS.byId.map((a) => {
  if (!a) return undefined;
  if (a.spec.type !== 'u64') throw new Error(`dumpdecode: stats64.${a.name} is ${a.spec.type}, decoder reads u64`);
  return a.name as keyof Stats;
});
if (Object.keys(STATS64_ATTRS.attrs).sort().join() !== Object.keys(ZERO_STATS).sort().join()) {
  throw new Error('dumpdecode: STATS64_ATTRS and Stats name different counters');
}

/**
 * The counters of an IPVS_*_ATTR_STATS64 nest. Zero counters (most of a large table's, and all of an idle
 * one's) are the shared 0n, and all-zero counters the shared frozen ZERO_STATS: ten BigInts and an object
 * per real server are what a daemon holding 100k of them kept most of.
 */
export function decodeStats64(buf: Buffer, start: number, end: number): Stats {
  let out: Stats | undefined;
  let off = start;
  while (off + NLA_HDRLEN <= end) {
    const len = u16(buf, off);
    if (len < NLA_HDRLEN || off + len > end) throw new MalformedAttributeError(`netlink attributes of stats64: bad nla_len ${len} at ${off}`);
    const id = u16(buf, off + 2) & NLA_TYPE_MASK;
    const field = id < STATS64_FIELD.length ? STATS64_FIELD[id] : undefined;
    if (field !== undefined) {
      if (len - NLA_HDRLEN < 8) throw new MalformedAttributeError(`netlink attribute stats64.${field}: ${len - NLA_HDRLEN} bytes, need 8`);
      const p = off + NLA_HDRLEN;
      const lo = u32(buf, HOST_LE ? p : p + 4);
      const hi = u32(buf, HOST_LE ? p + 4 : p);
      if (lo !== 0 || hi !== 0) {
        out ??= { ...ZERO_STATS };
        out[field] = hi === 0 ? BigInt(lo) : (BigInt(hi) << 32n) | BigInt(lo);
      }
    }
    off += (len + 3) & ~3;
  }
  return out ?? (ZERO_STATS as Stats);
}

export interface DestDecodeOptions {
  /** Decode the counters (stats64, or the 32-bit stats before Linux 4.1); false gives zero counters. */
  counters: boolean;
}

/**
 * The real server in the IPVS_CMD_ATTR_DEST nest of the genl attributes buf[start, end), or undefined when
 * there is none. `serviceFamily` stands in for IPVS_DEST_ATTR_ADDR_FAMILY on kernels before 3.18.
 */
export function decodeDestMessage(
  buf: Buffer,
  start: number,
  end: number,
  serviceFamily: Family,
  opts: DestDecodeOptions,
): DestinationState | undefined {
  let off = start;
  let nest = -1;
  let nestEnd = -1;
  while (off + NLA_HDRLEN <= end) {
    const len = u16(buf, off);
    if (len < NLA_HDRLEN || off + len > end) throw new MalformedAttributeError(`netlink attributes of cmd: bad nla_len ${len} at ${off}`);
    if ((u16(buf, off + 2) & NLA_TYPE_MASK) === CMD_DEST) {
      nest = off + NLA_HDRLEN;
      nestEnd = off + len;
    }
    off += (len + 3) & ~3;
  }
  if (nest < 0) return undefined;

  let addrAt = -1;
  let addrLen = 0;
  let port = -1;
  let fwd = 0;
  let weight = 0;
  let uThresh = 0;
  let lThresh = 0;
  let active = 0;
  let inact = 0;
  let persist = 0;
  let af = -1;
  let tunType = IP_VS_CONN_F_TUNNEL_TYPE_IPIP;
  let tunPort = 0;
  let tunFlags = 0;
  let s32At = -1;
  let s32End = -1;
  let s64At = -1;
  let s64End = -1;
  off = nest;
  while (off + NLA_HDRLEN <= nestEnd) {
    const len = u16(buf, off);
    if (len < NLA_HDRLEN || off + len > nestEnd) throw new MalformedAttributeError(`netlink attributes of dest: bad nla_len ${len} at ${off}`);
    const id = u16(buf, off + 2) & NLA_TYPE_MASK;
    const slot = id <= MAX_DEST_ID ? SLOT_OF_ID[id] : Slot.Skip;
    const p = off + NLA_HDRLEN;
    const plen = len - NLA_HDRLEN;
    switch (slot) {
      case Slot.Addr:
        addrAt = p;
        addrLen = plen;
        break;
      case Slot.Port:
        need('port', plen, 2);
        port = (buf[p] << 8) | buf[p + 1];
        break;
      case Slot.Fwd:
        need('fwdMethod', plen, 4);
        fwd = u32(buf, p);
        break;
      case Slot.Weight:
        need('weight', plen, 4);
        weight = u32(buf, p);
        break;
      case Slot.UThresh:
        need('uThresh', plen, 4);
        uThresh = u32(buf, p);
        break;
      case Slot.LThresh:
        need('lThresh', plen, 4);
        lThresh = u32(buf, p);
        break;
      case Slot.Active:
        need('activeConns', plen, 4);
        active = u32(buf, p);
        break;
      case Slot.Inact:
        need('inactConns', plen, 4);
        inact = u32(buf, p);
        break;
      case Slot.Persist:
        need('persistConns', plen, 4);
        persist = u32(buf, p);
        break;
      case Slot.Stats:
        s32At = p;
        s32End = p + plen;
        break;
      case Slot.Af:
        need('addrFamily', plen, 2);
        af = u16(buf, p);
        break;
      case Slot.Stats64:
        s64At = p;
        s64End = p + plen;
        break;
      case Slot.TunType:
        need('tunType', plen, 1);
        tunType = buf[p];
        break;
      case Slot.TunPort:
        need('tunPort', plen, 2);
        tunPort = (buf[p] << 8) | buf[p + 1];
        break;
      case Slot.TunFlags:
        need('tunFlags', plen, 2);
        tunFlags = u16(buf, p);
        break;
      default:
        break; // unknown ids are skipped, as the generic decoder does
    }
    off += (len + 3) & ~3;
  }

  const family = af >= 0 ? FAMILY.name(af) : serviceFamily;
  if (addrAt < 0) throw new WireValueError('IPVS reply without destination address');
  if (port < 0) throw new WireValueError('IPVS reply without destination port');
  let address: string;
  if (family === 'inet' && addrLen >= 4) {
    address = `${buf[addrAt]}.${buf[addrAt + 1]}.${buf[addrAt + 2]}.${buf[addrAt + 3]}`;
  } else if (addrLen >= 16) {
    address = bytesToAddress(family, buf.subarray(addrAt, addrAt + 16));
  } else {
    // nfaddr: a shorter payload reads zero-padded to 16 bytes, as in the generic decoder
    const bytes = Buffer.alloc(16);
    buf.copy(bytes, 0, addrAt, addrAt + addrLen);
    address = bytesToAddress(family, bytes);
  }
  let stats: Stats;
  if (!opts.counters) stats = NO_COUNTERS;
  else if (s64At >= 0) stats = decodeStats64(buf, s64At, s64End);
  else if (s32At >= 0) stats = decodeStats(decodeAttrs(STATS_ATTRS, buf, s32At, s32End), undefined);
  else stats = ZERO_STATS as Stats;
  return {
    family,
    address,
    port,
    forward: FORWARD.name(fwd & IP_VS_CONN_F_FWD_MASK),
    weight,
    upperThreshold: uThresh,
    lowerThreshold: lThresh,
    tunnelType: TUNNEL_TYPE.name(tunType),
    tunnelPort: tunPort,
    tunnelFlags: TUNNEL_FLAGS[((tunFlags & IP_VS_TUNNEL_ENCAP_FLAG_CSUM) !== 0 ? 1 : 0) | ((tunFlags & IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM) !== 0 ? 2 : 0)]!,
    activeConns: active,
    inactiveConns: inact,
    persistConns: persist,
    stats,
  };
}
