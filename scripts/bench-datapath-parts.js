// What each part of the hot paths costs on this machine: builds the XDP and tc objects with
// parts removed (bpf/include/ipvs_bpf_ablate.h: -DIPVS_ABL_*), times every build with
// BPF_PROG_TEST_RUN (same fixture and ping-pong entries as bench-datapath-testrun.js),
// variants interleaved within each trial so load changes hit them alike.
//   taskset -c 1 node scripts/bench-datapath-parts.js      (REPEAT, TRIALS, VARIANTS=a,b)
// Complete builds are checked to have hit on every repeat (per-CPU stats).
// Prints one line per variant: median ns/packet, and the difference to the full build, for the
// XDP FWD hit (the headline figure), tc SNAT and the XDP REPLY hit (FWD lookup misses first).
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { repoRoot } = require('../dist/src/bpf/native');
const { native } = require('../dist/src/bpf/native');
const { readStats } = require('../dist/src/bpf/flows');
const { createFixture, openBenchDatapath, runXdp, runTc, loadEmpty, median } = require('./bench-datapath-testrun');

const REPEAT = Number(process.env.REPEAT || 1000000);
const TRIALS = Number(process.env.TRIALS || 7);

// name -> clang defines; "stop" variants return right after the stage (no rewrite)
const VARIANTS = {
  full: [],
  'stop:parse+key': ['IPVS_ABL_STOP=1'],
  'stop:+lookup': ['IPVS_ABL_STOP=2'],
  'stop:+nexthop': ['IPVS_ABL_STOP=3'],
  'no-nh-cache': ['IPVS_ABL_NO_NH_CACHE=1'],
  'no-nexthop': ['IPVS_ABL_NO_NEXTHOP=1'],
  'no-kind-hint': ['IPVS_ABL_NO_KIND_HINT=1'],
  'portable-tc': ['PORTABLE_TC'],
  'csum-helpers': ['PORTABLE_TC', 'IPVS_ABL_CSUM_HELPERS=1'],
  'no-touch': ['IPVS_ABL_NO_TOUCH=1'],
  'no-clock': ['IPVS_ABL_NO_CLOCK=1'],
  'plain-add': ['IPVS_ABL_PLAIN_ADD=1'],
  'no-stats': ['IPVS_ABL_NO_STATS=1'],
  'no-csum': ['IPVS_ABL_NO_CSUM=1'],
};

function build(name, defs, dir) {
  const cflags = ['-O2', '-g', '-target', 'bpf', '-Wall', '-Werror', '-Wno-unused-function',
    '-I', path.join(repoRoot, 'bpf', 'include'), '-I', `/usr/include/${os.arch() === 'x64' ? 'x86_64' : os.arch()}-linux-gnu`,
    ...defs.map((d) => `-D${d}`)];
  fs.mkdirSync(dir, { recursive: true });
  const objs = [['xdp/ipvs_xdp.bpf.c', 'ipvs_xdp.bpf.o', []], ['tc/ipvs_tc.bpf.c', 'ipvs_tc.bpf.o', []]];
  // the loader prefers ipvs_tc_kctx.bpf.o where the kernel loads it (as in build/bpf)
  if (!defs.includes('PORTABLE_TC')) objs.push(['tc/ipvs_tc.bpf.c', 'ipvs_tc_kctx.bpf.o', ['-DIPVS_TC_KCTX=1']]);
  for (const [src, obj, extra] of objs) {
    execFileSync('clang', [...cflags.filter((f) => f !== '-DPORTABLE_TC'), ...extra, '-c', path.join(repoRoot, 'bpf', src), '-o', path.join(dir, obj)]);
  }
}

function main() {
  const wanted = process.env.VARIANTS ? process.env.VARIANTS.split(',') : Object.keys(VARIANTS);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ipvs-bpf-parts-'));
  const fx = createFixture();
  const open = [];
  let empty;
  try {
    for (const name of wanted) {
      const dir = path.join(tmp, name.replace(/[^a-z0-9+-]/gi, '_'));
      build(name, VARIANTS[name], dir);
      const b = openBenchDatapath(`/sys/fs/bpf/ipvs-bpf-parts-${process.pid}-${open.length}`, dir, fx);
      open.push({ name, b });
      console.error(`${name}: ${b.dp.objects.join(' ')}`);
    }
    empty = loadEmpty();
    const statsBefore = open.map(({ b }) => readStats(b.dp.statsMap));
    const xdp = Object.fromEntries(wanted.map((n) => [n, []]));
    const reply = Object.fromEntries(wanted.map((n) => [n, []]));
    const tc = Object.fromEntries(wanted.map((n) => [n, []]));
    const floor = { xdp: [], tc: [] };
    for (let t = 0; t < TRIALS; t++) {
      floor.xdp.push(runXdp(fx, empty.programs.bench_xdp_empty, REPEAT).duration);
      floor.tc.push(runTc(fx, empty.programs.bench_tc_empty, REPEAT).duration);
      for (const { name, b } of open) {
        xdp[name].push(runXdp(fx, b.dp.progs.xdp, REPEAT).duration);
        reply[name].push(runXdp(fx, b.dp.progs.xdp, REPEAT, fx.xdpReplyPkt).duration);
        tc[name].push(runTc(fx, b.dp.progs.tcEgress, REPEAT).duration);
      }
    }
    // every timed repeat of a complete build was a hit of the intended kind
    open.forEach(({ name, b }, i) => {
      if (VARIANTS[name].some((d) => /STOP|NO_STATS/.test(d))) return;
      const a = readStats(b.dp.statsMap);
      const n = BigInt(TRIALS * REPEAT);
      for (const k of ['XDP_FWD_HIT', 'XDP_REPLY_HIT', 'TC_SNAT_HIT']) {
        if (a[k] - statsBefore[i][k] !== n) throw new Error(`${name}: ${k} ${a[k] - statsBefore[i][k]}, expected ${n}`);
      }
    });
    const fx0 = median(xdp.full || [NaN]);
    const tc0 = median(tc.full || [NaN]);
    const r0 = median(reply.full || [NaN]);
    console.log(`repeat ${REPEAT}, ${TRIALS} trials; floor: xdp ${median(floor.xdp)} ns, tc ${median(floor.tc)} ns`);
    console.log('variant'.padEnd(18), 'xdp ns  (vs full)   tc ns  (vs full)   xdp reply (vs full)  [xdp min-max | tc min-max]');
    for (const n of wanted) {
      const x = median(xdp[n]);
      const c = median(tc[n]);
      const r = median(reply[n]);
      const d = (a, b) => (Number.isNaN(b) ? '' : `${a - b >= 0 ? '+' : ''}${a - b}`);
      console.log(n.padEnd(18), String(x).padStart(5), `(${d(x, fx0)})`.padEnd(11), String(c).padStart(6), `(${d(c, tc0)})`.padEnd(11),
        String(r).padStart(6), `(${d(r, r0)})`.padEnd(11),
        `[${Math.min(...xdp[n])}-${Math.max(...xdp[n])} | ${Math.min(...tc[n])}-${Math.max(...tc[n])}]`);
    }
  } finally {
    if (empty) native.closeObject(empty.id);
    for (const { b } of open) b.close();
    fx.destroy();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
main();
