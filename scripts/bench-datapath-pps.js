// Packets per second through a veth LB namespace: our XDP fast path vs iptables DNAT +
// MASQUERADE (nf_conntrack), same topology, same run, trials interleaved.
//   client ns: bench_xdp_gen, run with BPF_F_TEST_XDP_LIVE_FRAMES, sends 64-byte UDP frames
//              (client:40000 -> VIP:53) out of c0, like an in-kernel pktgen
//   LB ns:     lc carries ipvs_xdp_fastpath (FWD entry written as IPVS writes it: full NAT to
//              lip:50000 -> rs1:5353, bpf_fib_lookup, redirect to ls1), or ipvs_xdp_pass
//              (veth needs an XDP program to receive XDP frames) plus iptables DNAT/MASQUERADE
//   rs1 ns:    s0 carries bench_xdp_sink: counts and drops (rs1 is a permanent neighbour)
// Everything runs in softirq on the CPU this process is pinned to, so packets delivered to
// the sink per wall-clock second is the all-in rate of generator + LB + sink.
// Run from the repo root after `npm run build`, pinned: taskset -c 1 node scripts/bench-datapath-pps.js
/* global Buffer */
'use strict';
const path = require('path');
const { openDatapath } = require('../dist/src/bpf/loader');
const { FlowTable, ipvsConnEntries, readStats } = require('../dist/src/bpf/flows');
const { native, bpfObjectDir } = require('../dist/src/bpf/native');
const { inNetns } = require('../dist/src/bpf/netns');
const { setRedirectDevices } = require('../dist/src/bpf/devmap');
const { ADDR, createTopology, destroyTopology, nsRun } = require('../dist/test/integration/datapath-netns');
const { ether, ipPacket } = require('../dist/test/unit/bpf-packet');

const PACKETS = Number(process.env.PACKETS || 2000000);
const TRIALS = Number(process.env.TRIALS || 5);
const BPF_F_TEST_XDP_LIVE_FRAMES = 2;
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };

function main() {
  const t = createTopology('ipvsbpf-pps');
  let dp;
  let bench;
  try {
    const { client, lb, rs1 } = t.ns;
    dp = openDatapath({ pinDir: t.pinDir, maxEntries: 4096 });
    bench = native.loadObject(path.join(bpfObjectDir, 'ipvs_bench.bpf.o'), { programs: ['bench_xdp_gen', 'bench_xdp_sink'] });
    const sinkMac = nsRun(rs1, 'cat', ['/sys/class/net/s0/address']).trim();
    const lcMac = nsRun(lb, 'cat', ['/sys/class/net/lc/address']).trim();
    const c0Mac = nsRun(client, 'cat', ['/sys/class/net/c0/address']).trim();
    nsRun(lb, 'ip', ['neigh', 'replace', ADDR.rs1, 'lladdr', sinkMac, 'dev', 'ls1', 'nud', 'permanent']);
    inNetns(rs1, () => native.xdpAttach(native.ifIndex('s0'), bench.programs.bench_xdp_sink, 'native'));
    const ft = new FlowTable(dp.ctMap);
    for (const e of ipvsConnEntries({
      proto: 'udp', client: { addr: ADDR.client, port: 40000 }, vip: { addr: ADDR.vip, port: 53 },
      real: { addr: ADDR.rs1, port: 5353 }, local: { addr: ADDR.lip1, port: 50000 },
    })) ft.put(e.key, e.value, 'create');

    const frame = ether(lcMac, c0Mac, ipPacket({ proto: 17, src: ADDR.client, dst: ADDR.vip, sport: 40000, dport: 53, payload: Buffer.alloc(22, 0x61) }));
    if (frame.length !== 64) throw new Error(`frame is ${frame.length} bytes`);
    const tmpl = Buffer.alloc(128);
    frame.copy(tmpl);
    native.mapUpdate(bench.maps.bench_tmpl, Buffer.alloc(4), tmpl, 0);
    const c0 = inNetns(client, () => native.ifIndex('c0'));
    const ctx = Buffer.alloc(24);
    ctx.writeUInt32LE(frame.length, 4);
    ctx.writeUInt32LE(c0, 12);
    const ncpu = native.numPossibleCpus();
    const sinkCount = () => {
      const v = native.mapLookup(bench.maps.bench_sink_count, Buffer.alloc(4));
      let s = 0n;
      for (let c = 0; v && c < ncpu; c++) s += v.readBigUInt64LE(c * 8);
      return s;
    };
    const lcIdx = inNetns(lb, () => native.ifIndex('lc'));
    // what the daemon does for its interfaces: XDP may redirect to them
    inNetns(lb, () => setRedirectDevices(dp.devMap, ['lc', 'ls1']));

    const configs = {
      fastpath() {
        nsRun(lb, 'iptables', ['-t', 'nat', '-F']);
        nsRun(lb, 'iptables', ['-F']);
        inNetns(lb, () => native.xdpAttach(lcIdx, dp.progs.xdp, 'native'));
      },
      iptables() {
        inNetns(lb, () => native.xdpAttach(lcIdx, dp.progs.xdpPass, 'native'));
        nsRun(lb, 'iptables', ['-t', 'nat', '-F']);
        nsRun(lb, 'iptables', ['-t', 'nat', '-A', 'PREROUTING', '-d', ADDR.vip, '-p', 'udp', '--dport', '53', '-j', 'DNAT', '--to-destination', `${ADDR.rs1}:5353`]);
        nsRun(lb, 'iptables', ['-t', 'nat', '-A', 'POSTROUTING', '-o', 'ls1', '-j', 'MASQUERADE']);
        try { nsRun(lb, 'conntrack', ['-F']); } catch { /* empty table */ }
      },
    };
    const runs = { fastpath: [], iptables: [] };
    const delivered = { fastpath: [], iptables: [] };
    const cpuRuns = { fastpath: [], iptables: [] }; // per second of this process's CPU time
    for (let i = 0; i < TRIALS; i++) {
      for (const name of Object.keys(configs)) {
        configs[name]();
        const before = sinkCount();
        const statsBefore = readStats(dp.statsMap);
        const cpu0 = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        inNetns(client, () => native.progTestRun(bench.programs.bench_xdp_gen, {
          data: frame, ctxIn: ctx, repeat: PACKETS, flags: BPF_F_TEST_XDP_LIVE_FRAMES, batchSize: 64,
        }));
        const ns = Number(process.hrtime.bigint() - t0);
        const cpu = process.cpuUsage(cpu0);
        const got = Number(sinkCount() - before);
        const hits = Number(readStats(dp.statsMap).XDP_FWD_HIT - statsBefore.XDP_FWD_HIT);
        if (got < PACKETS * 0.9) throw new Error(`${name}: only ${got} of ${PACKETS} packets reached the sink`);
        // the sink also counts the odd IPv6 ND / MLD frame the devices send on their own
        if (name === 'fastpath' && hits < got - 100) throw new Error(`fastpath: ${got} delivered but ${hits} XDP hits`);
        if (name === 'iptables' && hits !== 0) throw new Error(`iptables run used the fast path (${hits} hits)`);
        runs[name].push(Math.round(got / (ns / 1e9)));
        cpuRuns[name].push(Math.round(got / ((cpu.user + cpu.system) / 1e6)));
        delivered[name].push(got);
      }
    }
    const ct = nsRun(lb, 'conntrack', ['-L']).split('\n').filter((l) => l.includes(`dport=53`));
    if (ct.length !== 1) throw new Error(`expected the iptables path to be tracked once, got ${ct.length} entries`);
    console.error(`pps (${PACKETS} x 64 B per trial, ${TRIALS} trials interleaved):`, JSON.stringify({ runs, cpuRuns, delivered }));
    const r2 = (x) => Math.round(x * 100) / 100;
    const fastpath = median(runs.fastpath);
    const iptables = median(runs.iptables);
    const fastpathCpu = median(cpuRuns.fastpath);
    const iptablesCpu = median(cpuRuns.iptables);
    // wall-clock rates are the headline; per-CPU-second rates are steadier on a shared machine
    console.log(JSON.stringify({
      fastpath_pps: fastpath, iptables_pps: iptables, pps_ratio: r2(fastpath / iptables),
      fastpath_pps_cpu: fastpathCpu, iptables_pps_cpu: iptablesCpu, pps_ratio_cpu: r2(fastpathCpu / iptablesCpu),
    }));
  } finally {
    if (bench) native.closeObject(bench.id);
    if (dp) dp.close();
    destroyTopology(t);
  }
}
main();
