/**
 * The model (src/ipvs/model.ts) <-> IPVS attribute records (attributes.ts), and each IpvsOp as the IPVS
 * command that performs it. Pure functions; the wire bytes are tlv.ts's job.
 */
import { endianness } from 'os';
import {
  ZERO_STATS,
  type DestinationRef,
  type DestinationState,
  type Destination,
  type Family,
  type ForwardMethod,
  type IpvsInfo,
  type IpvsOp,
  type Protocol,
  type Service,
  type ServiceKey,
  type ServiceState,
  type Stats,
  type SyncDaemon,
  type SyncDaemonState,
  type Timeouts,
  type TunnelFlags,
  type TunnelType,
} from '../model';
import { addressToBytes, bytesToAddress, familyOf } from './address';
import type {
  CmdRecord,
  DaemonRecord,
  DestRecord,
  InfoRecord,
  ServiceRecord,
  Stats64Record,
  StatsRecord,
} from './attributes';
import {
  AF_INET,
  AF_INET6,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IP_VS_CONN_F_BYPASS,
  IP_VS_CONN_F_DROUTE,
  IP_VS_CONN_F_FWD_MASK,
  IP_VS_CONN_F_LOCALNODE,
  IP_VS_CONN_F_MASQ,
  IP_VS_CONN_F_TUNNEL,
  IP_VS_CONN_F_TUNNEL_TYPE_GRE,
  IP_VS_CONN_F_TUNNEL_TYPE_GUE,
  IP_VS_CONN_F_TUNNEL_TYPE_IPIP,
  IP_VS_STATE_BACKUP,
  IP_VS_STATE_MASTER,
  IP_VS_SVC_F_ONEPACKET,
  IP_VS_SVC_F_PERSISTENT,
  IP_VS_SVC_F_SCHED1,
  IP_VS_SVC_F_SCHED2,
  IP_VS_SVC_F_SCHED3,
  IP_VS_TUNNEL_ENCAP_FLAG_CSUM,
  IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM,
  IpvsCmd,
  type IpvsCmdNumber,
} from './constants';

/** A reply value the model has no name for, or a reply lacking an attribute the kernel always sends. */
export class WireValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireValueError';
  }
}

/** Bidirectional name <-> number map, defined once. */
function enumMap<N extends string>(what: string, pairs: readonly (readonly [N, number])[]) {
  const toNum = new Map<N, number>(pairs);
  const toName = new Map<number, N>(pairs.map(([n, v]) => [v, n] as const));
  return {
    num(name: N): number {
      const v = toNum.get(name);
      if (v === undefined) throw new RangeError(`unknown ${what} "${name}"`);
      return v;
    },
    name(v: number): N {
      const n = toName.get(v);
      if (n === undefined) throw new WireValueError(`unknown ${what} ${v} in an IPVS reply`);
      return n;
    },
  };
}

export const FAMILY = enumMap<Family>('address family', [
  ['inet', AF_INET],
  ['inet6', AF_INET6],
]);

export const PROTOCOL = enumMap<Protocol>('protocol', [
  ['tcp', IPPROTO_TCP],
  ['udp', IPPROTO_UDP],
  ['sctp', IPPROTO_SCTP],
]);

export const FORWARD = enumMap<ForwardMethod>('forwarding method', [
  ['masq', IP_VS_CONN_F_MASQ],
  ['local', IP_VS_CONN_F_LOCALNODE],
  ['tunnel', IP_VS_CONN_F_TUNNEL],
  ['route', IP_VS_CONN_F_DROUTE],
  ['bypass', IP_VS_CONN_F_BYPASS],
]);

export const TUNNEL_TYPE = enumMap<TunnelType>('tunnel type', [
  ['ipip', IP_VS_CONN_F_TUNNEL_TYPE_IPIP],
  ['gue', IP_VS_CONN_F_TUNNEL_TYPE_GUE],
  ['gre', IP_VS_CONN_F_TUNNEL_TYPE_GRE],
]);

export const DAEMON_STATE = enumMap<SyncDaemonState>('sync daemon state', [
  ['master', IP_VS_STATE_MASTER],
  ['backup', IP_VS_STATE_BACKUP],
]);

/** Service flag bits the model names; IP_VS_SVC_F_HASHED is kernel-internal and ignored. */
const SERVICE_FLAG_BITS = [
  ['persistent', IP_VS_SVC_F_PERSISTENT],
  ['onePacket', IP_VS_SVC_F_ONEPACKET],
  ['sched1', IP_VS_SVC_F_SCHED1],
  ['sched2', IP_VS_SVC_F_SCHED2],
  ['sched3', IP_VS_SVC_F_SCHED3],
] as const;

const HOST_LE = endianness() === 'LE';

/**
 * The IPv6 persistence "netmask" is a prefix length that the kernel keeps as a plain host-order number in
 * its __be32 netmask field (ipvsadm writes it with NLA_PUT_U32). Through a be32 attribute it therefore reads
 * byte-swapped on little-endian hosts; this converts both ways.
 */
function hostOrderInBe32(n: number): number {
  if (!HOST_LE) return n >>> 0;
  return (((n & 0xff) << 24) | ((n & 0xff00) << 8) | ((n >>> 8) & 0xff00) | ((n >>> 24) & 0xff)) >>> 0;
}

/** The identifying attributes of a service: what every command on an existing service carries. */
export function serviceKeyRecord(key: ServiceKey): ServiceRecord {
  if (key.kind === 'fwmark') return { af: FAMILY.num(key.family), fwmark: key.fwmark };
  return {
    af: FAMILY.num(key.family),
    protocol: PROTOCOL.num(key.protocol),
    addr: addressToBytes(key.family, key.address),
    port: key.port,
  };
}

/** The full service, as IPVS_CMD_NEW_SERVICE / SET_SERVICE need it. */
export function serviceRecord(s: Service): ServiceRecord {
  let bits = 0;
  for (const [name, bit] of SERVICE_FLAG_BITS) if (s.flags[name]) bits |= bit;
  const rec: ServiceRecord = serviceKeyRecord(s.key);
  rec.schedName = s.scheduler;
  rec.flags = { flags: bits, mask: 0xffffffff };
  rec.timeout = s.persistenceTimeout;
  rec.netmask = s.key.family === 'inet6' ? hostOrderInBe32(s.netmask) : s.netmask >>> 0;
  if (s.pe) rec.peName = s.pe;
  return rec;
}

/** Counters from IPVS_*_ATTR_STATS64 when present (since 4.1), else the 32-bit IPVS_*_ATTR_STATS. */
export function decodeStats(s32: StatsRecord | undefined, s64: Stats64Record | undefined): Stats {
  if (s64) {
    return {
      conns: s64.conns ?? 0n,
      inPkts: s64.inPkts ?? 0n,
      outPkts: s64.outPkts ?? 0n,
      inBytes: s64.inBytes ?? 0n,
      outBytes: s64.outBytes ?? 0n,
      cps: s64.cps ?? 0n,
      inPps: s64.inPps ?? 0n,
      outPps: s64.outPps ?? 0n,
      inBps: s64.inBps ?? 0n,
      outBps: s64.outBps ?? 0n,
    };
  }
  if (s32) {
    const b = (v: number | undefined): bigint => BigInt(v ?? 0);
    return {
      conns: b(s32.conns),
      inPkts: b(s32.inPkts),
      outPkts: b(s32.outPkts),
      inBytes: s32.inBytes ?? 0n,
      outBytes: s32.outBytes ?? 0n,
      cps: b(s32.cps),
      inPps: b(s32.inPps),
      outPps: b(s32.outPps),
      inBps: b(s32.inBps),
      outBps: b(s32.outBps),
    };
  }
  return { ...ZERO_STATS };
}

function required<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new WireValueError(`IPVS reply without ${what}`);
  return v;
}

/** A service from an IPVS_CMD_ATTR_SERVICE nest of a reply (destinations empty: they come separately). */
export function decodeService(rec: ServiceRecord): ServiceState {
  const family = FAMILY.name(required(rec.af, 'service address family'));
  let key: ServiceKey;
  if (rec.fwmark) {
    key = { kind: 'fwmark', family, fwmark: rec.fwmark };
  } else {
    key = {
      kind: 'addr',
      family,
      protocol: PROTOCOL.name(required(rec.protocol, 'service protocol')),
      address: bytesToAddress(family, required(rec.addr, 'service address')),
      port: required(rec.port, 'service port'),
    };
  }
  const bits = rec.flags?.flags ?? 0;
  const rawMask = rec.netmask ?? (family === 'inet6' ? hostOrderInBe32(128) : 0xffffffff);
  return {
    key,
    scheduler: rec.schedName ?? 'none',
    flags: {
      persistent: (bits & IP_VS_SVC_F_PERSISTENT) !== 0,
      onePacket: (bits & IP_VS_SVC_F_ONEPACKET) !== 0,
      sched1: (bits & IP_VS_SVC_F_SCHED1) !== 0,
      sched2: (bits & IP_VS_SVC_F_SCHED2) !== 0,
      sched3: (bits & IP_VS_SVC_F_SCHED3) !== 0,
    },
    persistenceTimeout: rec.timeout ?? 0,
    netmask: family === 'inet6' ? hostOrderInBe32(rawMask) : rawMask,
    pe: rec.peName ?? '',
    stats: decodeStats(rec.stats, rec.stats64),
    destinations: [],
  };
}

/**
 * IP_VS_TUNNEL_ENCAP_FLAG_* bits of the model's tunnel flags. "nocsum" is the absence of both bits
 * (IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM is 0), so it adds nothing.
 */
export function tunnelFlagBits(f: TunnelFlags): number {
  return (f.csum ? IP_VS_TUNNEL_ENCAP_FLAG_CSUM : 0) | (f.remCsum ? IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM : 0);
}

/** The identifying attributes of a real server (address family always sent, as ipvsadm does). */
export function destinationRefRecord(d: DestinationRef): DestRecord {
  return { addr: addressToBytes(d.family, d.address), port: d.port, addrFamily: FAMILY.num(d.family) };
}

/** The full real server, as IPVS_CMD_NEW_DEST / SET_DEST need it. */
export function destinationRecord(d: Destination): DestRecord {
  const rec = destinationRefRecord(d);
  rec.fwdMethod = FORWARD.num(d.forward);
  rec.weight = d.weight;
  rec.uThresh = d.upperThreshold;
  rec.lThresh = d.lowerThreshold;
  rec.tunType = TUNNEL_TYPE.num(d.tunnelType);
  rec.tunPort = d.tunnelPort;
  rec.tunFlags = tunnelFlagBits(d.tunnelFlags);
  return rec;
}

/**
 * A real server from an IPVS_CMD_ATTR_DEST nest. Its family is IPVS_DEST_ATTR_ADDR_FAMILY (kernels before
 * 3.18 lack it: then the service's). The wire cannot say "nocsum" (no bit), so decoded flags say
 * noCsum: false; compare tunnel flags with tunnelFlagBits().
 */
export function decodeDestination(rec: DestRecord, serviceFamily: Family): DestinationState {
  const family = rec.addrFamily !== undefined ? FAMILY.name(rec.addrFamily) : serviceFamily;
  const tf = rec.tunFlags ?? 0;
  return {
    family,
    address: bytesToAddress(family, required(rec.addr, 'destination address')),
    port: required(rec.port, 'destination port'),
    forward: FORWARD.name((rec.fwdMethod ?? 0) & IP_VS_CONN_F_FWD_MASK),
    weight: rec.weight ?? 0,
    upperThreshold: rec.uThresh ?? 0,
    lowerThreshold: rec.lThresh ?? 0,
    tunnelType: TUNNEL_TYPE.name(rec.tunType ?? IP_VS_CONN_F_TUNNEL_TYPE_IPIP),
    tunnelPort: rec.tunPort ?? 0,
    tunnelFlags: {
      noCsum: false,
      csum: (tf & IP_VS_TUNNEL_ENCAP_FLAG_CSUM) !== 0,
      remCsum: (tf & IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM) !== 0,
    },
    activeConns: rec.activeConns ?? 0,
    inactiveConns: rec.inactConns ?? 0,
    persistConns: rec.persistConns ?? 0,
    stats: decodeStats(rec.stats, rec.stats64),
  };
}

/** A sync daemon for IPVS_CMD_NEW_DAEMON; the 4.3+ attributes only when set (0 / ''). */
export function daemonRecord(d: SyncDaemon): DaemonRecord {
  const rec: DaemonRecord = { state: DAEMON_STATE.num(d.state), mcastIfn: d.mcastIfn, syncId: d.syncId };
  if (d.syncMaxLen) rec.syncMaxLen = d.syncMaxLen;
  if (d.mcastGroup) {
    const fam = familyOf(d.mcastGroup);
    if (fam === 'inet') rec.mcastGroup = addressToBytes('inet', d.mcastGroup);
    else if (fam === 'inet6') rec.mcastGroup6 = addressToBytes('inet6', d.mcastGroup);
    else throw new RangeError(`sync daemon multicast group is not an IP address: "${d.mcastGroup}"`);
  }
  if (d.mcastPort) rec.mcastPort = d.mcastPort;
  if (d.mcastTtl) rec.mcastTtl = d.mcastTtl;
  return rec;
}

export function decodeDaemon(rec: DaemonRecord): SyncDaemon {
  let mcastGroup = '';
  if (rec.mcastGroup6) mcastGroup = bytesToAddress('inet6', rec.mcastGroup6);
  else if (rec.mcastGroup) mcastGroup = bytesToAddress('inet', rec.mcastGroup);
  return {
    state: DAEMON_STATE.name(required(rec.state, 'sync daemon state')),
    mcastIfn: rec.mcastIfn ?? '',
    syncId: rec.syncId ?? 0,
    syncMaxLen: rec.syncMaxLen ?? 0,
    mcastGroup,
    mcastPort: rec.mcastPort ?? 0,
    mcastTtl: rec.mcastTtl ?? 0,
  };
}

export function decodeTimeouts(rec: CmdRecord): Timeouts {
  return { tcp: rec.timeoutTcp ?? 0, tcpFin: rec.timeoutTcpFin ?? 0, udp: rec.timeoutUdp ?? 0 };
}

export function decodeInfo(rec: InfoRecord): IpvsInfo {
  const v = required(rec.version, 'IPVS version');
  return { version: `${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`, connTableSize: rec.connTabSize ?? 0 };
}

/** One IPVS command: its number and first-level attributes. */
export interface IpvsRequest {
  cmd: IpvsCmdNumber;
  attrs: CmdRecord;
}

/** The IPVS command that performs `op`. */
export function opRequest(op: IpvsOp): IpvsRequest {
  switch (op.op) {
    case 'add-service':
      return { cmd: IpvsCmd.NEW_SERVICE, attrs: { service: serviceRecord(op.service) } };
    case 'edit-service':
      return { cmd: IpvsCmd.SET_SERVICE, attrs: { service: serviceRecord(op.service) } };
    case 'delete-service':
      return { cmd: IpvsCmd.DEL_SERVICE, attrs: { service: serviceKeyRecord(op.key) } };
    case 'add-dest':
      return {
        cmd: IpvsCmd.NEW_DEST,
        attrs: { service: serviceKeyRecord(op.service), dest: destinationRecord(op.dest) },
      };
    case 'edit-dest':
      return {
        cmd: IpvsCmd.SET_DEST,
        attrs: { service: serviceKeyRecord(op.service), dest: destinationRecord(op.dest) },
      };
    case 'delete-dest':
      return {
        cmd: IpvsCmd.DEL_DEST,
        attrs: { service: serviceKeyRecord(op.service), dest: destinationRefRecord(op.dest) },
      };
    case 'flush':
      return { cmd: IpvsCmd.FLUSH, attrs: {} };
    case 'zero':
      return { cmd: IpvsCmd.ZERO, attrs: op.service ? { service: serviceKeyRecord(op.service) } : {} };
    case 'set-timeouts':
      return {
        cmd: IpvsCmd.SET_CONFIG,
        attrs: { timeoutTcp: op.timeouts.tcp, timeoutTcpFin: op.timeouts.tcpFin, timeoutUdp: op.timeouts.udp },
      };
    case 'start-daemon':
      return { cmd: IpvsCmd.NEW_DAEMON, attrs: { daemon: daemonRecord(op.daemon) } };
    case 'stop-daemon':
      return { cmd: IpvsCmd.DEL_DAEMON, attrs: { daemon: { state: DAEMON_STATE.num(op.state) } } };
  }
}
