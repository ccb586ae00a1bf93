/**
 * The LVS half of a keepalived configuration after parsing, with keepalived's defaults and its
 * inheritance (virtual server -> real server -> checker) already applied. Times are in seconds.
 */
import type { Destination, Service, ServiceKey } from '../ipvs/model';

export interface Where {
  file: string;
  line: number;
}

export type CheckerKind = 'TCP_CHECK' | 'HTTP_GET' | 'SSL_GET' | 'MISC_CHECK' | 'DNS_CHECK' | 'UDP_CHECK';

interface CheckerBase {
  where: Where;
  /** Where to connect: connect_ip / connect_port, defaulting to the real server's address and port. */
  connectIp: string;
  connectPort: number;
  /** bindto / bind_port: the source address and port of the check's connection ('' / 0: any). */
  bindTo: string;
  bindPort: number;
  connectTimeout: number;
  retry: number;
  delayBeforeRetry: number;
  /** The first check runs after a random delay in [0, warmup]. */
  warmup: number;
  delayLoop: number;
  /** The checker starts failed (its real server out) until its first success. */
  alpha: boolean;
}

export interface TcpCheck extends CheckerBase {
  kind: 'TCP_CHECK';
}

export interface HttpUrl {
  path: string;
  /** md5 of the body, lower-case hex; undefined: not checked. */
  digest?: string;
  /** Accepted status codes as inclusive ranges (default 200-299). */
  statusCodes: [number, number][];
  virtualhost?: string;
}

export interface HttpCheck extends CheckerBase {
  kind: 'HTTP_GET' | 'SSL_GET';
  urls: HttpUrl[];
  virtualhost?: string;
  /** http_protocol: the version sent ('1.0' default, '1.0C' adds Connection: close, '1.1'). */
  httpProtocol: '1.0' | '1.0C' | '1.1';
  /** SSL_GET: send SNI (the virtualhost) in the TLS handshake. */
  enableSni: boolean;
}

export interface MiscCheck extends CheckerBase {
  kind: 'MISC_CHECK';
  /** The command line, split as keepalived splits it (quotes and backslashes). */
  argv: string[];
  /** Seconds before the script is killed; default the delay loop. */
  timeout: number;
  /** Exit status 2..255 sets the weight to status - 2. */
  dynamic: boolean;
}

export interface DnsCheck extends CheckerBase {
  kind: 'DNS_CHECK';
  /** Query type name (A, NS, CNAME, SOA, MX, TXT, AAAA); default SOA. */
  type: string;
  /** The name asked for; default the root. */
  name: string;
}

export interface UdpCheck extends CheckerBase {
  kind: 'UDP_CHECK';
  payload: Buffer;
  /** A reply is needed (and, when not empty, must start with these bytes). */
  requireReply: Buffer | undefined;
  minReplyLength: number;
  maxReplyLength: number;
}

export type Checker = TcpCheck | HttpCheck | MiscCheck | DnsCheck | UdpCheck;

export interface RealServer {
  where: Where;
  /** The destination as it is added when up (weight = configured weight). */
  dest: Destination;
  inhibit: boolean;
  alpha: boolean;
  notifyUp?: string;
  notifyDown?: string;
  checkers: Checker[];
}

export interface SorryServer {
  dest: Destination;
  /** sorry_server_inhibit: kept in the table at weight 0 while the quorum is up. */
  inhibit: boolean;
}

export interface VirtualServer {
  where: Where;
  /** How keepalived names it in logs: "[10.0.0.1]:tcp:80", "FWM 1", "group web". */
  name: string;
  /** The IPVS services it stands for (one, or one per address of its group). */
  services: Service[];
  /** Only for address services: which IPVS service keys came from a group entry with no port. */
  realServers: RealServer[];
  sorryServer?: SorryServer;
  quorum: number;
  hysteresis: number;
  quorumUp?: string;
  quorumDown?: string;
  alpha: boolean;
  omega: boolean;
  delayLoop: number;
}

export interface KeepalivedConfig {
  /** Every file read, in order. */
  files: string[];
  virtualServers: VirtualServer[];
  /** Things read but not applied (global_defs keywords, VRRP blocks), one line each. */
  ignored: string[];
  /** Corrections keepalived makes too (and logs), e.g. a quorum above the total weight. */
  warnings: string[];
}

/** The service key text keepalived's logs would use for one key. */
export function vsKeyName(key: ServiceKey): string {
  if (key.kind === 'fwmark') return `FWM ${key.fwmark}`;
  const host = key.family === 'inet6' ? `[${key.address}]` : `[${key.address}]`;
  return `${host}:${key.protocol}:${key.port}`;
}
