/**
 * End to end on the host kernel: client ns -> LB ns -> two real-server namespaces, with the
 * data path attached on the LB and the conntrack-map entries written exactly as the patched
 * IPVS writes them (src/bpf/flows.ts ipvsConnEntries). Real TCP and UDP traffic.
 *
 * What stands in for IPVS (the host kernel has none): bpf/test/ipvs_emul.bpf.c on tc ingress
 * of the LB interfaces, after ipvs_tc_reply. For every packet that reaches the stack (TCP
 * SYN/FIN/RST, flows flagged NO_FASTPATH, anything before the neighbour is known) it does
 * IPVS's DNAT (client->VIP => client->RS) or un-DNAT (RS->client => VIP->client) from its own
 * connection table and hands the packet to the output device with bpf_redirect_neigh, as the
 * patched IPVS sends untracked packets with dst_output: netfilter never sees them, tc egress
 * (ipvs_tc_snat) does. Entries are written before the first packet rather than on it, with
 * fixed client ports; everything else is the shipped code: XDP fast path, tc SNAT, tc reply.
 *
 * Later tests: XDP redirects only to the devices in the device map (a flow whose next hop is
 * behind another device goes through the stack and still works); the "daemon" (a child process
 * that opens the pinned data path, attaches it and exits) restarts under a running TCP transfer,
 * and then restarts with changed objects (build/bpf-variant: an upgrade), and every byte is checked.
 */
import { ChildProcess } from 'child_process';
import { openDatapath, Datapath } from '../../src/bpf/loader';
import { FlowTable, ipvsConnEntries, IpvsConnection, readStats, DatapathStats } from '../../src/bpf/flows';
import { layout } from '../../src/bpf/abi';
import { redirectDevices, setRedirectDevices } from '../../src/bpf/devmap';
import { native, repoRoot } from '../../src/bpf/native';
import { inNetns } from '../../src/bpf/netns';
import type { ProgramChange } from '../../src/bpf/loader';
import * as path from 'path';
import {
  ADDR, attachOuterXdpPass, conntrackEntries, createTopology, destroyTopology, Emulator, enableConntrack,
  jsonLines, LB_IFACES, loadEmulator, runChild, spawnInNs, Topology,
} from './datapath-netns';

jest.setTimeout(5 * 60 * 1000);

let t: Topology;
let dp: Datapath | undefined;
let emul: Emulator | undefined;
let flows: FlowTable;
const children: ChildProcess[] = [];

interface DaemonReport {
  pid: number;
  reused: boolean;
  progIds: Record<string, number>;
  ctMapId: number;
  mapIds: number[];
  changes: ProgramChange[];
  before: Record<string, { xdp: number; tcEgress: number; tcIngress: number }>;
  after: Record<string, { xdp: number; tcEgress: number; tcIngress: number }>;
  xdpModes: string[];
}
let daemon1: DaemonReport;

async function runDaemon(objectDir?: string): Promise<DaemonReport> {
  const out = await runChild(undefined, 'datapath-daemon', [...(objectDir ? [`--objects=${objectDir}`] : []), t.ns.lb, t.pinDir, ...LB_IFACES]);
  return JSON.parse(out.trim().split('\n').pop() as string) as DaemonReport;
}

function conn(proto: 'tcp' | 'udp', cport: number, vport: number, real: string, rport: number, local: string, lport: number,
  flags = 0): IpvsConnection {
  return {
    proto, flags,
    client: { addr: ADDR.client, port: cport },
    vip: { addr: ADDR.vip, port: vport },
    real: { addr: real, port: rport },
    local: { addr: local, port: lport },
  };
}

/** What IPVS does when it schedules a connection: its own table, and the three map entries. */
function install(c: IpvsConnection): void {
  for (const e of ipvsConnEntries(c)) flows.put(e.key, e.value, 'create');
  emul?.addConn(c);
}

function entryPackets(c: IpvsConnection): { snat: bigint; reply: bigint; fwd: bigint } {
  const [snat, reply, fwd] = ipvsConnEntries(c).map((e) => flows.get(e.key)?.packets ?? -1n);
  return { snat, reply, fwd };
}

function startChild(ns: string, args: string[]): ChildProcess {
  const cp = spawnInNs(ns, 'datapath-peer', args);
  children.push(cp);
  return cp;
}

function listening(ns: string, mode: string, port: number): Promise<void> {
  const cp = startChild(ns, [mode, String(port)]);
  return new Promise((resolve, reject) => {
    let err = '';
    cp.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
    jsonLines(cp, (o) => { if (o.listening === port) resolve(); });
    cp.on('exit', (code) => reject(new Error(`${mode} ${port} in ${ns} exited ${code}: ${err}`)));
  });
}

interface Done { done?: boolean; error?: string; sent: number; recv?: number; echoed?: number; mismatched?: number; sentSha?: string; recvSha?: string }

/** Runs a client to the end and returns its final line. */
async function client(args: string[]): Promise<Done> {
  const out = await runChild(t.ns.client, 'datapath-peer', args, 180000);
  return JSON.parse(out.trim().split('\n').pop() as string) as Done;
}

function delta(a: DatapathStats, b: DatapathStats): Record<string, bigint> {
  return Object.fromEntries(Object.keys(b).map((k) => [k, b[k] - a[k]]));
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 90000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  t = createTopology('ipvsbpf-e2e');
  daemon1 = await runDaemon();
  dp = openDatapath({ pinDir: t.pinDir, maxEntries: 4096 });
  flows = new FlowTable(dp.ctMap);
  attachOuterXdpPass(t, dp.progs.xdpPass);
  emul = loadEmulator(t);
  enableConntrack(t);
  await Promise.all([
    listening(t.ns.rs1, 'tcp-echo', 8080), listening(t.ns.rs2, 'tcp-echo', 8080),
    listening(t.ns.rs1, 'udp-echo', 5353), listening(t.ns.rs2, 'udp-echo', 5353),
  ]);
});

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  emul?.close();
  dp?.close();
  if (t) destroyTopology(t);
});

test('the first daemon run loaded, pinned and attached everything natively', () => {
  expect(daemon1.reused).toBe(false);
  for (const i of LB_IFACES) {
    expect(daemon1.after[i]).toEqual({ xdp: daemon1.progIds.xdp, tcEgress: daemon1.progIds.tcEgress, tcIngress: daemon1.progIds.tcIngress });
  }
  expect(daemon1.xdpModes).toEqual(['native', 'native', 'native']);
});

const TCP1 = conn('tcp', 40001, 80, ADDR.rs1, 8080, ADDR.lip1, 50001);
const TCP2 = conn('tcp', 40002, 80, ADDR.rs2, 8080, ADDR.lip2, 50002);
const UDP_FAST = conn('udp', 40003, 53, ADDR.rs1, 5353, ADDR.lip1, 50003);
const UDP_STACK = conn('udp', 40004, 53, ADDR.rs2, 5353, ADDR.lip2, 50004, layout.flags.NO_FASTPATH);
const TCP_LONG = conn('tcp', 40005, 80, ADDR.rs2, 8080, ADDR.lip2, 50005);
const TCP_IN_MAP = conn('tcp', 40006, 80, ADDR.rs1, 8080, ADDR.lip1, 50006);
const TCP_NOT_IN_MAP = conn('tcp', 40007, 80, ADDR.rs2, 8080, ADDR.lip2, 50007);
const TCP_UPGRADE = conn('tcp', 40008, 80, ADDR.rs1, 8080, ADDR.lip1, 50008);
const CONTROL_PORT = 40010;

test('TCP and UDP through XDP + tc SNAT + tc reply to two real servers; nf_conntrack sees none of it', async () => {
  const conns = [TCP1, TCP2, UDP_FAST, UDP_STACK];
  conns.forEach(install);
  const before = readStats(dp!.statsMap);
  const MB4 = 4 * 1024 * 1024;
  const [t1, t2, u1, u2, ctl] = await Promise.all([
    client(['tcp-client', ADDR.vip, '80', '40001', String(MB4)]),
    client(['tcp-client', ADDR.vip, '80', '40002', String(MB4)]),
    client(['udp-client', ADDR.vip, '53', '40003', '200']),
    client(['udp-client', ADDR.vip, '53', '40004', '200']),
    // control: straight to a real server through the LB, no map entries -> the kernel forwards it
    client(['tcp-client', ADDR.rs1, '8080', String(CONTROL_PORT), String(256 * 1024)]),
  ]);
  for (const r of [t1, t2, ctl]) {
    expect(r).toMatchObject({ done: true, recv: r.sent });
    expect(r.recvSha).toBe(r.sentSha);
  }
  expect(t1.sent).toBe(MB4);
  for (const u of [u1, u2]) expect(u).toMatchObject({ done: true, echoed: 200, mismatched: 0 });

  const d = delta(before, readStats(dp!.statsMap));
  console.log('datapath e2e counters:', JSON.stringify(Object.fromEntries(Object.entries(d).filter(([, v]) => v > 0n).map(([k, v]) => [k, Number(v)]))),
    'entries (snat/reply/fwd packets):', JSON.stringify([TCP1, TCP2, UDP_FAST, UDP_STACK].map((c) => Object.values(entryPackets(c)).map(Number))));
  // every program did real work, nothing failed
  for (const k of ['XDP_FWD_HIT', 'XDP_REPLY_HIT', 'XDP_PASS_TCP_CTRL', 'XDP_PASS_FLAG', 'XDP_REDIRECT', 'TC_SNAT_HIT', 'TC_REPLY_HIT']) {
    expect([k, d[k] > 0n]).toEqual([k, true]);
  }
  expect(d.ERROR).toBe(0n);
  expect(emul!.stats()).toMatchObject({ failed: 0n });
  expect(emul!.stats().translated).toBeGreaterThan(0n);

  // TCP: the handshake and teardown went through the stack (tc SNAT / tc reply), the data through XDP
  for (const c of [TCP1, TCP2]) {
    const p = entryPackets(c);
    expect(p.snat).toBeGreaterThanOrEqual(2n); // SYN and FIN at least
    expect(p.reply).toBeGreaterThanOrEqual(2n);
    expect(p.fwd).toBeGreaterThan(p.snat);
  }
  // UDP on the fast path: XDP carried it (each request used FWD or, before the neighbour was known, SNAT)
  const pf = entryPackets(UDP_FAST);
  expect(pf.fwd).toBeGreaterThan(0n);
  expect(pf.fwd + pf.snat).toBeGreaterThanOrEqual(200n);
  expect(pf.reply).toBeGreaterThanOrEqual(200n);
  // UDP flagged NO_FASTPATH: XDP left every packet to the stack, where tc translated it
  const ps = entryPackets(UDP_STACK);
  expect(ps.fwd).toBe(0n);
  expect(ps.snat).toBeGreaterThanOrEqual(200n);
  expect(ps.reply).toBeGreaterThanOrEqual(200n);

  // conntrack is active in the LB ns (the control flow is tracked) and saw nothing else
  const ct = conntrackEntries(t);
  expect(ct.filter((l) => l.includes(`sport=${CONTROL_PORT}`)).length).toBe(1);
  expect(ct.filter((l) => !l.includes(`sport=${CONTROL_PORT}`))).toEqual([]);
});

test('XDP redirects only to the device map\'s devices: a flow whose next hop is behind another one goes through the stack, intact and counted', async () => {
  const lbIndex = (n: string): number => inNetns(t.ns.lb, () => native.ifIndex(n));
  expect(redirectDevices(dp!.devMap)).toEqual(LB_IFACES.map(lbIndex).sort((a, b) => a - b));
  // ls2 (towards rs2) leaves the set, as an interface the data path does not run on would be
  inNetns(t.ns.lb, () => setRedirectDevices(dp!.devMap, ['lc', 'ls1']));
  try {
    [TCP_IN_MAP, TCP_NOT_IN_MAP].forEach(install);
    const before = readStats(dp!.statsMap);
    const MB2 = 2 * 1024 * 1024;
    const [inMap, notInMap] = await Promise.all([
      client(['tcp-client', ADDR.vip, '80', '40006', String(MB2)]),
      client(['tcp-client', ADDR.vip, '80', '40007', String(MB2)]),
    ]);
    for (const r of [inMap, notInMap]) {
      expect(r).toMatchObject({ done: true, sent: MB2, recv: MB2 });
      expect(r.recvSha).toBe(r.sentSha);
    }
    const d = delta(before, readStats(dp!.statsMap));
    const pin = entryPackets(TCP_IN_MAP);
    const pout = entryPackets(TCP_NOT_IN_MAP);
    console.log('device map counters:', JSON.stringify({ XDP_PASS_EGRESS: Number(d.XDP_PASS_EGRESS), XDP_REDIRECT: Number(d.XDP_REDIRECT) }),
      'in map (snat/reply/fwd):', Object.values(pin).map(Number), 'not in map:', Object.values(pout).map(Number));
    // to rs2: every forward data packet was refused a redirect to ls2 and went to the stack (tc SNAT carried it)
    expect(d.XDP_PASS_EGRESS).toBeGreaterThanOrEqual(pout.snat - 4n);
    expect(d.XDP_PASS_EGRESS).toBeGreaterThan(10n);
    expect(pout.fwd).toBe(0n);
    expect(pout.snat).toBeGreaterThan(10n);
    // its replies come in on ls2 and leave through lc, which is in the map: redirected by XDP
    expect(pout.reply).toBeGreaterThan(10n);
    // to rs1: the fast path both ways
    expect(pin.fwd).toBeGreaterThan(pin.snat);
    expect(d.XDP_REDIRECT).toBeGreaterThanOrEqual(pin.fwd);
    expect(d.ERROR).toBe(0n);
  } finally {
    inNetns(t.ns.lb, () => setRedirectDevices(dp!.devMap, [...LB_IFACES]));
  }
});

/** A paced transfer that runs across one "daemon" run: the run's report and the transfer's verdict. */
async function transferAcrossDaemonRun(c: IpvsConnection, objectDir?: string): Promise<{ report: DaemonReport; last: Done; err: string; fwdAtRun: bigint }> {
  install(c);
  const cp = startChild(t.ns.client, ['tcp-client', ADDR.vip, '80', String(c.client.port), String(1024 * 1024 * 1024), 'paced']);
  let last: Done = { sent: 0, recv: 0 };
  let err = '';
  cp.stderr?.on('data', (b: Buffer) => { err += b.toString(); });
  jsonLines(cp, (o) => { last = o as unknown as Done; });
  const exited = new Promise<number | null>((r) => cp.on('exit', r));
  const recv = (): number => last.recv ?? 0;

  await waitFor('2 MB echoed before the daemon run', () => recv() >= 2 * 1024 * 1024 || last.error !== undefined);
  expect(last.error).toBeUndefined();
  const atRun = recv();
  const fwdAtRun = entryPackets(c).fwd;
  const report = await runDaemon(objectDir);
  await waitFor('2 MB more after the daemon run', () => recv() >= atRun + 2 * 1024 * 1024 || last.error !== undefined);
  cp.stdin?.write('stop\n');
  expect(await exited).toBe(0);
  return { report, last, err, fwdAtRun };
}

function expectIntact(r: { last: Done; err: string }): void {
  expect(r.err).toBe('');
  expect(r.last).toMatchObject({ done: true });
  expect(r.last.recv).toBe(r.last.sent);
  expect(r.last.recvSha).toBe(r.last.sentSha);
  expect(r.last.sent).toBeGreaterThan(4 * 1024 * 1024);
}

test('a daemon restart (exit, re-open of the pins, re-attach) leaves an established transfer untouched', async () => {
  const r = await transferAcrossDaemonRun(TCP_LONG);
  const daemon2 = r.report;
  expect(daemon2.pid).not.toBe(daemon1.pid);
  expect(daemon2.reused).toBe(true);
  expect(daemon2.progIds).toEqual(daemon1.progIds);
  expect(daemon2.ctMapId).toBe(daemon1.ctMapId);
  expect(daemon2.mapIds).toEqual(daemon1.mapIds);
  expect(daemon2.before).toEqual(daemon1.after); // still attached while no daemon ran
  expect(daemon2.after).toEqual(daemon2.before); // re-attach changed nothing
  expectIntact(r);
  // the same map entry kept carrying the flow across the restart
  expect(entryPackets(TCP_LONG).fwd).toBeGreaterThan(r.fwdAtRun);
  expect(conntrackEntries(t).filter((l) => l.includes('sport=40005') || l.includes('dport=50005'))).toEqual([]);
});

test('an upgrade (the daemon starts with changed objects) replaces the programs in place under a live transfer; the maps and the flow stay', async () => {
  const r = await transferAcrossDaemonRun(TCP_UPGRADE, path.join(repoRoot, 'build', 'bpf-variant'));
  const up = r.report;
  expect(up.reused).toBe(false);
  expect(Object.fromEntries(up.changes.map((c) => [c.program, c.action])))
    .toEqual({ ipvs_xdp_fastpath: 'replaced', ipvs_xdp_pass: 'kept', ipvs_tc_snat: 'replaced', ipvs_tc_reply: 'replaced' });
  for (const k of ['xdp', 'tcEgress', 'tcIngress']) expect({ k, changed: up.progIds[k] !== daemon1.progIds[k] }).toEqual({ k, changed: true });
  expect(up.progIds.xdpPass).toBe(daemon1.progIds.xdpPass);
  expect(up.mapIds).toEqual(daemon1.mapIds);
  for (const i of LB_IFACES) {
    expect(up.before[i]).toEqual({ xdp: daemon1.progIds.xdp, tcEgress: daemon1.progIds.tcEgress, tcIngress: daemon1.progIds.tcIngress });
    expect(up.after[i]).toEqual({ xdp: up.progIds.xdp, tcEgress: up.progIds.tcEgress, tcIngress: up.progIds.tcIngress });
  }
  expectIntact(r);
  // the new XDP program went on with the flow's entry in the kept map
  expect(entryPackets(TCP_UPGRADE).fwd).toBeGreaterThan(r.fwdAtRun);
});
