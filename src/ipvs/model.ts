/**
 * The IPVS object model shared by the netlink client, the ipvsadm rule language, the reconciler,
 * the CLI and the daemon. Addresses are kept as canonical text (what `ipvsadm -n` prints:
 * dotted quad, or RFC 5952 IPv6 without brackets) so that models compare with `===`.
 */

export type Family = 'inet' | 'inet6';
export type Protocol = 'tcp' | 'udp' | 'sctp';

/** IP_VS_CONN_F_FWD_MASK values, named as ipvsadm names them (-m, -i, -g; local and bypass are kernel-only). */
export type ForwardMethod = 'masq' | 'local' | 'tunnel' | 'route' | 'bypass';

/** IP_VS_CONN_F_TUNNEL_TYPE_* */
export type TunnelType = 'ipip' | 'gue' | 'gre';

/** A virtual service is named either by protocol/address/port or by firewall mark. */
export type ServiceKey =
  | { kind: 'addr'; family: Family; protocol: Protocol; address: string; port: number }
  | { kind: 'fwmark'; family: Family; fwmark: number };

export interface ServiceFlags {
  /** IP_VS_SVC_F_PERSISTENT; set whenever persistenceTimeout > 0. */
  persistent: boolean;
  /** IP_VS_SVC_F_ONEPACKET (-o, UDP/fwmark only). */
  onePacket: boolean;
  /** IP_VS_SVC_F_SCHED1..3 (-b flag-1,flag-2,flag-3; sh calls them sh-fallback, sh-port). */
  sched1: boolean;
  sched2: boolean;
  sched3: boolean;
}

export interface Service {
  key: ServiceKey;
  scheduler: string;
  flags: ServiceFlags;
  /** Persistence timeout in seconds; 0 when not persistent. */
  persistenceTimeout: number;
  /**
   * Persistence netmask. IPv4: the mask as an unsigned 32-bit number in host order
   * (0xffffffff = /32). IPv6: the prefix length (128 by default).
   */
  netmask: number;
  /** Persistence engine name ('' for none; the kernel knows 'sip'). */
  pe: string;
}

export interface TunnelFlags {
  noCsum: boolean;
  csum: boolean;
  remCsum: boolean;
}

export interface Destination {
  /** Family of the real server's address; may differ from the service's for tunnelling. */
  family: Family;
  address: string;
  port: number;
  forward: ForwardMethod;
  weight: number;
  upperThreshold: number;
  lowerThreshold: number;
  tunnelType: TunnelType;
  tunnelPort: number;
  tunnelFlags: TunnelFlags;
}

/** IPVS_STATS_ATTR_* / IPVS_STATS64 counters and rate estimates. 64-bit values are bigint. */
export interface Stats {
  conns: bigint;
  inPkts: bigint;
  outPkts: bigint;
  inBytes: bigint;
  outBytes: bigint;
  cps: bigint;
  inPps: bigint;
  outPps: bigint;
  inBps: bigint;
  outBps: bigint;
}

export interface DestinationState extends Destination {
  activeConns: number;
  inactiveConns: number;
  persistConns: number;
  stats: Stats;
}

export interface ServiceState extends Service {
  stats: Stats;
  destinations: DestinationState[];
}

/** What a rule file describes and what the reconciler drives the kernel to. */
export interface DesiredService extends Service {
  destinations: Destination[];
}

export interface Timeouts {
  /** Seconds; 0 in a --set means "leave unchanged". */
  tcp: number;
  tcpFin: number;
  udp: number;
}

export type SyncDaemonState = 'master' | 'backup';

export interface SyncDaemon {
  state: SyncDaemonState;
  mcastIfn: string;
  syncId: number;
  /** Optional since Linux 4.3 (0 / '' when not set). */
  syncMaxLen: number;
  mcastGroup: string;
  mcastPort: number;
  mcastTtl: number;
}

export interface IpvsInfo {
  /** Kernel IPVS version as text, e.g. "1.2.1". */
  version: string;
  connTableSize: number;
}

export const ZERO_STATS: Readonly<Stats> = Object.freeze({
  conns: 0n,
  inPkts: 0n,
  outPkts: 0n,
  inBytes: 0n,
  outBytes: 0n,
  cps: 0n,
  inPps: 0n,
  outPps: 0n,
  inBps: 0n,
  outBps: 0n,
});

export const NO_SERVICE_FLAGS: Readonly<ServiceFlags> = Object.freeze({
  persistent: false,
  onePacket: false,
  sched1: false,
  sched2: false,
  sched3: false,
});

export const NO_TUNNEL_FLAGS: Readonly<TunnelFlags> = Object.freeze({ noCsum: false, csum: false, remCsum: false });

/** A stable text identity for a service key, e.g. "tcp 10.0.0.1:80", "udp [::1]:53", "fwmark 1 inet6". */
export function serviceKeyId(key: ServiceKey): string {
  if (key.kind === 'fwmark') return `fwmark ${key.fwmark} ${key.family}`;
  const host = key.family === 'inet6' ? `[${key.address}]` : key.address;
  return `${key.protocol} ${host}:${key.port}`;
}

/** A stable text identity for a real server within its service. */
export function destinationId(d: Pick<Destination, 'family' | 'address' | 'port'>): string {
  return d.family === 'inet6' ? `[${d.address}]:${d.port}` : `${d.address}:${d.port}`;
}

/** A real server named within a service (what delete needs). */
export type DestinationRef = Pick<Destination, 'family' | 'address' | 'port'>;

/**
 * One kernel change. The reconciler produces these, the netlink client executes them
 * (pipelined, one ACK each), and rollback is expressed in the same terms.
 */
export type IpvsOp =
  | { op: 'add-service'; service: Service }
  | { op: 'edit-service'; service: Service }
  | { op: 'delete-service'; key: ServiceKey }
  | { op: 'add-dest'; service: ServiceKey; dest: Destination }
  | { op: 'edit-dest'; service: ServiceKey; dest: Destination }
  | { op: 'delete-dest'; service: ServiceKey; dest: DestinationRef }
  | { op: 'flush' }
  | { op: 'zero'; service?: ServiceKey }
  | { op: 'set-timeouts'; timeouts: Timeouts }
  | { op: 'start-daemon'; daemon: SyncDaemon }
  | { op: 'stop-daemon'; state: SyncDaemonState };
