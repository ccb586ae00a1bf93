/**
 * Rule sources: where the daemon's desired IPVS table comes from.
 *
 * A Source is one provider of desired IPVS state (the ipvsadm rule files, a Kubernetes watch, a keepalived
 * configuration, ...). It has a `name` for logs and errors, and gives its table two ways:
 *   - `read()`: read the source afresh (at start and at every reload; a file source re-reads its files).
 *     Errors name the file, line or field; the daemon then changes nothing.
 *   - `current()`: the table as last read or watched, without I/O.
 * A source that changes on its own (a watch) calls the callback given to `subscribe()`, with the keys of
 * the services whose desired state changed (the daemon then reads and changes only those), or with no keys
 * when anything may have changed (a full reconcile).
 *
 * The daemon merges the tables of all configured sources (mergeTables) into one desired table and drives
 * the kernel to it with the reconcile and transaction machinery (src/ipvs): all or nothing. The merged table
 * owns the whole IPVS table of the network namespace: a kernel service that no source names is removed,
 * unless a source `keeps()` it (kube-proxy's excludeCIDRs). Two sources naming the same virtual service, or
 * setting different timeouts or sync daemons for the same thing, is a conflict: SourceConflictError names
 * the object and both sources, and nothing is applied.
 */
import type { DesiredService, IpvsOp, ServiceKey, SyncDaemon, Timeouts } from '../ipvs/model';
import { serviceKeyId } from '../ipvs/model';

/** A line or object a source read but the daemon does not apply, with why. */
export interface IgnoredRule {
  source: string;
  line: number;
  why: string;
}

/** One source's desired state. */
export interface DesiredTable {
  /** Virtual services by serviceKeyId(key), in the order they are to be added. */
  services: ReadonlyMap<string, DesiredService>;
  /** Timeouts to set (a 0 field: leave the kernel's value); undefined: none. */
  timeouts?: Timeouts;
  /** Sync daemons to run. */
  daemons: readonly SyncDaemon[];
  ignored: readonly IgnoredRule[];
}

/** What a source may log through (the daemon's logger fits). One line per event. */
export interface SourceLog {
  error(msg: string): void;
  warning(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
}

/** Called by a source whose table changed on its own: `keys` are the services that changed (undefined: any). */
export type SourceChanged = (keys?: readonly ServiceKey[]) => void;

export interface Source {
  /** For logs and errors, e.g. "rule files /etc/ipvs-bpf/rules" or "kubernetes". */
  readonly name: string;
  /** Reads the source afresh. Throws an Error whose message names the file, line or field at fault. */
  read(): Promise<DesiredTable>;
  /** The table as last read or watched (no I/O). */
  current(): DesiredTable;
  /** For sources that change on their own: the daemon's callback. */
  subscribe?(changed: SourceChanged): void;
  /** Whether a kernel service no source names is to be left alone rather than removed. */
  keeps?(key: ServiceKey): boolean;
  /** Stops watches and timers. */
  close?(): void;
}

/** An empty table (a source with nothing to say yet). */
export const EMPTY_TABLE: DesiredTable = Object.freeze({ services: new Map(), daemons: [], ignored: [] });

/** Builds a table from a list of services (throws if one is named twice: a source bug, not bad input). */
export function tableOf(services: readonly DesiredService[], rest: Partial<Omit<DesiredTable, 'services'>> = {}): DesiredTable {
  const map = new Map<string, DesiredService>();
  for (const s of services) {
    const id = serviceKeyId(s.key);
    if (map.has(id)) throw new Error(`desired state names service ${id} twice`);
    map.set(id, s);
  }
  return { services: map, daemons: rest.daemons ?? [], ignored: rest.ignored ?? [], ...(rest.timeouts ? { timeouts: rest.timeouts } : {}) };
}

/** Bad input from a source (a file, line or field at fault, named in the message): nothing is applied. */
export class SourceError extends Error {
  override name = 'SourceError';
}

/** Two or more sources claim the same thing; the message has one line per conflict. */
export class SourceConflictError extends Error {
  override name = 'SourceConflictError';
  constructor(readonly conflicts: readonly string[]) {
    super(conflicts.join('\n'));
  }
}

/** The merged desired table, with which source each service came from. */
export interface MergedTable extends DesiredTable {
  /** The name of the source a service (by serviceKeyId) came from. */
  owner(id: string): string | undefined;
}

/**
 * One desired table from several: services of the first source first, each source's in its own order.
 * Timeouts merge field by field (a 0 field gives way). Throws SourceConflictError listing every conflict.
 */
export function mergeTables(parts: readonly { name: string; table: DesiredTable }[]): MergedTable {
  if (parts.length === 1) {
    const { name, table } = parts[0]!;
    return { ...table, owner: (id) => (table.services.has(id) ? name : undefined) };
  }
  const conflicts: string[] = [];
  const services = new Map<string, DesiredService>();
  const owner = new Map<string, string>();
  const timeouts: Timeouts = { tcp: 0, tcpFin: 0, udp: 0 };
  const timeoutOwner: Partial<Record<keyof Timeouts, string>> = {};
  let anyTimeouts = false;
  const daemons = new Map<string, { daemon: SyncDaemon; source: string }>();
  const ignored: IgnoredRule[] = [];
  for (const { name, table } of parts) {
    for (const [id, s] of table.services) {
      const prev = owner.get(id);
      if (prev !== undefined) {
        conflicts.push(`service ${id} is named by both ${prev} and ${name}`);
        continue;
      }
      owner.set(id, name);
      services.set(id, s);
    }
    if (table.timeouts) {
      anyTimeouts = true;
      for (const k of ['tcp', 'tcpFin', 'udp'] as const) {
        const v = table.timeouts[k];
        if (!v) continue;
        if (timeouts[k] && timeouts[k] !== v) {
          conflicts.push(`timeout ${k} is ${timeouts[k]} s in ${timeoutOwner[k]} but ${v} s in ${name}`);
          continue;
        }
        timeouts[k] = v;
        timeoutOwner[k] = name;
      }
    }
    for (const d of table.daemons) {
      const prev = daemons.get(d.state);
      if (prev && JSON.stringify(prev.daemon) !== JSON.stringify(d)) {
        conflicts.push(`sync daemon ${d.state} is set differently by ${prev.source} and ${name}`);
      } else if (!prev) daemons.set(d.state, { daemon: d, source: name });
    }
    ignored.push(...table.ignored);
  }
  if (conflicts.length > 0) throw new SourceConflictError(conflicts);
  return {
    services,
    owner: (id) => owner.get(id),
    daemons: [...daemons.values()].map((d) => d.daemon),
    ignored,
    ...(anyTimeouts ? { timeouts } : {}),
  };
}

/**
 * The desired service with id `id`, looked up in each source's table (the incremental path: no full
 * merge). Throws SourceConflictError when two sources name it.
 */
export function lookupService(parts: readonly { name: string; table: DesiredTable }[], id: string): DesiredService | undefined {
  let found: { name: string; s: DesiredService } | undefined;
  for (const { name, table } of parts) {
    const s = table.services.get(id);
    if (!s) continue;
    if (found) throw new SourceConflictError([`service ${id} is named by both ${found.name} and ${name}`]);
    found = { name, s };
  }
  return found?.s;
}

/** What the kernel has besides the service table (only read when a desired table asks for it). */
export interface KernelExtras {
  timeouts?: Timeouts;
  daemons?: readonly SyncDaemon[];
}

/** The ops besides the service table's: timeouts that differ and sync daemons that are not running. */
export function extraOps(want: Pick<DesiredTable, 'timeouts' | 'daemons'>, kernel: KernelExtras): IpvsOp[] {
  const ops: IpvsOp[] = [];
  const t = want.timeouts;
  if (t && kernel.timeouts) {
    const k = kernel.timeouts;
    if ((t.tcp && t.tcp !== k.tcp) || (t.tcpFin && t.tcpFin !== k.tcpFin) || (t.udp && t.udp !== k.udp)) {
      ops.push({ op: 'set-timeouts', timeouts: { ...t } });
    }
  }
  for (const d of want.daemons) {
    if (!kernel.daemons?.some((k) => k.state === d.state)) ops.push({ op: 'start-daemon', daemon: { ...d } });
  }
  return ops;
}
