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
import { RawNetlinkSocket, type ErrnoException } from 'netlink';
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
}

interface Waiter {
  /** Handles one message for this waiter's seq; returns true when the waiter is done. */
  onMessage(m: NetlinkMessage): boolean;
  fail(err: NetlinkStatusError, seq: number): void;
}

const DEFAULTS = { recvBufferSize: 4 << 20, sendBufferSize: 4 << 20, timeoutMs: 60_000 };

function isErrno(e: unknown): e is ErrnoException {
  return typeof e === 'object' && e !== null && typeof (e as { errno?: unknown }).errno === 'number';
}

export class NetlinkChannel {
  private readonly sock: RawNetlinkSocket;
  private readonly waiters = new Map<number, Waiter>();
  private seq: number;
  private closed = false;
  private lock: Promise<unknown> = Promise.resolve();
  readonly timeoutMs: number;

  constructor(opts: ChannelOptions = {}) {
    this.sock = new RawNetlinkSocket(NETLINK_GENERIC, {
      recvBufferSize: opts.recvBufferSize ?? DEFAULTS.recvBufferSize,
      sendBufferSize: opts.sendBufferSize ?? DEFAULTS.sendBufferSize,
    });
    this.timeoutMs = opts.timeoutMs ?? DEFAULTS.timeoutMs;
    this.seq = (Math.random() * 0x7fffffff) >>> 0;
    this.sock.on('message', (buf: Buffer) => this.receive(buf));
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
    this.closed = true;
    this.sock.close();
    this.failAll(new NetlinkStatusError(E.EBADF, true, 'netlink socket closed'));
  }

  /** Sends one datagram (any number of messages). Rejects with NetlinkStatusError on a sendmsg error. */
  sendDatagram(buf: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(new NetlinkStatusError(E.EBADF, true, 'netlink socket closed'));
    return new Promise((resolve, reject) => {
      this.sock.send(buf, { port: 0 }, (err?: ErrnoException) => {
        if (err) reject(new NetlinkStatusError(err.errno, false, `sendmsg: ${err.message}`));
        else resolve();
      });
    });
  }

  /**
   * Sends a request (built with NLM_F_ACK) and collects its reply messages until the ACK.
   * Rejects with NetlinkStatusError carrying the kernel's errno.
   */
  request(seq: number, buf: Buffer): Promise<NetlinkMessage[]> {
    return this.await(seq, buf, (m, replies) => {
      if (m.type === NLMSG_ERROR) {
        const errno = messageErrno(m) ?? E.EPROTO;
        if (errno !== 0) throw new NetlinkStatusError(errno, false, `request refused: errno ${errno}`);
        return true;
      }
      replies.push(m);
      return false;
    });
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
    }).then(() => undefined);
  }

  /**
   * Sends `count` requests with consecutive seqs from `firstSeq`, all in `buf` (one sendmsg), each with
   * NLM_F_ACK, and reports each one's errno (0 = ACK) or its loss, by seq. Resolves when every one is
   * settled.
   */
  batch(
    firstSeq: number,
    count: number,
    buf: Buffer,
    settle: (seq: number, result: number | NetlinkStatusError) => void,
  ): Promise<void> {
    if (count === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let open = count;
      const done = (i: number, r: number | NetlinkStatusError): void => {
        const seq = (firstSeq + i) >>> 0;
        if (!this.waiters.delete(seq)) return;
        settle(seq, r);
        if (--open === 0) {
          clearTimeout(timer);
          this.refresh();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        const err = new NetlinkStatusError(E.ETIMEDOUT, true, `no answer within ${this.timeoutMs} ms`);
        for (let i = 0; i < count; i++) done(i, err);
      }, this.timeoutMs);
      for (let i = 0; i < count; i++) {
        const idx = i;
        this.waiters.set((firstSeq + i) >>> 0, {
          onMessage: (m) => {
            if (m.type !== NLMSG_ERROR) return false; // a request with a reply: wait for its ACK
            let errno: number;
            try {
              errno = messageErrno(m) ?? E.EPROTO;
            } catch {
              errno = E.EPROTO;
            }
            done(idx, errno);
            return true;
          },
          fail: (err) => done(idx, err),
        });
      }
      this.refresh();
      this.sendDatagram(buf).catch((err: unknown) => {
        const e =
          err instanceof NetlinkStatusError ? err : new NetlinkStatusError(E.EIO, false, `sendmsg: ${String(err)}`);
        for (let i = 0; i < count; i++) done(i, e);
      });
    });
  }

  private await(
    seq: number,
    buf: Buffer,
    step: (m: NetlinkMessage, replies: NetlinkMessage[]) => boolean,
  ): Promise<NetlinkMessage[]> {
    return new Promise<NetlinkMessage[]>((resolve, reject) => {
      const replies: NetlinkMessage[] = [];
      const finish = (err: NetlinkStatusError | null): void => {
        clearTimeout(timer);
        this.waiters.delete(seq);
        this.refresh();
        if (err) reject(err);
        else resolve(replies);
      };
      this.waiters.set(seq, {
        onMessage: (m) => {
          let last: boolean;
          try {
            last = step(m, replies);
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
      const timer = setTimeout(
        () => finish(new NetlinkStatusError(E.ETIMEDOUT, true, `no answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      this.refresh();
      this.sendDatagram(buf).catch((err: unknown) =>
        finish(err instanceof NetlinkStatusError ? err : new NetlinkStatusError(E.EIO, false, String(err))),
      );
    });
  }

  /** Keeps the event loop alive exactly while answers are awaited. */
  private refresh(): void {
    if (this.closed) return;
    if (this.waiters.size > 0) this.sock.ref();
    else this.sock.unref();
  }

  private receive(buf: Buffer): void {
    let msgs: NetlinkMessage[];
    try {
      msgs = parseMessages(buf);
    } catch {
      return; // not ours to judge: a broken datagram cannot be routed
    }
    for (const m of msgs) {
      const w = this.waiters.get(m.seq);
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
    if (!this.closed) this.refresh();
  }
}
