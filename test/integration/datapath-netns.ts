/**
 * Host-netns topology for the data-path tests and the veth benchmark:
 *
 *   client ns            LB ns                                  real servers
 *   c0 10.1.0.2 ─veth─ lc 10.1.0.1     ls1 10.2.0.1 ─veth─ s0 10.2.0.2   (rs1 ns)
 *                     (VIP 10.9.0.1)   ls2 10.3.0.1 ─veth─ s0 10.3.0.2   (rs2 ns)
 *
 * The data path (XDP fast path, tc SNAT on egress, tc reply on ingress) goes on lc, ls1 and
 * ls2; the outer ends carry ipvs_xdp_pass (veth needs an XDP program on the receiving peer
 * for XDP_REDIRECT) and run with tx checksum offload off (the fast path needs complete
 * checksums in the frames it rewrites). Everything is named after a per-run tag and removed
 * by destroy(), whatever state it is in.
 */
import { ChildProcess, execFileSync, spawn, SpawnOptions } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { encodeKey, encodeValue, Endpoint, L4Proto, layout } from '../../src/bpf/abi';
import { TC_HANDLE } from '../../src/bpf/attach';
import { bpfObjectDir, LoadedObject, native, repoRoot } from '../../src/bpf/native';
import { inNetns, netnsPath } from '../../src/bpf/netns';

export const ADDR = {
  client: '10.1.0.2',
  lbClientSide: '10.1.0.1',
  vip: '10.9.0.1',
  lip1: '10.2.0.1',
  rs1: '10.2.0.2',
  lip2: '10.3.0.1',
  rs2: '10.3.0.2',
} as const;

/** LB-side interfaces that carry the data path, and the real-server side of each. */
export const LB_IFACES = ['lc', 'ls1', 'ls2'] as const;

export interface Topology {
  tag: string;
  ns: { client: string; lb: string; rs1: string; rs2: string };
  pinDir: string;
  /** ns name -> its outer veth end (the peer of an LB interface) */
  outer: { ns: string; dev: string }[];
}

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
}

export function nsRun(ns: string, cmd: string, args: string[]): string {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args]);
}

function ipn(ns: string, ...args: string[]): void {
  sh('ip', ['-n', ns, ...args]);
}

export function createTopology(tagPrefix = 'ipvsbpf'): Topology {
  const tag = `${tagPrefix}-${process.pid}`;
  const t: Topology = {
    tag,
    ns: { client: `${tag}-c`, lb: `${tag}-lb`, rs1: `${tag}-s1`, rs2: `${tag}-s2` },
    pinDir: `/sys/fs/bpf/${tag}`,
    outer: [],
  };
  try {
    for (const ns of Object.values(t.ns)) sh('ip', ['netns', 'add', ns]);
    const { client, lb, rs1, rs2 } = t.ns;
    nsRun(lb, 'sysctl', ['-qw', 'net.ipv4.conf.all.forwarding=1']);
    const links: [string, string, string, string, string][] = [
      // lb dev, lb address, outer ns, outer address, gateway
      ['lc', `${ADDR.lbClientSide}/24`, client, `${ADDR.client}/24`, ADDR.lbClientSide],
      ['ls1', `${ADDR.lip1}/24`, rs1, `${ADDR.rs1}/24`, ADDR.lip1],
      ['ls2', `${ADDR.lip2}/24`, rs2, `${ADDR.rs2}/24`, ADDR.lip2],
    ];
    for (const [dev, addr, ons, oaddr, gw] of links) {
      const odev = dev === 'lc' ? 'c0' : 's0';
      ipn(lb, 'link', 'add', dev, 'type', 'veth', 'peer', 'name', odev, 'netns', ons);
      ipn(lb, 'addr', 'add', addr, 'dev', dev);
      ipn(ons, 'addr', 'add', oaddr, 'dev', odev);
      for (const [n, d] of [[lb, dev], [ons, odev]]) {
        nsRun(n, 'ethtool', ['-K', d, 'tx', 'off']);
        ipn(n, 'link', 'set', d, 'up');
      }
      ipn(ons, 'link', 'set', 'lo', 'up');
      ipn(ons, 'route', 'add', 'default', 'via', gw);
      t.outer.push({ ns: ons, dev: odev });
    }
    ipn(lb, 'link', 'set', 'lo', 'up');
    ipn(lb, 'addr', 'add', `${ADDR.vip}/32`, 'dev', 'lo');
    return t;
  } catch (e) {
    destroyTopology(t);
    throw e;
  }
}

export function destroyTopology(t: Topology): void {
  for (const ns of Object.values(t.ns)) {
    try { sh('ip', ['netns', 'del', ns]); } catch { /* not there */ }
  }
  for (const f of fs.existsSync(t.pinDir) ? fs.readdirSync(t.pinDir) : []) native.unpin(path.join(t.pinDir, f));
  try { fs.rmdirSync(t.pinDir); } catch { /* gone */ }
}

/** ipvs_xdp_pass on the outer veth ends, so they can receive XDP_REDIRECT frames. */
export function attachOuterXdpPass(t: Topology, xdpPassFd: number): void {
  for (const o of t.outer) inNetns(o.ns, () => native.xdpAttach(native.ifIndex(o.dev), xdpPassFd, 'native'));
}

// ---- the IPVS stand-in (bpf/test/ipvs_emul.bpf.c) ----

const EMUL_IN = 0x40;
const EMUL_OUT = 0x41;
export const EMUL_TC_PRIORITY = 2;

export interface ServiceConn {
  proto: L4Proto;
  client: Endpoint;
  vip: Endpoint;
  real: Endpoint;
  local: Endpoint;
}

export interface Emulator {
  obj: LoadedObject;
  /** IPVS's own connection table entry: what to DNAT on the way in and un-DNAT on the way out */
  addConn(c: ServiceConn): void;
  stats(): { translated: bigint; failed: bigint };
  close(): void;
}

function emulKey(kind: number, proto: L4Proto, src: Endpoint, dst: Endpoint): Buffer {
  const k = encodeKey({ kind: 'FWD', proto, src, dst });
  k.writeUInt8(kind, layout.key.fields.kind.offset);
  return k;
}

/**
 * Loads the stand-in and puts it on tc ingress of the LB interfaces after ipvs_tc_reply
 * (which returns TC_ACT_UNSPEC, so the chain goes on). It does IPVS's DNAT / un-DNAT for
 * the packets that reach the stack and hands them to the output device with
 * bpf_redirect_neigh: tc egress (ipvs_tc_snat) sees them, netfilter does not.
 */
export function loadEmulator(t: Topology): Emulator {
  const obj = native.loadObject(path.join(bpfObjectDir, 'ipvs_emul.bpf.o'));
  const prog = obj.programs.ipvs_emul_ingress;
  const conns = obj.maps.emul_conns;
  const statsMap = obj.maps.emul_stats;
  inNetns(t.ns.lb, () => {
    for (const dev of LB_IFACES) native.tcAttach(native.ifIndex(dev), 'ingress', prog, TC_HANDLE, EMUL_TC_PRIORITY);
  });
  return {
    obj,
    addConn(c: ServiceConn): void {
      native.mapUpdate(conns, emulKey(EMUL_IN, c.proto, c.client, c.vip), encodeValue({ src: c.client, dst: c.real }), 0);
      native.mapUpdate(conns, emulKey(EMUL_OUT, c.proto, c.real, c.client), encodeValue({ src: c.vip, dst: c.client }), 0);
    },
    stats(): { translated: bigint; failed: bigint } {
      const read = (i: number): bigint => {
        const k = Buffer.alloc(4);
        k.writeUInt32LE(i);
        return native.mapLookup(statsMap, k)?.readBigUInt64LE(0) ?? 0n;
      };
      return { translated: read(0), failed: read(1) };
    },
    close(): void {
      native.closeObject(obj.id);
    },
  };
}

// ---- conntrack in the LB namespace ----

/** Makes nf_conntrack active in the LB netns (it only tracks once a rule needs it). */
export function enableConntrack(t: Topology): void {
  nsRun(t.ns.lb, 'iptables', ['-A', 'FORWARD', '-m', 'conntrack', '--ctstate', 'NEW,ESTABLISHED,RELATED', '-j', 'ACCEPT']);
}

/** conntrack -L in the LB netns, one line per entry. */
export function conntrackEntries(t: Topology): string[] {
  return nsRun(t.ns.lb, 'conntrack', ['-L']).split('\n').filter((l) => l.trim() !== '');
}

// ---- child processes (run from TS sources in tests, from dist/ when compiled) ----

/** Transpiles .ts on require, so a child runs the same sources as the jest process. */
const TS_HOOK = `
const fs = require('fs');
const ts = require('typescript');
require.extensions['.ts'] = (m, file) => m._compile(ts.transpileModule(fs.readFileSync(file, 'utf8'), {
  fileName: file,
  compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
}).outputText, file);
require(process.argv[1]);
`;

/** node command line for one of this folder's child scripts (datapath-peer, datapath-daemon). */
export function childCommand(script: string, args: string[]): string[] {
  if (__filename.endsWith('.ts')) return [process.execPath, '-e', TS_HOOK, path.join(__dirname, `${script}.ts`), ...args];
  return [process.execPath, path.join(__dirname, `${script}.js`), ...args];
}

export function spawnInNs(ns: string, script: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, ...childCommand(script, args)], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'], ...opts });
}

/** Runs a child to completion; resolves with its stdout, rejects with its stderr. */
export function runChild(ns: string | undefined, script: string, args: string[], timeoutMs = 120000): Promise<string> {
  return new Promise((resolve, reject) => {
    const cmd = childCommand(script, args);
    const cp = ns ? spawnInNs(ns, script, args) : spawn(cmd[0], cmd.slice(1), { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    cp.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    cp.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
    const timer = setTimeout(() => cp.kill('SIGKILL'), timeoutMs);
    cp.on('close', (code, sig) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${script} ${args.join(' ')}: exit ${code ?? sig}\n${err}`));
    });
  });
}

/** Lines of JSON a child prints, as they come. */
export function jsonLines(cp: ChildProcess, onLine: (o: Record<string, unknown>) => void): void {
  let buf = '';
  cp.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line.startsWith('{')) onLine(JSON.parse(line) as Record<string, unknown>);
    }
  });
}

export { netnsPath };
