/**
 * Printing the IPVS table as ipvsadm 1.31 prints it: `-S` rules (formatSave), `-L` listings
 * with each of their formats (formatList), `-L --timeout`, `-L --daemon`, `-L -c`. Output is
 * byte-identical with ipvsadm's for the same kernel state, including its sort order, column
 * widths, truncations and number abbreviations.
 */
import type {
  Destination,
  DestinationState,
  DesiredService,
  Family,
  ForwardMethod,
  IpvsInfo,
  Service,
  ServiceState,
  SyncDaemon,
  Timeouts,
} from '../model';
import { DEFAULT_LIST_FORMAT, type ListFormat } from './command';
import { formatIpv4, formatIpv6, inetPton4, inetPton6 } from './inet';
import { defaultResolver, type Resolver, type ServiceProtocol } from './resolver';
import { sortDests, sortServices } from './sort';
import { TUNNEL_TYPES } from './options';

export interface NameOptions {
  /** -n: print addresses and ports as numbers (default false: resolve names as ipvsadm does). */
  numeric?: boolean;
  /** Name lookups when not numeric (default: /etc/hosts and /etc/services). */
  resolver?: Resolver;
}

export type FormatListOptions = Partial<ListFormat> &
  NameOptions & {
    /**
     * Kernel IPVS version and connection table size for the "IP Virtual Server version" header.
     * Leave out for a one-service listing (`-L -t addr:port`), which has no header.
     */
    info?: IpvsInfo;
  };

/** C's (char*)NULL through printf("%s"). */
const NULL_TEXT = '(null)';

/** printf("%d") of a value held in a C int. */
function cInt(n: number): string {
  return String(n | 0);
}

/** printf("%u") of a value held in a C unsigned int. */
function cUint(n: number): string {
  return String(n >>> 0);
}

/** Padding taken from one string (padEnd/padStart build their filler for every call: 110k lines, 4 each). */
const SPACES = ' '.repeat(64);

function left(s: string, width: number): string {
  const n = width - s.length;
  if (n <= 0) return s;
  return n <= SPACES.length ? s + SPACES.slice(0, n) : s.padEnd(width, ' ');
}

function right(s: string, width: number): string {
  const n = width - s.length;
  if (n <= 0) return s;
  return n <= SPACES.length ? SPACES.slice(0, n) + s : s.padStart(width, ' ');
}

interface Namer {
  numeric: boolean;
  resolver: Resolver;
}

function namer(opts: NameOptions): Namer {
  return { numeric: opts.numeric ?? false, resolver: opts.resolver ?? defaultResolver() };
}

/** addrport_to_anyname(): "addr:port", "[v6]:port", or names; at most 59 characters (its buffer). */
function addrPort(n: Namer, family: Family, address: string, port: number, protocol: ServiceProtocol | undefined): string {
  const open = family === 'inet' ? '' : '[';
  const close = family === 'inet' ? '' : ']';
  let text: string;
  if (n.numeric) {
    text = `${open}${address}${close}:${port}`;
  } else {
    const host = n.resolver.addressToHost(family, address) ?? address;
    const service = protocol === undefined ? undefined : n.resolver.portToService(port, protocol);
    text = `${open}${host}${close}:${service ?? String(port)}`;
  }
  return text.slice(0, 59);
}

function serviceProtocol(s: Service): ServiceProtocol | undefined {
  return s.key.kind === 'addr' ? s.key.protocol : undefined;
}

const PROTOCOL_TITLE: Record<ServiceProtocol, string> = { tcp: 'TCP', udp: 'UDP', sctp: 'SCTP' };
const PROTOCOL_SWITCH: Record<ServiceProtocol, string> = { tcp: '-t', udp: '-u', sctp: '--sctp-service' };

/** The service's name as the rule (`-t addr:port`, `-f 1 -6`) or listing (`TCP  addr:port`, `FWM  1 IPv6`) shows it. */
function serviceName(n: Namer, s: Service, rule: boolean): string {
  const k = s.key;
  if (k.kind === 'fwmark') {
    if (rule) return k.family === 'inet6' ? `-f ${cInt(k.fwmark)} -6` : `-f ${cInt(k.fwmark)}`;
    return k.family === 'inet6' ? `FWM  ${cInt(k.fwmark)} IPv6` : `FWM  ${cInt(k.fwmark)}`;
  }
  const vname = addrPort(n, k.family, k.address, k.port, k.protocol);
  if (rule) return `${PROTOCOL_SWITCH[k.protocol]} ${vname}`;
  const text = `${left(PROTOCOL_TITLE[k.protocol], 4)} ${vname}`;
  return k.family === 'inet6' ? text : text.slice(0, 33);
}

/** print_sched_flags(): names depend on the scheduler; sh/mh have no name for flag-3. */
function schedFlagsText(s: Service): string {
  const names: string[] = [];
  if (s.scheduler === 'sh' || s.scheduler === 'mh') {
    if (s.flags.sched1) names.push(`${s.scheduler}-fallback`);
    if (s.flags.sched2) names.push(`${s.scheduler}-port`);
  } else {
    if (s.flags.sched1) names.push('flag-1');
    if (s.flags.sched2) names.push('flag-2');
    if (s.flags.sched3) names.push('flag-3');
  }
  return names.join(',');
}

function hasSchedFlags(s: Service): boolean {
  return s.flags.sched1 || s.flags.sched2 || s.flags.sched3;
}

function maskText(s: Service, prefix: string): string {
  if (s.key.family === 'inet') return s.netmask >>> 0 !== 0xffffffff ? `${prefix}${formatIpv4(s.netmask)}` : '';
  return s.netmask !== 128 ? `${prefix}${cInt(s.netmask)}` : '';
}

const FORWARD_SWITCH: Record<ForwardMethod, string> = {
  masq: '-m',
  tunnel: '-i',
  local: '-g',
  route: '-g',
  bypass: NULL_TEXT,
};

const FORWARD_NAME: Record<ForwardMethod, string> = {
  masq: 'Masq',
  local: 'Local',
  tunnel: 'Tunnel',
  route: 'Route',
  bypass: NULL_TEXT,
};

const TUNNEL_FLAG_SHORT = ['-c', '+c', 'r+c'];
const TUNNEL_FLAG_OPTION = ['--tun-nocsum', '--tun-csum', '--tun-remcsum'];

/** The kernel's tun_flags value (IP_VS_TUNNEL_ENCAP_FLAG_*). */
export function tunnelFlagsValue(d: Destination): number {
  return (d.tunnelFlags.csum ? 1 : 0) | (d.tunnelFlags.remCsum ? 2 : 0);
}

function tunFlagText(table: readonly string[], d: Destination): string {
  return table[tunnelFlagsValue(d)] ?? NULL_TEXT;
}

function destRule(svcName: string, dname: string, d: Destination): string {
  const base = `-a ${svcName} -r ${dname} ${FORWARD_SWITCH[d.forward]} -w ${cInt(d.weight)}`;
  if (d.forward !== 'tunnel') return base;
  switch (d.tunnelType) {
    case 'gre':
      return `${base} --tun-type gre ${tunFlagText(TUNNEL_FLAG_OPTION, d)}`;
    case 'gue':
      return `${base} --tun-type gue --tun-port ${d.tunnelPort} ${tunFlagText(TUNNEL_FLAG_OPTION, d)}`;
    case 'ipip':
      return `${base} --tun-type ipip`;
  }
}

/** fwd_tun_info() for --tun-info (its buffer holds 15 characters). */
function tunnelInfo(d: Destination): string {
  if (d.forward !== 'tunnel') return 'n/a';
  let t: string;
  switch (d.tunnelType) {
    case 'ipip':
      t = 'ipip';
      break;
    case 'gue':
      t = `gue:${d.tunnelPort}:${tunFlagText(TUNNEL_FLAG_SHORT, d)}`;
      break;
    case 'gre':
      t = `gre:${tunFlagText(TUNNEL_FLAG_SHORT, d)}`;
      break;
  }
  return t.slice(0, 15);
}

/** print_largenum(): 9 columns, abbreviated with K/M/G/T unless --exact. */
export function formatLargeNumber(v: bigint, exact: boolean): string {
  if (exact) {
    const s = v.toString();
    return right(s, s.length <= 8 ? 9 : s.length + 1);
  }
  if (v < 100000000n) return right(v.toString(), 9);
  if (v < 1000000000n) return right((v / 1000n).toString(), 8) + 'K';
  if (v < 100000000000n) return right((v / 1000000n).toString(), 8) + 'M';
  if (v < 100000000000000n) return right((v / 1000000000n).toString(), 8) + 'G';
  return right((v / 1000000000000n).toString(), 8) + 'T';
}

function orderServices<T extends Service>(services: readonly T[], noSort: boolean): T[] {
  return noSort ? services.slice() : sortServices(services);
}

function orderDests<T extends Destination>(dests: readonly T[], noSort: boolean): T[] {
  return noSort ? dests.slice() : sortDests(dests);
}

/**
 * A table printer in pieces, for output that streams: `header`, then `service(s)` for each service in the
 * order `order` gives (the services' order only depends on their keys, so `order` may see them before their
 * real servers are read). formatSave / formatList are header + order + service, joined.
 */
export interface TableFormatter<S extends Service> {
  readonly header: string;
  order(services: readonly S[]): S[];
  /** The service's lines and its real servers' lines, each ending in "\n". */
  service(s: S): string;
}

/** The pieces of `ipvsadm -S[n]`. */
export function saveFormatter<S extends DesiredService = DesiredService>(opts: NameOptions = {}): TableFormatter<S> {
  const n = namer(opts);
  return {
    header: '',
    order: (services) => orderServices(services, false),
    service: (s) => {
      const svcName = serviceName(n, s, true);
      let line = `-A ${svcName} -s ${s.scheduler}`;
      if (s.flags.persistent) line += ` -p ${cUint(s.persistenceTimeout)}${maskText(s, ' -M ')}`;
      if (s.pe !== '') line += ` --pe ${s.pe}`;
      if (s.flags.onePacket) line += ' -o';
      if (hasSchedFlags(s)) line += ` -b ${schedFlagsText(s)}`;
      const lines = [line];
      const protocol = serviceProtocol(s);
      for (const d of orderDests(s.destinations, false)) lines.push(destRule(svcName, addrPort(n, d.family, d.address, d.port, protocol), d));
      lines.push('');
      return lines.join('\n');
    },
  };
}

/** `ipvsadm -S` (with `numeric`: `ipvsadm -Sn`, what `ipvsadm-save -n` writes). */
export function formatSave(services: readonly DesiredService[], opts: NameOptions = {}): string {
  return formatTable(saveFormatter(opts), services);
}

function formatTable<S extends Service>(f: TableFormatter<S>, services: readonly S[]): string {
  return f.header + f.order(services).map((s) => f.service(s)).join('');
}

function listTitle(f: ListFormat): string {
  const prot = left('Prot LocalAddress:Port', 33);
  if (f.stats) {
    return `${prot} ${['Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes'].map((h) => right(h, 8)).join(' ')}\n  -> RemoteAddress:Port\n`;
  }
  if (f.rate) {
    return `${prot} ${['CPS', 'InPPS', 'OutPPS', 'InBPS', 'OutBPS'].map((h) => right(h, 8)).join(' ')}\n  -> RemoteAddress:Port\n`;
  }
  if (f.thresholds) {
    return `${prot} ${['Uthreshold', 'Lthreshold', 'ActiveConn', 'InActConn'].map((h) => left(h, 10)).join(' ')}\n  -> RemoteAddress:Port\n`;
  }
  if (f.persistentConn) {
    return `${prot} ${left('Weight', 9)} ${left('PersistConn', 11)} ${left('ActiveConn', 10)} ${left('InActConn', 10)}\n  -> RemoteAddress:Port\n`;
  }
  if (f.tunInfo) {
    return 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n';
  }
  return 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';
}

function serviceListLine(n: Namer, s: ServiceState, f: ListFormat): string {
  const svcName = serviceName(n, s, false);
  const big = (v: bigint): string => formatLargeNumber(v, f.exact);
  if (f.stats) {
    const st = s.stats;
    return left(svcName, 33) + [st.conns, st.inPkts, st.outPkts, st.inBytes, st.outBytes].map(big).join('');
  }
  if (f.rate) {
    const st = s.stats;
    return left(svcName, 33) + [st.cps, st.inPps, st.outPps, st.inBps, st.outBps].map(big).join('');
  }
  let line = `${svcName} ${s.scheduler}`;
  if (hasSchedFlags(s)) line += ` (${schedFlagsText(s)})`;
  if (s.flags.persistent) {
    line += ` persistent ${cUint(s.persistenceTimeout)}${maskText(s, ' mask ')}`;
    if (s.pe !== '') line += ` pe ${s.pe}`;
  }
  if (s.flags.onePacket) line += ' ops';
  return line;
}

function destListLine(n: Namer, s: ServiceState, d: DestinationState, f: ListFormat): string {
  let dname = addrPort(n, d.family, d.address, d.port, serviceProtocol(s));
  if (d.family !== 'inet6') dname = dname.slice(0, 28);
  const name = `  -> ${left(dname, 28)}`;
  const big = (v: bigint): string => formatLargeNumber(v, f.exact);
  const u = (v: number, w: number): string => left(cUint(v), w);
  if (f.stats) {
    const st = d.stats;
    return name + [st.conns, st.inPkts, st.outPkts, st.inBytes, st.outBytes].map(big).join('');
  }
  if (f.rate) {
    const st = d.stats;
    return `${name} ${right(st.cps.toString(), 8)} ${right(st.inPps.toString(), 8)} ${right(st.outPps.toString(), 8)}${big(st.inBps)}${big(st.outBps)}`;
  }
  if (f.thresholds) {
    return `${name} ${u(d.upperThreshold, 10)} ${u(d.lowerThreshold, 10)} ${u(d.activeConns, 10)} ${u(d.inactiveConns, 10)}`;
  }
  if (f.persistentConn) {
    return `${name} ${u(d.weight, 9)} ${u(d.persistConns, 11)} ${u(d.activeConns, 10)} ${u(d.inactiveConns, 10)}`;
  }
  if (f.tunInfo) {
    return `${name} ${left(FORWARD_NAME[d.forward], 7)} ${left(tunnelInfo(d), 13)} ${left(cInt(d.weight), 6)} ${u(d.activeConns, 10)} ${u(d.inactiveConns, 10)}`;
  }
  return `${name} ${left(FORWARD_NAME[d.forward], 7)} ${left(cInt(d.weight), 6)} ${u(d.activeConns, 10)} ${u(d.inactiveConns, 10)}`;
}

/** The pieces of `ipvsadm -L ...` (see formatList). */
export function listFormatter(opts: FormatListOptions = {}): TableFormatter<ServiceState> {
  const f: ListFormat = {
    numeric: opts.numeric ?? DEFAULT_LIST_FORMAT.numeric,
    stats: opts.stats ?? false,
    rate: opts.rate ?? false,
    thresholds: opts.thresholds ?? false,
    persistentConn: opts.persistentConn ?? false,
    noSort: opts.noSort ?? false,
    exact: opts.exact ?? false,
    tunInfo: opts.tunInfo ?? false,
  };
  const n = namer(opts);
  let header = '';
  if (opts.info) header += `IP Virtual Server version ${opts.info.version} (size=${cInt(opts.info.connTableSize)})\n`;
  header += listTitle(f);
  return {
    header,
    order: (services) => orderServices(services, f.noSort),
    service: (s) => {
      const lines = [serviceListLine(n, s, f)];
      for (const d of orderDests(s.destinations, f.noSort)) lines.push(destListLine(n, s, d, f));
      lines.push('');
      return lines.join('\n');
    },
  };
}

/**
 * `ipvsadm -L [-n] [--stats|--rate|--thresholds|--persistent-conn|--tun-info] [--exact] [--nosort]`.
 * With opts.info: the whole table with its header; without: the given services only (`-L -t svc`).
 */
export function formatList(services: readonly ServiceState[], opts: FormatListOptions = {}): string {
  return formatTable(listFormatter(opts), services);
}

/** `ipvsadm -L --timeout`. */
export function formatTimeouts(t: Timeouts): string {
  return `Timeout (tcp tcpfin udp): ${cInt(t.tcp)} ${cInt(t.tcpFin)} ${cInt(t.udp)}\n`;
}

/** `ipvsadm -L --daemon`: one line per running daemon, in the order given (the kernel's: master, backup). */
export function formatDaemons(daemons: readonly SyncDaemon[]): string {
  let out = '';
  for (const d of daemons) {
    let line = `${d.state} sync daemon (mcast=${d.mcastIfn}, syncid=${cInt(d.syncId)}`;
    if (d.syncMaxLen) line += `, maxlen=${cUint(d.syncMaxLen)}`;
    if (d.mcastGroup !== '') line += `, group=${d.mcastGroup}`;
    if (d.mcastPort) line += `, port=${cUint(d.mcastPort)}`;
    if (d.mcastTtl) line += `, ttl=${cUint(d.mcastTtl)}`;
    out += line + ')\n';
  }
  return out;
}

function procAddress(text: string): { family: Family; address: string } {
  const v6 = inetPton6(text);
  if (v6 !== null) return { family: 'inet6', address: formatIpv6(v6) };
  const v4 = inetPton4(text);
  if (v4 !== null) return { family: 'inet', address: formatIpv4(v4) };
  const hex = /^\s*(?:0[xX])?([0-9a-fA-F]*)/.exec(text)?.[1] ?? '';
  const value = hex === '' ? 0 : Number(BigInt.asUintN(32, BigInt(`0x${hex}`)));
  return { family: 'inet', address: formatIpv4(value) };
}

function hexShort(text: string): number {
  const m = /^\s*[+-]?(?:0[xX])?([0-9a-fA-F]+)/.exec(text);
  return m ? Number(BigInt.asUintN(16, BigInt(`0x${m[1]}`))) : 0;
}

/**
 * `ipvsadm -L -c [-n] [--persistent-conn]` from the text of /proc/net/ip_vs_conn
 * (its first line is the kernel's header and is skipped).
 */
export function formatConnections(procText: string, opts: NameOptions & { persistentConn?: boolean } = {}): string {
  const n = namer(opts);
  const pc = opts.persistentConn ?? false;
  let out = 'IPVS connection entries\n';
  out += pc
    ? `pro expire ${left('state', 11)} ${left('source', 18)} ${left('virtual', 18)} ${left('destination', 18)} ${left('pe name', 16)} pe_data\n`
    : `pro expire ${left('state', 11)} ${left('source', 18)} ${left('virtual', 18)} destination\n`;
  const lines = procText.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  for (const line of lines.slice(1)) {
    const f = line.split(/\s+/).filter((w) => w !== '');
    if (f.length === 0) continue;
    const [protocol, c, cport, v, vport, dst, dport, state, expires, peName, peData] = f;
    const proto: ServiceProtocol | undefined =
      protocol === 'TCP' ? 'tcp' : protocol === 'UDP' ? 'udp' : protocol === 'SCTP' ? 'sctp' : undefined;
    const ca = procAddress(c ?? '');
    const va = procAddress(v ?? '');
    const da = procAddress(dst ?? '');
    const cname = addrPort(n, ca.family, ca.address, hexShort(cport ?? ''), proto);
    const vname = addrPort(n, ca.family, va.address, hexShort(vport ?? ''), proto);
    const dname = addrPort(n, da.family, da.address, hexShort(dport ?? ''), proto);
    const secs = Number.parseInt(expires ?? '0', 10) || 0;
    const expire = `${String(Math.trunc(secs / 60)).padStart(2, '0')}:${String(secs % 60).padStart(2, '0')}`;
    if (pc && f.length >= 11) {
      out += `${left(protocol, 3)} ${left(expire, 6)} ${left(state ?? '', 11)} ${left(cname, 18)} ${left(vname, 18)} ${left(dname, 16)} ${left(peName ?? '', 18)} ${peData ?? ''}\n`;
    } else {
      out += `${left(protocol, 3)} ${left(expire, 6)} ${left(state ?? '', 11)} ${left(cname, 18)} ${left(vname, 18)} ${dname}\n`;
    }
  }
  return out;
}

/** The tunnel type names in kernel order (re-exported for the CLI's help). */
export const TUNNEL_TYPE_NAMES = TUNNEL_TYPES;
