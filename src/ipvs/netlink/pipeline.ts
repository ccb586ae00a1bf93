/**
 * Pipelined requests over one channel: many complete netlink requests per sendmsg, batches sized by batch.ts
 * so that an answer to every request of a batch would fit in the receive buffer. Only the last request of a
 * batch asks for an ACK; the kernel answers the others only to refuse them (see NetlinkChannel.batch).
 */
import { AckLedger, BatchPlanner, batchLimits } from './batch';
import { NetlinkStatusError, type NetlinkChannel } from './channel';
import { setMessageAck, setMessageSeq } from './message';
import { constants as osConstants } from 'os';

/** What one request came to: the kernel's errno (0 = ACK), or a transport failure (lost / not sent). */
export type RequestResult = number | NetlinkStatusError;

export interface PipelineOptions {
  /** Upper bound on requests per sendmsg (buffer sizes usually bind first). */
  maxBatchOps?: number;
  /** Send nothing after a batch in which a request did not succeed. */
  stopOnError?: boolean;
}

export interface PipelineReport {
  /** sendmsg calls made */
  batches: number;
  /** requests sent (the rest were skipped by stopOnError) */
  sent: number;
}

const LOST = (): NetlinkStatusError =>
  new NetlinkStatusError(osConstants.errno.EPROTO, true, 'no answer recorded for this request');

/**
 * Sends `msgs` in order (their nlmsg_seq and NLM_F_ACK are overwritten) and calls `settle(index, result)`
 * once for every request sent. The requests must be ones the kernel answers with nothing but an ACK or a
 * refusal. The caller holds the channel (exclusive()).
 */
export async function pipelineRequests(
  ch: NetlinkChannel,
  msgs: readonly Buffer[],
  opts: PipelineOptions,
  settle: (index: number, result: RequestResult) => void,
): Promise<PipelineReport> {
  const planner = new BatchPlanner(batchLimits(ch.sendBufferSize, ch.recvBufferSize, opts.maxBatchOps));
  let batches = 0;
  let i = 0;
  while (i < msgs.length) {
    planner.reset();
    let j = i;
    while (j < msgs.length && planner.tryAdd(msgs[j].length)) j++;
    const count = j - i;
    const first = ch.reserveSeqs(count);
    const buf = Buffer.allocUnsafe(planner.size);
    let off = 0;
    for (let k = 0; k < count; k++) {
      const msg = msgs[i + k];
      msg.copy(buf, off);
      setMessageSeq(buf, off, (first + k) >>> 0);
      setMessageAck(buf, off, k === count - 1);
      off += msg.length;
    }
    const ledger = new AckLedger<NetlinkStatusError | number>(
      first,
      Array.from({ length: count }, (_, k) => i + k),
    );
    batches++;
    await ch.batch(first, count, buf, (seq, r) => {
      ledger.settle(seq, r === 0 ? { status: 'ok' } : { status: 'failed', error: r });
    });
    ledger.settleRest(() => ({ status: 'unknown', error: LOST() }));
    for (const [idx, o] of ledger.entries()) settle(idx, o.status === 'ok' ? 0 : o.status === 'skipped' ? LOST() : o.error);
    i = j;
    if (opts.stopOnError && ledger.hasFailure()) break;
  }
  return { batches, sent: i };
}
