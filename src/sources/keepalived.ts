/**
 * The keepalived source: keepalived.conf files (their LVS half) with keepalived's health checks. Its table
 * is what keepalived would have in IPVS now: it changes on its own as checkers pass and fail, naming the
 * virtual services a verdict touched. Read again at every reload; health carries over for real servers
 * and checkers that are still configured (as keepalived's reload does), so a reload does not put a failed
 * real server back. Bad files refuse the read (file:line: keyword: message) and the old state runs on.
 */
import type { ServiceKey } from '../ipvs/model';
import {
  CheckScheduler,
  formatProblem,
  HealthState,
  KeepalivedConfigError,
  parseKeepalivedConfig,
  runNotify,
  type HealthEvents,
  type KeepalivedConfig,
  type RealServerHealth,
  type VirtualServer,
} from '../keepalived';
import type { HealthReporter } from '../metrics/health';
import { portFor } from '../keepalived/state';
import { SourceError, tableOf, EMPTY_TABLE, type DesiredTable, type Source, type SourceChanged } from './source';

export interface KeepalivedSourceOptions {
  /** One line per event (checker verdicts, pool changes, quorum, ignored configuration). */
  log?: (level: 'info' | 'notice' | 'warning', message: string) => void;
  /** Checks in flight at once (default DEFAULT_MAX_CONCURRENT). */
  maxConcurrent?: number;
  /** Another listener of health events. */
  events?: HealthEvents;
  /** Health-check metrics: every checker verdict, per virtual service the real server serves. */
  health?: HealthReporter;
  /** Starts notify scripts (default runNotify). */
  notify?: (script: string) => void;
}

/** Reads and merges the keepalived.conf files named (each with its includes). Throws SourceError. */
export function readKeepalivedConfigs(paths: readonly string[]): KeepalivedConfig {
  const out: KeepalivedConfig = { files: [], virtualServers: [], ignored: [], warnings: [] };
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const p of paths) {
    let c: KeepalivedConfig;
    try {
      c = parseKeepalivedConfig(p);
    } catch (e) {
      if (e instanceof KeepalivedConfigError) {
        problems.push(...e.problems.map(formatProblem));
        continue;
      }
      throw e;
    }
    for (const vs of c.virtualServers) {
      for (const s of vs.services) {
        const id = JSON.stringify(s.key);
        const prev = seen.get(id);
        if (prev) problems.push(`${vs.where.file}:${vs.where.line}: virtual_server: ${vs.name} is also defined at ${prev}`);
        seen.set(id, `${vs.where.file}:${vs.where.line}`);
      }
    }
    out.files.push(...c.files);
    out.virtualServers.push(...c.virtualServers);
    out.ignored.push(...c.ignored);
    out.warnings.push(...c.warnings);
  }
  if (problems.length > 0) throw new SourceError(problems.join('\n'));
  return out;
}

export class KeepalivedSource implements Source {
  private state: HealthState | undefined;
  private scheduler: CheckScheduler | undefined;
  private changed: SourceChanged | undefined;
  private last: DesiredTable = EMPTY_TABLE;
  private closed = false;

  constructor(
    public paths: readonly string[],
    private readonly opts: KeepalivedSourceOptions = {},
  ) {}

  get name(): string {
    return `keepalived ${this.paths.join(', ')}`;
  }

  /** Parses the files; on success the new configuration replaces the old, health carried over. */
  async read(): Promise<DesiredTable> {
    const cfg = readKeepalivedConfigs(this.paths);
    const log = this.opts.log ?? ((): void => undefined);
    for (const line of cfg.ignored) log('info', `keepalived: ${line}`);
    for (const line of cfg.warnings) log('warning', `keepalived: ${line}`);
    const prior = this.state;
    const oldScheduler = this.scheduler;
    if (prior && this.opts.health) {
      // Services no longer configured: their health series go.
      const now = new Set(cfg.virtualServers.flatMap((vs) => vs.services.map((s) => JSON.stringify(s.key))));
      for (const vs of prior.config.virtualServers) for (const s of vs.services) if (!now.has(JSON.stringify(s.key))) this.opts.health.forget(s.key);
    }
    this.state = new HealthState(cfg, this.events(), prior);
    this.scheduler = new CheckScheduler(this.state, {
      maxConcurrent: this.opts.maxConcurrent,
      log,
      onChange: (v) => this.verdict(v),
    });
    void oldScheduler?.stop();
    if (this.changed && !this.closed) this.scheduler.start();
    this.last = this.table();
    return this.last;
  }

  current(): DesiredTable {
    return this.last;
  }

  /** Called once the daemon has applied the first table: the checkers start then. */
  subscribe(changed: SourceChanged): void {
    this.changed = changed;
    if (!this.closed) this.scheduler?.start();
  }

  close(): void {
    this.closed = true;
    void this.scheduler?.stop();
  }

  /** Health of every real server (for status and metrics); [] before the first read. */
  health(): RealServerHealth[] {
    return this.state?.snapshot() ?? [];
  }

  /** Quorum state of every virtual server. */
  quorums(): { vs: string; up: boolean }[] {
    return this.state?.quorums() ?? [];
  }

  private table(): DesiredTable {
    return tableOf(this.state?.desired() ?? []);
  }

  private verdict(v: number): void {
    if (this.closed || !this.state) return;
    this.last = this.table();
    const keys: ServiceKey[] = this.state.config.virtualServers[v].services.map((s) => s.key);
    this.changed?.(keys);
  }

  private events(): HealthEvents {
    const log = this.opts.log ?? ((): void => undefined);
    const extra = this.opts.events ?? {};
    const notify = this.opts.notify ?? ((script: string): void => void runNotify(script, 30, (m) => log('warning', `keepalived: notify script failed: ${m}`)));
    const rsName = (vs: VirtualServer, d: { address: string; port: number; family: string }): string =>
      `${d.family === 'inet6' ? `[${d.address}]` : d.address}:${d.port} of ${vs.name}`;
    return {
      realServer: (e) => {
        const how = e.rs.inhibit ? (e.alive ? 'enabled' : 'disabled (weight 0)') : e.alive ? 'added to the pool' : 'removed from the pool';
        log('notice', `keepalived: real server ${rsName(e.vs, e.rs.dest)} ${how}`);
        extra.realServer?.(e);
      },
      checker: (e) => {
        const kind = e.rs.checkers[e.checker].kind;
        for (const s of e.vs.services) {
          this.opts.health?.transition({ service: s.key, server: { address: e.rs.dest.address, port: portFor(s.key, e.rs.dest) }, checker: kind, up: e.up });
        }
        extra.checker?.(e);
      },
      quorum: (e) => {
        log('notice', `keepalived: ${e.vs.name} ${e.up ? 'has' : 'lost'} its quorum (live weight ${e.weight}, quorum ${e.vs.quorum})${e.sorryServerIn ? '; sorry server in' : ''}`);
        extra.quorum?.(e);
      },
      notify: (e) => {
        log('info', `keepalived: running ${e.why} script for ${e.rs ? rsName(e.vs, e.rs.dest) : e.vs.name}: ${e.script}`);
        notify(e.script);
        extra.notify?.(e);
      },
    };
  }
}
