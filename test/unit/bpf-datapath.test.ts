/**
 * BPF_PROG_TEST_RUN on the host kernel: the XDP fast path and the tc programs, both
 * families, TCP/UDP/ICMP errors, hits, misses and passes; checksums checked from scratch.
 * FIB lookups run inside a throw-away netns with permanent neighbours.
 */
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { encodeKey, decodeKey, encodeValue, decodeValue, layout } from '../../src/bpf/abi';
import { Datapath, openDatapath, removePins } from '../../src/bpf/loader';
import { FlowTable, ipvsConnEntries, IpvsConnection, readStats } from '../../src/bpf/flows';
import { bpfObjectDir, native } from '../../src/bpf/native';
import { attachTc } from '../../src/bpf/attach';
import { redirectDevices, setRedirectDevices } from '../../src/bpf/devmap';
import { inNetns } from '../../src/bpf/netns';
import { ACK, ether, FIN, icmpError, ipPacket, parseEther, SYN, TCP, UDP, L4Spec } from './bpf-packet';

const NS = `ipvsbpf-ut-${process.pid}`;
const PIN = `/sys/fs/bpf/ipvs-bpf-ut-${process.pid}`;
const CLIENT_MAC = '02:00:00:00:01:02';
const RS_MAC = '02:00:00:00:02:02';
const XDP_PASS = 2;
const XDP_TX = 3;
const XDP_REDIRECT = 4;
const TC_ACT_UNSPEC = 0xffffffff; // -1 ("next filter") as the u32 test-run retval

function ip(...args: string[]): void {
  execFileSync('ip', ['-n', NS, ...args], { stdio: 'pipe' });
}

let dp: Datapath;
let flows: FlowTable;
let dpPortable: Datapath;
let flowsPortable: FlowTable;
let dpOld: Datapath;
let flowsOld: FlowTable;
const PORTABLE_DIR = path.join(os.tmpdir(), `ipvsbpf-ut-portable-${process.pid}`);
const OLD_DIR = path.join(os.tmpdir(), `ipvsbpf-ut-oldcsum-${process.pid}`);
let ifC = 0;
let ifS = 0;
let macS = '';
let macC = '';

const v4: IpvsConnection = {
  proto: 'tcp',
  client: { addr: '10.1.0.2', port: 40000 },
  vip: { addr: '10.9.0.1', port: 80 },
  real: { addr: '10.2.0.2', port: 8080 },
  local: { addr: '10.2.0.1', port: 50000 },
};
const v6: IpvsConnection = {
  proto: 'tcp',
  client: { addr: 'fd01::2', port: 40001 },
  vip: { addr: 'fd09::1', port: 443 },
  real: { addr: 'fd02::2', port: 8443 },
  local: { addr: 'fd02::1', port: 50001 },
};
const udp4: IpvsConnection = { ...v4, proto: 'udp', client: { addr: '10.1.0.2', port: 5353 }, local: { addr: '10.2.0.1', port: 5353 } };
const udp6: IpvsConnection = { ...v6, proto: 'udp', client: { addr: 'fd01::2', port: 5354 }, local: { addr: 'fd02::1', port: 5354 } };

function xdpCtx(ifindex: number, len: number): Buffer {
  const c = Buffer.alloc(24); // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex
  c.writeUInt32LE(len, 4); // data_end must equal the frame length
  c.writeUInt32LE(ifindex, 12);
  return c;
}

function runXdp(frame: Buffer, ifindex: number): { ret: number; out: Buffer } {
  return inNetns(NS, () => {
    const r = native.progTestRun(dp.progs.xdp, { data: frame, ctxIn: xdpCtx(ifindex, frame.length) });
    return { ret: r.retval, out: r.dataOut };
  });
}

function runTc(prog: number, frame: Buffer): { ret: number; out: Buffer } {
  const r = native.progTestRun(prog, { data: frame });
  return { ret: r.retval, out: r.dataOut };
}

function frame(s: L4Spec): Buffer {
  return ether('02:00:00:00:00:aa', '02:00:00:00:00:bb', ipPacket(s));
}

beforeAll(() => {
  execFileSync('ip', ['netns', 'add', NS]);
  execFileSync('ip', ['netns', 'exec', NS, 'sysctl', '-qw', 'net.ipv4.conf.all.forwarding=1', 'net.ipv6.conf.all.forwarding=1']);
  ip('link', 'add', 'ut-c', 'type', 'veth', 'peer', 'name', 'ut-cp');
  ip('link', 'add', 'ut-s', 'type', 'veth', 'peer', 'name', 'ut-sp');
  // MACs first: changing a device address flushes its neighbours, permanent ones included
  ip('link', 'set', 'ut-c', 'address', '02:00:00:00:01:01');
  ip('link', 'set', 'ut-s', 'address', '02:00:00:00:02:01');
  for (const d of ['ut-c', 'ut-cp', 'ut-s', 'ut-sp', 'lo']) ip('link', 'set', d, 'up');
  ip('addr', 'add', '10.1.0.1/24', 'dev', 'ut-c');
  ip('addr', 'add', '10.2.0.1/24', 'dev', 'ut-s');
  ip('addr', 'add', 'fd01::1/64', 'dev', 'ut-c', 'nodad');
  ip('addr', 'add', 'fd02::1/64', 'dev', 'ut-s', 'nodad');
  ip('neigh', 'replace', '10.1.0.2', 'lladdr', CLIENT_MAC, 'dev', 'ut-c', 'nud', 'permanent');
  ip('neigh', 'replace', '10.2.0.2', 'lladdr', RS_MAC, 'dev', 'ut-s', 'nud', 'permanent');
  ip('neigh', 'replace', 'fd01::2', 'lladdr', CLIENT_MAC, 'dev', 'ut-c', 'nud', 'permanent');
  ip('neigh', 'replace', 'fd02::2', 'lladdr', RS_MAC, 'dev', 'ut-s', 'nud', 'permanent');
  macC = '02:00:00:00:01:01';
  macS = '02:00:00:00:02:01';
  inNetns(NS, () => {
    ifC = native.ifIndex('ut-c');
    ifS = native.ifIndex('ut-s');
  });
  dp = openDatapath({ pinDir: PIN, maxEntries: 4096 });
  flows = new FlowTable(dp.ctMap);
  inNetns(NS, () => setRedirectDevices(dp.devMap, ['ut-c', 'ut-s']));
  for (const c of [v4, v6, udp4, udp6]) for (const e of ipvsConnEntries(c)) flows.put(e.key, e.value);
  // the same programs from the portable objects only (what Debian's 6.1 kernel loads)
  fs.mkdirSync(PORTABLE_DIR, { recursive: true });
  for (const o of ['ipvs_xdp.bpf.o', 'ipvs_tc.bpf.o']) fs.symlinkSync(path.join(bpfObjectDir, o), path.join(PORTABLE_DIR, o));
  dpPortable = openDatapath({ pinDir: `${PIN}-portable`, maxEntries: 4096, objectDir: PORTABLE_DIR });
  flowsPortable = new FlowTable(dpPortable.ctMap);
  for (const c of [v4, v6, udp4, udp6]) for (const e of ipvsConnEntries(c)) flowsPortable.put(e.key, e.value);
  // the portable tc object as a kernel whose bpf_l4_csum_replace lacks BPF_F_IPV6 runs it (6.1 before
  // the backport of 6.16's fix): build/bpf-oldcsum takes the helper's IPv4 behaviour for IPv6 as well
  fs.mkdirSync(OLD_DIR, { recursive: true });
  fs.symlinkSync(path.join(bpfObjectDir, 'ipvs_xdp.bpf.o'), path.join(OLD_DIR, 'ipvs_xdp.bpf.o'));
  fs.symlinkSync(path.join(bpfObjectDir, '..', 'bpf-oldcsum', 'ipvs_tc.bpf.o'), path.join(OLD_DIR, 'ipvs_tc.bpf.o'));
  dpOld = openDatapath({ pinDir: `${PIN}-oldcsum`, maxEntries: 4096, objectDir: OLD_DIR });
  flowsOld = new FlowTable(dpOld.ctMap);
  for (const c of [v4, v6, udp4, udp6]) for (const e of ipvsConnEntries(c)) flowsOld.put(e.key, e.value);
});

afterAll(() => {
  dp?.close();
  dpPortable?.close();
  dpOld?.close();
  for (const pin of [PIN, `${PIN}-portable`, `${PIN}-oldcsum`]) {
    removePins(pin);
    try { fs.rmdirSync(pin); } catch { /* already gone */ }
  }
  fs.rmSync(PORTABLE_DIR, { recursive: true, force: true });
  fs.rmSync(OLD_DIR, { recursive: true, force: true });
  execFileSync('ip', ['netns', 'del', NS]);
});

describe('ABI codec', () => {
  test('layout comes from the C header and round-trips keys and values', () => {
    expect(layout.key.size).toBe(40);
    expect(layout.value.size).toBe(64);
    const k = { kind: 'REPLY' as const, proto: 'udp' as const, src: { addr: 'fd02::2', port: 53 }, dst: { addr: 'fd02::1', port: 1024 } };
    expect(decodeKey(encodeKey(k))).toEqual(k);
    const b = encodeKey({ kind: 'FWD', proto: 'tcp', src: { addr: '1.2.3.4', port: 0x1234 }, dst: { addr: '5.6.7.8', port: 80 } });
    expect(b[layout.key.fields.family.offset]).toBe(2);
    expect(b.readUInt16BE(layout.key.fields.sport.offset)).toBe(0x1234);
    expect([...b.subarray(layout.key.fields.saddr.offset, layout.key.fields.saddr.offset + 16)]).toEqual([1, 2, 3, 4, ...Array(12).fill(0)]);
    const v = decodeValue(encodeValue({ src: { addr: '10.0.0.1', port: 1 }, dst: { addr: '10.0.0.2', port: 2 }, packets: 5n }), 4);
    expect(v).toMatchObject({ src: { addr: '10.0.0.1', port: 1 }, dst: { addr: '10.0.0.2', port: 2 }, packets: 5n, bytes: 0n });
  });

  test('pinned map is a plain hash with the configured capacity; entries list back', () => {
    const mi = native.mapInfo(dp.ctMap);
    expect(mi).toMatchObject({ name: layout.pin.ctMap, type: 1, keySize: 40, valueSize: 64, maxEntries: 4096 });
    expect(flows.list().length).toBe(12);
  });
});

describe('XDP fast path', () => {
  test('FWD hit (TCP/IPv4): full NAT, TTL, MACs from FIB, redirect; counters', () => {
    const before = flows.get({ kind: 'FWD', proto: 'tcp', src: v4.client, dst: v4.vip });
    const r = runXdp(frame({ proto: TCP, src: '10.1.0.2', dst: '10.9.0.1', sport: 40000, dport: 80 }), ifC);
    expect(r.ret).toBe(XDP_REDIRECT);
    const p = parseEther(r.out);
    expect(p).toMatchObject({ dst: RS_MAC, src: macS });
    expect(p.ip).toMatchObject({ src: '10.2.0.1', dst: '10.2.0.2', sport: 50000, dport: 8080, ttl: 63, checksumsOk: true });
    const after = flows.get({ kind: 'FWD', proto: 'tcp', src: v4.client, dst: v4.vip });
    expect(after!.packets - before!.packets).toBe(1n);
    expect(after!.bytes - before!.bytes).toBe(BigInt(r.out.length - 14));
    expect(after!.lastSeen).not.toBe(0);
  });

  test('REPLY hit (TCP/IPv4): back to VIP -> client', () => {
    const r = runXdp(frame({ proto: TCP, src: '10.2.0.2', dst: '10.2.0.1', sport: 8080, dport: 50000 }), ifS);
    expect(r.ret).toBe(XDP_REDIRECT);
    const p = parseEther(r.out);
    expect(p).toMatchObject({ dst: CLIENT_MAC, src: macC });
    expect(p.ip).toMatchObject({ src: '10.9.0.1', dst: '10.1.0.2', sport: 80, dport: 40000, checksumsOk: true });
  });

  test('a next hop behind a device outside the device map: the stack gets the packet untouched (counted); back in the map, redirected', () => {
    const pkt = frame({ proto: TCP, src: '10.1.0.2', dst: '10.9.0.1', sport: 40000, dport: 80 });
    const fwdKey = { kind: 'FWD' as const, proto: 'tcp' as const, src: v4.client, dst: v4.vip };
    try {
      expect(inNetns(NS, () => setRedirectDevices(dp.devMap, ['ut-c']))).toEqual([ifC]);
      expect(redirectDevices(dp.devMap)).toEqual([ifC]);
      const s0 = readStats(dp.statsMap);
      const e0 = flows.get(fwdKey)!.packets;
      const r = runXdp(pkt, ifC);
      expect(r.ret).toBe(XDP_PASS);
      expect(r.out.equals(pkt)).toBe(true);
      const s1 = readStats(dp.statsMap);
      expect(s1.XDP_PASS_EGRESS - s0.XDP_PASS_EGRESS).toBe(1n);
      expect(s1.XDP_FWD_HIT - s0.XDP_FWD_HIT).toBe(0n);
      expect(s1.XDP_REDIRECT - s0.XDP_REDIRECT).toBe(0n);
      expect(flows.get(fwdKey)!.packets).toBe(e0); // the stack's path (tc) accounts for it
      // the reply leaves through ut-c, the ingress device: XDP_TX, no device map needed
      const back = frame({ proto: TCP, src: '10.2.0.2', dst: '10.2.0.1', sport: 8080, dport: 50000 });
      expect(runXdp(back, ifC).ret).toBe(XDP_TX);
    } finally {
      inNetns(NS, () => setRedirectDevices(dp.devMap, ['ut-c', 'ut-s']));
    }
    const s2 = readStats(dp.statsMap);
    expect(runXdp(pkt, ifC).ret).toBe(XDP_REDIRECT);
    expect(readStats(dp.statsMap).XDP_REDIRECT - s2.XDP_REDIRECT).toBe(1n);
  });

  test('IPv6 TCP both directions', () => {
    let r = runXdp(frame({ proto: TCP, src: 'fd01::2', dst: 'fd09::1', sport: 40001, dport: 443 }), ifC);
    expect(r.ret).toBe(XDP_REDIRECT);
    expect(parseEther(r.out).ip).toMatchObject({ src: 'fd02::1', dst: 'fd02::2', sport: 50001, dport: 8443, ttl: 63, checksumsOk: true });
    r = runXdp(frame({ proto: TCP, src: 'fd02::2', dst: 'fd02::1', sport: 8443, dport: 50001 }), ifS);
    expect(r.ret).toBe(XDP_REDIRECT);
    expect(parseEther(r.out).ip).toMatchObject({ src: 'fd09::1', dst: 'fd01::2', sport: 443, dport: 40001, checksumsOk: true });
  });

  test('UDP IPv4 with checksum, with zero checksum, and UDP IPv6', () => {
    let r = runXdp(frame({ proto: UDP, src: '10.1.0.2', dst: '10.9.0.1', sport: 5353, dport: 80 }), ifC);
    expect(r.ret).toBe(XDP_REDIRECT);
    let p = parseEther(r.out).ip;
    expect(p).toMatchObject({ src: '10.2.0.1', dst: '10.2.0.2', sport: 5353, dport: 8080, checksumsOk: true });
    expect(p.l4Csum).not.toBe(0);
    r = runXdp(frame({ proto: UDP, src: '10.1.0.2', dst: '10.9.0.1', sport: 5353, dport: 80, udpZeroCsum: true }), ifC);
    p = parseEther(r.out).ip;
    expect(p).toMatchObject({ dst: '10.2.0.2', checksumsOk: true, l4Csum: 0 });
    r = runXdp(frame({ proto: UDP, src: 'fd02::2', dst: 'fd02::1', sport: 8443, dport: 5354 }), ifS);
    expect(r.ret).toBe(XDP_REDIRECT);
    expect(parseEther(r.out).ip).toMatchObject({ src: 'fd09::1', dst: 'fd01::2', sport: 443, dport: 5354, checksumsOk: true });
  });

  test('SYN, FIN, misses, fragments and ICMP go to the stack untouched', () => {
    const before = readStats(dp.statsMap);
    const cases: L4Spec[] = [
      { proto: TCP, src: '10.1.0.2', dst: '10.9.0.1', sport: 40000, dport: 80, tcpFlags: SYN },
      { proto: TCP, src: '10.1.0.2', dst: '10.9.0.1', sport: 40000, dport: 80, tcpFlags: FIN | ACK },
      { proto: TCP, src: 'fd01::2', dst: 'fd09::1', sport: 40001, dport: 443, tcpFlags: SYN },
      { proto: TCP, src: '10.1.0.2', dst: '10.9.0.1', sport: 40099, dport: 80 },
      { proto: UDP, src: 'fd01::2', dst: 'fd09::1', sport: 9, dport: 443 },
      { proto: UDP, src: '10.1.0.2', dst: '10.9.0.1', sport: 5353, dport: 80, fragOffset: 0 },
    ];
    for (const c of cases) {
      const f = frame(c);
      const r = runXdp(f, ifC);
      expect(r.ret).toBe(XDP_PASS);
      expect(r.out.equals(f)).toBe(true);
    }
    const e = runXdp(ether('02:00:00:00:00:aa', '02:00:00:00:00:bb',
      icmpError('10.2.0.2', '10.2.0.1', ipPacket({ proto: TCP, src: '10.2.0.1', dst: '10.2.0.2', sport: 50000, dport: 8080 }))), ifS);
    expect(e.ret).toBe(XDP_PASS);
    const after = readStats(dp.statsMap);
    expect(after.XDP_PASS_TCP_CTRL - before.XDP_PASS_TCP_CTRL).toBe(3n);
    expect(after.XDP_MISS - before.XDP_MISS).toBe(2n);
    expect(after.XDP_PASS_FRAG - before.XDP_PASS_FRAG).toBe(1n);
    expect(after.XDP_PASS_OTHER - before.XDP_PASS_OTHER).toBe(1n);
  });

  test('no route / expiring TTL pass untouched', () => {
    const f = frame({ proto: TCP, src: '10.1.0.2', dst: '10.9.0.1', sport: 40000, dport: 80, ttl: 1 });
    const r = runXdp(f, ifC);
    expect(r.ret).toBe(XDP_PASS);
    expect(r.out.equals(f)).toBe(true);
  });
  // The next hop is cached per flow for the jiffy it was resolved in (bpf/include/ipvs_bpf_nexthop.h).
  test('cached next hop: a neighbour or route change shows after one tick; MTU is checked per packet', async () => {
    const fwd = (): Buffer => frame({ proto: TCP, src: '10.1.0.2', dst: '10.9.0.1', sport: 40000, dport: 80 });
    const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 25)); // > 1 jiffy at HZ >= 100
    const NEW_MAC = '02:00:00:00:02:99';
    try {
      expect(parseEther(runXdp(fwd(), ifC).out).dst).toBe(RS_MAC);
      ip('neigh', 'replace', '10.2.0.2', 'lladdr', NEW_MAC, 'dev', 'ut-s', 'nud', 'permanent');
      await tick();
      expect(parseEther(runXdp(fwd(), ifC).out).dst).toBe(NEW_MAC);
      // a packet longer than any the lookup accepted is looked up again: too big for the MTU -> stack
      ip('link', 'set', 'ut-s', 'mtu', '1000');
      const big = frame({ proto: TCP, src: '10.1.0.2', dst: '10.9.0.1', sport: 40000, dport: 80, payload: Buffer.alloc(1100, 1) });
      const before = readStats(dp.statsMap);
      const r = runXdp(big, ifC);
      expect(r.ret).toBe(XDP_PASS);
      expect(r.out.equals(big)).toBe(true);
      expect(readStats(dp.statsMap).XDP_PASS_FIB - before.XDP_PASS_FIB).toBe(1n);
      ip('link', 'set', 'ut-s', 'mtu', '1500');
      // no route any more: the cached answer is gone after a tick
      expect(runXdp(fwd(), ifC).ret).toBe(XDP_REDIRECT);
      ip('route', 'replace', 'unreachable', '10.2.0.2/32');
      await tick();
      const f = fwd();
      const gone = runXdp(f, ifC);
      expect(gone.ret).toBe(XDP_PASS);
      expect(gone.out.equals(f)).toBe(true);
    } finally {
      try { ip('route', 'del', 'unreachable', '10.2.0.2/32'); } catch { /* not added */ }
      ip('link', 'set', 'ut-s', 'mtu', '1500');
      ip('neigh', 'replace', '10.2.0.2', 'lladdr', RS_MAC, 'dev', 'ut-s', 'nud', 'permanent');
    }
    await tick();
    expect(parseEther(runXdp(fwd(), ifC).out).dst).toBe(RS_MAC);
  });
});

// Both tc builds: the one the host loads (kernel >= 6.3 reads the skb's checksum state) and
// the portable one Debian's 6.1 loads (tells the state from the checksum helper's result).
describe.each([
  ['kctx', (): { dp: Datapath; flows: FlowTable } => ({ dp, flows })],
  ['portable', (): { dp: Datapath; flows: FlowTable } => ({ dp: dpPortable, flows: flowsPortable })],
  ['portable, kernel without BPF_F_IPV6', (): { dp: Datapath; flows: FlowTable } => ({ dp: dpOld, flows: flowsOld })],
])('tc programs (%s build)', (build, b) => {
  test('the build in use', () => {
    const [major, minor] = os.release().split('.').map(Number);
    const kctx = major > 6 || (major === 6 && minor >= 3);
    const objects = b().dp.objects;
    expect(objects).toContain(build === 'kctx' && kctx ? 'ipvs_tc_kctx.bpf.o' : 'ipvs_tc.bpf.o');
  });

  test('egress SNAT (IPv4 TCP, IPv6 UDP): only the source changes', () => {
    let r = runTc(b().dp.progs.tcEgress, frame({ proto: TCP, src: '10.1.0.2', dst: '10.2.0.2', sport: 40000, dport: 8080 }));
    expect(r.ret).toBe(TC_ACT_UNSPEC);
    expect(parseEther(r.out).ip).toMatchObject({ src: '10.2.0.1', dst: '10.2.0.2', sport: 50000, dport: 8080, ttl: 64, checksumsOk: true });
    r = runTc(b().dp.progs.tcEgress, frame({ proto: UDP, src: 'fd01::2', dst: 'fd02::2', sport: 5354, dport: 8443 }));
    expect(parseEther(r.out).ip).toMatchObject({ src: 'fd02::1', dst: 'fd02::2', sport: 5354, dport: 8443, checksumsOk: true });
  });

  test('ingress reply: only the destination changes back to the client (IPVS un-DNATs the source)', () => {
    let r = runTc(b().dp.progs.tcIngress, frame({ proto: TCP, src: '10.2.0.2', dst: '10.2.0.1', sport: 8080, dport: 50000 }));
    expect(r.ret).toBe(TC_ACT_UNSPEC);
    expect(parseEther(r.out).ip).toMatchObject({ src: '10.2.0.2', dst: '10.1.0.2', sport: 8080, dport: 40000, checksumsOk: true });
    r = runTc(b().dp.progs.tcIngress, frame({ proto: TCP, src: 'fd02::2', dst: 'fd02::1', sport: 8443, dport: 50001 }));
    expect(parseEther(r.out).ip).toMatchObject({ src: 'fd02::2', dst: 'fd01::2', sport: 8443, dport: 40001, checksumsOk: true });
    r = runTc(b().dp.progs.tcIngress, frame({ proto: UDP, src: '10.2.0.2', dst: '10.2.0.1', sport: 8080, dport: 5353, udpZeroCsum: true }));
    expect(parseEther(r.out).ip).toMatchObject({ dst: '10.1.0.2', dport: 5353, l4Csum: 0, checksumsOk: true });
  });

  test('misses and fragments are left alone', () => {
    for (const [prog, s] of [
      [b().dp.progs.tcEgress, { proto: TCP, src: '10.1.0.9', dst: '10.2.0.2', sport: 1, dport: 8080 }],
      [b().dp.progs.tcIngress, { proto: UDP, src: '10.2.0.2', dst: '10.2.0.1', sport: 8080, dport: 5353, fragOffset: 100 }],
    ] as [number, L4Spec][]) {
      const f = frame(s);
      const r = runTc(prog, f);
      expect(r.ret).toBe(TC_ACT_UNSPEC);
      expect(r.out.equals(f)).toBe(true);
    }
  });

  test('ICMP errors about a flow are translated inside and out (v4 and v6, both hooks)', () => {
    // ingress: router/RS reports an error about lip:lport -> rs:rsport; it must reach the client side
    let f = ether('02:00:00:00:00:aa', '02:00:00:00:00:bb',
      icmpError('10.2.0.2', '10.2.0.1', ipPacket({ proto: TCP, src: '10.2.0.1', dst: '10.2.0.2', sport: 50000, dport: 8080 })));
    let p = parseEther(runTc(b().dp.progs.tcIngress, f).out).ip;
    expect(p).toMatchObject({ src: '10.2.0.2', dst: '10.1.0.2', checksumsOk: true });
    expect(p.inner).toMatchObject({ src: '10.1.0.2', sport: 40000, dst: '10.2.0.2', dport: 8080 });
    f = ether('02:00:00:00:00:aa', '02:00:00:00:00:bb',
      icmpError('fd02::2', 'fd02::1', ipPacket({ proto: UDP, src: 'fd02::1', dst: 'fd02::2', sport: 5354, dport: 8443 })));
    p = parseEther(runTc(b().dp.progs.tcIngress, f).out).ip;
    expect(p).toMatchObject({ dst: 'fd01::2', checksumsOk: true });
    expect(p.inner).toMatchObject({ src: 'fd01::2', sport: 5354 });
    // egress: the client's error about a reply, after IPVS re-DNAT: outer cip -> rs, quoting rs -> cip
    f = ether('02:00:00:00:00:aa', '02:00:00:00:00:bb',
      icmpError('10.1.0.2', '10.2.0.2', ipPacket({ proto: TCP, src: '10.2.0.2', dst: '10.1.0.2', sport: 8080, dport: 40000 })));
    p = parseEther(runTc(b().dp.progs.tcEgress, f).out).ip;
    expect(p).toMatchObject({ src: '10.2.0.1', dst: '10.2.0.2', checksumsOk: true });
    expect(p.inner).toMatchObject({ src: '10.2.0.2', dst: '10.2.0.1', dport: 50000 });
    f = ether('02:00:00:00:00:aa', '02:00:00:00:00:bb',
      icmpError('fd01::2', 'fd02::2', ipPacket({ proto: TCP, src: 'fd02::2', dst: 'fd01::2', sport: 8443, dport: 40001 })));
    p = parseEther(runTc(b().dp.progs.tcEgress, f).out).ip;
    expect(p).toMatchObject({ src: 'fd02::1', checksumsOk: true });
    expect(p.inner).toMatchObject({ dst: 'fd02::1', dport: 50001 });
  });

  // A NIC's receive checksum (or a tunnel's, computed in software) makes CHECKSUM_COMPLETE skbs: skb->csum
  // holds the sum of the packet, and every rewrite must move it along (the checksum helpers do, for the
  // pseudo header; direct writes do not). BPF_F_TEST_SKB_CHECKSUM_COMPLETE (Linux 6.11) makes the test
  // run's skb CHECKSUM_COMPLETE and fails the run with EBADMSG if skb->csum no longer matches the packet.
  test('CHECKSUM_COMPLETE skbs: skb->csum still matches the rewritten packet and its checksums verify', () => {
    const BPF_F_TEST_SKB_CHECKSUM_COMPLETE = 1 << 2;
    // Address changes that move the pseudo-header sum (10.7.0.9 <-> 10.8.0.1; the connections above swap
    // x.1.0.2 and x.2.0.1, which sum alike), and one that does not (10.4.0.2 -> 10.5.0.1: ports only).
    const tcp4: IpvsConnection = {
      proto: 'tcp', client: { addr: '10.7.0.9', port: 40020 }, vip: { addr: '10.8.0.9', port: 80 },
      real: { addr: '10.8.0.2', port: 8080 }, local: { addr: '10.8.0.1', port: 50020 },
    };
    const udp4: IpvsConnection = { ...tcp4, proto: 'udp', client: { addr: '10.7.0.9', port: 40021 }, local: { addr: '10.8.0.1', port: 50021 } };
    const zero4: IpvsConnection = {
      proto: 'udp', client: { addr: '10.4.0.2', port: 40022 }, vip: { addr: '10.5.0.9', port: 80 },
      real: { addr: '10.5.0.2', port: 8080 }, local: { addr: '10.5.0.1', port: 50022 },
    };
    const tcp6: IpvsConnection = {
      proto: 'tcp', client: { addr: 'fd07::9', port: 40023 }, vip: { addr: 'fd08::9', port: 443 },
      real: { addr: 'fd08::2', port: 8443 }, local: { addr: 'fd08::1', port: 50023 },
    };
    const udp6: IpvsConnection = { ...tcp6, proto: 'udp', client: { addr: 'fd07::9', port: 40024 }, local: { addr: 'fd08::1', port: 50024 } };
    // fd04::2 -> fd05::1 leaves the pseudo-header sum as it is (ports only), as zero4 does
    const zero6: IpvsConnection = {
      proto: 'udp', client: { addr: 'fd04::2', port: 40025 }, vip: { addr: 'fd05::9', port: 80 },
      real: { addr: 'fd05::2', port: 8080 }, local: { addr: 'fd05::1', port: 50025 },
    };
    const entries = [tcp4, udp4, zero4, tcp6, udp6, zero6].flatMap((c) => ipvsConnEntries(c));
    const payload = Buffer.from(Array.from({ length: 333 }, (_, i) => (i * 37 + 11) & 0xff));
    const { tcEgress: eg, tcIngress: ing } = b().dp.progs;
    const out = (c: IpvsConnection, l4: number, opts: Partial<L4Spec> = {}): Buffer =>
      frame({ proto: l4, src: c.client.addr, dst: c.real.addr, sport: c.client.port, dport: c.real.port, payload, ...opts });
    const back = (c: IpvsConnection, l4: number, opts: Partial<L4Spec> = {}): Buffer =>
      frame({ proto: l4, src: c.real.addr, dst: c.local.addr, sport: c.real.port, dport: c.local.port, payload, ...opts });
    const icmp = (outer: [string, string], inner: L4Spec): Buffer => ether('02:00:00:00:00:aa', '02:00:00:00:00:bb',
      icmpError(outer[0], outer[1], ipPacket(inner)));
    const snat = (c: IpvsConnection): Record<string, unknown> => ({ src: c.local.addr, sport: c.local.port, dst: c.real.addr });
    const unsnat = (c: IpvsConnection): Record<string, unknown> => ({ src: c.real.addr, dst: c.client.addr, dport: c.client.port });
    const cases: [string, number, Buffer, Record<string, unknown>][] = [
      ['egress TCP v4', eg, out(tcp4, TCP), snat(tcp4)],
      ['ingress TCP v4', ing, back(tcp4, TCP), unsnat(tcp4)],
      ['egress UDP v4', eg, out(udp4, UDP), snat(udp4)],
      ['ingress UDP v4', ing, back(udp4, UDP), unsnat(udp4)],
      ['ingress UDP v4 without checksum', ing, back(udp4, UDP, { udpZeroCsum: true }), { ...unsnat(udp4), l4Csum: 0 }],
      ['egress UDP v4, pseudo-header sum unchanged', eg, out(zero4, UDP), snat(zero4)],
      ['egress TCP v6', eg, out(tcp6, TCP), snat(tcp6)],
      ['ingress TCP v6', ing, back(tcp6, TCP), unsnat(tcp6)],
      ['egress UDP v6', eg, out(udp6, UDP), snat(udp6)],
      ['ingress UDP v6', ing, back(udp6, UDP), unsnat(udp6)],
      ['egress UDP v6, pseudo-header sum unchanged', eg, out(zero6, UDP), snat(zero6)],
      ['ingress ICMP error v4', ing, icmp([tcp4.real.addr, tcp4.local.addr],
        { proto: TCP, src: tcp4.local.addr, dst: tcp4.real.addr, sport: tcp4.local.port, dport: tcp4.real.port }), { dst: tcp4.client.addr }],
      ['egress ICMPv6 error', eg, icmp([tcp6.client.addr, tcp6.real.addr],
        { proto: TCP, src: tcp6.real.addr, dst: tcp6.client.addr, sport: tcp6.real.port, dport: tcp6.client.port }), { src: tcp6.local.addr }],
      ['ingress ICMPv6 error', ing, icmp([udp6.real.addr, udp6.local.addr],
        { proto: UDP, src: udp6.local.addr, dst: udp6.real.addr, sport: udp6.local.port, dport: udp6.real.port }), { dst: udp6.client.addr }],
    ];
    for (const e of entries) b().flows.put(e.key, e.value);
    try {
      const before = readStats(b().dp.statsMap);
      for (const [name, prog, f, want] of cases) {
        let r: ReturnType<typeof native.progTestRun>;
        try {
          r = native.progTestRun(prog, { data: f, flags: BPF_F_TEST_SKB_CHECKSUM_COMPLETE });
        } catch (e) {
          throw new Error(`${name}: ${(e as Error).message} (EBADMSG: skb->csum no longer matches the packet)`);
        }
        expect([name, r.retval]).toEqual([name, TC_ACT_UNSPEC]);
        expect([name, parseEther(r.dataOut).ip]).toEqual([name, expect.objectContaining({ ...want, checksumsOk: true })]);
      }
      const after = readStats(b().dp.statsMap);
      expect(after.TC_SNAT_HIT + after.TC_REPLY_HIT + after.TC_ICMP_HIT - before.TC_SNAT_HIT - before.TC_REPLY_HIT - before.TC_ICMP_HIT)
        .toBe(BigInt(cases.length));
      expect(after.ERROR - before.ERROR).toBe(0n);
    } finally {
      for (const e of entries) b().flows.delete(e.key);
    }
  });

  // Local senders and veth hand over CHECKSUM_PARTIAL skbs: the L4 field holds only the
  // pseudo-header sum. Real TCP and UDP through the tc programs, senders with tx checksum
  // offload on (so the LB sees PARTIAL skbs), the LB's devices with it off.
  test('real TCP and UDP with CHECKSUM_PARTIAL skbs (tx offload on) through tc SNAT and reply', () => {
    const CL = `${NS}-cl`;
    const RS = `${NS}-rs`;
    const nsx = (ns: string, cmd: string[], input?: Buffer): Buffer =>
      execFileSync('ip', ['netns', 'exec', ns, ...cmd], { input, timeout: 10000, maxBuffer: 1 << 24 });
    // 10.4.0.5 -> 10.5.0.1 changes the pseudo-header sum (the program tells PARTIAL from complete
    // by the helper's result); 10.4.0.2 -> 10.5.0.1 does not (the program falls back to the helper)
    const conn: IpvsConnection = {
      proto: 'tcp', client: { addr: '10.4.0.5', port: 40010 }, vip: { addr: '10.5.0.2', port: 8080 },
      real: { addr: '10.5.0.2', port: 8080 }, local: { addr: '10.5.0.1', port: 50010 },
    };
    const uconn: IpvsConnection = { ...conn, proto: 'udp', client: { addr: '10.4.0.5', port: 40011 }, local: { addr: '10.5.0.1', port: 50011 } };
    const zconn: IpvsConnection = { ...conn, client: { addr: '10.4.0.2', port: 40012 }, local: { addr: '10.5.0.1', port: 50012 } };
    const entries = [...ipvsConnEntries(conn), ...ipvsConnEntries(uconn), ...ipvsConnEntries(zconn)];
    let server: ReturnType<typeof spawn> | undefined;
    let userver: ReturnType<typeof spawn> | undefined;
    execFileSync('ip', ['netns', 'add', CL]);
    execFileSync('ip', ['netns', 'add', RS]);
    try {
      ip('link', 'add', 'ut-c2', 'type', 'veth', 'peer', 'name', 'c0', 'netns', CL);
      ip('link', 'add', 'ut-s2', 'type', 'veth', 'peer', 'name', 's0', 'netns', RS);
      for (const [ns, dev, addr, gw] of [[CL, 'c0', '10.4.0.5/24', '10.4.0.1'], [RS, 's0', '10.5.0.2/24', '10.5.0.1']]) {
        nsx(ns, ['ip', 'addr', 'add', addr, 'dev', dev]);
        nsx(ns, ['ip', 'link', 'set', dev, 'up']);
        nsx(ns, ['ip', 'link', 'set', 'lo', 'up']);
        nsx(ns, ['ip', 'route', 'add', 'default', 'via', gw]);
        expect(nsx(ns, ['ethtool', '-k', dev]).toString()).toMatch(/tx-checksumming: on/);
      }
      nsx(CL, ['ip', 'addr', 'add', '10.4.0.2/24', 'dev', 'c0']);
      ip('addr', 'add', '10.4.0.1/24', 'dev', 'ut-c2');
      ip('addr', 'add', '10.5.0.1/24', 'dev', 'ut-s2');
      // the LB's own ends complete checksums in software (as a NIC would in hardware): a wrong
      // pseudo-header sum in a PARTIAL skb would reach the receivers as a bad checksum
      for (const d of ['ut-c2', 'ut-s2']) {
        nsx(NS, ['ethtool', '-K', d, 'tx', 'off']);
        ip('link', 'set', d, 'up');
      }
      for (const e of entries) b().flows.put(e.key, e.value);
      inNetns(NS, () => {
        attachTc('ut-s2', 'egress', b().dp.progs.tcEgress);
        attachTc('ut-s2', 'ingress', b().dp.progs.tcIngress);
      });
      const before = readStats(b().dp.statsMap);
      server = spawn('ip', ['netns', 'exec', RS, 'socat', 'TCP-LISTEN:8080,reuseaddr,fork',
        'SYSTEM:echo $SOCAT_PEERADDR $SOCAT_PEERPORT; cat'], { stdio: 'ignore' });
      userver = spawn('ip', ['netns', 'exec', RS, 'socat', 'UDP-RECVFROM:8080,reuseaddr',
        'SYSTEM:echo $SOCAT_PEERADDR $SOCAT_PEERPORT; cat'], { stdio: 'ignore' });
      nsx(RS, ['sh', '-c', 'for i in $(seq 100); do ss -ltn | grep -q :8080 && ss -lun | grep -q :8080 && exit 0; sleep 0.05; done; exit 1']);
      const data = Buffer.from(Array.from({ length: 300000 }, (_, i) => (i * 7919 + (i >> 8)) & 0xff));
      for (const [src, port] of [['10.4.0.5', 40010], ['10.4.0.2', 40012]] as const) {
        const out = nsx(CL, ['socat', '-t', '5', '-', `TCP:10.5.0.2:8080,bind=${src},sourceport=${port}`], data);
        // the server saw the SNAT address; every byte came back both ways through the rewrites
        expect(out.subarray(0, 15).toString()).toBe(`10.5.0.1 ${port + 10000}\n`);
        expect(out.subarray(15).equals(data)).toBe(true);
      }
      const udata = Buffer.alloc(1200, 0x5a);
      const uout = nsx(CL, ['socat', '-t', '2', '-', 'UDP:10.5.0.2:8080,bind=10.4.0.5,sourceport=40011'], udata);
      expect(uout.subarray(0, 15).toString()).toBe('10.5.0.1 50011\n');
      expect(uout.subarray(15).equals(udata)).toBe(true);
      const after = readStats(b().dp.statsMap);
      expect(after.TC_SNAT_HIT - before.TC_SNAT_HIT).toBeGreaterThan(10n);
      expect(after.TC_REPLY_HIT - before.TC_REPLY_HIT).toBeGreaterThan(10n);
      for (const ns of [CL, RS]) {
        expect(nsx(ns, ['nstat', '-az', 'TcpInCsumErrors', 'UdpInCsumErrors']).toString()).not.toMatch(/CsumErrors\s+[1-9]/);
      }
    } finally {
      server?.kill();
      userver?.kill();
      for (const e of entries) b().flows.delete(e.key);
      try { ip('link', 'del', 'ut-c2'); } catch { /* not created */ }
      try { ip('link', 'del', 'ut-s2'); } catch { /* not created */ }
      execFileSync('ip', ['netns', 'del', CL]);
      execFileSync('ip', ['netns', 'del', RS]);
    }
  });
});

describe('loader', () => {
  test('a second open re-uses the pinned map and programs', () => {
    const again = openDatapath({ pinDir: PIN, maxEntries: 4096 });
    try {
      expect(again.reused).toBe(true);
      expect(native.mapInfo(again.ctMap).id).toBe(native.mapInfo(dp.ctMap).id);
      expect(native.progInfo(again.progs.xdp).id).toBe(native.progInfo(dp.progs.xdp).id);
      expect(() => openDatapath({ pinDir: PIN, maxEntries: 8192 })).toThrow(/capacity 4096/);
    } finally {
      again.close();
    }
  });

  test('verifier failures and bad files come back as errors with errno', () => {
    let err: unknown;
    try { native.loadObject('/nonexistent.bpf.o'); } catch (e) { err = e; }
    expect(err).toMatchObject({ errno: 2, code: 'ENOENT' });
  });
});
