/**
 * Replaying a rule file: the commands of `ipvsadm -R` input, in order, as the kernel sees them.
 * Like ipvsadm -R, a command the kernel refuses does not stop the replay; unlike it, every
 * refusal is collected and reported together (`<source>:line N: Service already exists`), so
 * that the caller can refuse the whole file before touching the kernel.
 */
import type { DesiredService, IpvsOp } from '../model';
import { commandToOp } from './command';
import { RuleFileError, type RuleLineError } from './errors';
import type { RuleLine } from './ruleFile';
import { KernelStateError, SimulatedTable, type SimulateOptions } from './simulate';

export interface ReplayOptions extends SimulateOptions {
  /** The state the commands start from (default: empty, as after `ipvsadm -C`). */
  initial?: readonly DesiredService[];
  /** Named in errors (default "rules"). */
  source?: string;
}

export interface ReplayResult {
  /** The service table after the last command. */
  services: DesiredService[];
  /** Commands outside the service table, in file order: -Z, --set, --start-daemon, --stop-daemon. */
  otherOps: { line: number; op: IpvsOp }[];
}

/** Replay commands; throws RuleFileError listing every line the kernel would refuse. */
export function replayRules(commands: readonly RuleLine[], opts: ReplayOptions = {}): ReplayResult {
  const source = opts.source ?? 'rules';
  const table = new SimulatedTable(opts.initial ?? [], opts);
  const otherOps: { line: number; op: IpvsOp }[] = [];
  const errors: RuleLineError[] = [];
  for (const { line, command } of commands) {
    const op = commandToOp(command);
    if (op === undefined) continue;
    try {
      table.apply(op);
      if (op.op === 'zero' || op.op === 'set-timeouts' || op.op === 'start-daemon' || op.op === 'stop-daemon') {
        otherOps.push({ line, op });
      }
    } catch (e) {
      if (!(e instanceof KernelStateError)) throw e;
      errors.push({ source, line, message: e.message, exitStatus: e.exitStatus });
    }
  }
  if (errors.length > 0) throw new RuleFileError(errors);
  return { services: table.services(), otherOps };
}

/** The service table a rule file describes (see replayRules). */
export function desiredState(commands: readonly RuleLine[], opts: ReplayOptions = {}): DesiredService[] {
  return replayRules(commands, opts).services;
}
