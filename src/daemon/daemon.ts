/**
 * The daemon's work: keep IPVS equal to the merged desired table of its rule sources (src/sources: the rule
 * files, and whatever else the configuration names; reconcile: only the differences, edits in place, all or
 * nothing), run the data path in bpf mode, and keep the status snapshot the D-Bus API shows.
 * Every change (reload, ApplyRules, SetWeight, a source's own change) runs one at a time, in arrival order.
 * A source that changes on its own names the services that changed: only those are read from the kernel
 * and reconciled (changes that arrive while one runs are coalesced into the next).
 */
import type { IpvsClient } from '../ipvs/netlink';
import { destinationId, serviceKeyId, type DesiredService, type Destination, type DestinationRef, type IpvsOp, type ServiceKey } from '../ipvs/model';
import { reconcile } from '../ipvs/reconcile';
import { commandToOp, parseRules, replayRules, RuleFileError } from '../ipvs/rules';
import { destinationOnly } from '../ipvs/rules';
import type { InvertContext } from '../ipvs/reconcile';
import { applyAtomically, TransactionError, type SourcedOp } from '../ipvs/transaction';
import { ALERT_LOG_INTERVAL_MS, CounterAlerts } from './alerts';
import { kubernetesEnabled, RESTART_ONLY, type DaemonConfig } from './config';
import type { DataPath, DataPathFactory } from './datapath';
import { FLOWS_PAGE_DEFAULT, FLOWS_PAGE_MAX } from './dbus-api';
import type { ChangeObserver, DataPathReading } from '../metrics/registry';
import type { Logger } from './log';
import type { HealthReporter } from '../metrics/health';
import { ConfigProblem } from './preflight';
import { KeepalivedSource, type KeepalivedSourceOptions } from '../sources/keepalived';
import { RuleFileSource } from '../sources/rule-files';
import {
  extraOps, lookupService, mergeTables, SourceConflictError, SourceError, type DesiredTable, type Source,
} from '../sources/source';
import { summarizeOps } from './summary';
import { serviceStatus, type DaemonStatus, type FlowPage, type ReloadStatus, type ServiceStatus } from './status';

export const VERSION: string = (() => {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('../../package.json') as { version: string }).version;
  } catch {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('../../../package.json') as { version: string }).version;
  }
})();

/** A change the daemon refused; nothing was changed. `kind` becomes the D-Bus error name. */
export class ChangeRefused extends Error {
  override name = 'ChangeRefused';
  constructor(
    readonly kind: 'InvalidConfig' | 'InvalidRules' | 'KernelRefused' | 'NoSuchObject' | 'NoDataPath' | 'InvalidArgs' | 'Stopping',
    message: string,
  ) {
    super(message);
  }
}

export interface DaemonDeps {
  log: Logger;
  /** Reads the configuration again (same flags and environment); throws ConfigError. */
  loadConfig(): DaemonConfig;
  ipvs: IpvsClient;
  /** Chooses and starts the data path for the configured mode. */
  dataPath: DataPathFactory;
  /** The rule sources a configuration names (default: its rule files only). */
  sources?: SourceFactory;
  /** Told of every change's duration and outcome (the metrics). */
  observer?: ChangeObserver;
}

const seconds = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;

/**
 * The sources for a configuration. At a reload it gets the sources running now and returns the ones to
 * keep (long-lived watches) among the new ones; those not returned are closed after a successful reload.
 */
export type SourceFactory = (cfg: DaemonConfig, running: readonly Source[]) => Source[];

export const ruleFilesOnly: SourceFactory = (cfg, running) => defaultSources()(cfg, running);

/** The rule files, and the keepalived files when configured (their events logged to `log`). */
export const defaultSources = (log?: Logger, health?: HealthReporter): SourceFactory => (cfg, running) => {
  if (kubernetesEnabled(cfg)) {
    throw new ChangeRefused('InvalidConfig', 'kubernetes: this source factory has no kubernetes source (the daemon\'s own, configuredSources in src/daemon/sources.ts, has)');
  }
  const out: Source[] = [new RuleFileSource(cfg.rules)];
  if (cfg.keepalived.length > 0) out.push(keepalivedSource(cfg, running, { ...(log ? { log: (level, m) => log[level](m) } : {}), health }));
  return out;
};

/** The keepalived source of a configuration: the running one (its health state carries over a reload), else a new one. */
export function keepalivedSource(cfg: DaemonConfig, running: readonly Source[], opts: KeepalivedSourceOptions = {}): KeepalivedSource {
  const old = running.find((s): s is KeepalivedSource => s instanceof KeepalivedSource);
  if (old) {
    old.paths = [...cfg.keepalived];
    return old;
  }
  return new KeepalivedSource(cfg.keepalived, opts);
}

/** How often draining real servers' connections are looked at. */
export const DRAIN_POLL_MS = 1000;

interface Drain {
  serviceId: string;
  serverId: string;
  key: ServiceKey;
  ref: DestinationRef;
  deadline: number;
  removed: boolean;
}

/** More changed services than this in one go are reconciled against the whole table (one dump is cheaper). */
export const INCREMENTAL_MAX = 256;

export class Daemon {
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * The last snapshot of the kernel's table as the status shows it, and each service's key, in the
   * kernel's order. The decoded table itself is not kept: for 10k x 10 it was most of the daemon's memory.
   */
  private services: ServiceStatus[] = [];
  private keys: ServiceKey[] = [];
  /** serviceKeyId -> position in `keys` and in statusCache.services; rebuilt with every snapshot. */
  private tableIndex: Map<string, number> | undefined;
  private lastReload: ReloadStatus = { usec: 0n, ok: true, message: '' };
  private listeners: ((s: DaemonStatus) => void)[] = [];
  private statusCache: DaemonStatus;
  private readonly alerts: CounterAlerts;
  /** The change running now (for the stop's log line), undefined when idle. */
  private running: string | undefined;
  private stopping = false;
  private closed = false;
  private refreshing: Promise<void> = Promise.resolve();
  /** The refresh queued behind the running one, not started yet. */
  private refreshWaiting: Promise<void> | undefined;
  /** Services named by sources' own changes and not synced yet ('all': a full reconcile). */
  private pending: Map<string, ServiceKey> | 'all' | undefined;
  private syncQueued = false;
  private readonly subscribed = new WeakSet<Source>();
  /** Real servers being drained (weight 0 until their connections end) or drained (out), by `${service}|${server}`. */
  private readonly drains = new Map<string, Drain>();
  private drainTimer: NodeJS.Timeout | undefined;

  private constructor(
    private cfg: DaemonConfig,
    private readonly deps: DaemonDeps,
    private readonly dp: DataPath,
    private sources: Source[],
  ) {
    this.alerts = new CounterAlerts(Math.max(ALERT_LOG_INTERVAL_MS, cfg.statusInterval * 1000));
    this.statusCache = this.buildStatus();
  }

  /**
   * Start: check the rules, bring IPVS to them, start the data path. Throws (and changes nothing in
   * IPVS) if the rules are bad; the caller exits non-zero so systemd reports the failed start.
   */
  static async start(cfg: DaemonConfig, deps: DaemonDeps): Promise<Daemon> {
    const sources = makeSources(deps, cfg, []);
    let dp: DataPath;
    try {
      const tables = await readSources(sources);
      try {
        dp = await deps.dataPath(cfg, deps.log);
      } catch (e) {
        if (e instanceof ConfigProblem) throw new ChangeRefused('InvalidConfig', e.message);
        throw e;
      }
      const d = new Daemon(cfg, deps, dp, sources);
      const summary = await d.applyFull(tables, 'start');
      d.lastReload = { usec: nowUsec(), ok: true, message: summary };
      deps.log.notice(`started in ${dp.mode} mode${dp.reason ? ` (${dp.reason})` : ''}; ${sources.map((s) => s.name).join('; ')}: ${summary}`);
      for (const s of sources) d.subscribe(s);
      await d.refresh();
      return d;
    } catch (e) {
      for (const s of sources) s.close?.();
      throw e;
    }
  }

  get config(): DaemonConfig {
    return this.cfg;
  }

  status(): DaemonStatus {
    return this.statusCache;
  }

  /** Called with the new snapshot after every refresh. */
  onStatus(cb: (s: DaemonStatus) => void): void {
    this.listeners.push(cb);
  }

  /** Re-read configuration and rules, apply only the differences. Refusals change nothing. */
  reload(): Promise<string> {
    return this.serial('reload', async () => {
      const t0 = process.hrtime.bigint();
      try {
        const summary = await this.reloadNow();
        this.lastReload = { usec: nowUsec(), ok: true, message: summary };
        this.deps.observer?.reloaded(seconds(t0), true);
        this.deps.log.notice(`reloaded: ${summary}`);
        return summary;
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        this.lastReload = { usec: nowUsec(), ok: false, message: msg };
        this.deps.observer?.reloaded(seconds(t0), false);
        this.deps.log.error(`reload refused, nothing changed:\n${msg}`);
        throw e;
      } finally {
        await this.refresh();
      }
    });
  }

  /** ipvsadm -R text applied on top of the current table, all or nothing. Returns the summary. */
  applyRules(text: string): Promise<string> {
    return this.serial('ApplyRules', async () => {
      let lines;
      const t0 = process.hrtime.bigint();
      try {
        lines = parseRules(text, 'input').commands;
        const before = await this.deps.ipvs.services({ counters: false });
        replayRules(lines, { initial: before, source: 'input' });
        const ops: SourcedOp[] = lines.flatMap(({ line, command }) => {
          const op = commandToOp(command);
          return op ? [{ op, line, source: 'input' }] : [];
        });
        await applyAtomically(this.deps.ipvs, ops, before, await this.context(ops.map((o) => o.op)));
        this.deps.observer?.reconciled('apply_rules', seconds(t0), { ops: ops.map((o) => o.op) });
        const summary = summarizeOps(ops.map((o) => o.op));
        this.deps.log.notice(`rules applied over D-Bus: ${summary}`);
        return summary;
      } catch (e) {
        this.deps.observer?.reconciled('apply_rules', seconds(t0), { error: e });
        throw refusal(e);
      } finally {
        await this.refresh();
      }
    });
  }

  /**
   * Changes one real server's weight in place (connections stay). The one-change path: the service is
   * found in the last snapshot, read fresh from the kernel on its own (not the whole table), edited with
   * one netlink message, and patched into the snapshot; listeners hear of it after the reply.
   */
  setWeight(serviceId: string, serverId: string, weight: number): Promise<void> {
    return this.serial('SetWeight', async () => {
      let resync = true;
      const t0 = process.hrtime.bigint();
      try {
        if (!Number.isInteger(weight) || weight < 0 || weight > 2147483647) {
          throw new ChangeRefused('InvalidRules', `weight ${weight} is out of range (0-2147483647)`);
        }
        let known = this.snapshotKey(serviceId);
        if (!known) {
          await this.refresh(); // a service added since the last snapshot (by ApplyRules or ipvsadm)
          known = this.snapshotKey(serviceId);
        }
        const svc = known && (await this.deps.ipvs.service(known, { counters: false }));
        if (!svc) throw new ChangeRefused('NoSuchObject', `no service ${JSON.stringify(serviceId)} (ids as in the Services property)`);
        const dest = svc.destinations.find((d) => destinationId(d) === serverId);
        if (!dest) throw new ChangeRefused('NoSuchObject', `service ${serviceId} has no real server ${JSON.stringify(serverId)}`);
        resync = false;
        if (dest.weight === weight) return void this.deps.observer?.reconciled('set_weight', seconds(t0), { ops: [] });
        const op: IpvsOp = { op: 'edit-dest', service: { ...svc.key }, dest: { ...destinationOnly(dest), weight } };
        await applyAtomically(this.deps.ipvs, [{ op }], [svc]);
        this.deps.observer?.reconciled('set_weight', seconds(t0), { ops: [op] });
        this.patchWeight(serviceId, serverId, weight);
        this.deps.log.notice(`weight of ${serverId} in ${serviceId}: ${dest.weight} -> ${weight}`);
      } catch (e) {
        resync = true;
        this.deps.observer?.reconciled('set_weight', seconds(t0), { error: e });
        throw refusal(e);
      } finally {
        if (resync) await this.refresh();
      }
    });
  }

  /**
   * Drain: the real server's weight goes to 0 at once (no new connections), and it is removed when its
   * connections have ended (active + inactive 0) or after `maxSeconds`, whichever comes first. The drain
   * holds against every source (a reload or a health check does not put the real server back) until no
   * source names it any more, or the daemon restarts. Returns what was done.
   */
  drain(serviceId: string, serverId: string, maxSeconds: number): Promise<string> {
    return this.serial('Drain', async () => {
      if (!Number.isInteger(maxSeconds) || maxSeconds < 0 || maxSeconds > 86400 * 7) {
        throw new ChangeRefused('InvalidArgs', `maximum drain time ${maxSeconds} s is out of range (0-604800)`);
      }
      let known = this.snapshotKey(serviceId);
      if (!known) {
        await this.refresh();
        known = this.snapshotKey(serviceId);
      }
      const svc = known && (await this.deps.ipvs.service(known, { counters: false }));
      if (!svc) throw new ChangeRefused('NoSuchObject', `no service ${JSON.stringify(serviceId)} (ids as in the Services property)`);
      const dest = svc.destinations.find((d) => destinationId(d) === serverId);
      if (!dest) throw new ChangeRefused('NoSuchObject', `service ${serviceId} has no real server ${JSON.stringify(serverId)}`);
      const id = `${serviceId}|${serverId}`;
      const have = this.drains.get(id);
      if (have) return `${serverId} of ${serviceId} is already ${have.removed ? 'drained' : 'draining'}`;
      const drain: Drain = {
        serviceId, serverId, key: { ...svc.key }, ref: { family: dest.family, address: dest.address, port: dest.port },
        deadline: Date.now() + maxSeconds * 1000, removed: false,
      };
      this.drains.set(id, drain);
      try {
        if (dest.weight !== 0) {
          await applyAtomically(this.deps.ipvs, [{ op: { op: 'edit-dest', service: { ...svc.key }, dest: { ...destinationOnly(dest), weight: 0 } } }], [svc]);
        }
      } catch (e) {
        this.drains.delete(id);
        throw refusal(e);
      }
      this.deps.log.notice(`draining ${serverId} of ${serviceId}: weight 0, removed when its connections end or in ${maxSeconds} s`);
      this.armDrains();
      await this.refresh();
      return `draining ${serverId} of ${serviceId}: weight 0, removed when its connections end (at most ${maxSeconds} s)`;
    });
  }

  /** The drains now. */
  drainStatus(): { serviceId: string; serverId: string; removed: boolean; secondsLeft: number }[] {
    const now = Date.now();
    return [...this.drains.values()].map((d) => ({
      serviceId: d.serviceId, serverId: d.serverId, removed: d.removed, secondsLeft: d.removed ? 0 : Math.max(0, Math.ceil((d.deadline - now) / 1000)),
    }));
  }

  private armDrains(): void {
    if (this.drainTimer || this.closed) return;
    this.drainTimer = setInterval(() => {
      if (![...this.drains.values()].some((d) => !d.removed)) {
        clearInterval(this.drainTimer);
        this.drainTimer = undefined;
        return;
      }
      this.serial('drain check', () => this.checkDrains()).catch(() => undefined);
    }, DRAIN_POLL_MS);
    this.drainTimer.unref();
  }

  /** Removes draining real servers whose connections ended or whose time is up. */
  private async checkDrains(): Promise<void> {
    let changed = false;
    for (const d of this.drains.values()) {
      if (d.removed) continue;
      const svc = await this.deps.ipvs.service(d.key, { counters: false });
      const dest = svc?.destinations.find((x) => destinationId(x) === d.serverId);
      if (!svc || !dest) {
        d.removed = true;
        continue;
      }
      const conns = dest.activeConns + dest.inactiveConns;
      const late = Date.now() >= d.deadline;
      if (conns > 0 && !late) continue;
      try {
        await applyAtomically(this.deps.ipvs, [{ op: { op: 'delete-dest', service: { ...d.key }, dest: { ...d.ref } } }], [svc]);
        d.removed = true;
        changed = true;
        this.deps.log.notice(`drained ${d.serverId} of ${d.serviceId}: removed (${conns > 0 ? `time up with ${conns} connections left` : 'no connections left'})`);
      } catch (e) {
        this.deps.log.warning(`drain of ${d.serverId} of ${d.serviceId}: cannot remove it: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (changed) await this.refresh();
  }

  /** What the sources want, with the drains held: draining real servers at weight 0, drained ones out. */
  private withDrains(services: Iterable<DesiredService>): DesiredService[] {
    const out = [...services];
    if (this.drains.size === 0) return out;
    return out.map((s) => {
      const sid = serviceKeyId(s.key);
      if (![...this.drains.values()].some((d) => d.serviceId === sid)) return s;
      const dests: Destination[] = [];
      for (const d of s.destinations) {
        const dr = this.drains.get(`${sid}|${destinationId(d)}`);
        if (!dr) dests.push(d);
        else if (!dr.removed) dests.push({ ...d, weight: 0 });
      }
      return { ...s, destinations: dests };
    });
  }

  /** Before a full apply: drains of real servers no source names any more are over. */
  private forgetDrains(desired: Iterable<DesiredService>): void {
    if (this.drains.size === 0) return;
    const named = new Set<string>();
    for (const s of desired) for (const d of s.destinations) named.add(`${serviceKeyId(s.key)}|${destinationId(d)}`);
    for (const [id, d] of this.drains) {
      if (named.has(id)) continue;
      this.drains.delete(id);
      this.deps.log.info(`drain of ${d.serverId} of ${d.serviceId} ended: no source names it any more`);
    }
  }

  /** The key of the service of the last snapshot named `id` (serviceKeyId). */
  private snapshotKey(id: string): ServiceKey | undefined {
    const i = this.tableIndex?.get(id);
    return i === undefined ? undefined : this.keys[i];
  }

  /** Puts a weight just applied into the snapshot and its status, and tells listeners after this turn. */
  private patchWeight(serviceId: string, serverId: string, weight: number): void {
    const i = this.tableIndex?.get(serviceId);
    if (i === undefined) return;
    const rs = this.statusCache.services[i]?.realServers.find((r) => r.id === serverId);
    if (rs) rs.weight = weight;
    setImmediate(() => {
      for (const l of this.listeners) l(this.statusCache);
    });
  }

  /**
   * One page of the conntrack map: at most `limit` entries (0: FLOWS_PAGE_DEFAULT; more than FLOWS_PAGE_MAX is
   * lowered to it) from `cursor` (0: the start); `next` is 0 after the last page. Only that page is read.
   */
  listFlows(cursor: bigint, limit: number): FlowPage {
    if (this.dp.mode !== 'bpf') throw new ChangeRefused('NoDataPath', `no BPF data path in ${this.dp.mode} mode${this.dp.reason ? ` (${this.dp.reason})` : ''}`);
    if (cursor < 0n || cursor > 0x1_0000_0000n) throw new ChangeRefused('InvalidArgs', `cursor ${cursor} is not one ListFlows returned`);
    const n = limit <= 0 ? FLOWS_PAGE_DEFAULT : Math.min(limit, FLOWS_PAGE_MAX);
    return this.dp.flows(cursor, n);
  }

  /** Reads the kernel's table and counters into the snapshot; logs counters that grew; tells listeners. */
  refresh(): Promise<void> {
    // Stopping: nobody reads the status any more, and a full table read would only delay the exit.
    if (this.closed || this.stopping) return this.refreshing;
    // One read runs, at most one waits: a caller while one waits gets that one (it starts after the call, so
    // it sees what the caller changed). Without this a table read slower than statusInterval (16000 entries
    // under qemu TCG) queued one more read per tick, and a stop waited for all of them.
    if (this.refreshWaiting) return this.refreshWaiting;
    const run = this.refreshing.then(() => {
      this.refreshWaiting = undefined;
      return this.refreshNow();
    });
    this.refreshWaiting = run;
    this.refreshing = run.catch(() => undefined);
    return run;
  }

  private async refreshNow(): Promise<void> {
    if (this.closed || this.stopping) return;
    try {
      // One service at a time into the status: the decoded real servers die young.
      const services: ServiceStatus[] = [];
      const keys: ServiceKey[] = [];
      await this.deps.ipvs.eachService({}, (s) => {
        keys.push(s.key);
        services.push(serviceStatus(s));
      });
      this.services = services;
      this.keys = keys;
    } catch (e) {
      if (this.closed) return;
      this.deps.log.warning(`cannot read the IPVS table: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.statusCache = this.buildStatus();
    for (const line of this.alerts.observe(this.statusCache.kernelCounters, Date.now())) this.deps.log.warning(line);
    this.statusCache.alerts = this.alerts.status();
    // The status names each service by serviceKeyId already, in table order.
    this.tableIndex = new Map(this.statusCache.services.map((s, i) => [s.id, i]));
    for (const l of this.listeners) l(this.statusCache);
  }

  /** What change runs now ('reload', 'ApplyRules', 'SetWeight'), undefined when none. */
  get busyWith(): string | undefined {
    return this.running;
  }

  /**
   * Stop: changes not started yet are refused, the running one finishes (its rollback too: all or nothing),
   * then our handles close. IPVS rules, attached programs, pins and the map registration stay.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const s of this.sources) s.close?.();
    await this.queue;
    await this.refreshing;
    this.close();
  }

  /** Closes our handles only (see stop). */
  close(): void {
    if (this.drainTimer) clearInterval(this.drainTimer);
    this.drainTimer = undefined;
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sources) s.close?.();
    this.dp.close();
    this.deps.ipvs.close();
  }

  private buildStatus(): DaemonStatus {
    return {
      version: VERSION,
      mode: this.dp.mode,
      configuredMode: this.cfg.mode,
      modeReason: this.dp.reason,
      interfaces: this.dp.interfaces(),
      ruleFiles: [...this.cfg.rules],
      lastReload: this.lastReload,
      services: this.services,
      flowCount: this.dp.flowCount(),
      dataPathCounters: this.dp.counters(),
      kernelCounters: this.dp.kernelCounters(),
      alerts: this.alerts.status(),
    };
  }

  private async reloadNow(): Promise<string> {
    let next: DaemonConfig;
    try {
      next = this.deps.loadConfig();
    } catch (e) {
      throw new ChangeRefused('InvalidConfig', e instanceof Error ? e.message : String(e));
    }
    for (const key of RESTART_ONLY) {
      const [a, b] = [pick(this.cfg, key), pick(next, key)];
      if (JSON.stringify(a) !== JSON.stringify(b)) {
        this.deps.log.warning(`${key} changed (${JSON.stringify(a)} -> ${JSON.stringify(b)}): takes effect at the next restart`);
        setPath(next, key, a);
      }
    }
    let restartNote: string;
    try {
      restartNote = await this.dp.check(next);
    } catch (e) {
      if (e instanceof ConfigProblem) throw new ChangeRefused('InvalidConfig', `${next.config || 'configuration'}: ${e.message}`);
      throw e;
    }
    const sources = makeSources(this.deps, next, this.sources);
    const fresh = sources.filter((s) => !this.sources.includes(s));
    let summary: string;
    try {
      summary = await this.applyFull(await readSources(sources), 'reload');
    } catch (e) {
      for (const s of fresh) s.close?.();
      throw e;
    }
    for (const s of this.sources) if (!sources.includes(s)) s.close?.();
    this.sources = sources;
    // A full reconcile covers whatever the sources said before it.
    this.pending = undefined;
    for (const s of fresh) this.subscribe(s);
    this.dp.configure(next);
    if (next.log.level !== this.cfg.log.level) this.deps.log.setLevel(next.log.level);
    this.cfg = next;
    if (restartNote) this.deps.log.notice(restartNote);
    return restartNote ? `${summary}; ${restartNote}` : summary;
  }

  /** The whole table: every source's services merged; kernel services nobody names go unless a source keeps them. */
  private applyFull(parts: readonly SourceTable[], trigger: string): Promise<string> {
    return this.observed(trigger, async () => {
        let merged;
        try {
          merged = mergeTables(parts);
        } catch (e) {
          throw refusal(e);
        }
        for (const i of merged.ignored) this.deps.log.info(`${i.source}:line ${i.line}: ignored: ${i.why}`);
        const before: DesiredService[] = await this.deps.ipvs.services({ counters: false });
        const current = this.sources.some((s) => s.keeps)
          ? before.filter((s) => merged.services.has(serviceKeyId(s.key)) || !this.kept(s.key))
          : before;
        const kernel = {
          ...(merged.timeouts ? { timeouts: await this.deps.ipvs.timeouts() } : {}),
          ...(merged.daemons.length ? { daemons: await this.deps.ipvs.daemons() } : {}),
        };
        this.forgetDrains(merged.services.values());
        const ops = [...reconcile(current, this.withDrains(merged.services.values())), ...extraOps(merged, kernel)];
        return this.applyOps(ops, before, kernel);
    });
  }

  /** Only the services named: each read from the kernel on its own, reconciled against the sources' wish. */
  private applyKeys(parts: readonly SourceTable[], keys: Iterable<[string, ServiceKey]>, trigger: string): Promise<string> {
    return this.observed(trigger, async () => {
        const before: DesiredService[] = [];
        const desired: DesiredService[] = [];
        for (const [id, key] of keys) {
          let want;
          try {
            want = lookupService(parts, id);
          } catch (e) {
            throw refusal(e);
          }
          const have = await this.deps.ipvs.service(key, { counters: false });
          if (have && (want || !this.kept(key))) before.push(have);
          if (want) desired.push(want);
        }
        return this.applyOps(reconcile(before, this.withDrains(desired)), before, {});
    });
  }

  private kept(key: ServiceKey): boolean {
    return this.sources.some((s) => s.keeps?.(key));
  }

  /** Runs one change of the table, tells the observer its duration and outcome, and summarizes it. */
  private async observed(trigger: string, change: () => Promise<IpvsOp[]>): Promise<string> {
    const t0 = process.hrtime.bigint();
    try {
      const ops = await change();
      this.deps.observer?.reconciled(trigger, seconds(t0), { ops });
      return ops.length ? summarizeOps(ops) : 'no changes';
    } catch (e) {
      this.deps.observer?.reconciled(trigger, seconds(t0), { error: e });
      throw e;
    }
  }

  private async applyOps(ops: IpvsOp[], before: readonly DesiredService[], kernel: InvertContext): Promise<IpvsOp[]> {
    if (ops.length === 0) return ops;
    this.deps.log.info(`applying ${ops.length} changes to IPVS (all or nothing)`);
    try {
      await applyAtomically(this.deps.ipvs, ops.map((op) => ({ op })), before, kernel);
    } catch (e) {
      throw refusal(e);
    }
    for (const op of ops) this.deps.log.debug(`applied ${describeOp(op)}`);
    return ops;
  }

  /** What the metrics read at a scrape (cheap: no table dump). */
  dataPathReading(): DataPathReading {
    return {
      version: VERSION,
      mode: this.dp.mode,
      configuredMode: this.cfg.mode,
      counters: this.dp.counters(),
      kernelCounters: this.dp.kernelCounters(),
      mapEntries: this.dp.mode === 'bpf' ? this.dp.flowCount() : null,
      mapCapacity: this.dp.mapCapacity(),
      lastReload: { atMs: Number(this.lastReload.usec / 1000n), ok: this.lastReload.ok },
    };
  }

  /** Hooks the daemon to a source's own changes (once per source). */
  private subscribe(source: Source): void {
    if (!source.subscribe || this.subscribed.has(source)) return;
    this.subscribed.add(source);
    source.subscribe((keys) => this.sourceChanged(source, keys));
  }

  private sourceChanged(source: Source, keys?: readonly ServiceKey[]): void {
    if (this.stopping || this.closed || !this.sources.includes(source)) return;
    if (!keys) this.pending = 'all';
    else if (this.pending !== 'all') {
      const p = this.pending ?? new Map<string, ServiceKey>();
      this.pending = p;
      for (const k of keys) p.set(serviceKeyId(k), k);
      if (p.size > INCREMENTAL_MAX) this.pending = 'all';
    }
    if (this.syncQueued) return;
    this.syncQueued = true;
    this.serial(`sync from ${source.name}`, () => this.syncPending()).catch(() => undefined);
  }

  /** Applies what sources changed since the last sync; a refusal is logged and the next sync is a full one. */
  private async syncPending(): Promise<void> {
    this.syncQueued = false;
    const p = this.pending;
    this.pending = undefined;
    if (!p) return;
    const parts = this.sources.map((s) => ({ name: s.name, table: s.current() }));
    try {
      const summary = p === 'all' ? await this.applyFull(parts, 'source_sync') : await this.applyKeys(parts, p, 'source_sync');
      if (summary !== 'no changes') this.deps.log.info(`synced source changes: ${summary}`);
    } catch (e) {
      this.pending = 'all';
      const msg = e instanceof Error ? e.message : String(e);
      this.deps.log.error(`source changes refused, nothing changed (retried in full at the next change or reload):\n${msg}`);
    }
  }

  private async context(ops: readonly IpvsOp[]): Promise<InvertContext> {
    const needs = new Set(ops.map((o) => o.op));
    return {
      ...(needs.has('set-timeouts') ? { timeouts: await this.deps.ipvs.timeouts() } : {}),
      ...(needs.has('stop-daemon') ? { daemons: await this.deps.ipvs.daemons() } : {}),
    };
  }

  private serial<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const task = async (): Promise<T> => {
      if (this.stopping) throw new ChangeRefused('Stopping', `${what} refused: the daemon is stopping`);
      this.running = what;
      try {
        return await fn();
      } finally {
        this.running = undefined;
      }
    };
    const run = this.queue.then(task, task);
    this.queue = run.then(() => undefined, () => undefined);
    return run;
  }
}

/** The configuration's sources; bad settings of a source (its configuration file, say) refuse the change. */
function makeSources(deps: DaemonDeps, cfg: DaemonConfig, running: readonly Source[]): Source[] {
  try {
    return (deps.sources ?? ruleFilesOnly)(cfg, running);
  } catch (e) {
    if (e instanceof SourceError) throw new ChangeRefused('InvalidConfig', e.message);
    throw e;
  }
}

interface SourceTable {
  name: string;
  table: DesiredTable;
}

/** Reads every source afresh; bad input from any of them refuses the change (every source's errors listed). */
async function readSources(sources: readonly Source[]): Promise<SourceTable[]> {
  const tables = await Promise.allSettled(sources.map((s) => s.read()));
  const bad: string[] = [];
  const out: SourceTable[] = [];
  tables.forEach((t, i) => {
    if (t.status === 'fulfilled') out.push({ name: sources[i]!.name, table: t.value });
    else if (t.reason instanceof RuleFileError || t.reason instanceof SourceError) bad.push(t.reason.message);
    else throw t.reason;
  });
  if (bad.length > 0) throw new ChangeRefused('InvalidRules', bad.join('\n'));
  return out;
}

function refusal(e: unknown): unknown {
  if (e instanceof ChangeRefused) return e;
  if (e instanceof RuleFileError || e instanceof SourceError || e instanceof SourceConflictError) return new ChangeRefused('InvalidRules', e.message);
  if (e instanceof TransactionError) {
    return new ChangeRefused('KernelRefused', `${e.message}${e.rolledBack ? '; nothing was changed' : ''}`);
  }
  return e;
}

function describeOp(op: IpvsOp): string {
  switch (op.op) {
    case 'add-service':
    case 'edit-service':
      return `${op.op} ${serviceKeyId(op.service.key)}`;
    case 'delete-service':
      return `${op.op} ${serviceKeyId(op.key)}`;
    case 'add-dest':
    case 'edit-dest':
    case 'delete-dest':
      return `${op.op} ${serviceKeyId(op.service)} ${destinationId(op.dest)}`;
    default:
      return op.op;
  }
}

function nowUsec(): bigint {
  return BigInt(Date.now()) * 1000n;
}

function pick(o: object, dotted: string): unknown {
  return dotted.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), o);
}

function setPath(o: object, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  const last = keys.pop()!;
  const parent = keys.reduce<Record<string, unknown>>((v, k) => v[k] as Record<string, unknown>, o as Record<string, unknown>);
  parent[last] = value;
}
