/**
 * The daemon's metrics: one prom-client Registry holding every metric (names.ts), fed by
 *  - one IPVS dump per scrape at most (SnapshotCache: kept `cacheMs`, concurrent scrapes share it), whose
 *    table metrics are written by table.ts's fast path;
 *  - the data path's counters, read when scraped (MetricsSource.dataPath);
 *  - the daemon's changes (ChangeObserver: the daemon calls it) and health checkers (HealthReporter).
 *
 * Other producers add their own metrics to `registry` (prom-client Counter/Gauge/Histogram with
 * `registers: [metrics.registry]`): kube mode's kube-proxy names (kubeproxy_sync_proxy_rules_duration_seconds,
 * ...) go there and are served with the rest by `render()`, on whatever listener serves them.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { IpvsOp, ServiceState } from '../ipvs/model';
import { HealthMetrics, type HealthReporter } from './health';
import { CHANGES, DATAPATH, TABLE, type MetricDef } from './names';
import { SnapshotCache } from './snapshot';
import { prepareTable, renderTableMetric, tableSamples, type PreparedTable, type Sample } from './table';

/** What the data path shows at a scrape (synchronous reads: counters maps and the control file). */
export interface DataPathReading {
  version: string;
  mode: string;
  configuredMode: string;
  /** BPF stats map counters by name (empty outside bpf mode). */
  counters: Readonly<Record<string, bigint>>;
  /** /proc/net/ip_vs_bpf `key value` lines (empty outside bpf mode). */
  kernelCounters: Readonly<Record<string, string>>;
  /** Conntrack map entries; null outside bpf mode. */
  mapEntries: bigint | null;
  /** Conntrack map capacity; null outside bpf mode. */
  mapCapacity: number | null;
  /** The last reload attempt (the start until the first reload). */
  lastReload: { atMs: number; ok: boolean };
}

export interface MetricsSource {
  /** One dump of the IPVS table with its counters. */
  services(): Promise<ServiceState[]>;
  dataPath(): DataPathReading;
}

/** What the daemon reports about its changes. `trigger`: start, reload, apply_rules, set_weight, source_sync (a source's own changes). */
export interface ChangeObserver {
  reconciled(trigger: string, seconds: number, outcome: { ops: readonly IpvsOp[] } | { error: unknown }): void;
  reloaded(seconds: number, ok: boolean): void;
}

/**
 * Control-file lines that are not event counters: settings, and the current state (conns: connections owning
 * entries, ipvs_bpf_kernel_connections; entries: entries held, ipvs_bpf_conntrack_map_entries).
 */
const NOT_KERNEL_EVENTS = new Set(['abi', 'mode', 'map_id', 'conns', 'entries', 'ports', 'snat', 'fallback']);

/** Kernel event counters from the control file's lines (decimal values only, settings left out). */
export function kernelEventCounters(lines: Readonly<Record<string, string>>): [string, bigint][] {
  return Object.entries(lines).filter(([k, v]) => !NOT_KERNEL_EVENTS.has(k) && /^\d+$/.test(v)).map(([k, v]) => [k, BigInt(v)]);
}

export const RECONCILE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

const isTable = new WeakSet<object>();

/** A metric as prom-client's Registry sees one (name, help, type, get): its samples come from `values`. */
function customMetric(def: MetricDef, values: () => Promise<Sample[]>): Metric {
  const m = {
    name: def.name,
    help: def.help,
    type: def.type,
    aggregator: 'sum' as const,
    async get(): Promise<MetricObjectWithValues<MetricValue<string>>> {
      return { name: def.name, help: def.help, type: def.type as never, aggregator: 'sum', collect: () => undefined, values: await values() };
    },
  };
  return m as unknown as Metric;
}

/** A table metric: rendered by table.ts's fast path, its structured samples (getMetricsAsJSON) from tableSamples. */
function tableMetric(def: MetricDef, table: () => Promise<PreparedTable | undefined>): Metric {
  const m = customMetric(def, async () => {
    const t = await table();
    return t ? tableSamples(t.table, def.name) ?? [] : [];
  });
  isTable.add(m);
  return m;
}

export interface MetricsOptions {
  source: MetricsSource;
  /** How long one IPVS dump serves scrapes (ms). */
  cacheMs: number;
  /** prom-client's process_* and nodejs_* metrics (default true). */
  processMetrics?: boolean;
  now?: () => number;
  /** Told when a dump for a scrape fails (the scrape still serves everything else). */
  onDumpError?: (e: unknown) => void;
}

export class DaemonMetrics implements ChangeObserver {
  readonly registry = new Registry();
  readonly health: HealthReporter;
  private readonly cache: SnapshotCache<PreparedTable>;
  private readonly reconcileDuration: Histogram<string>;
  private readonly reconcileFailures: Counter<string>;
  private readonly reconcileOps: Counter<string>;
  private readonly reloadDuration: Histogram<string>;
  private readonly reloadFailures: Counter<string>;
  private readonly dumpDuration: Gauge<string>;
  private readonly dumpFailures: Counter<string>;
  /** The dump this scrape uses (undefined when it failed), shared by the table metrics of one render. */
  private current: Promise<PreparedTable | undefined> | undefined;
  /** The table's text of the last dump: scrapes served by the same dump share one rendering (dropped after cacheMs). */
  private rendered: { table: PreparedTable; text: Map<string, string>; timer: NodeJS.Timeout } | undefined;

  constructor(private readonly opts: MetricsOptions) {
    const now = opts.now ?? Date.now;
    const reg = this.registry;
    const help = (d: MetricDef): { name: string; help: string; labelNames: string[]; registers: Registry[] } =>
      ({ name: d.name, help: d.help, labelNames: [...d.labels], registers: [reg] });

    this.cache = new SnapshotCache(async () => {
      const t0 = process.hrtime.bigint();
      const table = await opts.source.services();
      this.dumpDuration.set(Number(process.hrtime.bigint() - t0) / 1e9);
      return prepareTable(table);
    }, opts.cacheMs, now);

    for (const d of Object.values(TABLE)) reg.registerMetric(tableMetric(d, () => this.table()));

    this.reconcileDuration = new Histogram({ ...help(CHANGES.reconcileDuration), buckets: RECONCILE_BUCKETS });
    this.reconcileFailures = new Counter(help(CHANGES.reconcileFailures));
    this.reconcileOps = new Counter(help(CHANGES.reconcileOps));
    this.reloadDuration = new Histogram({ ...help(CHANGES.reloadDuration), buckets: RECONCILE_BUCKETS });
    this.reloadFailures = new Counter(help(CHANGES.reloadFailures));
    this.dumpDuration = new Gauge(help(DATAPATH.dumpDuration));
    this.dumpFailures = new Counter(help(DATAPATH.dumpFailures));

    const read = (): DataPathReading => opts.source.dataPath();
    new Gauge({
      ...help(DATAPATH.info),
      collect(): void {
        const r = read();
        this.reset();
        this.set({ version: r.version, mode: r.mode, configured_mode: r.configuredMode }, 1);
      },
    });
    new Counter({
      ...help(DATAPATH.events),
      collect(): void {
        this.reset();
        for (const [k, v] of Object.entries(read().counters)) this.inc({ counter: k.toLowerCase() }, Number(v));
      },
    });
    new Counter({
      ...help(DATAPATH.kernelEvents),
      collect(): void {
        this.reset();
        for (const [k, v] of kernelEventCounters(read().kernelCounters)) this.inc({ counter: k }, Number(v));
      },
    });
    // Label-less gauges that have no sample outside bpf mode (prom-client's own would print 0).
    const optional = (d: MetricDef, v: () => number | bigint | null | undefined): void =>
      reg.registerMetric(customMetric(d, async () => {
        const x = v();
        return x === null || x === undefined ? [] : [{ labels: {}, value: Number(x) }];
      }));
    optional(DATAPATH.kernelConnections, () => {
      const c = read().kernelCounters.conns;
      return c !== undefined && /^\d+$/.test(c) ? Number(c) : null;
    });
    optional(DATAPATH.mapEntries, () => read().mapEntries);
    optional(DATAPATH.mapCapacity, () => read().mapCapacity);
    optional(CHANGES.lastReloadSuccess, () => (read().lastReload.ok ? 1 : 0));
    optional(CHANGES.lastReloadTimestamp, () => read().lastReload.atMs / 1000);
    this.health = new HealthMetrics(reg);
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: reg });
  }

  /** The dump of the scrape under way, or a cached / new one. */
  private table(): Promise<PreparedTable | undefined> {
    this.current ??= this.cache.get().then(
      (t) => t,
      (e: unknown) => {
        this.dumpFailures.inc();
        this.opts.onDumpError?.(e);
        return undefined;
      },
    ).finally(() => {
      this.current = undefined;
    });
    return this.current;
  }

  reconciled(trigger: string, seconds: number, outcome: { ops: readonly IpvsOp[] } | { error: unknown }): void {
    this.reconcileDuration.observe({ trigger }, seconds);
    if ('error' in outcome) {
      this.reconcileFailures.inc({ trigger });
      return;
    }
    const byOp = new Map<string, number>();
    for (const o of outcome.ops) byOp.set(o.op, (byOp.get(o.op) ?? 0) + 1);
    for (const [op, n] of byOp) this.reconcileOps.inc({ op }, n);
    // the table changed: the next scrape reads it again
    if (outcome.ops.length) this.cache.invalidate();
  }

  reloaded(seconds: number, ok: boolean): void {
    this.reloadDuration.observe(seconds);
    if (!ok) this.reloadFailures.inc();
  }

  /** The exposition text (Prometheus text format 0.0.4), in chunks (one per metric; the table's can be large). */
  async render(): Promise<string[]> {
    const metrics = this.registry.getMetricsAsArray();
    const needsTable = metrics.some((m) => isTable.has(m));
    const table = needsTable ? await this.table() : undefined;
    const out: string[] = [];
    for (const m of metrics) {
      if (isTable.has(m)) {
        if (table) out.push(this.tableText(table, m.name));
        continue;
      }
      out.push(`${await this.registry.getSingleMetricAsString(m.name)}\n\n`);
    }
    return out;
  }

  private tableText(table: PreparedTable, name: string): string {
    if (this.rendered?.table !== table) {
      if (this.rendered) clearTimeout(this.rendered.timer);
      const timer = setTimeout(() => {
        this.rendered = undefined;
      }, this.opts.cacheMs);
      timer.unref();
      this.rendered = { table, text: new Map(), timer };
    }
    let t = this.rendered.text.get(name);
    if (t === undefined) {
      t = `${renderTableMetric(table, name)!}\n\n`;
      this.rendered.text.set(name, t);
    }
    return t;
  }

  /** The names every scrape can carry (ours and prom-client's process metrics). */
  names(): string[] {
    return this.registry.getMetricsAsArray().map((m) => m.name);
  }
}

export const CONTENT_TYPE: string = Registry.PROMETHEUS_CONTENT_TYPE;
