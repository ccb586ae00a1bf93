/**
 * `npm run demo`: boots the lab VM (Debian's 6.1 kernel) with the patched IPVS modules, builds the shared
 * topology, starts the daemon bin/ipvs-bpf from a configuration file in mode bpf (the rules of
 * examples/demo.rules, SNAT 10.9.0.1, data path on c-lb b1-lb b2-lb), sends HTTP traffic from the client
 * namespace to the VIP and prints what an operator wants to see (test/demo/payload.sh). The last line is
 * one JSON object: mode, requests, ok, backends (responses per real server), nf_conntrack_entries,
 * bpf_map_entries and the data-path figures. Exit status 1 unless every request was answered.
 *
 * Environment: DEMO_MODE (bpf | ipvs: plain IPVS NAT + MASQUERADE with the stock modules, for comparison),
 * DEMO_REQUESTS (200), DEMO_CONCURRENCY (4).
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { patchedIpvsModules } from '../lab/patched-modules';
import { prepareLabKernel, runInVm } from '../lab/vm';
import type { DatapathReport } from './datapath-report';

interface ClientReport {
  requests: number;
  ok: number;
  failed: number;
  backends: Record<string, number>;
  errors: Record<string, number>;
  ms: number;
}

function readJson<T>(file: string): T | undefined {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : undefined;
}

function readNumber(file: string): number | null {
  return existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : null;
}

async function main(): Promise<void> {
  const mode = process.env.DEMO_MODE ?? 'bpf';
  if (mode !== 'bpf' && mode !== 'ipvs') throw new Error(`DEMO_MODE must be bpf or ipvs, not ${JSON.stringify(mode)}`);
  const t0 = Date.now();
  const kernel = await prepareLabKernel();
  const extraModules = mode === 'bpf' ? await patchedIpvsModules() : [];
  process.stdout.write(`demo: booting the lab VM (Debian kernel ${kernel.version} under qemu TCG, ` +
    `${mode === 'bpf' ? `${extraModules.length} patched IPVS modules` : 'stock IPVS'}; a minute or more)\n`);
  const r = await runInVm({
    script: 'bash test/demo/payload.sh',
    timeoutMs: 15 * 60 * 1000,
    extraModules,
    env: {
      DEMO_MODE: mode,
      DEMO_REQUESTS: process.env.DEMO_REQUESTS ?? '200',
      DEMO_CONCURRENCY: process.env.DEMO_CONCURRENCY ?? '4',
    },
    onConsole: (chunk) => process.stdout.write(chunk),
  });
  if (r.exitCode !== 0) {
    process.stderr.write(`demo: the VM run failed (exit ${r.exitCode}${r.error ? `: ${r.error}` : ''}); files in ${r.outDir}\n`);
    process.exitCode = 1;
    return;
  }
  const client = readJson<ClientReport>(path.join(r.outDir, 'client.json'));
  if (!client) throw new Error(`no client.json in ${r.outDir}`);
  const dp = readJson<DatapathReport>(path.join(r.outDir, 'datapath.json'));
  const k = dp?.kernel ?? {};
  const num = (v: string | undefined): number => Number(v ?? 0);
  const summary = {
    mode,
    requests: client.requests,
    ok: client.ok,
    failed: client.failed,
    backends: client.backends,
    nf_conntrack_entries: readNumber(path.join(r.outDir, 'nf_conntrack_count')),
    nf_conntrack_control: readNumber(path.join(r.outDir, 'conntrack_control')),
    bpf_map_entries: dp?.map_entries ?? 0,
    ...(dp ? {
      ipvs_bpf: { conns: num(k.conns), inserts: num(k.inserts), fallbacks: num(k.fallbacks), refused: num(k.refused), collisions: num(k.collisions) },
      datapath: dp.counters,
    } : {}),
    client_ms: client.ms,
    vm_seconds: Math.round(r.durationMs / 100) / 10,
    total_seconds: Math.round((Date.now() - t0) / 100) / 10,
  };
  process.stdout.write(
    `\ndemo: ${summary.ok}/${summary.requests} requests answered, spread ${JSON.stringify(summary.backends)}; ` +
      `mode ${mode}; nf_conntrack entries ${summary.nf_conntrack_entries} (conntrack active: ` +
      `${summary.nf_conntrack_control} after a control datagram); BPF map entries ${summary.bpf_map_entries}\n`,
  );
  process.stdout.write(JSON.stringify(summary) + '\n');
  if (summary.ok !== summary.requests) process.exitCode = 1;
}

main().catch((e: unknown) => {
  process.stderr.write(`demo: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
