/**
 * `npm run bench:e2e`: short-connection rate (connect, one small HTTP/1.0 request, response, close) and
 * latency through IPVS-BPF (the patched IPVS in BPF mode + the daemon's tc/XDP data path) vs plain IPVS
 * NAT + iptables MASQUERADE with conntrack, in one lab-VM boot, rounds alternated (test/bench/e2e-payload.sh
 * describes the two paths). The C load generator and server (test/bench/e2e-*.c) are built here with the
 * host's clang into build/bench-e2e/, which the VM sees at the same path.
 *
 * Figures are medians over the rounds. Ratios: cps_ratio = bpf cps / plain cps, p99_ratio = plain p99 /
 * bpf p99 (both > 1 when bpf is better), of the medians; *_paired = the median of the per-round ratios. The
 * last line is one JSON object.
 *
 * Environment: BENCH_ROUNDS (7), BENCH_SECONDS (6 per run), BENCH_CONC (32 connections in flight),
 * BENCH_CPUS (VM vCPUs, default 2), BENCH_MEMORY_MB (2048).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { patchedIpvsModules } from '../lab/patched-modules';
import { checkoutRoot, runInVm } from '../lab/vm';

export interface LoadgenResult {
  ok: number;
  errors: Record<string, number>;
  seconds: number;
  cps: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  max_us: number;
  backends: Record<string, number>;
}

type Mode = 'bpf' | 'plain';

interface RunLine { mode: Mode; round: number; result: LoadgenResult }

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const CONC = Number(process.env.BENCH_CONC ?? 32);
const CPUS = Number(process.env.BENCH_CPUS ?? 2);
const MEMORY_MB = Number(process.env.BENCH_MEMORY_MB ?? 2048);

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function buildTools(root: string): string {
  const out = path.join(root, 'build', 'bench-e2e');
  mkdirSync(out, { recursive: true });
  for (const name of ['e2e-loadgen', 'e2e-server']) {
    // clang: scripts/setup.sh installs it (for the BPF objects); gcc need not be there
    execFileSync('clang', ['-O2', '-Wall', '-o', path.join(out, name), path.join(root, 'test', 'bench', `${name}.c`)], { stdio: 'inherit' });
  }
  return out;
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

function summarise(lines: RunLine[], mode: Mode): Record<string, number | number[]> {
  const mine = lines.filter((l) => l.mode === mode).map((l) => l.result);
  const errors = mine.reduce((n, r) => n + Object.values(r.errors).reduce((a, b) => a + b, 0), 0);
  return {
    cps: round1(median(mine.map((r) => r.cps))),
    p50_us: median(mine.map((r) => r.p50_us)),
    p99_us: median(mine.map((r) => r.p99_us)),
    cps_rounds: mine.map((r) => round1(r.cps)),
    p99_rounds_us: mine.map((r) => r.p99_us),
    connections: mine.reduce((n, r) => n + r.ok, 0),
    errors,
  };
}

/** Per round: bpf cps / plain cps and plain p99 / bpf p99. */
function pairedRatios(lines: RunLine[]): { cps: number[]; p99: number[] } {
  const out = { cps: [] as number[], p99: [] as number[] };
  for (const round of [...new Set(lines.map((l) => l.round))].sort((a, b) => a - b)) {
    const b = lines.find((l) => l.round === round && l.mode === 'bpf')?.result;
    const p = lines.find((l) => l.round === round && l.mode === 'plain')?.result;
    if (!b || !p) continue;
    out.cps.push(b.cps / p.cps);
    out.p99.push(p.p99_us / b.p99_us);
  }
  return out;
}

async function main(): Promise<void> {
  const root = checkoutRoot();
  const bin = buildTools(root);
  const extraModules = await patchedIpvsModules();
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  process.stdout.write(`bench:e2e: host load ${load} on ${os.cpus().length} CPUs; VM ${CPUS} vCPUs (TCG), ` +
    `${ROUNDS} rounds x ${SECONDS} s per mode, ${CONC} connections in flight\n`);
  const r = await runInVm({
    script: 'bash test/bench/e2e-payload.sh',
    timeoutMs: (10 * 60 + ROUNDS * SECONDS * 2 * 3) * 1000,
    cpus: CPUS,
    memoryMb: MEMORY_MB,
    extraModules,
    env: {
      BENCH_BIN: bin,
      BENCH_ROUNDS: String(ROUNDS),
      BENCH_SECONDS: String(SECONDS),
      BENCH_CONC: String(CONC),
    },
    onConsole: (chunk) => process.stdout.write(chunk),
  });
  if (r.exitCode !== 0) {
    throw new Error(`the VM run failed (exit ${r.exitCode}${r.error ? `: ${r.error}` : ''}); files in ${r.outDir}`);
  }
  const lines = readFileSync(path.join(r.outDir, 'results.jsonl'), 'utf8').trim().split('\n')
    .map((l) => JSON.parse(l) as RunLine);
  const after = JSON.parse(readFileSync(path.join(r.outDir, 'after.json'), 'utf8')) as Record<string, number>;
  const dp = JSON.parse(readFileSync(path.join(r.outDir, 'datapath.json'), 'utf8')) as { counters: Record<string, number>; kernel: Record<string, string> };
  const bpf = summarise(lines, 'bpf');
  const plain = summarise(lines, 'plain');
  const r3 = (x: number): number => Math.round(x * 1000) / 1000;
  const cpsRatio = r3((bpf.cps as number) / (plain.cps as number));
  const p99Ratio = r3((plain.p99_us as number) / (bpf.p99_us as number));
  // Paired: the two runs of a round are back to back, so their ratio is less exposed to the host's load
  // drifting between rounds; the median of those ratios is a second estimate.
  const paired = pairedRatios(lines);
  const loadAfter = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  process.stdout.write([
    '',
    `bench:e2e (medians of ${ROUNDS} rounds; VM ${CPUS} vCPUs under TCG; host load before ${load}, after ${loadAfter})`,
    `  IPVS-BPF (patched IPVS bpf mode + tc/XDP):  ${bpf.cps} conn/s  p50 ${bpf.p50_us} us  p99 ${bpf.p99_us} us  rounds ${JSON.stringify(bpf.cps_rounds)}`,
    `  plain IPVS NAT + MASQUERADE (conntrack):   ${plain.cps} conn/s  p50 ${plain.p50_us} us  p99 ${plain.p99_us} us  rounds ${JSON.stringify(plain.cps_rounds)}`,
    `  cps ratio bpf/plain ${cpsRatio}   p99 ratio plain/bpf ${p99Ratio}   (goal >= 1.4); ` +
      `per-round ratios: cps ${JSON.stringify(paired.cps.map(r3))}, p99 ${JSON.stringify(paired.p99.map(r3))}`,
    `  nf_conntrack after: bpf LB ${after.nf_conntrack_bpf}, plain LB ${after.nf_conntrack_plain}; ` +
      `patched IPVS: inserts ${dp.kernel.inserts ?? '?'}, fallbacks ${dp.kernel.fallbacks ?? '?'}, ports_exhausted ${dp.kernel.ports_exhausted ?? '?'}`,
    '',
  ].join('\n'));
  process.stdout.write(JSON.stringify({
    cps_ratio: cpsRatio,
    p99_ratio: p99Ratio,
    p99_ratio_definition: 'plain p99 / bpf p99',
    cps_ratio_paired: r3(median(paired.cps)),
    p99_ratio_paired: r3(median(paired.p99)),
    bpf,
    plain,
    nf_conntrack_after: { bpf: after.nf_conntrack_bpf, plain: after.nf_conntrack_plain },
    ipvs_bpf: { inserts: Number(dp.kernel.inserts ?? 0), fallbacks: Number(dp.kernel.fallbacks ?? 0), ports_exhausted: Number(dp.kernel.ports_exhausted ?? 0) },
    datapath: dp.counters,
    rounds: ROUNDS, seconds_per_run: SECONDS, concurrency: CONC, vm_cpus: CPUS,
    host_load: { before: load, after: loadAfter },
    vm_seconds: Math.round(r.durationMs / 100) / 10,
  }) + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:e2e: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
