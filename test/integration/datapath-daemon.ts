/**
 * Child process standing in for the daemon's data-path start-up: open (or re-open) the
 * pinned data path, attach it to the LB interfaces, print what it found and did as one JSON
 * line, and exit. Usage: datapath-daemon <lb netns> <pin dir> <iface>...
 */
import { attachInterface, tcProgId, xdpState } from '../../src/bpf/attach';
import { openDatapath } from '../../src/bpf/loader';
import { native } from '../../src/bpf/native';
import { inNetns } from '../../src/bpf/netns';

function main(): void {
  const [lbNs, pinDir, ...ifaces] = process.argv.slice(2);
  const dp = openDatapath({ pinDir, maxEntries: 4096 });
  try {
    const progIds = Object.fromEntries(Object.entries(dp.progs).map(([k, fd]) => [k, native.progInfo(fd as number).id]));
    const state = (): Record<string, unknown> => inNetns(lbNs, () => Object.fromEntries(ifaces.map((i) => [i, {
      xdp: xdpState(i).progId, tcEgress: tcProgId(i, 'egress'), tcIngress: tcProgId(i, 'ingress'),
    }])));
    const before = state();
    const attached = inNetns(lbNs, () => ifaces.map((i) => attachInterface(dp.progs, i, { xdpMode: 'native' })));
    const after = state();
    process.stdout.write(`${JSON.stringify({
      pid: process.pid, reused: dp.reused, progIds, ctMapId: native.mapInfo(dp.ctMap).id, before, after,
      xdpModes: attached.map((a) => a.xdp?.mode),
    })}\n`);
  } finally {
    dp.close();
  }
}

main();
