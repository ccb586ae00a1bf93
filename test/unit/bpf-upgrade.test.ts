/**
 * Upgrades on the host kernel: a data path loaded from build/bpf, attached (tc + native XDP) to a veth in a
 * throw-away netns, with flows in its map, is opened again from build/bpf-variant (the same sources with
 * another instruction stream, bpf/Makefile): the changed programs are replaced in their pins and in place
 * on the interface, the unchanged one and every map are kept, and the new code serves the old flows
 * (BPF_PROG_TEST_RUN). Also: back to the original objects, a load-time setting, the XDP compare-and-swap,
 * a pinned map of another definition (refused, nothing changed), and what an interrupted swap leaves.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { attachInterface, tcProgId, xdpState } from '../../src/bpf/attach';
import { setRedirectDevices } from '../../src/bpf/devmap';
import { FlowTable, ipvsConnEntries, IpvsConnection } from '../../src/bpf/flows';
import { Datapath, DatapathPrograms, openDatapath, removePins } from '../../src/bpf/loader';
import { bpfObjectDir, native, repoRoot } from '../../src/bpf/native';
import { inNetns } from '../../src/bpf/netns';
import { PIN_TEMP_SUFFIX } from '../../src/bpf/upgrade';
import { ether, ipPacket, parseEther, TCP } from './bpf-packet';

const NS = `ipvsbpf-up-${process.pid}`;
const PIN = `/sys/fs/bpf/ipvs-bpf-up-${process.pid}`;
const PIN2 = `${PIN}-abi`;
const VARIANT = path.join(repoRoot, 'build', 'bpf-variant');
const XDP_REDIRECT = 4;
const conn: IpvsConnection = {
  proto: 'tcp',
  client: { addr: '10.1.0.2', port: 40000 },
  vip: { addr: '10.9.0.1', port: 80 },
  real: { addr: '10.2.0.2', port: 8080 },
  local: { addr: '10.2.0.1', port: 50000 },
};

const ip = (...a: string[]): void => { execFileSync('ip', ['-n', NS, ...a], { stdio: 'pipe' }); };
const open: Datapath[] = [];
function openDp(objectDir: string, extra: { decrementTtl?: boolean; pinDir?: string } = {}): Datapath {
  const dp = openDatapath({ pinDir: PIN, maxEntries: 4096, objectDir, ...extra });
  open.push(dp);
  return dp;
}
const ids = (dp: Datapath): Record<keyof DatapathPrograms, number> =>
  Object.fromEntries(Object.entries(dp.progs).map(([k, fd]) => [k, native.progInfo(fd as number).id])) as Record<keyof DatapathPrograms, number>;
const mapIds = (dp: Datapath): number[] => [dp.ctMap, dp.statsMap, dp.devMap].map((fd) => native.mapInfo(fd).id);
const actions = (dp: Datapath): Record<string, string> => Object.fromEntries(dp.changes.map((c) => [c.program, c.action]));
/** What runs on the veth now: XDP, tc egress, tc ingress program ids. */
const running = (): number[] => inNetns(NS, () => [xdpState('up-a').progId, tcProgId('up-a', 'egress'), tcProgId('up-a', 'ingress')]);
const attach = (dp: Datapath): ReturnType<typeof attachInterface> =>
  inNetns(NS, () => attachInterface(dp.progs, 'up-a', { xdpMode: 'native', known: dp.previous }));

function fwdFrame(): Buffer {
  return ether('02:00:00:00:00:aa', '02:00:00:00:00:bb', ipPacket({ proto: TCP, src: '10.1.0.2', dst: '10.9.0.1', sport: 40000, dport: 80 }));
}
function runFwd(dp: Datapath): { ret: number; out: Buffer } {
  const f = fwdFrame();
  const ctx = Buffer.alloc(24);
  ctx.writeUInt32LE(f.length, 4);
  ctx.writeUInt32LE(inNetns(NS, () => native.ifIndex('up-a')), 12);
  const r = inNetns(NS, () => native.progTestRun(dp.progs.xdp, { data: f, ctxIn: ctx }));
  return { ret: r.retval, out: r.dataOut };
}

let base: Datapath;
let baseIds: Record<keyof DatapathPrograms, number>;

beforeAll(() => {
  execFileSync('ip', ['netns', 'add', NS]);
  execFileSync('ip', ['netns', 'exec', NS, 'sysctl', '-qw', 'net.ipv4.conf.all.forwarding=1']);
  ip('link', 'add', 'up-a', 'type', 'veth', 'peer', 'name', 'up-ap');
  ip('link', 'add', 'up-b', 'type', 'veth', 'peer', 'name', 'up-bp');
  for (const d of ['up-a', 'up-ap', 'up-b', 'up-bp', 'lo']) ip('link', 'set', d, 'up');
  ip('addr', 'add', '10.1.0.1/24', 'dev', 'up-a');
  ip('addr', 'add', '10.2.0.1/24', 'dev', 'up-b');
  ip('neigh', 'replace', '10.2.0.2', 'lladdr', '02:00:00:00:02:02', 'dev', 'up-b', 'nud', 'permanent');
  base = openDp(bpfObjectDir);
  baseIds = ids(base);
  attach(base);
  inNetns(NS, () => setRedirectDevices(base.devMap, ['up-a', 'up-b']));
  const ft = new FlowTable(base.ctMap);
  for (const e of ipvsConnEntries(conn)) ft.put(e.key, e.value);
});

afterAll(() => {
  for (const dp of open) dp.close();
  try { execFileSync('ip', ['netns', 'del', NS]); } catch { /* gone */ }
  for (const p of [PIN, PIN2]) {
    if (!fs.existsSync(p)) continue;
    for (const f of fs.readdirSync(p)) native.unpin(path.join(p, f));
    fs.rmdirSync(p);
  }
});

test('the variant objects are other code for the kernel (another tag) for the programs that count, the same for ipvs_xdp_pass', () => {
  const tags = (dir: string): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const o of ['ipvs_xdp.bpf.o', 'ipvs_tc.bpf.o']) {
      const obj = native.loadObject(path.join(dir, o), { pinRoot: PIN2 });
      try {
        for (const [name, fd] of Object.entries(obj.programs)) out[name] = native.progInfo(fd).tag;
      } finally {
        native.closeObject(obj.id);
      }
    }
    return out;
  };
  native.ensureBpffs(PIN2);
  const a = tags(bpfObjectDir);
  const b = tags(VARIANT);
  removePins(PIN2);
  expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
  for (const p of ['ipvs_xdp_fastpath', 'ipvs_tc_snat', 'ipvs_tc_reply']) expect({ p, same: a[p] === b[p] }).toEqual({ p, same: false });
  expect(b.ipvs_xdp_pass).toBe(a.ipvs_xdp_pass);
});

test('first open loads everything; a second open of the same objects keeps everything', () => {
  expect(Object.values(actions(base))).toEqual(['loaded', 'loaded', 'loaded', 'loaded']);
  expect(running()).toEqual([baseIds.xdp, baseIds.tcEgress, baseIds.tcIngress]);
  const again = openDp(bpfObjectDir);
  expect(again.reused).toBe(true);
  expect(ids(again)).toEqual(baseIds);
  expect(mapIds(again)).toEqual(mapIds(base));
  const a = attach(again);
  expect([a.xdp?.replaced, a.tcEgress.replaced, a.tcIngress.replaced]).toEqual([undefined, undefined, undefined]);
  again.close();
});

test('changed objects: changed programs replaced in their pins and in place on the interface, the rest and all maps kept, old flows served', async () => {
  const up = openDp(VARIANT);
  expect(up.reused).toBe(false);
  expect(actions(up)).toEqual({ ipvs_xdp_fastpath: 'replaced', ipvs_xdp_pass: 'kept', ipvs_tc_snat: 'replaced', ipvs_tc_reply: 'replaced' });
  const upIds = ids(up);
  for (const c of up.changes.filter((x) => x.action === 'replaced')) {
    expect(c.reason).toBe('code');
    expect(c.old?.id).toBe(baseIds[Object.entries(up.progs).find(([, fd]) => native.progInfo(fd as number).name === c.program.slice(0, 15))![0] as keyof DatapathPrograms]);
    expect(c.current.id).not.toBe(c.old?.id);
    expect(c.current.tag).not.toBe(c.old?.tag);
  }
  expect(upIds.xdpPass).toBe(baseIds.xdpPass);
  for (const k of ['xdp', 'tcEgress', 'tcIngress'] as const) expect({ k, same: upIds[k] === baseIds[k] }).toEqual({ k, same: false });
  expect(mapIds(up)).toEqual(mapIds(base));
  expect(fs.readdirSync(PIN).filter((f) => f.endsWith(PIN_TEMP_SUFFIX))).toEqual([]);
  // until attached, the interface runs the old programs; then the new ones, swapped in place
  expect(running()).toEqual([baseIds.xdp, baseIds.tcEgress, baseIds.tcIngress]);
  const a = attach(up);
  expect([a.xdp?.replaced, a.tcEgress.replaced, a.tcIngress.replaced]).toEqual([baseIds.xdp, baseIds.tcEgress, baseIds.tcIngress]);
  expect(a.xdp?.mode).toBe('native');
  expect(running()).toEqual([upIds.xdp, upIds.tcEgress, upIds.tcIngress]);
  // the new code uses the pinned map: the flow written before the upgrade is a hit
  const r = runFwd(up);
  expect(r.ret).toBe(XDP_REDIRECT);
  expect(parseEther(r.out).ip).toMatchObject({ src: '10.2.0.1', dst: '10.2.0.2', sport: 50000, dport: 8080, checksumsOk: true });
  const fwd = new FlowTable(up.ctMap).get(ipvsConnEntries(conn)[2]!.key);
  expect(fwd?.packets).toBe(1n);
  // the old programs are gone with their last reference (pins and attachments moved on; our fds closed)
  expect(up.previous.map((p) => p.id).sort()).toEqual([baseIds.xdp, baseIds.tcEgress, baseIds.tcIngress].sort());
  up.releasePrevious();
  expect(up.previous).toEqual([]);
  base.close();
  const alive = (id: number): boolean => {
    try {
      native.closeFd(native.progGetFdById(id));
      return true;
    } catch {
      return false;
    }
  };
  // a replaced tc filter's program is released after an RCU grace period
  for (let i = 0; i < 50 && [baseIds.xdp, baseIds.tcEgress, baseIds.tcIngress].some(alive); i++) await new Promise((r) => setTimeout(r, 100));
  expect([baseIds.xdp, baseIds.tcEgress, baseIds.tcIngress].map(alive)).toEqual([false, false, false]);
}, 20_000);

test('back to the original objects (a rollback) replaces them again; a load-time setting (TTL) is a change the tag does not show', () => {
  const before = ids(openDp(VARIANT));
  const back = openDp(bpfObjectDir);
  expect(actions(back)).toEqual({ ipvs_xdp_fastpath: 'replaced', ipvs_xdp_pass: 'kept', ipvs_tc_snat: 'replaced', ipvs_tc_reply: 'replaced' });
  attach(back);
  const b = ids(back);
  expect(running()).toEqual([b.xdp, b.tcEgress, b.tcIngress]);
  expect(b.xdp).not.toBe(before.xdp);
  const ttl = openDp(bpfObjectDir, { decrementTtl: false });
  const x = ttl.changes.find((c) => c.program === 'ipvs_xdp_fastpath');
  expect(x).toMatchObject({ action: 'replaced', reason: 'settings (.rodata.cfg)' });
  expect(x?.current.tag).toBe(x?.old?.tag);
  expect(actions(ttl)).toMatchObject({ ipvs_tc_snat: 'kept', ipvs_tc_reply: 'kept' });
  attach(ttl);
  expect(running()[0]).toBe(ids(ttl).xdp);
});

test('XDP replace is a compare-and-swap: with the wrong expected program it fails and changes nothing', () => {
  const dp = openDp(bpfObjectDir);
  attach(dp);
  const cur = running()[0]!;
  expect(cur).toBe(ids(dp).xdp);
  let err: unknown;
  inNetns(NS, () => {
    try {
      native.xdpReplace(native.ifIndex('up-a'), dp.progs.xdpPass, dp.progs.xdpPass, 'native');
    } catch (e) {
      err = e;
    }
  });
  expect(err).toMatchObject({ code: 'EEXIST' });
  expect(running()[0]).toBe(cur);
});

test('a pinned map of another definition is refused, naming it and what to do; nothing is replaced', () => {
  const first = openDatapath({ pinDir: PIN2, maxEntries: 4096 });
  open.push(first);
  const before = ids(first);
  // stand-in for an ABI change: the stats map's pin holds a map of another type and size
  native.unpin(path.join(PIN2, 'ipvs_stats_v2'));
  native.objPin(first.ctMap, path.join(PIN2, 'ipvs_stats_v2'));
  expect(() => openDatapath({ pinDir: PIN2, maxEntries: 4096, objectDir: VARIANT })).toThrow(
    /refusing to load .*ipvs_xdp\.bpf\.o over the pinned maps in .*: map ipvs_stats_v2 differs from its definition \(type 1 pinned, 6 in the object, key size 40 pinned, 4 in the object, value size 64 pinned, 8 in the object, max entries 4096 pinned, 64 in the object\): an ABI change\. Nothing was replaced.*ipvs-bpf --teardown/,
  );
  const progs = Object.fromEntries(['prog_xdp_fastpath', 'prog_tc_snat', 'prog_tc_reply', 'prog_xdp_pass'].map((p) => {
    const fd = native.objGet(path.join(PIN2, p));
    try { return [p, native.progInfo(fd as number).id]; } finally { native.closeFd(fd as number); }
  }));
  expect(progs).toEqual({ prog_xdp_fastpath: before.xdp, prog_tc_snat: before.tcEgress, prog_tc_reply: before.tcIngress, prog_xdp_pass: before.xdpPass });
  // programs pinned without the conntrack map: refused too (they would get an empty one)
  native.unpin(path.join(PIN2, 'ipvs_ct_v1'));
  expect(() => openDatapath({ pinDir: PIN2, maxEntries: 4096 })).toThrow(/programs are pinned but the conntrack map ipvs_ct_v1 is not.*--teardown/);
  removePins(PIN2);
});

test('an interrupted swap: a leftover temporary pin is removed; an interface on another program converges on the pinned one', () => {
  const dp = openDp(bpfObjectDir);
  native.objPin(dp.progs.xdpPass, path.join(PIN, `prog_xdp_fastpath${PIN_TEMP_SUFFIX}`));
  inNetns(NS, () => native.xdpAttach(native.ifIndex('up-a'), dp.progs.xdpPass, 'native'));
  const again = openDp(bpfObjectDir);
  expect(again.reused).toBe(true);
  expect(fs.readdirSync(PIN).filter((f) => f.endsWith(PIN_TEMP_SUFFIX))).toEqual([]);
  const a = attach(again);
  expect(a.xdp?.replaced).toBe(ids(again).xdpPass);
  expect(running()[0]).toBe(ids(again).xdp);
});
