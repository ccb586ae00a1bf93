/**
 * `npm run bench:ipvs`: ipvs-bpfctl vs ipvsadm on real IPVS in the lab VM, side by side in one run.
 *
 * Each round boots the VM twice, once per tool, because IPVS keeps removed real servers in a trash list
 * that every later add scans: a restore timed after another restore in the same boot measures the trash,
 * not the tool. Rounds alternate which tool goes first. Figures are medians over the rounds; the last
 * line is one JSON object. The listings (-Sn, -Ln, -Ln --stats) run three times each, alternating with
 * ipvsadm's, in the ipvsadm boot; the ours boot also measures the daemon's memory holding the table
 * (daemon_rss_mib, from /proc: bin/ipvs-bpf started on the rule file in ipvs mode).
 *
 * The daemon's boot also times a metrics scrape of the full table (metrics_scrape_ms: one fresh IPVS dump, the
 * text and its transfer over loopback; test/bench/vm/one-change.ts).
 *
 * Environment: BENCH_SERVICES (10000), BENCH_SERVERS (10), BENCH_ROUNDS (3), BENCH_TOOLS (ipvsadm,ours: the boots
 * to run; `ours` alone gives the daemon's figures, the ratios are then null).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { runInVm, type LabVmResult } from '../lab/vm';
import { benchEditTarget, benchRules } from './ipvs-rules';

const SERVICES = Number(process.env.BENCH_SERVICES ?? 10000);
const SERVERS = Number(process.env.BENCH_SERVERS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const TOOLS = new Set((process.env.BENCH_TOOLS ?? 'ipvsadm,ours').split(','));
const WORK = '/var/tmp/ipvs-bpf-bench';

const PRELUDE = `set -euo pipefail
ms() { echo $(( $(date +%s%N) / 1000000 )); }
res() { echo "$1=$2" >>"$LAB_OUT/results"; echo "  $1=$2"; }
modprobe ip_vs
t0=$(ms); node -e 0; res node_start_ms $(( $(ms) - t0 ))
`;

function ipvsadmBoot(rules: string): string {
  return `${PRELUDE}
t0=$(ms); ipvsadm -R <${rules}; res ipvsadm_restore_ms $(( $(ms) - t0 ))
for i in 1 2 3; do
  t0=$(ms); ipvsadm -Sn >/tmp/ipvsadm.save; res ipvsadm_save_ms $(( $(ms) - t0 ))
  t0=$(ms); ./bin/ipvs-bpfctl -Sn >/tmp/ours.save; res ours_save_ms $(( $(ms) - t0 ))
  t0=$(ms); ipvsadm -Ln >/tmp/ipvsadm.list; res ipvsadm_list_ms $(( $(ms) - t0 ))
  t0=$(ms); ./bin/ipvs-bpfctl -Ln >/tmp/ours.list; res ours_list_ms $(( $(ms) - t0 ))
  t0=$(ms); ipvsadm -Ln --stats >/tmp/ipvsadm.stats; res ipvsadm_list_stats_ms $(( $(ms) - t0 ))
  t0=$(ms); ./bin/ipvs-bpfctl -Ln --stats >/tmp/ours.stats; res ours_list_stats_ms $(( $(ms) - t0 ))
done
cmp -s /tmp/ipvsadm.save ${rules} && res ipvsadm_roundtrip 1 || res ipvsadm_roundtrip 0
cmp -s /tmp/ipvsadm.save /tmp/ours.save && res save_identical 1 || res save_identical 0
cmp -s /tmp/ipvsadm.list /tmp/ours.list && res list_identical 1 || res list_identical 0
cmp -s /tmp/ipvsadm.stats /tmp/ours.stats && res list_stats_identical 1 || res list_stats_identical 0
`;
}

function oursBoot(rules: string): string {
  const { vip, rs } = benchEditTarget(SERVICES, SERVERS);
  return `${PRELUDE}
t0=$(ms); ./bin/ipvs-bpfctl -R <${rules}; res ours_restore_ms $(( $(ms) - t0 ))
ipvsadm -Sn >/tmp/after.save
cmp -s /tmp/after.save ${rules} && res ours_restore_identical 1 || res ours_restore_identical 0
node dist/test/bench/vm/one-change.js ${rules} ${vip} ${rs} >/tmp/one.json
res one_change_json "$(cat /tmp/one.json)"
t0=$(ms); ./bin/ipvs-bpfctl -e -t ${vip} -r ${rs} -m -w 7; res cli_edit_ms $(( $(ms) - t0 ))
ipvsadm -Ln -t ${vip} | grep -q '${rs}.*Masq *7 ' && res cli_edit_ok 1 || res cli_edit_ok 0
# The daemon's memory holding the table from the rule file (ipvs mode, no bus): resident set once started
# (start: read rules, read the kernel's table, reconcile, status snapshot) and a few seconds later; and its peak.
./bin/ipvs-bpf --rules=${rules} --mode=ipvs --dbus=none --log-level=notice 2>/tmp/daemon.log &
dpid=$!
for i in $(seq 1 900); do grep -q 'started in' /tmp/daemon.log && break; kill -0 $dpid 2>/dev/null || break; sleep 1; done
grep -q 'started in' /tmp/daemon.log && res daemon_started 1 || { res daemon_started 0; cat /tmp/daemon.log; }
sleep 5
res daemon_rss_kb "$(awk '/^VmRSS/{print $2}' /proc/$dpid/status)"
res daemon_hwm_kb "$(awk '/^VmHWM/{print $2}' /proc/$dpid/status)"
kill $dpid; wait $dpid || true
`;
}

function parseResults(r: LabVmResult): Map<string, string[]> {
  if (r.exitCode !== 0) {
    throw new Error(`lab VM run failed (exit ${r.exitCode}${r.error ? `: ${r.error}` : ''}):\n${r.console.slice(-3000)}`);
  }
  const m = new Map<string, string[]>();
  for (const line of readFileSync(path.join(r.outDir, 'results'), 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const k = line.slice(0, eq);
    m.set(k, [...(m.get(k) ?? []), line.slice(eq + 1)]);
  }
  return m;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

function nums(m: Map<string, string[]>, k: string): number[] {
  const v = m.get(k);
  if (!v) throw new Error(`benchmark result ${k} missing`);
  return v.map(Number);
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  const rules = path.join(WORK, `rules-${SERVICES}x${SERVERS}.txt`);
  writeFileSync(rules, benchRules(SERVICES, SERVERS));
  console.log(`bench:ipvs: ${SERVICES} services x ${SERVERS} real servers (${SERVICES * (SERVERS + 1)} rules), ${ROUNDS} rounds, lab VM (qemu TCG, Debian 6.1)`);

  const acc = new Map<string, number[]>();
  const push = (k: string, v: number): void => void acc.set(k, [...(acc.get(k) ?? []), v]);
  const checks: string[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 ? (['ipvsadm', 'ours'] as const) : (['ours', 'ipvsadm'] as const);
    for (const tool of order.filter((t) => TOOLS.has(t))) {
      console.log(`round ${round}: boot for ${tool}`);
      const r = await runInVm({ script: tool === 'ipvsadm' ? ipvsadmBoot(rules) : oursBoot(rules), timeoutMs: 30 * 60 * 1000 });
      const m = parseResults(r);
      push('node_start_ms', median(nums(m, 'node_start_ms')));
      if (tool === 'ipvsadm') {
        push('ipvsadm_restore_ms', nums(m, 'ipvsadm_restore_ms')[0]!);
        push('ipvsadm_save_ms', median(nums(m, 'ipvsadm_save_ms')));
        push('ours_save_ms', median(nums(m, 'ours_save_ms')));
        for (const k of ['ipvsadm_list_ms', 'ours_list_ms', 'ipvsadm_list_stats_ms', 'ours_list_stats_ms']) push(k, median(nums(m, k)));
        if (nums(m, 'list_identical')[0] !== 1) checks.push(`round ${round}: ipvs-bpfctl -Ln differs from ipvsadm -Ln`);
        if (nums(m, 'list_stats_identical')[0] !== 1) checks.push(`round ${round}: ipvs-bpfctl -Ln --stats differs from ipvsadm's`);
        if (nums(m, 'ipvsadm_roundtrip')[0] !== 1) checks.push(`round ${round}: ipvsadm -Sn differs from its -R input`);
        if (nums(m, 'save_identical')[0] !== 1) checks.push(`round ${round}: ipvs-bpfctl -Sn differs from ipvsadm -Sn`);
      } else {
        push('ours_restore_ms', nums(m, 'ours_restore_ms')[0]!);
        const one = JSON.parse(m.get('one_change_json')?.[0] ?? '{}') as {
          ok?: boolean;
          total_ms?: number;
          cold_total_ms?: number;
          warm_max_ms?: number;
          reload_one_line_ms?: number;
          reload_ok?: boolean;
          metrics_scrape_ms?: number;
          metrics_scrape_max_ms?: number;
          metrics_dump_ms?: number;
          metrics_bytes?: number;
          metrics_lines?: number;
          metrics_concurrent_ms?: number;
          metrics_concurrent_dumps?: number;
          metrics_concurrent_same_size?: boolean;
        };
        if (one.ok !== true || typeof one.total_ms !== 'number') checks.push(`round ${round}: the daemon's SetWeight did not change the weight`);
        if (one.reload_ok !== true) checks.push(`round ${round}: the daemon's reload did not apply the changed rule file`);
        push('one_change_ms', one.total_ms ?? NaN);
        push('one_change_cold_ms', one.cold_total_ms ?? NaN);
        push('one_change_max_ms', one.warm_max_ms ?? NaN);
        push('reload_one_line_ms', one.reload_one_line_ms ?? NaN);
        push('metrics_scrape_ms', one.metrics_scrape_ms ?? NaN);
        push('metrics_scrape_max_ms', one.metrics_scrape_max_ms ?? NaN);
        push('metrics_dump_ms', one.metrics_dump_ms ?? NaN);
        push('metrics_bytes', one.metrics_bytes ?? NaN);
        push('metrics_lines', one.metrics_lines ?? NaN);
        push('metrics_concurrent_ms', one.metrics_concurrent_ms ?? NaN);
        if (one.metrics_concurrent_dumps !== 1) checks.push(`round ${round}: concurrent scrapes made ${one.metrics_concurrent_dumps} IPVS dumps, not 1`);
        if (one.metrics_concurrent_same_size !== true) checks.push(`round ${round}: concurrent scrapes differ in size by 1% or more`);
        // every real server's 8 series, each service's 5, two counts, plus the daemon's own: at least that many lines
        if (!((one.metrics_lines ?? 0) >= SERVICES * SERVERS * 8 + SERVICES * 5)) checks.push(`round ${round}: the scrape has ${one.metrics_lines} lines, fewer than the table's series`);
        push('cli_edit_ms', nums(m, 'cli_edit_ms')[0]!);
        if (nums(m, 'daemon_started')[0] !== 1) checks.push(`round ${round}: the daemon did not start from the rule file`);
        push('daemon_rss_mib', nums(m, 'daemon_rss_kb')[0]! / 1024);
        push('daemon_hwm_mib', nums(m, 'daemon_hwm_kb')[0]! / 1024);
        if (nums(m, 'ours_restore_identical')[0] !== 1) checks.push(`round ${round}: ipvsadm -Sn after ipvs-bpfctl -R differs from the input`);
        if (nums(m, 'cli_edit_ok')[0] !== 1) checks.push(`round ${round}: ipvs-bpfctl -e did not change the weight`);
      }
    }
  }
  const med = (k: string): number => median(acc.get(k) ?? []);
  const fig = {
    services: SERVICES,
    servers_per_service: SERVERS,
    rounds: ROUNDS,
    ipvsadm_restore_ms: med('ipvsadm_restore_ms'),
    ours_restore_ms: med('ours_restore_ms'),
    restore_ratio: round2(med('ours_restore_ms') / med('ipvsadm_restore_ms')),
    ipvsadm_save_ms: med('ipvsadm_save_ms'),
    ours_save_ms: med('ours_save_ms'),
    save_ratio: round2(med('ours_save_ms') / med('ipvsadm_save_ms')),
    ipvsadm_list_ms: med('ipvsadm_list_ms'),
    ours_list_ms: med('ours_list_ms'),
    list_ratio: round2(med('ours_list_ms') / med('ipvsadm_list_ms')),
    ipvsadm_list_stats_ms: med('ipvsadm_list_stats_ms'),
    ours_list_stats_ms: med('ours_list_stats_ms'),
    list_stats_ratio: round2(med('ours_list_stats_ms') / med('ipvsadm_list_stats_ms')),
    one_change_ms: round2(med('one_change_ms')),
    one_change_cold_ms: round2(med('one_change_cold_ms')),
    one_change_max_ms: round2(med('one_change_max_ms')),
    reload_one_line_ms: round2(med('reload_one_line_ms')),
    cli_edit_ms: med('cli_edit_ms'),
    metrics_scrape_ms: round2(med('metrics_scrape_ms')),
    metrics_scrape_max_ms: round2(med('metrics_scrape_max_ms')),
    metrics_dump_ms: round2(med('metrics_dump_ms')),
    metrics_concurrent_ms: round2(med('metrics_concurrent_ms')),
    metrics_mib: round2(med('metrics_bytes') / (1 << 20)),
    metrics_lines: med('metrics_lines'),
    node_start_ms: med('node_start_ms'),
    daemon_rss_mib: Math.round(med('daemon_rss_mib') * 10) / 10,
    daemon_hwm_mib: Math.round(med('daemon_hwm_mib') * 10) / 10,
    checks_ok: checks.length === 0,
  };
  console.log('');
  console.log(`restore  ipvsadm -R ${fig.ipvsadm_restore_ms} ms   ipvs-bpfctl -R ${fig.ours_restore_ms} ms   ratio ${fig.restore_ratio} (goal <= 0.5)`);
  console.log(`save     ipvsadm -Sn ${fig.ipvsadm_save_ms} ms  ipvs-bpfctl -Sn ${fig.ours_save_ms} ms  ratio ${fig.save_ratio} (goal <= 1)`);
  console.log(`list     ipvsadm -Ln ${fig.ipvsadm_list_ms} ms  ipvs-bpfctl -Ln ${fig.ours_list_ms} ms  ratio ${fig.list_ratio}; --stats: ${fig.ipvsadm_list_stats_ms} / ${fig.ours_list_stats_ms} ms, ratio ${fig.list_stats_ratio} (goal <= 1)`);
  console.log(`one weight change on the full table, the daemon's SetWeight: ${fig.one_change_ms} ms in a running daemon (median of 9; goal <= 20; slowest ${fig.one_change_max_ms} ms), ${fig.one_change_cold_ms} ms as its first; ipvs-bpfctl -e wall ${fig.cli_edit_ms} ms`);
  console.log(`daemon reload after one rule-file line changed (re-read, parse, read kernel, reconcile, apply): ${fig.reload_one_line_ms} ms`);
  console.log(`daemon holding the table from the rule file (ipvs mode): RSS ${fig.daemon_rss_mib} MiB (goal <= 120), peak ${fig.daemon_hwm_mib} MiB`);
  console.log(`metrics scrape of the running daemon over HTTP (fresh IPVS dump + text + transfer): ${fig.metrics_scrape_ms} ms (slowest ${fig.metrics_scrape_max_ms}), of which the dump ${fig.metrics_dump_ms} ms; ${fig.metrics_mib} MiB, ${fig.metrics_lines} lines; 4 concurrent scrapes ${fig.metrics_concurrent_ms} ms on one dump`);
  console.log(`(node itself takes ${fig.node_start_ms} ms to start in this emulated VM; every CLI figure includes it)`);
  for (const c of checks) console.log(`CHECK FAILED: ${c}`);
  console.log(JSON.stringify(fig));
  if (checks.length) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(`bench:ipvs: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
