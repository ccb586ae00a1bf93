/**
 * The one generic netlink attribute (TLV) encoder and decoder, driven by the tables of attributes.ts.
 * struct nlattr { __u16 nla_len; __u16 nla_type; } then the payload, padded to 4 bytes; nla_len counts
 * header + payload without the padding. Nested attributes are written without NLA_F_NESTED, as the kernel
 * and libipvs do (nla_nest_start_noflag); the decoder accepts either.
 */
import { endianness } from 'os';
import type { AttrRecord, AttrSpec, AttrTable, IndexedAttr, ScalarType, TableShape } from './attributes';
import { NLA_ALIGNTO, NLA_HDRLEN, NLA_TYPE_MASK } from './constants';

const HOST_LE = endianness() === 'LE';

export const nlaAlign = (n: number): number => (n + NLA_ALIGNTO - 1) & ~(NLA_ALIGNTO - 1);

export class MalformedAttributeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedAttributeError';
  }
}

type Loose = Record<string, unknown>;

function fail(table: string, name: string, what: string): never {
  throw new RangeError(`netlink attribute ${table}.${name}: ${what}`);
}

function checkUint(table: string, name: string, v: unknown, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max)
    fail(table, name, `expected an integer 0..${max}, got ${String(v)}`);
  return v;
}

function checkBytes(table: string, name: string, v: unknown, max: number): Buffer {
  if (!Buffer.isBuffer(v) || v.length > max) fail(table, name, `expected at most ${max} bytes`);
  return v;
}

/** Payload size of one scalar value (without header and padding). */
function scalarSize(type: ScalarType, v: unknown): number {
  switch (type) {
    case 'u8':
      return 1;
    case 'u16':
    case 'be16':
      return 2;
    case 'u32':
    case 'be32':
    case 'inaddr':
      return 4;
    case 'u64':
    case 'flags':
      return 8;
    case 'in6addr':
    case 'nfaddr':
      return 16;
    case 'string':
      return Buffer.byteLength(String(v)) + 1;
  }
}

function payloadSize(spec: AttrSpec, v: unknown): number {
  if (spec.type === 'nested') return recordSize(spec.table, v as Loose);
  return scalarSize(spec.type, v);
}

function recordSize(table: AttrTable<TableShape>, rec: Loose): number {
  let n = 0;
  for (const a of table.ordered) {
    const v = rec[a.name];
    if (v === undefined) continue;
    n += NLA_HDRLEN + nlaAlign(payloadSize(a.spec, v));
  }
  return n;
}

function writeU16(buf: Buffer, v: number, off: number): void {
  if (HOST_LE) buf.writeUInt16LE(v, off);
  else buf.writeUInt16BE(v, off);
}

function writeU32(buf: Buffer, v: number, off: number): void {
  if (HOST_LE) buf.writeUInt32LE(v, off);
  else buf.writeUInt32BE(v, off);
}

function writeScalar(table: string, a: IndexedAttr, type: ScalarType, v: unknown, buf: Buffer, off: number): void {
  switch (type) {
    case 'u8':
      buf.writeUInt8(checkUint(table, a.name, v, 0xff), off);
      return;
    case 'u16':
      writeU16(buf, checkUint(table, a.name, v, 0xffff), off);
      return;
    case 'be16':
      buf.writeUInt16BE(checkUint(table, a.name, v, 0xffff), off);
      return;
    case 'u32':
      writeU32(buf, checkUint(table, a.name, v, 0xffffffff), off);
      return;
    case 'be32':
      buf.writeUInt32BE(checkUint(table, a.name, v, 0xffffffff), off);
      return;
    case 'u64':
      if (typeof v !== 'bigint' || v < 0n || v > 0xffffffffffffffffn) fail(table, a.name, 'expected a u64 bigint');
      if (HOST_LE) buf.writeBigUInt64LE(v, off);
      else buf.writeBigUInt64BE(v, off);
      return;
    case 'string': {
      const s = String(v);
      if (s.includes('\0')) fail(table, a.name, 'text contains NUL');
      const n = buf.write(s, off, 'utf8');
      buf[off + n] = 0;
      return;
    }
    case 'inaddr':
      checkBytes(table, a.name, v, 4).copy(buf, off);
      return;
    case 'in6addr':
    case 'nfaddr':
      // Shorter input (an IPv4 address in an nf_inet_addr) is zero-padded: the buffer was zero-filled.
      checkBytes(table, a.name, v, 16).copy(buf, off);
      return;
    case 'flags': {
      const f = v as { flags?: unknown; mask?: unknown } | null;
      if (!f || typeof f !== 'object') fail(table, a.name, 'expected { flags, mask }');
      writeU32(buf, checkUint(table, a.name, f.flags, 0xffffffff), off);
      writeU32(buf, checkUint(table, a.name, f.mask, 0xffffffff), off + 4);
      return;
    }
  }
}

function writeRecord(table: AttrTable<TableShape>, rec: Loose, buf: Buffer, off: number): number {
  for (const a of table.ordered) {
    const v = rec[a.name];
    if (v === undefined) continue;
    const start = off;
    off += NLA_HDRLEN;
    if (a.spec.type === 'nested') {
      if (!v || typeof v !== 'object') fail(table.name, a.name, 'expected a nested record');
      off = writeRecord(a.spec.table, v as Loose, buf, off);
    } else {
      writeScalar(table.name, a, a.spec.type, v, buf, off);
      off += scalarSize(a.spec.type, v);
    }
    const len = off - start;
    if (len > 0xffff) fail(table.name, a.name, 'attribute longer than 65535 bytes');
    writeU16(buf, len, start);
    writeU16(buf, a.spec.id, start + 2);
    off = start + nlaAlign(len);
  }
  return off;
}

/** The encoded size of a record of `table` (a multiple of 4). */
export function encodedSize<S extends TableShape>(table: AttrTable<S>, rec: AttrRecord<S>): number {
  return recordSize(table as AttrTable<TableShape>, rec as Loose);
}

/** Writes the attributes of `rec` into `buf` at `off` (buf must be zero-filled there); returns the end. */
export function writeAttrs<S extends TableShape>(table: AttrTable<S>, rec: AttrRecord<S>, buf: Buffer, off: number): number {
  return writeRecord(table as AttrTable<TableShape>, rec as Loose, buf, off);
}

/** Encodes the attributes of `rec` present in `table`, in id order. Unknown keys are ignored. */
export function encodeAttrs<S extends TableShape>(table: AttrTable<S>, rec: AttrRecord<S>): Buffer {
  const buf = Buffer.alloc(encodedSize(table, rec));
  writeAttrs(table, rec, buf, 0);
  return buf;
}

// The decoder is the hot path of listing (tens of attributes per destination, 100k destinations):
// header and integer reads use plain byte arithmetic rather than Buffer's checked accessors.
function readU16(buf: Buffer, off: number): number {
  return HOST_LE ? buf[off] | (buf[off + 1] << 8) : (buf[off] << 8) | buf[off + 1];
}

function readU32(buf: Buffer, off: number): number {
  return HOST_LE
    ? (buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16)) + buf[off + 3] * 0x1000000
    : buf[off] * 0x1000000 + ((buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]);
}

function need(table: string, name: string, len: number, min: number): void {
  if (len < min) throw new MalformedAttributeError(`netlink attribute ${table}.${name}: ${len} bytes, need ${min}`);
}

/** Addresses are returned as views into the received datagram (each datagram has a buffer of its own). */
function readScalar(table: string, name: string, type: ScalarType, buf: Buffer, off: number, len: number): unknown {
  switch (type) {
    case 'u8':
      need(table, name, len, 1);
      return buf[off];
    case 'u16':
      need(table, name, len, 2);
      return readU16(buf, off);
    case 'be16':
      need(table, name, len, 2);
      return (buf[off] << 8) | buf[off + 1];
    case 'u32':
      need(table, name, len, 4);
      return readU32(buf, off);
    case 'be32':
      need(table, name, len, 4);
      return buf[off] * 0x1000000 + ((buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]);
    case 'u64':
      need(table, name, len, 8);
      return HOST_LE ? buf.readBigUInt64LE(off) : buf.readBigUInt64BE(off);
    case 'string': {
      let end = off;
      const lim = off + len;
      while (end < lim && buf[end] !== 0) end++;
      return buf.toString('utf8', off, end);
    }
    case 'inaddr':
      need(table, name, len, 4);
      return buf.subarray(off, off + 4);
    case 'in6addr':
      need(table, name, len, 16);
      return buf.subarray(off, off + 16);
    case 'nfaddr': {
      if (len >= 16) return buf.subarray(off, off + 16);
      const out = Buffer.alloc(16);
      buf.copy(out, 0, off, off + len);
      return out;
    }
    case 'flags':
      need(table, name, len, 8);
      return { flags: readU32(buf, off), mask: readU32(buf, off + 4) };
  }
}

function readRecord(table: AttrTable<TableShape>, buf: Buffer, off: number, end: number): Loose {
  const rec: Loose = {};
  const byId = table.byId;
  const maxId = table.maxId;
  while (off + NLA_HDRLEN <= end) {
    const len = readU16(buf, off);
    const id = readU16(buf, off + 2) & NLA_TYPE_MASK;
    if (len < NLA_HDRLEN || off + len > end)
      throw new MalformedAttributeError(`netlink attributes of ${table.name}: bad nla_len ${len} at ${off}`);
    const a = id <= maxId ? byId[id] : undefined;
    if (a) {
      const p = off + NLA_HDRLEN;
      const plen = len - NLA_HDRLEN;
      rec[a.name] =
        a.spec.type === 'nested'
          ? readRecord(a.spec.table, buf, p, p + plen)
          : readScalar(table.name, a.name, a.spec.type, buf, p, plen);
    }
    off += (len + 3) & ~3;
  }
  return rec;
}

/** Decodes the attributes in buf[start, end) with `table`; unknown ids are skipped, the last duplicate wins. */
export function decodeAttrs<S extends TableShape>(
  table: AttrTable<S>,
  buf: Buffer,
  start = 0,
  end = buf.length,
): AttrRecord<S> {
  return readRecord(table as AttrTable<TableShape>, buf, start, end) as AttrRecord<S>;
}
