/**
 * Netlink message framing: struct nlmsghdr { u32 len; u16 type; u16 flags; u32 seq; u32 pid; } (host order)
 * then, for generic netlink, struct genlmsghdr { u8 cmd; u8 version; u16 reserved; } then attributes.
 * Several messages may share one datagram in both directions, each padded to 4 bytes.
 */
import { endianness } from 'os';
import type { AttrRecord, AttrTable, TableShape } from './attributes';
import { GENL_HDRLEN, NLM_F_ACK, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN } from './constants';
import { encodedSize, nlaAlign, writeAttrs } from './tlv';

const HOST_LE = endianness() === 'LE';

/** One received netlink message; its payload is buf[payload, end). */
export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  buf: Buffer;
  payload: number;
  end: number;
}

export interface GenlHeader {
  /** nlmsg_type: the generic netlink family id */
  family: number;
  flags: number;
  seq: number;
  cmd: number;
  version: number;
}

export class MalformedMessageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedMessageError';
  }
}

function w32(buf: Buffer, v: number, off: number): void {
  if (HOST_LE) buf.writeUInt32LE(v >>> 0, off);
  else buf.writeUInt32BE(v >>> 0, off);
}

function w16(buf: Buffer, v: number, off: number): void {
  if (HOST_LE) buf.writeUInt16LE(v, off);
  else buf.writeUInt16BE(v, off);
}

function r32(buf: Buffer, off: number): number {
  return HOST_LE ? buf.readUInt32LE(off) : buf.readUInt32BE(off);
}

function r16(buf: Buffer, off: number): number {
  return HOST_LE ? buf.readUInt16LE(off) : buf.readUInt16BE(off);
}

function ri32(buf: Buffer, off: number): number {
  return HOST_LE ? buf.readInt32LE(off) : buf.readInt32BE(off);
}

/** Bytes one generic netlink message with these attributes takes (aligned). */
export function genlMessageSize<S extends TableShape>(table: AttrTable<S>, attrs: AttrRecord<S>): number {
  return NLMSG_HDRLEN + GENL_HDRLEN + encodedSize(table, attrs);
}

/** Writes one generic netlink message at `off` of a zero-filled `buf`; returns its end offset. */
export function writeGenlMessage<S extends TableShape>(
  buf: Buffer,
  off: number,
  h: GenlHeader,
  table: AttrTable<S>,
  attrs: AttrRecord<S>,
): number {
  const end = writeAttrs(table, attrs, buf, off + NLMSG_HDRLEN + GENL_HDRLEN);
  w32(buf, end - off, off);
  w16(buf, h.family, off + 4);
  w16(buf, h.flags, off + 6);
  w32(buf, h.seq, off + 8);
  w32(buf, 0, off + 12);
  buf[off + 16] = h.cmd;
  buf[off + 17] = h.version;
  return end;
}

/** One generic netlink message in a buffer of its own. */
export function encodeGenlMessage<S extends TableShape>(h: GenlHeader, table: AttrTable<S>, attrs: AttrRecord<S>): Buffer {
  // A zero-filled slice of Node's buffer pool: Buffer.alloc() would cost an ArrayBuffer per message.
  const buf = Buffer.allocUnsafe(genlMessageSize(table, attrs)).fill(0);
  writeGenlMessage(buf, 0, h, table, attrs);
  return buf;
}

/** Overwrites nlmsg_seq of the message starting at `off`. */
export function setMessageSeq(buf: Buffer, off: number, seq: number): void {
  w32(buf, seq, off + 8);
}

/** Sets or clears NLM_F_ACK in nlmsg_flags of the message starting at `off`. */
export function setMessageAck(buf: Buffer, off: number, ack: boolean): void {
  const flags = r16(buf, off + 6);
  w16(buf, ack ? flags | NLM_F_ACK : flags & ~NLM_F_ACK, off + 6);
}

/** A bare netlink message without payload (e.g. NLMSG_NOOP with NLM_F_ACK, answered by a plain ACK). */
export function encodeControlMessage(type: number, flags: number, seq: number): Buffer {
  const buf = Buffer.alloc(NLMSG_HDRLEN);
  w32(buf, NLMSG_HDRLEN, 0);
  w16(buf, type, 4);
  w16(buf, flags, 6);
  w32(buf, seq, 8);
  return buf;
}

/** Splits a datagram into its messages. Throws MalformedMessageError on a bad length. */
export function parseMessages(buf: Buffer): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = r32(buf, off);
    if (len < NLMSG_HDRLEN || off + len > buf.length)
      throw new MalformedMessageError(`netlink message length ${len} at offset ${off} of ${buf.length}`);
    out.push({
      type: r16(buf, off + 4),
      flags: r16(buf, off + 6),
      seq: r32(buf, off + 8),
      pid: r32(buf, off + 12),
      buf,
      payload: off + NLMSG_HDRLEN,
      end: off + len,
    });
    off += nlaAlign(len);
  }
  return out;
}

/**
 * Calls `visit` for each message of a stream of datagrams (type, seq, and where its payload lies), without
 * a NetlinkMessage per message: for bulk answers of 100k messages. Throws MalformedMessageError on a bad length.
 */
export function forEachMessage(buf: Buffer, visit: (type: number, seq: number, payload: number, end: number) => void): void {
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = r32(buf, off);
    if (len < NLMSG_HDRLEN || off + len > buf.length)
      throw new MalformedMessageError(`netlink message length ${len} at offset ${off} of ${buf.length}`);
    visit(r16(buf, off + 4), r32(buf, off + 8), off + NLMSG_HDRLEN, off + len);
    off += nlaAlign(len);
  }
}

/** The positive errno of an NLMSG_ERROR / NLMSG_DONE payload at buf[payload, end) (0: ACK or success). */
export function payloadErrno(type: number, buf: Buffer, payload: number, end: number): number {
  if (end - payload < 4) {
    if (type === NLMSG_DONE) return 0;
    throw new MalformedMessageError('NLMSG_ERROR without error code');
  }
  const code = ri32(buf, payload);
  return code === 0 ? 0 : -code;
}

/** The genl command of a generic netlink message. */
export function genlCommand(m: NetlinkMessage): number {
  if (m.end - m.payload < GENL_HDRLEN) throw new MalformedMessageError('generic netlink message without genlmsghdr');
  return m.buf[m.payload];
}

/** Where the attributes of a generic netlink message start. */
export function genlAttrStart(m: NetlinkMessage): number {
  return m.payload + GENL_HDRLEN;
}

/**
 * The positive errno of an NLMSG_ERROR (0 for an ACK) or of an NLMSG_DONE (a dump's final status);
 * null for any other message.
 */
export function messageErrno(m: NetlinkMessage): number | null {
  if (m.type !== NLMSG_ERROR && m.type !== NLMSG_DONE) return null;
  if (m.end - m.payload < 4) {
    if (m.type === NLMSG_DONE) return 0;
    throw new MalformedMessageError('NLMSG_ERROR without error code');
  }
  const code = ri32(m.buf, m.payload);
  return code === 0 ? 0 : -code;
}

/** For an NLMSG_ERROR: the sequence number of the request it answers (from the echoed header). */
export function erroredRequestSeq(m: NetlinkMessage): number | null {
  if (m.type !== NLMSG_ERROR || m.end - m.payload < 4 + NLMSG_HDRLEN) return null;
  return r32(m.buf, m.payload + 4 + 8);
}
