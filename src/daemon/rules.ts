/**
 * The rule files the daemon keeps IPVS equal to. They are read in order as one ipvsadm -R input that
 * starts from an empty table (as after `ipvsadm -C`): together they describe the whole IPVS table of
 * the network namespace. Every bad line of every file is reported as `<file>:line N: message` and
 * nothing is applied when any line is bad.
 */
import { readdirSync, readFileSync, statSync } from 'fs';
import * as path from 'path';
import type { DesiredService, IpvsOp, SyncDaemon, Timeouts } from '../ipvs/model';
import { parseRules, replayRules, RuleFileError, type RuleLineError } from '../ipvs/rules';

export interface RuleSet {
  /** The files read, in order (directories expanded). */
  files: string[];
  services: DesiredService[];
  /** --set of the last file that has one (0 = leave the kernel's value). */
  timeouts?: Timeouts;
  /** Sync daemons the files start (a later --stop-daemon of the same state cancels it). */
  daemons: SyncDaemon[];
  /** Lines the daemon does not apply on its own, with why (e.g. -Z). */
  ignored: { source: string; line: number; why: string }[];
}

/** A rule file that cannot be read at all. */
export class RuleSourceError extends Error {
  override name = 'RuleSourceError';
}

/** The files named by the configuration: a directory stands for its *.rules files in name order. */
export function expandRuleFiles(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (e) {
      throw new RuleSourceError(`${p}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such rule file' : (e as Error).message}`);
    }
    if (!isDir) {
      out.push(p);
      continue;
    }
    out.push(...readdirSync(p).filter((n) => n.endsWith('.rules')).sort().map((n) => path.join(p, n)));
  }
  return out;
}

/** Builds the desired state from rule texts (pure: no file system, no kernel). */
export function ruleSetFromTexts(sources: readonly { name: string; text: string }[]): RuleSet {
  const errors: RuleLineError[] = [];
  const parsed = sources.map(({ name, text }) => {
    try {
      return { name, commands: parseRules(text, name).commands };
    } catch (e) {
      if (!(e instanceof RuleFileError)) throw e;
      errors.push(...e.errors);
      return { name, commands: [] };
    }
  });
  if (errors.length > 0) throw new RuleFileError(errors);

  let services: DesiredService[] = [];
  let timeouts: Timeouts | undefined;
  const daemons = new Map<string, SyncDaemon>();
  const ignored: RuleSet['ignored'] = [];
  for (const { name, commands } of parsed) {
    let r;
    try {
      r = replayRules(commands, { initial: services, source: name });
    } catch (e) {
      if (!(e instanceof RuleFileError)) throw e;
      errors.push(...e.errors);
      continue;
    }
    services = r.services;
    for (const { line, op } of r.otherOps) {
      if (op.op === 'set-timeouts') {
        const t = op.timeouts;
        timeouts = {
          tcp: t.tcp || (timeouts?.tcp ?? 0),
          tcpFin: t.tcpFin || (timeouts?.tcpFin ?? 0),
          udp: t.udp || (timeouts?.udp ?? 0),
        };
      } else if (op.op === 'start-daemon') daemons.set(op.daemon.state, op.daemon);
      else if (op.op === 'stop-daemon') daemons.delete(op.state);
      else if (op.op === 'zero') ignored.push({ source: name, line, why: 'zeroing counters (-Z) is not repeated on every reload' });
    }
  }
  if (errors.length > 0) throw new RuleFileError(errors);
  return { files: sources.map((s) => s.name), services, timeouts, daemons: [...daemons.values()], ignored };
}

/** Reads and checks the configured rule files. Throws RuleSourceError or RuleFileError. */
export function readRuleSet(paths: readonly string[]): RuleSet {
  const files = expandRuleFiles(paths);
  const sources = files.map((name) => {
    try {
      return { name, text: readFileSync(name, 'utf8') };
    } catch (e) {
      throw new RuleSourceError(`${name}: ${(e as Error).message}`);
    }
  });
  return ruleSetFromTexts(sources);
}

/** What the kernel has besides the service table (only read when the rule set asks for it). */
export interface KernelExtras {
  timeouts?: Timeouts;
  daemons?: readonly SyncDaemon[];
}

/** The ops besides the service table's: timeouts that differ and sync daemons that are not running. */
export function extraOps(rules: RuleSet, kernel: KernelExtras): IpvsOp[] {
  const ops: IpvsOp[] = [];
  const t = rules.timeouts;
  if (t && kernel.timeouts) {
    const k = kernel.timeouts;
    if ((t.tcp && t.tcp !== k.tcp) || (t.tcpFin && t.tcpFin !== k.tcpFin) || (t.udp && t.udp !== k.udp)) {
      ops.push({ op: 'set-timeouts', timeouts: { ...t } });
    }
  }
  for (const d of rules.daemons) {
    if (!kernel.daemons?.some((k) => k.state === d.state)) ops.push({ op: 'start-daemon', daemon: { ...d } });
  }
  return ops;
}

/** A one-line summary of a list of ops, e.g. "2 added services, 1 changed real server". */
export function summarizeOps(ops: readonly IpvsOp[]): string {
  const names: Record<IpvsOp['op'], string> = {
    'add-service': 'added service', 'edit-service': 'changed service', 'delete-service': 'removed service',
    'add-dest': 'added real server', 'edit-dest': 'changed real server', 'delete-dest': 'removed real server',
    flush: 'flush', zero: 'zeroing', 'set-timeouts': 'timeout change', 'start-daemon': 'started sync daemon',
    'stop-daemon': 'stopped sync daemon',
  };
  const counts = new Map<string, number>();
  for (const o of ops) counts.set(names[o.op], (counts.get(names[o.op]) ?? 0) + 1);
  if (counts.size === 0) return 'no changes';
  return [...counts].map(([n, c]) => `${c} ${n}${c === 1 ? '' : 's'}`).join(', ');
}
