/**
 * Pure bookkeeping of pipelined writes: how many requests go into one sendmsg, and which op each ACK
 * settles.
 *
 * The kernel runs every message of a sendmsg() in order before sendmsg() returns (netlink_rcv_skb), queueing
 * one ACK skb per message on our socket. Nothing reads that queue meanwhile, so a batch must be small enough
 * that all its ACKs fit in SO_RCVBUF: the kernel charges each ACK its skb's truesize, not its length, and an
 * ACK that does not fit is dropped (ENOBUFS; with netlink@0.3.0 that aborts the process, see channel.ts).
 * The bound below is deliberately pessimistic: every ACK is assumed to be an error, which echoes the whole
 * request back (no NETLINK_CAP_ACK). Measured on Linux 6.18: a plain ACK is charged 832 bytes, the error
 * answer to a 316-byte request 1280, to a 1016-byte request 2304; the bound meets or exceeds each.
 */

/**
 * Linux's skb overheads on x86_64: SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) = 320, and
 * SKB_DATA_ALIGN(sizeof(struct sk_buff)) = 256, plus 128 bytes of slack for other kernels' layouts.
 */
const SKB_SHARED_INFO = 320;
const SKB_STRUCT = 256 + 128;
/** nlmsghdr of the ACK + struct nlmsgerr's error code + the echoed request, with room for extack TLVs. */
const ACK_OVERHEAD = 16 + 4 + 64;

function nextPow2(n: number): number {
  let p = 64;
  while (p < n) p *= 2;
  return p;
}

/** An upper bound on the receive-buffer charge of the kernel's answer to one request of `requestLen` bytes. */
export function ackChargeBound(requestLen: number): number {
  const data = Math.ceil((ACK_OVERHEAD + requestLen) / 64) * 64;
  return nextPow2(data + SKB_SHARED_INFO) + SKB_STRUCT;
}

export interface BatchLimits {
  /** Bytes of requests in one sendmsg (at most SO_SNDBUF - 32, the kernel's limit). */
  maxBytes: number;
  /** Receive-buffer bytes the ACKs of one batch may be charged (a share of SO_RCVBUF). */
  ackBudget: number;
  /** Requests in one sendmsg, whatever their size. */
  maxOps: number;
}

/** Derives batch limits from the socket's effective buffer sizes (as getsockopt reports them). */
export function batchLimits(sndbuf: number, rcvbuf: number, maxOps = 4096): BatchLimits {
  return {
    maxBytes: Math.max(4096, Math.min(sndbuf - 32, 1 << 20)),
    ackBudget: Math.floor(rcvbuf * 0.8),
    maxOps,
  };
}

/** Fills one batch at a time: `tryAdd` says whether a request of that length still fits. */
export class BatchPlanner {
  private bytes = 0;
  private charge = 0;
  private ops = 0;

  constructor(readonly limits: BatchLimits) {}

  get count(): number {
    return this.ops;
  }

  get size(): number {
    return this.bytes;
  }

  /** Adds a request unless the batch is full; a lone request always fits (the kernel judges it). */
  tryAdd(requestLen: number): boolean {
    const c = ackChargeBound(requestLen);
    if (
      this.ops > 0 &&
      (this.ops + 1 > this.limits.maxOps ||
        this.bytes + requestLen > this.limits.maxBytes ||
        this.charge + c > this.limits.ackBudget)
    )
      return false;
    this.ops++;
    this.bytes += requestLen;
    this.charge += c;
    return true;
  }

  reset(): void {
    this.bytes = 0;
    this.charge = 0;
    this.ops = 0;
  }
}

/** What became of one op of an apply(). */
export type OpOutcome<E> =
  /** the kernel acknowledged it */
  | { status: 'ok' }
  /** the kernel refused it; nothing changed */
  | { status: 'failed'; error: E }
  /** sent, but its ACK was lost (receive buffer overrun, timeout, socket closed): it may or may not be applied */
  | { status: 'unknown'; error: E }
  /** never sent (stopOnError after an earlier failure) */
  | { status: 'skipped' };

/**
 * Maps the sequence numbers of one batch to op indexes and collects their outcomes. Sequence numbers of a
 * batch are consecutive from `firstSeq` (mod 2^32).
 */
export class AckLedger<E> {
  private readonly outcomes: (OpOutcome<E> | undefined)[];
  private settled = 0;

  constructor(
    readonly firstSeq: number,
    /** op index of each request of the batch, in send order */
    readonly opIndexes: readonly number[],
  ) {
    this.outcomes = new Array<OpOutcome<E> | undefined>(opIndexes.length).fill(undefined);
  }

  get size(): number {
    return this.opIndexes.length;
  }

  get outstanding(): number {
    return this.opIndexes.length - this.settled;
  }

  /** Position of `seq` in this batch, or -1 when it is not one of ours. */
  position(seq: number): number {
    const d = (seq - this.firstSeq) >>> 0;
    return d < this.opIndexes.length ? d : -1;
  }

  /** Records the ACK (errno 0) or error for `seq`; false when not ours or already settled. */
  settle(seq: number, outcome: OpOutcome<E>): boolean {
    const p = this.position(seq);
    if (p < 0 || this.outcomes[p]) return false;
    this.outcomes[p] = outcome;
    this.settled++;
    return true;
  }

  /** Settles everything still open as `outcome` (lost ACKs); returns how many. */
  settleRest(outcome: (opIndex: number) => OpOutcome<E>): number {
    let n = 0;
    for (let p = 0; p < this.outcomes.length; p++) {
      if (this.outcomes[p]) continue;
      this.outcomes[p] = outcome(this.opIndexes[p]);
      this.settled++;
      n++;
    }
    return n;
  }

  /** [opIndex, outcome] pairs in send order; unsettled entries are left out. */
  entries(): [number, OpOutcome<E>][] {
    const out: [number, OpOutcome<E>][] = [];
    this.outcomes.forEach((o, p) => {
      if (o) out.push([this.opIndexes[p], o]);
    });
    return out;
  }

  /** True when some op of the batch failed (refused or unknown). */
  hasFailure(): boolean {
    return this.outcomes.some((o) => o !== undefined && o.status !== 'ok');
  }
}
