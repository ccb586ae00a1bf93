/**
 * Looks at the BPF data path from the LB netns of the lab VM, with the project's own ABI code, for
 * test/integration/vm/ipvs-bpf-e2e.sh. Prints `key=value` lines (the test judges them):
 *
 *   state <lab.json> <prefix> [flows.json]
 *       <prefix>.map.entries, <prefix>.map.<proto>.<KIND> (every kind the ABI defines),
 *       <prefix>.map.<proto>.no_fastpath (entries flagged IPVS_BPF_F_NO_FASTPATH), the BPF counters
 *       (<prefix>.bpf.<NAME>) and the patched IPVS's counters (<prefix>.kernel.<key>); with flows.json also,
 *       per protocol, how many flows to a remote backend have their three entries exactly as the ABI says
 *       (<prefix>.entries.<proto>.complete), entries of flows to the local real server
 *       (<prefix>.entries.local), entries belonging to no flow (<prefix>.entries.stray) and SNAT
 *       source ports outside the allowed range (<prefix>.entries.bad_snat); details go to stderr.
 *   fill <lab.json> <prefix>
 *       fills the conntrack map up to its capacity with entries no packet can match (192.0.2.0/24 clients);
 *       prints <prefix>.filled and <prefix>.capacity.
 *   unfill <lab.json> <prefix>
 *       removes them again; prints <prefix>.unfilled.
 *   loop <fifo> <dir>
 *       runs those commands read from the FIFO, one after the other (ipvs-bpf-rpc.ts).
 */
import { readFileSync } from 'fs';
import * as path from 'path';
import { FlowKey, L4Proto, layout } from '../../../src/bpf/abi';
import { Flow, FlowTable, readStats } from '../../../src/bpf/flows';
import { isNativeError, native } from '../../../src/bpf/native';
import { readControlState } from '../../../src/daemon/kernel-bpf';
import { commandLoop } from './ipvs-bpf-rpc';
import type { FlowResult } from './ipvs-bpf-traffic';

/** What the payload tells the probe about the topology (written by ipvs-bpf-e2e.sh). */
export interface LabFacts {
  pinDir: string;
  client: string;
  vip: string;
  services: Record<'tcp' | 'udp', { vport: number; rport: number }>;
  /** backend name (as it answers) -> address; the local real server is the one named `local` */
  backends: Record<string, string>;
  snat: string[];
  snatPorts: [number, number];
}

const KINDS = Object.keys(layout.kinds) as FlowKey['kind'][];
const FILL_NET = '192.0.2.';

const ep = (e: { addr: string; port: number }): string => `${e.addr}:${e.port}`;

function openMap(facts: LabFacts, pin: string): number {
  const fd = native.objGet(path.join(facts.pinDir, pin));
  if (fd === null) throw new Error(`no pinned map ${pin} under ${facts.pinDir}`);
  return fd;
}

function localPortRange(): [number, number] {
  const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  return [lo, hi];
}

function state(facts: LabFacts, prefix: string, flowsFile: string | undefined): string[] {
  const out: string[] = [];
  const put = (k: string, v: string | number | bigint): void => { out.push(`${prefix}.${k}=${v}`); };
  const ct = openMap(facts, layout.pin.ctMap);
  const st = openMap(facts, layout.pin.statsMap);
  const entries = new FlowTable(ct).list().filter((f) => !f.key.src.addr.startsWith(FILL_NET));
  put('map.entries', entries.length);
  for (const proto of ['tcp', 'udp', 'sctp'] as L4Proto[]) {
    for (const kind of KINDS) put(`map.${proto}.${kind}`, entries.filter((f) => f.key.proto === proto && f.key.kind === kind).length);
    put(`map.${proto}.no_fastpath`, entries.filter((f) => f.key.proto === proto && (f.value.flags & layout.flags.NO_FASTPATH) !== 0).length);
  }
  for (const [k, v] of Object.entries(readStats(st))) put(`bpf.${k}`, v);
  for (const [k, v] of Object.entries(readControlState())) if (/^\d+$/.test(v)) put(`kernel.${k}`, v);
  native.closeFd(ct);
  native.closeFd(st);
  if (flowsFile) for (const line of matchFlows(facts, entries, JSON.parse(readFileSync(flowsFile, 'utf8')) as FlowResult[])) put(line[0], line[1]);
  return out;
}

/** Every flow to a remote backend must own exactly its REPLY, SNAT and FWD entries (ipvs_bpf_abi.h). */
function matchFlows(facts: LabFacts, entries: Flow[], flows: FlowResult[]): [string, number][] {
  const used = new Set<Flow>();
  const find = (proto: L4Proto, kind: FlowKey['kind'], src: string, dst: string): Flow | undefined =>
    entries.find((f) => f.key.proto === proto && f.key.kind === kind && ep(f.key.src) === src && ep(f.key.dst) === dst);
  const [lrLo, lrHi] = localPortRange();
  const complete = { tcp: 0, udp: 0 };
  let local = 0;
  let badSnat = 0;
  for (const fl of flows) {
    if (!fl.first) continue;
    const svc = facts.services[fl.proto];
    const cli = `${facts.client}:${fl.cport}`;
    const vip = `${facts.vip}:${svc.vport}`;
    const mine = entries.filter((f) => f.key.proto === fl.proto && (ep(f.key.src) === cli || ep(f.value.dst) === cli));
    if (fl.backend === 'local') {
      local += mine.length;
      mine.forEach((f) => used.add(f));
      continue;
    }
    const rs = `${facts.backends[fl.backend]}:${svc.rport}`;
    const fwd = find(fl.proto, 'FWD', cli, vip);
    const snat = find(fl.proto, 'SNAT', cli, rs);
    const reply = entries.find((f) => f.key.proto === fl.proto && f.key.kind === 'REPLY' && ep(f.key.src) === rs
      && ep(f.value.dst) === cli && ep(f.value.src) === vip);
    for (const f of [fwd, snat, reply]) if (f) used.add(f);
    const lip = reply ? ep(reply.key.dst) : '';
    const ok = !!fwd && !!snat && !!reply
      && ep(fwd.value.src) === lip && ep(fwd.value.dst) === rs
      && ep(snat.value.src) === lip && ep(snat.value.dst) === rs;
    if (ok) complete[fl.proto]++;
    else process.stderr.write(`flow ${fl.proto} ${cli} -> ${fl.backend}: FWD ${fwd ? `${ep(fwd.value.src)}->${ep(fwd.value.dst)}` : 'missing'}, SNAT ${snat ? `${ep(snat.value.src)}->${ep(snat.value.dst)}` : 'missing'}, REPLY ${reply ? ep(reply.key.dst) : 'missing'}\n`);
    if (reply) {
      const p = reply.key.dst.port;
      if (!facts.snat.includes(reply.key.dst.addr) || p < facts.snatPorts[0] || p > facts.snatPorts[1] || (p >= lrLo && p <= lrHi)) {
        badSnat++;
        process.stderr.write(`flow ${fl.proto} ${cli}: SNAT source ${lip} not in ${facts.snat.join(',')} ports ${facts.snatPorts.join('-')} minus ${lrLo}-${lrHi}\n`);
      }
    }
  }
  const stray = entries.filter((f) => !used.has(f));
  for (const f of stray.slice(0, 10)) process.stderr.write(`stray entry ${f.key.kind} ${f.key.proto} ${ep(f.key.src)} -> ${ep(f.key.dst)}\n`);
  return [['entries.tcp.complete', complete.tcp], ['entries.udp.complete', complete.udp], ['entries.local', local],
    ['entries.stray', stray.length], ['entries.bad_snat', badSnat]];
}

function fillKey(i: number): FlowKey {
  return { kind: 'FWD', proto: 'tcp', src: { addr: `${FILL_NET}${1 + (i % 250)}`, port: 1 + Math.floor(i / 250) }, dst: { addr: '192.0.2.254', port: 9 } };
}

function fill(facts: LabFacts, prefix: string): string[] {
  const ct = openMap(facts, layout.pin.ctMap);
  const t = new FlowTable(ct);
  const capacity = native.mapInfo(ct).maxEntries;
  let filled = 0;
  for (let i = 0; i < capacity; i++) {
    try {
      t.put(fillKey(i), { src: { addr: '192.0.2.253', port: 9 }, dst: { addr: '192.0.2.254', port: 9 } }, 'create');
      filled++;
    } catch (e) {
      if (isNativeError(e) && e.code === 'E2BIG') break;
      throw e;
    }
  }
  native.closeFd(ct);
  return [`${prefix}.filled=${filled}`, `${prefix}.capacity=${capacity}`];
}

function unfill(facts: LabFacts, prefix: string): string[] {
  const ct = openMap(facts, layout.pin.ctMap);
  const t = new FlowTable(ct);
  let n = 0;
  for (const f of t.list()) if (f.key.src.addr.startsWith(FILL_NET) && t.delete(f.key)) n++;
  native.closeFd(ct);
  return [`${prefix}.unfilled=${n}`];
}

function command(argv: string[]): string[] {
  const [mode, labFile, prefix, flowsFile] = argv;
  const facts = JSON.parse(readFileSync(labFile, 'utf8')) as LabFacts;
  switch (mode) {
    case 'state': return state(facts, prefix, flowsFile);
    case 'fill': return fill(facts, prefix);
    case 'unfill': return unfill(facts, prefix);
    default: throw new Error(`usage: state|fill|unfill <lab.json> <prefix> [flows.json], or loop <fifo> <dir> (got ${mode})`);
  }
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'loop') await commandLoop(argv[1], argv[2], command);
  else process.stdout.write(`${command(argv).join('\n')}\n`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e: Error) => {
    process.stderr.write(`ipvs-bpf-probe: ${e.message}\n`);
    process.exit(1);
  });
}
