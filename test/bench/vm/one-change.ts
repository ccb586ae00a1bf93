/**
 * In the lab VM, after the benchmark table is loaded: how long a running daemon takes for one weight change
 * on it. This is the daemon's own code path (Daemon.setWeight, what the D-Bus SetWeight method calls) on
 * the real netlink client, with the daemon started from the benchmark's rule file in ipvs mode; only the
 * D-Bus marshalling is left out. The first change is the fresh process's first (code not yet optimised by
 * V8); then WARM_CHANGES more, as in a daemon that has run for a while: their median is the figure, their
 * maximum is reported too (a garbage collection of the daemon's large heap, or the emulated machine being
 * descheduled, can land in any one of them). Also times a reload after the rule
 * file changed by that one weight (re-read and parse the files, read the kernel table, reconcile, apply),
 * which costs in proportion to the table. Then the metrics a running daemon serves on that table (metrics.listen):
 * SCRAPES scrapes over HTTP one after another, each with a fresh IPVS dump (the figure is their median: dump,
 * text and transfer), and CONCURRENT scrapes at once, which must cost one dump. Prints one JSON object.
 *
 * usage: one-change RULE_FILE VIP:PORT RS:PORT
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { loadConfig } from '../../../src/daemon/config';
import { Daemon } from '../../../src/daemon/daemon';
import { plainIpvs } from '../../../src/daemon/datapath';
import { createLogger } from '../../../src/daemon/log';
import { IpvsClient } from '../../../src/ipvs/netlink';
import { CONTENT_TYPE, DaemonMetrics } from '../../../src/metrics/registry';
import { serveMetrics } from '../../../src/metrics/server';
import * as http from 'node:http';

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;
const WARM_CHANGES = 9;
const SCRAPES = 3;
const CONCURRENT = 4;

/** One GET, the body counted and dropped (a scraper that stores it is another process's cost). */
function scrape(url: string): Promise<{ ms: number; bytes: number; lines: number }> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let bytes = 0;
      let lines = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        for (let i = c.indexOf(10); i >= 0; i = c.indexOf(10, i + 1)) lines++;
      });
      res.on('end', () => (res.statusCode === 200 ? resolve({ ms: ms(t0), bytes, lines }) : reject(new Error(`HTTP ${res.statusCode}`))));
      res.on('error', reject);
    }).on('error', reject);
  });
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

async function main(): Promise<void> {
  const [rulesIn, vip, rs] = process.argv.slice(2);
  if (!rulesIn || !vip || !rs) throw new Error('usage: one-change RULE_FILE VIP:PORT RS:PORT');
  // The daemon's rule file: a copy, so the reload below can change it.
  const rules = '/tmp/one-change.rules';
  const text = readFileSync(rulesIn, 'utf8');
  writeFileSync(rules, text);
  const args = [`--rules=${rules}`, '--mode=ipvs', '--dbus=none', '--log-level=warning'];
  const load = () => loadConfig({ args, env: {} });
  const log = createLogger({ level: 'warning' });
  const ipvs = await IpvsClient.open();
  let dumps = 0;
  const ref: { daemon?: Daemon } = {};
  const metrics = new DaemonMetrics({
    source: { services: () => (dumps++, ipvs.services()), dataPath: () => ref.daemon!.dataPathReading() },
    // each sequential scrape dumps afresh; concurrent ones arrive while one dump runs and share it
    cacheMs: 1,
  });
  const t0 = process.hrtime.bigint();
  const daemon = await Daemon.start(load(), { log, loadConfig: load, ipvs, dataPath: async () => plainIpvs(''), observer: metrics });
  ref.daemon = daemon;
  const startMs = ms(t0);
  const serviceId = `tcp ${vip}`;
  const weightNow = async (): Promise<number | undefined> => {
    const svc = await ipvs.service({ kind: 'addr', family: 'inet', protocol: 'tcp', address: vip.split(':')[0]!, port: Number(vip.split(':')[1]) });
    return svc?.destinations.find((d) => `${d.address}:${d.port}` === rs)?.weight;
  };
  try {
    const runs: number[] = [];
    const w0 = (await weightNow()) ?? 0;
    for (let i = 1; i <= 1 + WARM_CHANGES; i++) {
      const t = process.hrtime.bigint();
      await daemon.setWeight(serviceId, rs, w0 + i);
      runs.push(ms(t));
    }
    const weightAfter = await weightNow();
    const last = w0 + 1 + WARM_CHANGES;
    // A reload after the rule file changed by one weight.
    const line = `-a -t ${vip} -r ${rs} -m -w 1\n`;
    if (!text.includes(line)) throw new Error(`rule file has no line ${JSON.stringify(line)}`);
    writeFileSync(rules, text.replace(line, `-a -t ${vip} -r ${rs} -m -w ${last + 1}\n`));
    const t = process.hrtime.bigint();
    const summary = await daemon.reload();
    const reloadMs = ms(t);
    const weightReloaded = await weightNow();

    const server = await serveMetrics(metrics, { host: '127.0.0.1', port: 0 }, { contentType: CONTENT_TYPE });
    const url = `http://${server.address}/metrics`;
    const seq: { ms: number; bytes: number; lines: number }[] = [];
    const dumpMs: number[] = [];
    for (let i = 0; i < SCRAPES; i++) {
      await new Promise((r) => setTimeout(r, 5)); // past cacheMs
      seq.push(await scrape(url));
      const g = await metrics.registry.getSingleMetric('ipvs_bpf_ipvs_dump_duration_seconds')?.get();
      dumpMs.push((g?.values[0]?.value ?? NaN) * 1000);
    }
    await new Promise((r) => setTimeout(r, 5));
    const d0 = dumps;
    const tc = process.hrtime.bigint();
    const conc = await Promise.all(Array.from({ length: CONCURRENT }, () => scrape(url)));
    const concurrentMs = ms(tc);
    const concurrentDumps = dumps - d0;
    await server.close();
    const [cold, ...warm] = runs as [number, ...number[]];
    process.stdout.write(
      JSON.stringify({
        ok: weightAfter === last,
        total_ms: median(warm),
        warm_max_ms: Math.max(...warm),
        warm_changes: warm.length,
        cold_total_ms: cold,
        weight_after: weightAfter,
        daemon_start_ms: startMs,
        reload_one_line_ms: reloadMs,
        reload_summary: summary,
        reload_ok: weightReloaded === last + 1,
        metrics_scrape_ms: median(seq.map((x) => x.ms)),
        metrics_scrape_max_ms: Math.max(...seq.map((x) => x.ms)),
        metrics_dump_ms: median(dumpMs),
        metrics_bytes: seq[0]!.bytes,
        metrics_lines: seq[0]!.lines,
        metrics_concurrent: CONCURRENT,
        metrics_concurrent_ms: concurrentMs,
        metrics_concurrent_dumps: concurrentDumps,
        // the same table; process_* / nodejs_* values differ by a few bytes between scrapes
        metrics_concurrent_same_size: conc.every((x) => Math.abs(x.bytes - seq[0]!.bytes) < seq[0]!.bytes / 100),
      }) + '\n',
    );
  } finally {
    daemon.close();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`one-change: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
