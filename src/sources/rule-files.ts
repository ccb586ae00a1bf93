/**
 * The rule-file source: ipvsadm rule files the daemon keeps IPVS equal to. They are read in order as one
 * ipvsadm -R input that starts from an empty table (as after `ipvsadm -C`): together they describe this
 * source's part of the IPVS table (all of it when it is the only source). Every bad line of every file is
 * reported as `<file>:line N: message` and nothing is applied when any line is bad. Read again at every
 * reload; it never changes on its own.
 */
import { readdirSync, readFileSync, statSync } from 'fs';
import * as path from 'path';
import type { DesiredService, SyncDaemon, Timeouts } from '../ipvs/model';
import { parseRules, replayRules, RuleFileError, type RuleLineError } from '../ipvs/rules';
import { EMPTY_TABLE, SourceError, tableOf, type DesiredTable, type IgnoredRule, type Source } from './source';

export interface RuleSet {
  /** The files read, in order (directories expanded). */
  files: string[];
  services: DesiredService[];
  /** --set of the last file that has one (0 = leave the kernel's value). */
  timeouts?: Timeouts;
  /** Sync daemons the files start (a later --stop-daemon of the same state cancels it). */
  daemons: SyncDaemon[];
  /** Lines the daemon does not apply on its own, with why (e.g. -Z). */
  ignored: IgnoredRule[];
}

/** A rule file that cannot be read at all. */
export class RuleSourceError extends SourceError {
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

/** The rule files as a Source. */
export class RuleFileSource implements Source {
  private last: DesiredTable = EMPTY_TABLE;
  /** The files of the last read, directories expanded. */
  files: string[] = [];

  constructor(readonly paths: readonly string[]) {}

  /** "rules FILE, FILE" (the files read, once read). */
  get name(): string {
    return `rules ${(this.files.length ? this.files : this.paths).join(', ') || '(none)'}`;
  }

  /** Throws RuleSourceError or RuleFileError. */
  async read(): Promise<DesiredTable> {
    const r = readRuleSet(this.paths);
    this.files = r.files;
    this.last = tableOf(r.services, { daemons: r.daemons, ignored: r.ignored, ...(r.timeouts ? { timeouts: r.timeouts } : {}) });
    return this.last;
  }

  current(): DesiredTable {
    return this.last;
  }
}
