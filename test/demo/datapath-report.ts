/**
 * What the BPF data path holds, for an operator, read from the daemon's pins (run in the lab VM while or
 * after the daemon runs): conntrack map entries by kind, a few flows, the programs' per-CPU counters summed,
 * and the patched IPVS's own counters (/proc/net/ip_vs_bpf). Human text on stdout; with a file argument
 * the same figures as JSON there.
 *
 *   node dist/test/demo/datapath-report.js [--pin-dir DIR] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { FlowTable, readStats } from '../../src/bpf/flows';
import { layout } from '../../src/bpf/abi';
import { native } from '../../src/bpf/native';
import { readControlState } from '../../src/daemon/kernel-bpf';

export interface DatapathReport {
  map_entries: number;
  map_capacity: number;
  by_kind: Record<string, number>;
  /** Data-path counters (per-CPU sums), only the non-zero ones. */
  counters: Record<string, number>;
  /** /proc/net/ip_vs_bpf as key -> value. */
  kernel: Record<string, string>;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function main(): void {
  const pinDir = arg('--pin-dir') ?? layout.pin.dir;
  const ct = native.objGet(path.join(pinDir, layout.pin.ctMap));
  const st = native.objGet(path.join(pinDir, layout.pin.statsMap));
  if (ct === null || st === null) throw new Error(`no data path pinned under ${pinDir}`);
  const flows = new FlowTable(ct).list();
  const byKind: Record<string, number> = {};
  for (const f of flows) byKind[f.key.kind] = (byKind[f.key.kind] ?? 0) + 1;
  const counters: Record<string, number> = {};
  for (const [k, v] of Object.entries(readStats(st))) if (v !== 0n) counters[k] = Number(v);
  const report: DatapathReport = {
    map_entries: flows.length,
    map_capacity: native.mapInfo(ct).maxEntries,
    by_kind: byKind,
    counters,
    kernel: readControlState(),
  };
  const ep = (e: { addr: string; port: number }): string => `${e.addr}:${e.port}`;
  const lines = [
    `conntrack map ${layout.pin.ctMap}: ${report.map_entries} entries of ${report.map_capacity} ` +
      `(${Object.entries(byKind).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'})`,
    ...flows.slice(0, 6).map((f) =>
      `  ${f.key.kind.padEnd(5)} ${f.key.proto} ${ep(f.key.src)} -> ${ep(f.key.dst)}  =>  ${ep(f.value.src)} -> ${ep(f.value.dst)}` +
        `  packets ${f.value.packets} bytes ${f.value.bytes}`),
    ...(flows.length > 6 ? [`  ... ${flows.length - 6} more`] : []),
    'data-path counters (BPF, all CPUs):',
    ...Object.entries(counters).map(([k, v]) => `  ${k.padEnd(18)} ${v}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  const out = arg('--json');
  if (out) writeFileSync(out, JSON.stringify(report) + '\n');
  native.closeFd(ct);
  native.closeFd(st);
}

main();
