/**
 * Child process standing in for the daemon's data-path start-up: open (or re-open, or upgrade) the
 * pinned data path, attach it to the LB interfaces, make them the XDP redirect devices, print what it
 * found and did as one JSON line, and exit.
 * Usage: datapath-daemon [--objects=<dir>] <lb netns> <pin dir> <iface>...  (objects: default build/bpf)
 */
import { attachInterface, tcProgId, xdpState } from '../../src/bpf/attach';
import { setRedirectDevices } from '../../src/bpf/devmap';
import { openDatapath } from '../../src/bpf/loader';
import { native } from '../../src/bpf/native';
import { inNetns } from '../../src/bpf/netns';

function main(): void {
  const args = process.argv.slice(2);
  const objectDir = args[0]?.startsWith('--objects=') ? args.shift()?.slice('--objects='.length) : undefined;
  const [lbNs, pinDir, ...ifaces] = args;
  const dp = openDatapath({ pinDir, maxEntries: 4096, ...(objectDir ? { objectDir } : {}) });
  try {
    const progIds = Object.fromEntries(Object.entries(dp.progs).map(([k, fd]) => [k, native.progInfo(fd as number).id]));
    const state = (): Record<string, unknown> => inNetns(lbNs, () => Object.fromEntries(ifaces.map((i) => [i, {
      xdp: xdpState(i).progId, tcEgress: tcProgId(i, 'egress'), tcIngress: tcProgId(i, 'ingress'),
    }])));
    const before = state();
    const attached = inNetns(lbNs, () => ifaces.map((i) => attachInterface(dp.progs, i, { xdpMode: 'native', known: dp.previous })));
    inNetns(lbNs, () => setRedirectDevices(dp.devMap, ifaces));
    const after = state();
    process.stdout.write(`${JSON.stringify({
      pid: process.pid, reused: dp.reused, progIds, ctMapId: native.mapInfo(dp.ctMap).id,
      mapIds: [dp.ctMap, dp.statsMap, dp.devMap].map((fd) => native.mapInfo(fd).id), before, after,
      xdpModes: attached.map((a) => a.xdp?.mode), changes: dp.changes,
    })}\n`);
  } finally {
    dp.close();
  }
}

main();
