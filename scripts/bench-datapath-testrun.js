// ns/packet by BPF_PROG_TEST_RUN (repeat >= 1e6) for the XDP hit path (FWD entry: the headline
// xdp_hit_ns; and a REPLY entry: xdp_reply_ns), tc SNAT and empty programs, and the floors of each
// path in the same trials (bpf/test/ipvs_floor.bpf.c: our key's conntrack lookup, plus the redirect for
// XDP, plus the checksum helper for tc where the loaded build needs one), with the ratios to them.
// Best case of a one-flow run: the next-hop cache always hits (same flow, same jiffy); xdp_nh_miss_ns is
// the hit path when it never does: a ping-pong pair of flows whose tuples share a cache slot, so each
// packet finds the other flow's next hop there and takes a fresh bpf_fib_lookup. The packet is not reset between repeats, so the map holds "ping-pong" entries:
// each run rewrites A->B, the next B->A, and every repeat is a real hit (checked through the
// per-CPU stats after the runs). TTL decrement is configured off for this object (it would
// expire after 254 repeats); it costs one more 16-bit checksum word. Run from the repo root
// after `npm run build`. scripts/bench-datapath-parts.js reuses the fixture below.
/* global Buffer */
'use strict';
const { execFileSync } = require('child_process');
const { openDatapath, removePins } = require('../dist/src/bpf/loader');
const { FlowTable, readStats } = require('../dist/src/bpf/flows');
const { native, bpfObjectDir } = require('../dist/src/bpf/native');
const layout = native.layout();
const { inNetns } = require('../dist/src/bpf/netns');
const { setRedirectDevices } = require('../dist/src/bpf/devmap');
const path = require('path');

const REPEAT = Number(process.env.REPEAT || 1000000);
const TRIALS = Number(process.env.TRIALS || 7);

function csum(b) { let s = 0; for (let i = 0; i < b.length; i += 2) s += b.readUInt16BE(i); while (s > 0xffff) s = (s & 0xffff) + (s >>> 16); return ~s & 0xffff; }
function tcpFrame(src, dst, sport, dport) {
  const f = Buffer.alloc(64);
  f.writeUInt16BE(0x0800, 12);
  const h = f.subarray(14, 34);
  h[0] = 0x45; h.writeUInt16BE(50, 2); h[8] = 64; h[9] = 6;
  src.split('.').forEach((x, i) => { h[12 + i] = +x; });
  dst.split('.').forEach((x, i) => { h[16 + i] = +x; });
  h.writeUInt16BE(csum(h), 10);
  const t = f.subarray(34, 64);
  t.writeUInt16BE(sport, 0); t.writeUInt16BE(dport, 2); t[12] = 0x50; t[13] = 0x10; t.writeUInt16BE(1000, 14);
  const ps = Buffer.concat([h.subarray(12, 20), Buffer.from([0, 6, 0, 30])]);
  t.writeUInt16BE(csum(Buffer.concat([ps, t])), 16);
  return f;
}
/** ipvs_bpf_nexthop.h's nh_slot() for an IPv4 tuple (fields as the program loads them, little-endian). */
function nhSlot(src, dst) {
  const le = (a) => a.split('.').reduce((w, x, i) => w | (Number(x) << (8 * i)), 0) >>> 0;
  const ports = ((src.port >>> 8) | ((src.port & 255) << 8) | ((dst.port >>> 8) << 16) | ((dst.port & 255) << 24)) >>> 0;
  const h = (le(src.addr) ^ le(dst.addr) ^ Math.imul(ports, 0x85ebca6b)) >>> 0;
  return Math.imul(h, 0x9e3779b1) >>> 20;
}
/** The next-hop-miss pair: C -> V (FWD to L -> R) and L -> R (FWD back), L's port picked so both share a slot. */
const MISS = (() => {
  const C = { addr: '10.1.0.2', port: 40100 }, V = { addr: '10.9.0.1', port: 80 }, R = { addr: '10.2.0.2', port: 8080 };
  for (let port = 50100; port < 65536; port++) {
    const L = { addr: '10.2.0.1', port };
    if (nhSlot(L, R) === nhSlot(C, V)) return { C, V, L, R };
  }
  throw new Error('no colliding next-hop slot');
})();
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };

/** A throw-away netns with two veths, routes and permanent neighbours for bpf_fib_lookup. */
function createFixture() {
  const ns = `ipvsbpf-bench-${process.pid}`;
  const ip = (...a) => execFileSync('ip', ['-n', ns, ...a], { stdio: 'pipe' });
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.conf.all.forwarding=1']);
    ip('link', 'add', 'b-c', 'type', 'veth', 'peer', 'name', 'b-cp');
    ip('link', 'add', 'b-s', 'type', 'veth', 'peer', 'name', 'b-sp');
    for (const d of ['b-c', 'b-cp', 'b-s', 'b-sp', 'lo']) ip('link', 'set', d, 'up');
    ip('addr', 'add', '10.1.0.1/24', 'dev', 'b-c');
    ip('addr', 'add', '10.2.0.1/24', 'dev', 'b-s');
    ip('route', 'add', '10.9.0.0/24', 'dev', 'b-c');
    for (const [a, d] of [['10.1.0.2', 'b-c'], ['10.9.0.1', 'b-c'], ['10.2.0.2', 'b-s'], ['10.2.0.3', 'b-s']]) {
      ip('neigh', 'replace', a, 'lladdr', '02:00:00:00:00:02', 'dev', d, 'nud', 'permanent');
    }
  } catch (e) {
    execFileSync('ip', ['netns', 'del', ns]);
    throw e;
  }
  const ifc = inNetns(ns, () => native.ifIndex('b-c'));
  const xdpPkt = tcpFrame('10.1.0.2', '10.9.0.1', 40000, 80);
  const ifs = inNetns(ns, () => native.ifIndex('b-s'));
  const ctx = Buffer.alloc(24); ctx.writeUInt32LE(xdpPkt.length, 4); ctx.writeUInt32LE(ifc, 12);
  return {
    ns, ctx, xdpPkt, egressIfindex: ifs,
    xdpMissPkt: tcpFrame(MISS.C.addr, MISS.V.addr, MISS.C.port, MISS.V.port),
    tcPkt: tcpFrame('10.1.0.2', '10.2.0.2', 40000, 8080),
    xdpReplyPkt: tcpFrame('10.2.0.2', '10.2.0.3', 8080, 50001),
    destroy() { execFileSync('ip', ['netns', 'del', ns]); },
  };
}

/**
 * Opens a data path (objects from objectDir) with the ping-pong FWD and SNAT entries; the fixture's
 * devices are the XDP redirect devices (the hit path redirects to b-s, as to a configured interface).
 */
function openBenchDatapath(pinDir, objectDir, fx) {
  const dp = openDatapath({ pinDir, maxEntries: 65536, decrementTtl: false, objectDir, reloadPrograms: true });
  inNetns(fx.ns, () => setRedirectDevices(dp.devMap, ['b-c', 'b-s']));
  const ft = new FlowTable(dp.ctMap);
  const C = { addr: '10.1.0.2', port: 40000 }, V = { addr: '10.9.0.1', port: 80 };
  const L = { addr: '10.2.0.1', port: 50000 }, R = { addr: '10.2.0.2', port: 8080 };
  ft.put({ kind: 'FWD', proto: 'tcp', src: C, dst: V }, { src: L, dst: R });
  ft.put({ kind: 'FWD', proto: 'tcp', src: L, dst: R }, { src: C, dst: V }); // ping-pong
  ft.put({ kind: 'SNAT', proto: 'tcp', src: C, dst: R }, { src: L, dst: R });
  ft.put({ kind: 'SNAT', proto: 'tcp', src: L, dst: R }, { src: C, dst: R }); // ping-pong
  // REPLY ping-pong (parts benchmark): R -> X (X stands for lip, but is not local so the
  // rewritten-back packet routes too) becomes V -> C2 and back; no FWD entry for either tuple
  const X = { addr: '10.2.0.3', port: 50001 }, C2 = { addr: '10.1.0.2', port: 40001 };
  ft.put({ kind: 'REPLY', proto: 'tcp', src: R, dst: X }, { src: V, dst: C2 });
  ft.put({ kind: 'REPLY', proto: 'tcp', src: V, dst: C2 }, { src: R, dst: X });
  ft.put({ kind: 'FWD', proto: 'tcp', src: MISS.C, dst: MISS.V }, { src: MISS.L, dst: MISS.R });
  ft.put({ kind: 'FWD', proto: 'tcp', src: MISS.L, dst: MISS.R }, { src: MISS.C, dst: MISS.V }); // ping-pong, one slot
  return {
    dp,
    close() {
      dp.close();
      removePins(pinDir);
      try { require('fs').rmdirSync(pinDir); } catch { /* gone */ }
    },
  };
}

function runXdp(fx, prog, repeat, pkt = fx.xdpPkt) {
  return inNetns(fx.ns, () => native.progTestRun(prog, { data: pkt, ctxIn: fx.ctx, repeat }));
}
function runTc(fx, prog, repeat) {
  return native.progTestRun(prog, { data: fx.tcPkt, repeat });
}
function loadEmpty() {
  return native.loadObject(path.join(bpfObjectDir, 'ipvs_bench.bpf.o'), { programs: ['bench_xdp_empty', 'bench_tc_empty'] });
}
/** The floor programs on the bench data path's maps (its pin root), redirecting to the fixture's egress device. */
function loadFloors(pinDir, fx) {
  const cfg = Buffer.alloc(4);
  cfg.writeUInt32LE(fx.egressIfindex, 0);
  const ct = native.objGet(path.join(pinDir, layout.pin.ctMap));
  const maxEntries = native.mapInfo(ct).maxEntries;
  native.closeFd(ct);
  return native.loadObject(path.join(bpfObjectDir, 'ipvs_floor.bpf.o'), {
    pinRoot: pinDir, maxEntries: { [layout.pin.ctMap]: maxEntries }, rodata: { '.rodata.floor': cfg },
  });
}

function main() {
  const fx = createFixture();
  const pin = `/sys/fs/bpf/ipvs-bpf-bench-${process.pid}`;
  let b;
  let bench;
  let floors;
  try {
    b = openBenchDatapath(pin, bpfObjectDir, fx);
    bench = loadEmpty();
    floors = loadFloors(pin, fx);
    // the tc floor has the checksum helper only where the loaded tc build needs it (the portable one)
    const kctx = b.dp.objects.some((f) => path.basename(f) === 'ipvs_tc_kctx.bpf.o');
    const tcFloor = kctx ? floors.programs.floor_tc_lookup : floors.programs.floor_tc_csum;
    const runs = {
      xdp_hit_ns: [], xdp_reply_ns: [], xdp_nh_miss_ns: [], tc_snat_ns: [], empty_ns: [], tc_empty_ns: [],
      xdp_lookup_ns: [], xdp_floor_ns: [], tc_floor_ns: [],
    };
    const xdpOk = (r, what) => {
      if (r.retval !== 4 && r.retval !== 3) throw new Error(`${what} returned ${r.retval}`);
      return r.duration;
    };
    const before = readStats(b.dp.statsMap);
    for (let t = 0; t < TRIALS; t++) {
      runs.xdp_hit_ns.push(xdpOk(runXdp(fx, b.dp.progs.xdp, REPEAT), 'xdp hit path'));
      runs.xdp_reply_ns.push(xdpOk(runXdp(fx, b.dp.progs.xdp, REPEAT, fx.xdpReplyPkt), 'xdp reply path'));
      runs.xdp_nh_miss_ns.push(xdpOk(runXdp(fx, b.dp.progs.xdp, REPEAT, fx.xdpMissPkt), 'xdp next-hop-miss path'));
      runs.empty_ns.push(runXdp(fx, bench.programs.bench_xdp_empty, REPEAT).duration);
      const l = runXdp(fx, floors.programs.floor_xdp_lookup, REPEAT);
      if (l.retval !== 2) throw new Error(`xdp lookup floor returned ${l.retval} (a miss?)`);
      runs.xdp_lookup_ns.push(l.duration);
      const f = runXdp(fx, floors.programs.floor_xdp, REPEAT);
      if (f.retval !== 4) throw new Error(`xdp floor returned ${f.retval} (not a redirect)`);
      runs.xdp_floor_ns.push(f.duration);
      const s = runTc(fx, b.dp.progs.tcEgress, REPEAT);
      if (s.retval !== 0xffffffff) throw new Error(`tc snat returned ${s.retval}`);
      runs.tc_snat_ns.push(s.duration);
      runs.tc_empty_ns.push(runTc(fx, bench.programs.bench_tc_empty, REPEAT).duration);
      const tf = runTc(fx, tcFloor, REPEAT);
      if (tf.retval !== 0xffffffff) throw new Error(`tc floor returned ${tf.retval} (a miss?)`);
      runs.tc_floor_ns.push(tf.duration);
    }
    const after = readStats(b.dp.statsMap);
    const hits = after.XDP_FWD_HIT - before.XDP_FWD_HIT;
    const replies = after.XDP_REPLY_HIT - before.XDP_REPLY_HIT;
    const snat = after.TC_SNAT_HIT - before.TC_SNAT_HIT;
    if (hits !== BigInt(2 * TRIALS * REPEAT) || replies !== BigInt(TRIALS * REPEAT) || snat !== BigInt(TRIALS * REPEAT)) {
      throw new Error(`not every repeat was a hit: xdp ${hits} (FWD and next-hop-miss runs), xdp reply ${replies}, tc ${snat}`);
    }
    const out = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)]));
    // ratios of medians, each program timed in the same trials
    const r2 = (x) => Math.round(x * 100) / 100;
    out.xdp_hit_ratio = r2(out.xdp_hit_ns / out.xdp_floor_ns);
    out.xdp_nh_miss_ratio = r2(out.xdp_nh_miss_ns / out.xdp_floor_ns);
    out.tc_snat_ratio = r2(out.tc_snat_ns / out.tc_floor_ns);
    out.tc_floor_helper = kctx ? 'none (kctx build)' : 'bpf_l4_csum_replace (portable build)';
    console.error(`testrun (repeat ${REPEAT}, ${TRIALS} trials, all hits verified):`, JSON.stringify(runs));
    console.log(JSON.stringify(out));
  } finally {
    if (floors) native.closeObject(floors.id);
    if (bench) native.closeObject(bench.id);
    if (b) b.close();
    fx.destroy();
  }
}

module.exports = { createFixture, openBenchDatapath, runXdp, runTc, loadEmpty, loadFloors, median };
if (require.main === module) main();
