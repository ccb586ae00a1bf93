/**
 * BPF_PROG_TEST_RUN on the host kernel: the XDP fast path and the tc programs, both
 * families, TCP/UDP/ICMP errors, hits, misses and passes; checksums checked from scratch.
 * FIB lookups run inside a throw-away netns with permanent neighbours.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import { encodeKey, decodeKey, encodeValue, decodeValue, layout } from '../../src/bpf/abi';
import { Datapath, openDatapath, removePins } from '../../src/bpf/loader';
import { FlowTable, ipvsConnEntries, IpvsConnection, readStats } from '../../src/bpf/flows';
import { native } from '../../src/bpf/native';
import { inNetns } from '../../src/bpf/netns';
import { ACK, ether, FIN, icmpError, ipPacket, parseEther, SYN, TCP, UDP, L4Spec } from './bpf-packet';

const NS = `ipvsbpf-ut-${process.pid}`;
const PIN = `/sys/fs/bpf/ipvs-bpf-ut-${process.pid}`;
const CLIENT_MAC = '02:00:00:00:01:02';
const RS_MAC = '02:00:00:00:02:02';
const XDP_PASS = 2;
const XDP_REDIRECT = 4;
const TC_ACT_UNSPEC = 0xffffffff; // -1 ("next filter") as the u32 test-run retval

function ip(...args: string[]): void {
  execFileSync('ip', ['-n', NS, ...args], { stdio: 'pipe' });
}

let dp: Datapath;
let flows: FlowTable;
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
  for (const c of [v4, v6, udp4, udp6]) for (const e of ipvsConnEntries(c)) flows.put(e.key, e.value);
});

afterAll(() => {
  dp?.close();
  removePins(PIN);
  try { fs.rmdirSync(PIN); } catch { /* already gone */ }
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
});

describe('tc programs', () => {
  test('egress SNAT (IPv4 TCP, IPv6 UDP): only the source changes', () => {
    let r = runTc(dp.progs.tcEgress, frame({ proto: TCP, src: '10.1.0.2', dst: '10.2.0.2', sport: 40000, dport: 8080 }));
    expect(r.ret).toBe(TC_ACT_UNSPEC);
    expect(parseEther(r.out).ip).toMatchObject({ src: '10.2.0.1', dst: '10.2.0.2', sport: 50000, dport: 8080, ttl: 64, checksumsOk: true });
    r = runTc(dp.progs.tcEgress, frame({ proto: UDP, src: 'fd01::2', dst: 'fd02::2', sport: 5354, dport: 8443 }));
    expect(parseEther(r.out).ip).toMatchObject({ src: 'fd02::1', dst: 'fd02::2', sport: 5354, dport: 8443, checksumsOk: true });
  });

  test('ingress reply: only the destination changes back to the client (IPVS un-DNATs the source)', () => {
    let r = runTc(dp.progs.tcIngress, frame({ proto: TCP, src: '10.2.0.2', dst: '10.2.0.1', sport: 8080, dport: 50000 }));
    expect(r.ret).toBe(TC_ACT_UNSPEC);
    expect(parseEther(r.out).ip).toMatchObject({ src: '10.2.0.2', dst: '10.1.0.2', sport: 8080, dport: 40000, checksumsOk: true });
    r = runTc(dp.progs.tcIngress, frame({ proto: TCP, src: 'fd02::2', dst: 'fd02::1', sport: 8443, dport: 50001 }));
    expect(parseEther(r.out).ip).toMatchObject({ src: 'fd02::2', dst: 'fd01::2', sport: 8443, dport: 40001, checksumsOk: true });
    r = runTc(dp.progs.tcIngress, frame({ proto: UDP, src: '10.2.0.2', dst: '10.2.0.1', sport: 8080, dport: 5353, udpZeroCsum: true }));
    expect(parseEther(r.out).ip).toMatchObject({ dst: '10.1.0.2', dport: 5353, l4Csum: 0, checksumsOk: true });
  });

  test('misses and fragments are left alone', () => {
    for (const [prog, s] of [
      [dp.progs.tcEgress, { proto: TCP, src: '10.1.0.9', dst: '10.2.0.2', sport: 1, dport: 8080 }],
      [dp.progs.tcIngress, { proto: UDP, src: '10.2.0.2', dst: '10.2.0.1', sport: 8080, dport: 5353, fragOffset: 100 }],
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
    let p = parseEther(runTc(dp.progs.tcIngress, f).out).ip;
    expect(p).toMatchObject({ src: '10.2.0.2', dst: '10.1.0.2', checksumsOk: true });
    expect(p.inner).toMatchObject({ src: '10.1.0.2', sport: 40000, dst: '10.2.0.2', dport: 8080 });
    f = ether('02:00:00:00:00:aa', '02:00:00:00:00:bb',
      icmpError('fd02::2', 'fd02::1', ipPacket({ proto: UDP, src: 'fd02::1', dst: 'fd02::2', sport: 5354, dport: 8443 })));
    p = parseEther(runTc(dp.progs.tcIngress, f).out).ip;
    expect(p).toMatchObject({ dst: 'fd01::2', checksumsOk: true });
    expect(p.inner).toMatchObject({ src: 'fd01::2', sport: 5354 });
    // egress: the client's error about a reply, after IPVS re-DNAT: outer cip -> rs, quoting rs -> cip
    f = ether('02:00:00:00:00:aa', '02:00:00:00:00:bb',
      icmpError('10.1.0.2', '10.2.0.2', ipPacket({ proto: TCP, src: '10.2.0.2', dst: '10.1.0.2', sport: 8080, dport: 40000 })));
    p = parseEther(runTc(dp.progs.tcEgress, f).out).ip;
    expect(p).toMatchObject({ src: '10.2.0.1', dst: '10.2.0.2', checksumsOk: true });
    expect(p.inner).toMatchObject({ src: '10.2.0.2', dst: '10.2.0.1', dport: 50000 });
    f = ether('02:00:00:00:00:aa', '02:00:00:00:00:bb',
      icmpError('fd01::2', 'fd02::2', ipPacket({ proto: TCP, src: 'fd02::2', dst: 'fd01::2', sport: 8443, dport: 40001 })));
    p = parseEther(runTc(dp.progs.tcEgress, f).out).ip;
    expect(p).toMatchObject({ src: 'fd02::1', checksumsOk: true });
    expect(p.inner).toMatchObject({ dst: 'fd02::1', dport: 50001 });
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
