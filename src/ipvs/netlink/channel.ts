/**
 * One generic netlink socket with request/ACK, dump and batch semantics, routed by sequence number.
 *
 * Built on the `netlink` package's RawNetlinkSocket rather than its NetlinkSocket/GenericNetlinkSocket:
 * those send one message per call and turn kernel errors into plain Errors without the errno, while here a
 * batch must be many messages in one sendmsg (RawNetlinkSocket sends one Buffer as one datagram) and every
 * errno matters. SO_RCVBUF/SO_SNDBUF go through the package's setsockopt wrappers, so they are capped by
 * net.core.rmem_max/wmem_max (the package has no SO_RCVBUFFORCE); batches are sized from the read-back value.
 *
 * Lost answers: when the kernel drops an answer because our receive queue is full, it flags the socket with
 * ENOBUFS, and netlink@0.3.0's poll handler then aborts the whole process (it reports POLLERR by building an
 * ErrnoException with a NULL syscall name, which throws inside a native callback). Nothing in JavaScript can
 * catch that, so the receive queue must never overflow: batches are sized against SO_RCVBUF with a
 * pessimistic per-ACK charge (batch.ts), requests and dumps on one socket never overlap (exclusive()), and
 * dumps are safe by construction (the kernel continues a dump only while the queue is below half full).
 * Answers that still never come (timeout) are reported as lost.
 */
import { constants as osConstants } from 'os';
// The package's raw layer only: its index also loads the nl80211, rtnetlink and wireguard tables (slow to load).
import { RawNetlinkSocket, type ErrnoException } from 'netlink/dist/raw';
import { NETLINK_GENERIC, NLMSG_DONE, NLMSG_ERROR, NLMSG_MIN_TYPE } from './constants';
import { messageErrno, parseMessages, type NetlinkMessage } from './message';

const E = osConstants.errno;

/** The kernel refused a request (errno), or its answer never came (lost: ENOBUFS, ETIMEDOUT, closed). */
export class NetlinkStatusError extends Error {
  constructor(
    readonly errno: number,
    readonly lost: boolean,
    detail: string,
  ) {
    super(detail);
    this.name = 'NetlinkStatusError';
  }
}

export interface ChannelOptions {
  /** SO_RCVBUF to ask for (the kernel caps it at net.core.rmem_max and doubles it). */
  recvBufferSize?: number;
  /** SO_SNDBUF to ask for (capped at net.core.wmem_max, doubled). */
  sendBufferSize?: number;
  /** How long to wait for any answer, ms. */
  timeoutMs?: number;
  /**
   * 0 (default): peek at each datagram's size before reading it (two recvmsg per datagram, exact
   * allocations; right for many small ACKs). N > 0: read into N-byte buffers in one recvmsg; the kernel then
   * sizes dump datagrams to N (it follows the reader's buffer size, up to 32 KiB), so N must be at least
   * 8192 and any answer must fit: right for sockets that only dump.
   */
  readBufferSize?: number;
}

interface Waiter {
  /** Handles one message for this waiter's seq; returns true when the waiter is done. */
  onMessage(m: NetlinkMessage): boolean;
  fail(err: NetlinkStatusError, seq: number): void;
  deadline: number;
}

const DEFAULTS = { recvBufferSize: 4 << 20, sendBufferSize: 4 << 20, timeoutMs: 60_000 };

function isErrno(e: unknown): e is ErrnoException {
  return typeof e === 'object' && e !== null && typeof (e as { errno?: unknown }).errno === 'number';
}

const sendFailure = (err: unknown): NetlinkStatusError =>
  err instanceof NetlinkStatusError ? err : new NetlinkStatusError(E.EIO, false, `sendmsg: ${String(err)}`);

export class NetlinkChannel {
  private readonly sock: RawNetlinkSocket;
  private readonly waiters = new Map<number, Waiter>();
  private seq: number;
  private closed = false;
  private referenced = false;
  private watchdog: NodeJS.Timeout | undefined;
  private idleCheck: NodeJS.Immediate | undefined;
  /** The batch in flight (exclusive() allows one per socket): its seqs and the waiter that takes their answers. */
  private window: { firstSeq: number; count: number; waiter: Waiter } | undefined;
  private lock: Promise<unknown> = Promise.resolve();
  readonly timeoutMs: number;

  constructor(opts: ChannelOptions = {}) {
    const read = opts.readBufferSize ?? 0;
    if (read !== 0 && read < 8192) throw new RangeError('readBufferSize must be 0 (peek) or at least 8192');
    this.sock = new RawNetlinkSocket(NETLINK_GENERIC, {
      recvBufferSize: opts.recvBufferSize ?? DEFAULTS.recvBufferSize,
      sendBufferSize: opts.sendBufferSize ?? DEFAULTS.sendBufferSize,
      messagePeeking: read === 0,
      msgBufferSize: read || undefined,
    });
    this.timeoutMs = opts.timeoutMs ?? DEFAULTS.timeoutMs;
    this.seq = (Math.random() * 0x7fffffff) >>> 0;
    this.sock.on('message', (buf: Buffer) => this.receive(buf));
    this.sock.on('truncatedMessage', () =>
      this.failAll(new NetlinkStatusError(E.EMSGSIZE, true, 'netlink answer larger than the read buffer')),
    );
    this.sock.on('error', (err: ErrnoException) => this.socketError(err));
    this.sock.unref();
  }

  /** Effective SO_RCVBUF (what the kernel charges answers against). */
  get recvBufferSize(): number {
    return this.sock.getRecvBufferSize();
  }

  /** Effective SO_SNDBUF (a sendmsg may carry at most this minus 32 bytes). */
  get sendBufferSize(): number {
    return this.sock.getSendBufferSize();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Reserves `n` consecutive sequence numbers; returns the first. */
  reserveSeqs(n: number): number {
    const first = this.seq;
    this.seq = (this.seq + n) >>> 0;
    return first;
  }

  /** Runs `fn` with this channel to itself (one dump or batch at a time per socket). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  close(): void {
    if (this.closed) return;
    this.failAll(new NetlinkStatusError(E.EBADF, true, 'netlink socket closed'));
    this.closed = true;
    clearInterval(this.watchdog);
    if (this.idleCheck) clearImmediate(this.idleCheck);
    this.sock.close();
  }

  /** Sends one datagram (any number of messages); `done` gets the sendmsg error, if any. */
  sendDatagram(buf: Buffer, done: (err?: NetlinkStatusError) => void): void {
    if (this.closed) {
      done(new NetlinkStatusError(E.EBADF, true, 'netlink socket closed'));
      return;
    }
    this.sock.send(buf, { port: 0 }, (err?: ErrnoException) =>
      done(err ? new NetlinkStatusError(err.errno, false, `sendmsg: ${err.message}`) : undefined),
    );
  }

  /**
   * Sends a request (built with NLM_F_ACK) and collects its reply messages until the ACK.
   * Rejects with NetlinkStatusError carrying the kernel's errno.
   */
  request(seq: number, buf: Buffer): Promise<NetlinkMessage[]> {
    const replies: NetlinkMessage[] = [];
    return this.await(seq, buf, (m) => {
      if (m.type === NLMSG_ERROR) {
        const errno = messageErrno(m) ?? E.EPROTO;
        if (errno !== 0) throw new NetlinkStatusError(errno, false, `request refused: errno ${errno}`);
        return true;
      }
      replies.push(m);
      return false;
    }).then(() => replies);
  }

  /**
   * Sends a dump request (NLM_F_DUMP, no ACK) and hands every reply message to `each` until NLMSG_DONE.
   * If `each` throws, the dump is still read to its end (so the socket is free for the next one), then
   * the promise rejects with that error.
   */
  dump(seq: number, buf: Buffer, each: (m: NetlinkMessage) => void): Promise<void> {
    let failure: unknown = null;
    return this.await(seq, buf, (m) => {
      if (m.type === NLMSG_DONE || m.type === NLMSG_ERROR) {
        const errno = messageErrno(m) ?? 0;
        if (errno !== 0) throw new NetlinkStatusError(errno, false, `dump refused: errno ${errno}`);
        if (failure !== null) throw failure;
        return true;
      }
      if (m.type >= NLMSG_MIN_TYPE && failure === null) {
        try {
          each(m);
        } catch (e) {
          failure = e;
        }
      }
      return false;
    });
  }

  /**
   * Sends `count` requests with consecutive seqs from `firstSeq`, all in `buf` (one sendmsg), and reports
   * each one's errno (0 = done) or its loss, by seq. Resolves when every one is settled.
   *
   * Only the last request carries NLM_F_ACK. The kernel runs the messages of one sendmsg in order and
   * answers a request without NLM_F_ACK only when it refuses it (netlink_rcv_skb), so the answers are the
   * refusals, in order, then the last request's ACK or refusal: once that arrives, every request it did not
   * refuse before was done. One answer per batch instead of one per request (each a recvmsg and a callback).
   * The requests must be ones the kernel answers with nothing but the ACK (no replies).
   */
  batch(
    firstSeq: number,
    count: number,
    buf: Buffer,
    settle: (seq: number, result: number | NetlinkStatusError) => void,
  ): Promise<void> {
    if (count === 0) return Promise.resolve();
    const lastSeq = (firstSeq + count - 1) >>> 0;
    return new Promise<void>((resolve) => {
      const settled = new Uint8Array(count);
      const settleAt = (k: number, r: number | NetlinkStatusError): void => {
        if (settled[k]) return;
        settled[k] = 1;
        settle((firstSeq + k) >>> 0, r);
      };
      const finish = (rest: number | NetlinkStatusError): void => {
        if (this.window?.waiter !== waiter) return;
        this.window = undefined;
        this.waiters.delete(lastSeq);
        for (let k = 0; k < count; k++) settleAt(k, rest);
        this.refresh();
        resolve();
      };
      const waiter: Waiter = {
        deadline: Date.now() + this.timeoutMs,
        onMessage: (m) => {
          if (m.type !== NLMSG_ERROR) return false; // not an answer of a batch request
          let errno: number;
          try {
            errno = messageErrno(m) ?? E.EPROTO;
          } catch {
            errno = E.EPROTO;
          }
          const k = (m.seq - firstSeq) >>> 0;
          if (k !== count - 1) {
            if (errno !== 0) settleAt(k, errno);
            return false;
          }
          settleAt(k, errno);
          finish(0); // the kernel refused none of the others that are still open
          return true;
        },
        fail: (err) => finish(err),
      };
      this.window = { firstSeq, count, waiter };
      this.waiters.set(lastSeq, waiter);
      this.refresh();
      this.sendDatagram(buf, (err) => {
        if (err) finish(err);
      });
    });
  }

  private await(seq: number, buf: Buffer, step: (m: NetlinkMessage) => boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const finish = (err: NetlinkStatusError | null): void => {
        if (!this.waiters.delete(seq)) return;
        this.refresh();
        if (err) reject(err);
        else resolve();
      };
      this.waiters.set(seq, {
        deadline: Date.now() + this.timeoutMs,
        onMessage: (m) => {
          let last: boolean;
          try {
            last = step(m);
          } catch (e) {
            finish(
              e instanceof NetlinkStatusError ? e : new NetlinkStatusError(E.EPROTO, false, `bad answer: ${String(e)}`),
            );
            return true;
          }
          if (last) finish(null);
          return last;
        },
        fail: (err) => finish(err),
      });
      this.refresh();
      this.sendDatagram(buf, (err) => {
        if (err) finish(sendFailure(err));
      });
    });
  }

  /**
   * Keeps the event loop alive, and the watchdog running, while answers are awaited. Going idle is
   * confirmed one turn of the event loop later, so a socket chaining request after request (a dump
   * worker) does not toggle timers and references for every request.
   */
  private refresh(): void {
    if (this.closed) return;
    if (this.waiters.size > 0) {
      if (this.referenced) return;
      this.referenced = true;
      this.sock.ref();
      const period = Math.max(10, Math.min(1000, this.timeoutMs / 4));
      this.watchdog ??= setInterval(() => this.expire(), period);
    } else if (this.referenced && !this.idleCheck) {
      this.idleCheck = setImmediate(() => {
        this.idleCheck = undefined;
        if (this.closed || this.waiters.size > 0 || !this.referenced) return;
        this.referenced = false;
        this.sock.unref();
        clearInterval(this.watchdog);
        this.watchdog = undefined;
      });
    }
  }

  /** Fails the waiters whose answer is overdue. */
  private expire(): void {
    const now = Date.now();
    for (const [seq, w] of [...this.waiters]) {
      if (w.deadline <= now)
        w.fail(new NetlinkStatusError(E.ETIMEDOUT, true, `no answer within ${this.timeoutMs} ms`), seq);
    }
  }

  private receive(buf: Buffer): void {
    let msgs: NetlinkMessage[];
    try {
      msgs = parseMessages(buf);
    } catch {
      return; // not ours to judge: a broken datagram cannot be routed
    }
    for (const m of msgs) {
      // Refusals of a batch's requests come under their own seqs; its one waiter is keyed by the last.
      const win = this.window;
      const w = this.waiters.get(m.seq) ?? (win && ((m.seq - win.firstSeq) >>> 0) < win.count ? win.waiter : undefined);
      if (w && w.onMessage(m)) this.waiters.delete(m.seq);
    }
  }

  private socketError(err: ErrnoException): void {
    if (this.closed) return;
    // A receive error leaves pending answers unaccounted for.
    this.failAll(new NetlinkStatusError(isErrno(err) ? err.errno : E.EIO, true, `netlink socket: ${err.message}`));
  }

  private failAll(err: NetlinkStatusError): void {
    for (const [seq, w] of [...this.waiters]) w.fail(err, seq);
    this.waiters.clear();
    this.refresh();
  }
}
