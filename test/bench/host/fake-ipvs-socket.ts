/**
 * A stand-in for netlink's RawNetlinkSocket that answers like the kernel's IPVS generic-netlink family for
 * a fixed N x M table, so the listing path of ipvs-bpfctl (channel, decoders, sort, formatting, output) can
 * be timed and profiled on a host without IPVS. A benchmark tool only, never used by tests as an oracle.
 *
 * What it mimics: the controller's family reply; GET_SERVICE / GET_DEST dumps packed into datagrams of at
 * most NLMSG_GOODSIZE (3776 bytes on 4 KiB pages) with NLMSG_DONE in a datagram of its own (netlink_dump
 * finds the end only on the next read); every attribute the 6.1 kernel sends (stats and stats64 included);
 * one datagram per event-loop turn (uv_poll: one callback per datagram, microtasks drained after each).
 */
import { EventEmitter } from 'node:events';
import {
  CMD_ATTRS,
  CTRL_ATTRS,
  INFO_ATTRS,
  type AttrRecord,
  type AttrTable,
  type CmdRecord,
  type DestRecord,
  type ServiceRecord,
  type TableShape,
} from '../../../src/ipvs/netlink/attributes';
import {
  AF_INET,
  GENL_ID_CTRL,
  IPPROTO_TCP,
  IpvsCmd,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLM_F_ACK,
  NLM_F_MULTI,
} from '../../../src/ipvs/netlink/constants';
import {
  genlAttrStart,
  genlCommand,
  genlMessageSize,
  parseMessages,
  writeGenlMessage,
  type NetlinkMessage,
} from '../../../src/ipvs/netlink/message';
import { decodeAttrs } from '../../../src/ipvs/netlink/tlv';

const FAMILY_ID = 0x1d;
const GOODSIZE = 3776;

function ipBytes(n: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

const VIP_BASE = (10 << 24) >>> 0;
const RS_BASE = ((172 << 24) | (16 << 16)) >>> 0;

const STATS32 = { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0n, outBytes: 0n, cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };
const STATS64 = { conns: 0n, inPkts: 0n, outPkts: 0n, inBytes: 0n, outBytes: 0n, cps: 0n, inPps: 0n, outPps: 0n, inBps: 0n, outBps: 0n };

export interface FakeTable {
  services: number;
  servers: number;
}

let table: FakeTable = { services: 10000, servers: 10 };
/** Per service, its GET_DEST answer (seq 0; the seq is patched in per request), built before any timing. */
let destAnswers: Buffer[][] = [];
let serviceAnswer: Buffer[] = [];
export function setFakeTable(t: FakeTable): void {
  table = t;
  destAnswers = [];
  const svcs: CmdRecord[] = [];
  for (let s = 0; s < t.services; s++) {
    svcs.push({ service: serviceRec(s) });
    const recs: CmdRecord[] = [];
    for (let r = 0; r < t.servers; r++) recs.push({ dest: destRec(s, r) });
    destAnswers.push(dumpDatagrams(0, IpvsCmd.GET_DEST, recs));
  }
  serviceAnswer = dumpDatagrams(0, IpvsCmd.GET_SERVICE, svcs);
  bulkDestAnswer = Buffer.concat(destAnswers.flatMap((a, s) => withSeq(a, s + 1)));
}

/** What the bulk read asks for the whole table (GET_DEST of every service, seqs 1..N), answered in advance. */
let bulkDestAnswer = Buffer.alloc(0);

function withSeq(bufs: readonly Buffer[], seq: number): Buffer[] {
  return bufs.map((b) => {
    const c = Buffer.from(b); // the addon hands out each datagram in a fresh buffer
    for (let off = 0; off + 16 <= c.length; off += (c.readUInt32LE(off) + 3) & ~3) c.writeUInt32LE(seq, off + 8);
    return c;
  });
}

function serviceRec(s: number): ServiceRecord {
  return {
    af: AF_INET,
    protocol: IPPROTO_TCP,
    addr: ipBytes(VIP_BASE + s + 1),
    port: 80,
    schedName: 'wlc',
    flags: { flags: 2, mask: 0xffffffff },
    timeout: 0,
    netmask: 0xffffffff,
    stats: STATS32,
    stats64: STATS64,
  };
}

function destRec(s: number, r: number): DestRecord {
  return {
    addr: ipBytes(RS_BASE + s * table.servers + r + 1),
    port: 8080,
    fwdMethod: 0,
    weight: 1,
    uThresh: 0,
    lThresh: 0,
    activeConns: 0,
    inactConns: 0,
    persistConns: 0,
    stats: STATS32,
    addrFamily: AF_INET,
    stats64: STATS64,
    tunType: 0,
    tunPort: 0,
    tunFlags: 0,
  };
}

/** Genl messages packed into datagrams of at most GOODSIZE bytes, then NLMSG_DONE alone. */
function dumpDatagrams(seq: number, cmd: number, recs: CmdRecord[]): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i < recs.length) {
    const sizes: number[] = [];
    let total = 0;
    while (i + sizes.length < recs.length) {
      const sz = genlMessageSize(CMD_ATTRS, recs[i + sizes.length]);
      if (sizes.length > 0 && total + sz > GOODSIZE) break;
      sizes.push(sz);
      total += sz;
    }
    const buf = Buffer.alloc(total);
    let off = 0;
    for (let k = 0; k < sizes.length; k++) {
      off = writeGenlMessage(buf, off, { family: FAMILY_ID, flags: NLM_F_MULTI, seq, cmd, version: 1 }, CMD_ATTRS, recs[i + k]);
    }
    out.push(buf);
    i += sizes.length;
  }
  out.push(control(NLMSG_DONE, NLM_F_MULTI, seq, 0));
  return out;
}

function control(type: number, flags: number, seq: number, errno: number): Buffer {
  const b = Buffer.alloc(20 + (type === NLMSG_ERROR ? 16 : 0));
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt16LE(flags, 6);
  b.writeUInt32LE(seq, 8);
  b.writeInt32LE(-errno, 16);
  return b;
}

function reply<S extends TableShape>(seq: number, family: number, cmd: number, tbl: AttrTable<S>, rec: AttrRecord<S>): Buffer[] {
  const buf = Buffer.alloc(genlMessageSize(tbl, rec));
  writeGenlMessage(buf, 0, { family, flags: 0, seq, cmd, version: 1 }, tbl, rec);
  return [buf, control(NLMSG_ERROR, 0x100, seq, 0)];
}

/** The datagrams that answer one request message (seq patched in). */
function answer(m: NetlinkMessage): Buffer[] {
  if (m.type === GENL_ID_CTRL) return reply(m.seq, GENL_ID_CTRL, 1, CTRL_ATTRS, { familyId: FAMILY_ID, familyName: 'IPVS' });
  const cmd = genlCommand(m);
  if (cmd === IpvsCmd.GET_INFO) return reply(m.seq, FAMILY_ID, cmd, INFO_ATTRS, { version: 0x10201, connTabSize: 4096 });
  if (cmd === IpvsCmd.GET_SERVICE) return withSeq(serviceAnswer, m.seq);
  if (cmd === IpvsCmd.GET_DEST) {
    const rec = decodeAttrs(CMD_ATTRS, m.buf, genlAttrStart(m), m.end);
    const s = (rec.service!.addr!.readUInt32BE(0) - VIP_BASE - 1) >>> 0;
    return withSeq(destAnswers[s] ?? [control(NLMSG_DONE, NLM_F_MULTI, 0, 0)], m.seq);
  }
  if (WRITES.has(cmd)) return m.flags & NLM_F_ACK ? [control(NLMSG_ERROR, 0x100, m.seq, 0)] : []; // done, table unchanged
  return [control(NLMSG_ERROR, 0x100, m.seq, 95)];
}

/** Changes are acknowledged (when asked) and not kept: enough to time what -R does in JavaScript. */
const WRITES = new Set<number>([
  IpvsCmd.NEW_SERVICE, IpvsCmd.SET_SERVICE, IpvsCmd.DEL_SERVICE, IpvsCmd.NEW_DEST, IpvsCmd.SET_DEST, IpvsCmd.DEL_DEST, IpvsCmd.FLUSH,
]);

/**
 * A stand-in for native/ipvs_netlink_addon.cc: the answers in chunks of whole answers (as the addon cuts
 * them, at chunkBytes), one chunk per event-loop turn, then the end.
 */
export const fakeNetlinkAddon = {
  dumps(_protocol: number, requests: Buffer, opts: { chunkBytes?: number }, onChunk: (c: Buffer | null) => void): void {
    const msgs = parseMessages(requests);
    const limit = opts.chunkBytes ?? 256 << 10;
    let out: Buffer;
    if (msgs.length === table.services && msgs.every((m, i) => m.seq === i + 1 && genlCommand(m) === IpvsCmd.GET_DEST)) {
      out = bulkDestAnswer;
    } else {
      out = Buffer.concat(msgs.flatMap((m) => answer(m)));
    }
    // cut after a DONE/ERROR once a chunk holds `limit` bytes; each chunk is a fresh copy, as the addon's are
    const cuts: number[] = [];
    let start = 0;
    for (let off = 0; off + 16 <= out.length; ) {
      const len = out.readUInt32LE(off);
      const type = out.readUInt16LE(off + 4);
      off += (len + 3) & ~3;
      if ((type === NLMSG_DONE || type === NLMSG_ERROR) && off - start >= limit) {
        cuts.push(off);
        start = off;
      }
    }
    if (start < out.length) cuts.push(out.length);
    let from = 0;
    const next = (k: number): void => {
      if (k === cuts.length) return onChunk(null);
      const c = Buffer.allocUnsafe(cuts[k] - from);
      out.copy(c, 0, from, cuts[k]);
      from = cuts[k];
      onChunk(c);
      setImmediate(next, k + 1);
    };
    setImmediate(next, 0);
  },
};

export class FakeRawNetlinkSocket extends EventEmitter {
  private readonly queue: Buffer[] = [];
  private scheduled = false;
  private closed = false;

  constructor(_protocol: number, _opts?: unknown) {
    super();
  }
  getRecvBufferSize(): number {
    return 8 << 20;
  }
  getSendBufferSize(): number {
    return 8 << 20;
  }
  ref(): void {}
  unref(): void {}
  close(): void {
    this.closed = true;
  }

  send(buf: Buffer, _o: unknown, cb: (err?: Error) => void): void {
    for (const m of parseMessages(buf)) this.push(answer(m));
    // The addon completes a send from a zero timer (the next loop turn).
    setTimeout(() => cb(), 0);
  }

  private push(bufs: Buffer[]): void {
    this.queue.push(...bufs);
    this.pump();
  }

  private pump(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const b = this.queue.shift();
      if (!b || this.closed) return;
      this.emit('message', b, {});
      if (this.queue.length) this.pump();
    });
  }
}
