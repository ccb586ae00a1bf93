/**
 * `npm run demo`: boots the lab VM, programs IPVS from examples/demo.rules with ipvs-bpfctl, sends
 * HTTP traffic from a client namespace to the VIP, and prints what an operator wants to see. The last
 * line is one JSON object: requests, ok, backends (responses per real server), nf_conntrack_entries,
 * bpf_map_entries, mode.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { runInVm } from '../lab/vm';

interface ClientReport {
  requests: number;
  ok: number;
  failed: number;
  backends: Record<string, number>;
  errors: Record<string, number>;
  ms: number;
}

async function main(): Promise<void> {
  process.stdout.write('demo: booting the lab VM (Debian 6.1 kernel under qemu TCG; about a minute)\n');
  const r = await runInVm({
    script: 'bash test/demo/payload.sh',
    timeoutMs: 15 * 60 * 1000,
    env: {
      DEMO_REQUESTS: process.env.DEMO_REQUESTS ?? '200',
      DEMO_CONCURRENCY: process.env.DEMO_CONCURRENCY ?? '4',
    },
    onConsole: (chunk) => process.stdout.write(chunk),
  });
  if (r.exitCode !== 0) {
    process.stderr.write(`demo: the VM run failed (exit ${r.exitCode}${r.error ? `: ${r.error}` : ''})\n`);
    process.exitCode = 1;
    return;
  }
  const client = JSON.parse(readFileSync(path.join(r.outDir, 'client.json'), 'utf8')) as ClientReport;
  const conntrack = Number(readFileSync(path.join(r.outDir, 'nf_conntrack_count'), 'utf8').trim());
  const summary = {
    mode: 'ipvs',
    requests: client.requests,
    ok: client.ok,
    failed: client.failed,
    backends: client.backends,
    nf_conntrack_entries: conntrack,
    bpf_map_entries: 0,
    vm_seconds: Math.round(r.durationMs / 100) / 10,
  };
  process.stdout.write(
    `\ndemo: ${summary.ok}/${summary.requests} requests answered, spread ${JSON.stringify(summary.backends)}; ` +
      `mode "ipvs" (plain IPVS NAT: the BPF data path is not in this build yet)\n`,
  );
  process.stdout.write(JSON.stringify(summary) + '\n');
  if (summary.ok !== summary.requests) process.exitCode = 1;
}

main().catch((e: unknown) => {
  process.stderr.write(`demo: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
