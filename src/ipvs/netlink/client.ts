/**
 * IpvsClient: reads and changes the kernel's IPVS tables over generic netlink (family "IPVS").
 *
 * Reads: services are dumped in one pass; the kernel dumps destinations only per service
 * (IPVS_CMD_GET_DEST needs one), so a table of N services is N + 1 dumps. services() hands them all to the
 * netlink addon (bulk.ts), which runs them one after the other off the event loop and returns the bytes
 * for decoding here; without the addon (or with bulkReads: false), destination lists are dumped over a
 * small pool of sockets working in parallel, each chaining its next dump as soon as the previous one is
 * done (a netlink socket runs one dump at a time).
 *
 * Writes: apply() packs many requests into each sendmsg, each with its own seq; the kernel runs them in
 * order. Only the last of a batch asks for an ACK: the kernel answers the others only to refuse them, so a
 * request not refused before the last one's ACK was done (channel.ts). Batches are still sized so that an
 * answer to every request would fit in the socket's receive buffer (batch.ts). Every op's outcome is
 * reported so callers can roll back exactly.
 */
import { constants as osConstants } from 'os';
import {
  IpvsError,
  IpvsProtocolError,
  IpvsUnavailableError,
  type IpvsCommandName,
} from '../errors';
import type {
  Destination,
  DestinationRef,
  DestinationState,
  IpvsInfo,
  IpvsOp,
  Service,
  ServiceKey,
  ServiceState,
  SyncDaemon,
  SyncDaemonState,
  Timeouts,
} from '../model';
import {
  CMD_ATTRS,
  CMD_DUMP_ATTRS,
  CMD_NO_COUNTER_ATTRS,
  CTRL_ATTRS,
  INFO_ATTRS,
  type CmdRecord,
  type ServiceRecord,
  type TableShape,
} from './attributes';
import type { OpOutcome } from './batch';
import { NetlinkChannel, NetlinkStatusError, type ChannelOptions } from './channel';
import { isBulkDumpFailure, netlinkAddon, streamDumps } from './bulk';
import { decodeDestMessage } from './dumpdecode';
import {
  decodeDaemon,
  decodeInfo,
  decodeService,
  decodeTimeouts,
  opRequest,
  serviceKeyRecord,
} from './codec';
import {
  CTRL_CMD_GETFAMILY,
  CTRL_VERSION,
  GENL_ID_CTRL,
  IPVS_GENL_NAME,
  IPVS_GENL_VERSION,
  IpvsCmd,
  NETLINK_GENERIC,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  GENL_HDRLEN,
  type IpvsCmdNumber,
} from './constants';
import {
  encodeGenlMessage,
  forEachMessage,
  genlAttrStart,
  genlMessageSize,
  payloadErrno,
  writeGenlMessage,
  type NetlinkMessage,
} from './message';
import { pipelineRequests } from './pipeline';
import { decodeAttrs } from './tlv';

const E = osConstants.errno;

export interface IpvsClientOptions extends ChannelOptions {
  /** Sockets that dump destination lists in parallel (default 16). */
  dumpSockets?: number;
  /**
   * How dump sockets read (ChannelOptions.readBufferSize): 0 = peek at each datagram first (default),
   * N >= 8192 = one recvmsg into an N-byte buffer.
   */
  dumpReadBufferSize?: number;
  /** Upper bound on requests per sendmsg in apply() (default 4096; buffer sizes usually bind first). */
  maxBatchOps?: number;
  /**
   * Table reads through the netlink addon (bulk.ts) when it is built (default true); false reads through
   * the dump-socket pool.
   */
  bulkReads?: boolean;
}

/** What a read of the service table includes. */
export interface ReadOptions {
  /**
   * Counters and rate estimates (stats64, or 32-bit stats on old kernels). Default true; false leaves every
   * counter 0n and skips their decoding (`-S`, and comparisons that ignore counters, do not need them).
   */
  counters?: boolean;
}

export interface ApplyOptions {
  /** Send nothing after the batch in which an op failed (default false: apply everything possible). */
  stopOnError?: boolean;
}

/** One op of an apply() and what became of it. */
export type OpResult = { op: IpvsOp } & OpOutcome<IpvsError>;

export interface ApplyResult {
  /** Every op acknowledged. */
  ok: boolean;
  /** One entry per op, in the order given. */
  results: OpResult[];
  applied: number;
  failed: number;
  unknown: number;
  skipped: number;
  /** The first op (in op order) that did not succeed, if any. */
  firstError?: IpvsError;
  /** sendmsg calls made. */
  batches: number;
}

function ipvsError(command: IpvsCommandName, e: unknown, op?: IpvsOp): IpvsError {
  if (e instanceof IpvsError) return e;
  if (e instanceof NetlinkStatusError) {
    if (e.lost) {
      const base = new IpvsError(command, e.errno, op);
      return new IpvsError(command, e.errno, op, `${base.message} (${e.message}; the change may or may not be applied)`);
    }
    return new IpvsError(command, e.errno, op);
  }
  return new IpvsProtocolError(command, e instanceof Error ? e.message : String(e));
}

export class IpvsClient {
  private readonly pool: NetlinkChannel[] = [];
  private closed = false;

  private constructor(
    private readonly main: NetlinkChannel,
    /** The generic netlink family id the kernel gave "IPVS". */
    readonly familyId: number,
    private readonly opts: IpvsClientOptions,
  ) {}

  /** Opens a socket and resolves the "IPVS" family (CTRL_CMD_GETFAMILY). */
  static async open(opts: IpvsClientOptions = {}): Promise<IpvsClient> {
    let ch: NetlinkChannel;
    try {
      ch = new NetlinkChannel(opts);
    } catch (e) {
      const errno = typeof (e as { errno?: unknown }).errno === 'number' ? (e as { errno: number }).errno : E.EIO;
      throw new IpvsError('resolve-family', errno);
    }
    try {
      const familyId = await resolveFamily(ch);
      return new IpvsClient(ch, familyId, opts);
    } catch (e) {
      ch.close();
      throw e;
    }
  }

  /** Effective SO_RCVBUF / SO_SNDBUF of the socket that carries writes (they size apply() batches). */
  get socketBuffers(): { recv: number; send: number } {
    return { recv: this.main.recvBufferSize, send: this.main.sendBufferSize };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.main.close();
    for (const c of this.pool) c.close();
    this.pool.length = 0;
  }

  /** IPVS version and connection table size (IPVS_CMD_GET_INFO). */
  async info(): Promise<IpvsInfo> {
    const [m] = await this.request('get-info', IpvsCmd.GET_INFO, {});
    if (!m) throw new IpvsProtocolError('get-info', 'no reply');
    return decodeInfo(decodeAttrs(INFO_ATTRS, m.buf, genlAttrStart(m), m.end));
  }

  /** Connection timeouts (IPVS_CMD_GET_CONFIG). */
  async timeouts(): Promise<Timeouts> {
    const [m] = await this.request('get-timeouts', IpvsCmd.GET_CONFIG, {});
    if (!m) throw new IpvsProtocolError('get-timeouts', 'no reply');
    return decodeTimeouts(decodeAttrs(CMD_ATTRS, m.buf, genlAttrStart(m), m.end));
  }

  /** Running sync daemons (IPVS_CMD_GET_DAEMON dump). */
  async daemons(): Promise<SyncDaemon[]> {
    const out: SyncDaemon[] = [];
    await this.dump(this.main, 'get-daemons', IpvsCmd.GET_DAEMON, {}, (rec) => {
      if (rec.daemon) out.push(decodeDaemon(rec.daemon));
    });
    return out;
  }

  /** Every service with its destinations, in the kernel's table order. */
  async services(opts: ReadOptions = {}): Promise<ServiceState[]> {
    const counters = opts.counters ?? true;
    if (this.opts.bulkReads !== false && netlinkAddon()) return this.bulkServices(counters);
    const list: ServiceState[] = [];
    const keys: ServiceRecord[] = [];
    const pool = this.dumpPool(1);
    await this.dump(pool[0], 'get-services', IpvsCmd.GET_SERVICE, {}, (rec) => {
      if (!rec.service) return;
      list.push(decodeService(rec.service));
      keys.push(identifyingAttrs(rec.service));
    }, counters ? CMD_DUMP_ATTRS : CMD_NO_COUNTER_ATTRS);
    await this.fillDestinations(list, keys, counters);
    return list;
  }

  /**
   * The table as services() reads it, handed over one service at a time: `order` sees every service (without
   * its destinations) and returns them in the order wanted; then `each` gets each one in that order, with its
   * destinations, as soon as they are decoded, while the kernel is still answering for the next ones. The
   * client keeps none of them, so a listing of 100k real servers need not hold them all. A read that fails
   * part-way rejects after `each` has seen the services before the failure: callers that must print all or
   * nothing print after the promise resolves.
   */
  async eachService(
    opts: ReadOptions & { order?: (services: readonly ServiceState[]) => readonly ServiceState[] },
    each: (svc: ServiceState) => void,
  ): Promise<void> {
    const counters = opts.counters ?? true;
    const order = opts.order ?? ((l: readonly ServiceState[]) => l);
    if (this.opts.bulkReads === false || !netlinkAddon()) {
      for (const s of order(await this.services({ counters }))) each(s);
      return;
    }
    const { list, keys } = await this.bulkServiceList(counters);
    const index = new Map<ServiceState, number>(list.map((s, i) => [s, i]));
    const ordered = order(list);
    const orderedKeys = ordered.map((s) => {
      const i = index.get(s);
      if (i === undefined) throw new TypeError('eachService: order() returned a service it was not given');
      return keys[i];
    });
    index.clear();
    if (ordered.length === 0) return;
    const decode = { counters };
    let dests: DestinationState[] = [];
    let failure: { error: unknown } | undefined; // from `each`: passed on as it is
    await this.bulkDumps('get-dests', destRequests(orderedKeys), (chunk) =>
      this.walkAnswers(
        'get-dests',
        chunk,
        ordered.length,
        (i, buf, at, end) => {
          const d = decodeDestMessage(buf, at, end, ordered[i].key.family, decode);
          if (d) dests.push(d);
        },
        (i) => {
          const svc: ServiceState = { ...ordered[i], destinations: dests };
          dests = [];
          if (failure) return;
          try {
            each(svc);
          } catch (error) {
            failure = { error };
          }
        },
      ),
    );
    if (failure) throw failure.error;
  }

  /** services() through the addon: the service dump, then every destination dump in one bulk call. */
  private async bulkServices(counters: boolean): Promise<ServiceState[]> {
    const { list, keys } = await this.bulkServiceList(counters);
    if (list.length === 0) return list;
    const opts = { counters };
    await this.bulkDumps('get-dests', destRequests(keys), (chunk) =>
      this.walkAnswers('get-dests', chunk, list.length, (i, buf, at, end) => {
        const svc = list[i];
        const d = decodeDestMessage(buf, at, end, svc.key.family, opts);
        if (d) svc.destinations.push(d);
      }),
    );
    return list;
  }

  /** The service dump through the addon: the services (no destinations yet) and their identifying attributes. */
  private async bulkServiceList(counters: boolean): Promise<{ list: ServiceState[]; keys: ServiceRecord[] }> {
    const list: ServiceState[] = [];
    const keys: ServiceRecord[] = [];
    const table = counters ? CMD_DUMP_ATTRS : CMD_NO_COUNTER_ATTRS;
    await this.bulkDumps('get-services', [{ cmd: IpvsCmd.GET_SERVICE, attrs: {} }], (chunk) =>
      this.walkAnswers('get-services', chunk, 1, (_i, buf, at, end) => {
        let rec: CmdRecord = decodeAttrs<TableShape>(table, buf, at, end) as CmdRecord;
        if (counters && rec.service && !rec.service.stats64) rec = decodeAttrs(CMD_ATTRS, buf, at, end); // before 4.1
        if (!rec.service) return;
        list.push(decodeService(rec.service));
        keys.push(identifyingAttrs(rec.service));
      }),
    );
    return { list, keys };
  }

  /**
   * Dump requests with seqs 1..n, answered by the addon; each chunk of answers (whole answers, in request
   * order) goes to `chunk` as it arrives. What `chunk` throws rejects the call as it is.
   */
  private async bulkDumps(
    command: IpvsCommandName,
    reqs: readonly { cmd: IpvsCmdNumber; attrs: CmdRecord }[],
    chunk: (answers: Buffer) => void,
  ): Promise<void> {
    const addon = netlinkAddon();
    if (!addon) throw new IpvsProtocolError(command, 'the netlink addon is not built');
    let size = 0;
    for (const r of reqs) size += genlMessageSize(CMD_ATTRS, r.attrs);
    const buf = Buffer.alloc(size);
    let off = 0;
    reqs.forEach((r, i) => {
      const h = { family: this.familyId, flags: NLM_F_REQUEST | NLM_F_DUMP, seq: i + 1, cmd: r.cmd, version: IPVS_GENL_VERSION };
      off = writeGenlMessage(buf, off, h, CMD_ATTRS, r.attrs);
    });
    try {
      await streamDumps(addon, NETLINK_GENERIC, buf, { recvBufferSize: 1 << 20, timeoutMs: this.main.timeoutMs }, chunk);
    } catch (e) {
      if (!isBulkDumpFailure(e)) throw e;
      const lost = e.errno === E.ETIMEDOUT;
      throw new IpvsError(command, e.errno, undefined, lost ? `${new IpvsError(command, e.errno).message} (${e.message})` : undefined);
    }
  }

  /**
   * Hands each IPVS message of a chunk of bulk answers to `each` with its request's index (seq - 1) and
   * attribute span, and each request's successful end to `done`; a refused dump throws the command's
   * IpvsError.
   */
  private walkAnswers(
    command: IpvsCommandName,
    answers: Buffer,
    count: number,
    each: (i: number, buf: Buffer, attrStart: number, end: number) => void,
    done?: (i: number) => void,
  ): void {
    const family = this.familyId;
    try {
      forEachMessage(answers, (type, seq, payload, end) => {
        const i = seq - 1;
        if (i < 0 || i >= count) return;
        if (type === family) each(i, answers, payload + GENL_HDRLEN, end);
        else if (type === NLMSG_ERROR || type === NLMSG_DONE) {
          const errno = payloadErrno(type, answers, payload, end);
          if (errno !== 0) throw new IpvsError(command, errno);
          done?.(i);
        }
      });
    } catch (e) {
      throw ipvsError(command, e);
    }
  }

  /** One service with its destinations, or null when the kernel has no such service. */
  async service(key: ServiceKey, opts: ReadOptions = {}): Promise<ServiceState | null> {
    let replies: NetlinkMessage[];
    try {
      replies = await this.request('get-service', IpvsCmd.GET_SERVICE, { service: serviceKeyRecord(key) });
    } catch (e) {
      if (e instanceof IpvsError && e.errno === E.ESRCH) return null;
      throw e;
    }
    const m = replies[0];
    if (!m) throw new IpvsProtocolError('get-service', 'no reply');
    const rec = decodeAttrs(CMD_ATTRS, m.buf, genlAttrStart(m), m.end);
    if (!rec.service) throw new IpvsProtocolError('get-service', 'reply without IPVS_CMD_ATTR_SERVICE');
    const svc = decodeService(rec.service);
    await this.dumpDestinations(this.main, svc, identifyingAttrs(rec.service), opts.counters ?? true);
    return svc;
  }

  /**
   * Executes `ops` in order, many per sendmsg, one ACK each. Throws only for ops that cannot be encoded
   * (before anything is sent); kernel refusals are reported per op in the result.
   */
  async apply(ops: readonly IpvsOp[], opts: ApplyOptions = {}): Promise<ApplyResult> {
    const msgs = ops.map((op) => this.encodeOp(op));
    const results: OpResult[] = ops.map((op) => ({ op, status: 'skipped' }));
    const report = await this.main.exclusive(() =>
      pipelineRequests(this.main, msgs, { maxBatchOps: this.opts.maxBatchOps, stopOnError: opts.stopOnError }, (i, r) => {
        results[i] = { op: ops[i], ...outcomeOf(ops[i], r) };
      }),
    );
    return summarize(results, report.batches);
  }

  addService(service: Service): Promise<void> {
    return this.applyOne({ op: 'add-service', service });
  }
  editService(service: Service): Promise<void> {
    return this.applyOne({ op: 'edit-service', service });
  }
  deleteService(key: ServiceKey): Promise<void> {
    return this.applyOne({ op: 'delete-service', key });
  }
  addDest(service: ServiceKey, dest: Destination): Promise<void> {
    return this.applyOne({ op: 'add-dest', service, dest });
  }
  editDest(service: ServiceKey, dest: Destination): Promise<void> {
    return this.applyOne({ op: 'edit-dest', service, dest });
  }
  deleteDest(service: ServiceKey, dest: DestinationRef): Promise<void> {
    return this.applyOne({ op: 'delete-dest', service, dest });
  }
  flush(): Promise<void> {
    return this.applyOne({ op: 'flush' });
  }
  zero(service?: ServiceKey): Promise<void> {
    return this.applyOne(service ? { op: 'zero', service } : { op: 'zero' });
  }
  setTimeouts(timeouts: Timeouts): Promise<void> {
    return this.applyOne({ op: 'set-timeouts', timeouts });
  }
  startDaemon(daemon: SyncDaemon): Promise<void> {
    return this.applyOne({ op: 'start-daemon', daemon });
  }
  stopDaemon(state: SyncDaemonState): Promise<void> {
    return this.applyOne({ op: 'stop-daemon', state });
  }

  private async applyOne(op: IpvsOp): Promise<void> {
    const r = await this.apply([op]);
    const first = r.results[0];
    if (first.status === 'failed' || first.status === 'unknown') throw first.error;
  }

  private encodeOp(op: IpvsOp): Buffer {
    let req;
    try {
      req = opRequest(op);
      return encodeGenlMessage(
        { family: this.familyId, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 0, cmd: req.cmd, version: IPVS_GENL_VERSION },
        CMD_ATTRS,
        req.attrs,
      );
    } catch (e) {
      throw new IpvsError(op.op, E.EINVAL, op, `invalid ${op.op}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private request(command: IpvsCommandName, cmd: IpvsCmdNumber, attrs: CmdRecord): Promise<NetlinkMessage[]> {
    const ch = this.main;
    return ch.exclusive(async () => {
      const seq = ch.reserveSeqs(1);
      const buf = encodeGenlMessage(
        { family: this.familyId, flags: NLM_F_REQUEST | NLM_F_ACK, seq, cmd, version: IPVS_GENL_VERSION },
        CMD_ATTRS,
        attrs,
      );
      try {
        return await ch.request(seq, buf);
      } catch (e) {
        throw ipvsError(command, e);
      }
    });
  }

  private dump(
    ch: NetlinkChannel,
    command: IpvsCommandName,
    cmd: IpvsCmdNumber,
    attrs: CmdRecord,
    each: (rec: CmdRecord) => void,
    table: typeof CMD_DUMP_ATTRS | typeof CMD_NO_COUNTER_ATTRS = CMD_DUMP_ATTRS,
  ): Promise<void> {
    return this.dumpMessages(ch, command, cmd, attrs, (m) => {
      const at = genlAttrStart(m);
      let rec: CmdRecord = decodeAttrs<TableShape>(table, m.buf, at, m.end) as CmdRecord;
      if (table === CMD_DUMP_ATTRS && ((rec.service && !rec.service.stats64) || (rec.dest && !rec.dest.stats64)))
        rec = decodeAttrs(CMD_ATTRS, m.buf, at, m.end); // a kernel before 4.1: 32-bit stats only
      each(rec);
    });
  }

  /** A dump whose reply messages of the IPVS family go to `each` undecoded. */
  private dumpMessages(
    ch: NetlinkChannel,
    command: IpvsCommandName,
    cmd: IpvsCmdNumber,
    attrs: CmdRecord,
    each: (m: NetlinkMessage) => void,
  ): Promise<void> {
    return ch.exclusive(async () => {
      const seq = ch.reserveSeqs(1);
      const buf = encodeGenlMessage(
        { family: this.familyId, flags: NLM_F_REQUEST | NLM_F_DUMP, seq, cmd, version: IPVS_GENL_VERSION },
        CMD_ATTRS,
        attrs,
      );
      try {
        await ch.dump(seq, buf, (m) => {
          if (m.type === this.familyId) each(m);
        });
      } catch (e) {
        throw ipvsError(command, e);
      }
    });
  }

  /** Appends the destinations of `svc`, named by the identifying attributes the kernel sent for it. */
  private dumpDestinations(ch: NetlinkChannel, svc: ServiceState, key: ServiceRecord, counters: boolean): Promise<void> {
    const family = svc.key.family;
    const dests = svc.destinations;
    const opts = { counters };
    return this.dumpMessages(ch, 'get-dests', IpvsCmd.GET_DEST, { service: key }, (m) => {
      const d = decodeDestMessage(m.buf, genlAttrStart(m), m.end, family, opts);
      if (d) dests.push(d);
    });
  }

  /** At least `want` dump sockets (at most dumpSockets), created on first use and kept until close(). */
  private dumpPool(want: number): NetlinkChannel[] {
    const n = Math.max(1, Math.min(this.opts.dumpSockets ?? 16, want));
    while (this.pool.length < n) {
      if (this.closed) throw new IpvsError('get-services', E.EBADF, undefined, 'IPVS client is closed');
      this.pool.push(
        new NetlinkChannel({ ...this.opts, recvBufferSize: 1 << 20, readBufferSize: this.opts.dumpReadBufferSize ?? 0 }),
      );
    }
    return this.pool.slice(0, n);
  }

  private async fillDestinations(list: ServiceState[], keys: ServiceRecord[], counters: boolean): Promise<void> {
    if (list.length === 0) return;
    const pool = this.dumpPool(list.length);
    let next = 0;
    const worker = async (ch: NetlinkChannel): Promise<void> => {
      while (next < list.length) {
        const i = next++;
        await this.dumpDestinations(ch, list[i], keys[i], counters);
      }
    };
    await Promise.all(pool.map(worker));
  }
}

/** GET_DEST dump requests for these services, in their order. */
function destRequests(keys: readonly ServiceRecord[]): { cmd: IpvsCmdNumber; attrs: CmdRecord }[] {
  return keys.map((key) => ({ cmd: IpvsCmd.GET_DEST, attrs: { service: key } }));
}

/** A service's identifying attributes as the kernel sent them (reused verbatim to ask for its dests). */
function identifyingAttrs(rec: ServiceRecord): ServiceRecord {
  return rec.fwmark
    ? { af: rec.af, fwmark: rec.fwmark }
    : { af: rec.af, protocol: rec.protocol, addr: rec.addr, port: rec.port };
}

function outcomeOf(op: IpvsOp, r: number | NetlinkStatusError): OpOutcome<IpvsError> {
  if (typeof r === 'number') {
    return r === 0 ? { status: 'ok' } : { status: 'failed', error: new IpvsError(op.op, r, op) };
  }
  const error = ipvsError(op.op, r, op);
  return r.lost ? { status: 'unknown', error } : { status: 'failed', error };
}

function summarize(results: OpResult[], batches: number): ApplyResult {
  let applied = 0;
  let failed = 0;
  let unknown = 0;
  let skipped = 0;
  let firstError: IpvsError | undefined;
  for (const r of results) {
    if (r.status === 'ok') applied++;
    else if (r.status === 'skipped') skipped++;
    else {
      if (r.status === 'failed') failed++;
      else unknown++;
      firstError ??= r.error;
    }
  }
  const out: ApplyResult = { ok: applied === results.length, results, applied, failed, unknown, skipped, batches };
  if (firstError) out.firstError = firstError;
  return out;
}

async function resolveFamily(ch: NetlinkChannel): Promise<number> {
  const seq = ch.reserveSeqs(1);
  const buf = encodeGenlMessage(
    { family: GENL_ID_CTRL, flags: NLM_F_REQUEST | NLM_F_ACK, seq, cmd: CTRL_CMD_GETFAMILY, version: CTRL_VERSION },
    CTRL_ATTRS,
    { familyName: IPVS_GENL_NAME },
  );
  let replies: NetlinkMessage[];
  try {
    replies = await ch.request(seq, buf);
  } catch (e) {
    if (e instanceof NetlinkStatusError && e.errno === E.ENOENT) throw new IpvsUnavailableError();
    throw ipvsError('resolve-family', e);
  }
  for (const m of replies) {
    const rec = decodeAttrs(CTRL_ATTRS, m.buf, genlAttrStart(m), m.end);
    if (rec.familyName === IPVS_GENL_NAME && rec.familyId) return rec.familyId;
  }
  throw new IpvsProtocolError('resolve-family', 'CTRL_CMD_GETFAMILY reply without the IPVS family id');
}
