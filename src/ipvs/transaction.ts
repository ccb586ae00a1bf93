/**
 * All-or-nothing application of a list of IPVS changes.
 *
 * The ops are pipelined to the kernel, stopping at the first refusal; whatever the kernel had accepted
 * by then is undone (newest first) from the state read before the first change, so a refused change
 * leaves IPVS as it was. Used by `ipvs-bpfctl -R` and by the daemon's reloads.
 */
import type { IpvsError } from './errors';
import type { DesiredService, IpvsOp } from './model';
import type { ApplyOptions, ApplyResult } from './netlink';
import { rollbackOps, type InvertContext } from './reconcile';

/** The part of IpvsClient a transaction needs. */
export interface OpSink {
  apply(ops: readonly IpvsOp[], opts?: ApplyOptions): Promise<ApplyResult>;
}

/** An op and where it came from, so an error can name the input line. */
export interface SourcedOp {
  op: IpvsOp;
  /** 1-based input line, when the op came from a rule file. */
  line?: number;
  source?: string;
}

export class TransactionError extends Error {
  override name = 'TransactionError';

  constructor(
    message: string,
    /** The kernel's refusal that aborted the transaction. */
    readonly refusal: IpvsError,
    /** The op the kernel refused, with its input line if known. */
    readonly failed: SourcedOp,
    /** Changes the kernel had accepted before the refusal (all undone when rolledBack). */
    readonly appliedCount: number,
    /** True when every accepted change was undone. */
    readonly rolledBack: boolean,
    /** Undo steps the kernel refused (the table may differ from before when non-empty). */
    readonly rollbackErrors: readonly IpvsError[],
  ) {
    super(message);
  }
}

export interface TransactionResult {
  applied: number;
  batches: number;
}

function where(s: SourcedOp): string {
  if (s.line === undefined) return '';
  return s.source ? `${s.source}:line ${s.line}: ` : `line ${s.line}: `;
}

/**
 * Apply `ops` in order; on the first refusal undo what was applied and throw TransactionError.
 * `before` is the service table as read from the kernel just before the call; `ctx` carries timeouts and
 * daemons when the ops change them.
 */
export async function applyAtomically(
  sink: OpSink,
  ops: readonly SourcedOp[],
  before: readonly DesiredService[],
  ctx: InvertContext = {},
): Promise<TransactionResult> {
  const result = await sink.apply(
    ops.map((s) => s.op),
    { stopOnError: true },
  );
  if (result.ok) return { applied: result.applied, batches: result.batches };

  const firstBad = result.results.findIndex((r) => r.status !== 'ok');
  const badResult = result.results[firstBad];
  const refusal =
    badResult && (badResult.status === 'failed' || badResult.status === 'unknown') ? badResult.error : result.firstError;
  if (!refusal) throw new Error('IPVS apply failed without reporting an error');
  // Ops whose ACK was lost may have been applied: undo them too, tolerating refusals of those undos.
  const accepted = result.results.flatMap((r, i) => (r.status === 'ok' || r.status === 'unknown' ? [ops[i]!.op] : []));
  const undo = rollbackOps(accepted, before, ctx);
  const rollbackErrors: IpvsError[] = [];
  if (undo.length > 0) {
    const r = await sink.apply(undo, { stopOnError: false });
    for (const o of r.results) if (o.status === 'failed' || o.status === 'unknown') rollbackErrors.push(o.error);
  }
  const failed = ops[firstBad]!;
  const rolledBack = rollbackErrors.length === 0;
  const tail = accepted.length === 0
    ? ''
    : rolledBack
      ? ` (${accepted.length} change${accepted.length === 1 ? '' : 's'} already applied were rolled back)`
      : ` (rolling back ${accepted.length} applied change${accepted.length === 1 ? '' : 's'} failed: ${rollbackErrors[0]!.message})`;
  throw new TransactionError(`${where(failed)}${refusal.message}${tail}`, refusal, failed, accepted.length, rolledBack, rollbackErrors);
}
