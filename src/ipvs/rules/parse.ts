/**
 * parseCommand(): ipvsadm 1.31's argument handling (parse_options + process_options), reproduced
 * step by step so that the same arguments give the same command, the same defaults, and the same
 * first error text and exit status. The options are applied in argv order to one mutable record,
 * as ipvsadm does, because later options read what earlier ones set (-r copies the service port,
 * -M reads the family, -6 needs -f first).
 *
 * Names: hosts resolve to IPv4 through the resolver (default: /etc/hosts), ports by service name
 * through it too (default: /etc/services). IPv6 addresses are numeric only, as in ipvsadm.
 */
import type {
  Destination,
  Family,
  ForwardMethod,
  Protocol,
  Service,
  ServiceKey,
  SyncDaemon,
  SyncDaemonState,
  TunnelType,
} from '../model';
import {
  type Command,
  type ListFormat,
  DEFAULT_LIST_FORMAT,
  DEFAULT_MCAST_INTERFACE,
  DEFAULT_PERSISTENCE_TIMEOUT,
  DEFAULT_SCHEDULER,
  DEFAULT_WEIGHT,
  MAX_TIMEOUT,
} from './command';
import { atoi, stringToNumber, isDigit, strtol10 } from './cnum';
import { EXIT, RuleError } from './errors';
import { formatIpv4, formatIpv6, inetAton, inetPton4, inetPton6 } from './inet';
import {
  COMMAND_NAMES,
  COMMAND_OPTIONS,
  type CommandName,
  OPTION_CLASSES,
  type OptionClass,
  OPTION_TABLE,
  TUNNEL_OPTION_CLASSES,
  TUNNEL_OPTIONS,
  TUNNEL_TYPES,
} from './options';
import { PoptContext, POPT_ERROR_TEXT } from './popt';
import { defaultResolver, type Resolver, type ServiceProtocol } from './resolver';

export interface ParseOptions {
  /** Name lookups (default: /etc/hosts and /etc/services). */
  resolver?: Resolver;
  /** argv[0] as printed in "Try `PROGRAM -h' ..." (default "ipvsadm"). */
  program?: string;
}

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_SCTP = 132;

const SVC_F_PERSISTENT = 0x1;
const SVC_F_ONEPACKET = 0x4;
const SVC_F_SCHED1 = 0x8;
const SVC_F_SCHED2 = 0x10;
const SVC_F_SCHED3 = 0x20;

const SERVICE_ADDR = 1;
const SERVICE_PORT = 2;

/** Mirror of ipvsadm's ipvs_service_t while parsing. */
interface SvcRec {
  af: Family | null;
  protocol: number;
  address: string | null;
  port: number;
  fwmark: number;
  sched: string;
  flags: number;
  timeout: number;
  /** IPv4: host-order mask; IPv6: prefix length */
  netmask: number;
  pe: string;
}

interface DestRec {
  af: Family | null;
  address: string | null;
  port: number;
  forward: ForwardMethod;
  weight: number;
  upper: number;
  lower: number;
  tunType: number;
  tunPort: number;
  tunFlags: number;
}

interface DaemonRec {
  state: SyncDaemonState;
  mcastIfn: string;
  syncId: number;
  syncMaxLen: number;
  mcastGroup: string;
  mcastPort: number;
  mcastTtl: number;
}

function fail(message: string): never {
  throw new RuleError(message, EXIT.BAD_INPUT);
}

function protocolName(p: number): ServiceProtocol | undefined {
  if (p === IPPROTO_TCP) return 'tcp';
  if (p === IPPROTO_UDP) return 'udp';
  if (p === IPPROTO_SCTP) return 'sctp';
  return undefined;
}

function strIsDigit(s: string): boolean {
  for (const ch of s) if (!isDigit(ch)) return false;
  return true;
}

/** parse_service(): host[:port] or [v6]:port into rec; returns SERVICE_ADDR|SERVICE_PORT bits, 0 on error. */
function parseService(buf: string, rec: { af: Family | null; address: string | null; port: number; netmask: number; protocol: number }, resolver: Resolver): number {
  if (strIsDigit(buf)) return 0;
  let b = buf;
  let portText: string | null = null;
  if (b[0] === '[') {
    b = b.slice(1);
    const close = b.indexOf(']');
    if (close < 0) return 0;
    const after = b.slice(close + 1);
    b = b.slice(0, close);
    if (after[0] !== ':') return 0;
    portText = after.slice(1);
  }
  const v6 = inetPton6(b);
  if (v6 !== null) {
    rec.address = formatIpv6(v6);
    rec.af = 'inet6';
    rec.netmask = 128;
  } else {
    const colon = b.lastIndexOf(':');
    if (colon >= 0) {
      portText = b.slice(colon + 1);
      b = b.slice(0, colon);
    } else {
      portText = null;
    }
    const v4 = inetAton(b);
    if (v4 !== null) {
      rec.address = formatIpv4(v4);
      rec.af = 'inet';
    } else {
      const host = b === '' ? undefined : resolver.hostToIpv4(b);
      if (host === undefined) return 0;
      rec.address = host;
      rec.af = 'inet';
    }
  }
  let result = SERVICE_ADDR;
  if (portText !== null) {
    result |= SERVICE_PORT;
    const n = stringToNumber(portText, 0, 65535);
    if (n !== -1) rec.port = n;
    else {
      const proto = protocolName(rec.protocol);
      const named = proto === undefined || portText === '' ? undefined : resolver.serviceToPort(portText, proto);
      if (named === undefined) return 0;
      rec.port = named;
    }
  }
  return result;
}

/** parse_timeout(): absent → 360 (bare -p); otherwise a number in [min, max]. */
function parseTimeout(arg: string | null, min: number, max: number): number {
  if (arg === null) return DEFAULT_PERSISTENCE_TIMEOUT;
  const n = stringToNumber(arg, min, max);
  if (n === -1) fail(`invalid timeout value \`${arg}' specified`);
  return n;
}

/** parse_fwmark(): 1..4294967295. */
function parseFwmark(arg: string): number {
  const r = strtol10(arg);
  // strtol's value is read as an unsigned long: negatives become huge.
  const asUnsigned = BigInt.asUintN(64, r.value);
  if (r.end !== arg.length || r.end === 0 || r.overflow || asUnsigned === 0n || asUnsigned > 0xffffffffn) {
    fail(`invalid fwmark value \`${arg}' specified`);
  }
  return Number(asUnsigned);
}

/** parse_sched_flags(): comma-separated flag names, checked against the scheduler. */
function parseSchedFlags(sched: string, arg: string): number {
  const name = sched !== '' ? sched : DEFAULT_SCHEDULER;
  const tokens = arg.split(',').filter((t) => t !== '');
  // ipvsadm dereferences a NULL token here (crash) when the argument holds only commas.
  if (tokens.length === 0) fail(`invalid scheduler flag \`${arg}'`);
  let flags = 0;
  for (const flag of tokens) {
    switch (flag) {
      case 'flag-1':
        flags |= SVC_F_SCHED1;
        break;
      case 'flag-2':
        flags |= SVC_F_SCHED2;
        break;
      case 'flag-3':
        flags |= SVC_F_SCHED3;
        break;
      case 'sh-fallback':
      case 'sh-port':
      case 'mh-fallback':
      case 'mh-port': {
        flags |= flag.endsWith('fallback') ? SVC_F_SCHED1 : SVC_F_SCHED2;
        if (name !== flag.slice(0, 2)) fail(`incompatible scheduler flag \`${flag}'`);
        break;
      }
      default:
        fail(`invalid scheduler flag \`${flag}'`);
    }
  }
  return flags;
}

/** IN_MULTICAST / IN6_IS_ADDR_MULTICAST group parsing for --mcast-group. */
function parseMcastGroup(arg: string): string {
  if (arg.includes(':')) {
    const b = inetPton6(arg);
    if (b === null || b[0] !== 0xff) fail(`invalid IPv6 mcast-group \`${arg}'`);
    return formatIpv6(b);
  }
  const v = inetPton4(arg);
  if (v === null || v >>> 28 !== 0xe) fail(`invalid IPv4 mcast-group \`${arg}'`);
  return formatIpv4(v);
}

function checkCommandOptions(cmd: CommandName, options: ReadonlySet<OptionClass>): void {
  const row = COMMAND_OPTIONS[cmd];
  let last: OptionClass | null = null;
  OPTION_CLASSES.forEach((opt, j) => {
    const rule = row[j];
    if (!options.has(opt)) {
      if (rule === '+') fail(`You need to supply the '${opt}' option for the '${cmd}' command`);
    } else {
      if (rule === 'x') fail(`Illegal '${opt}' option with the '${cmd}' command`);
      if (rule === '1') {
        if (last === null) last = opt;
        else fail(`The option '${opt}' conflicts with the '${last}' option in the '${cmd}' command`);
      }
    }
  });
}

function checkTunnelOptions(tunType: number, options: ReadonlySet<OptionClass>): void {
  const typeName = TUNNEL_TYPES[tunType];
  const row = TUNNEL_OPTIONS[typeName];
  let last: OptionClass | null = null;
  TUNNEL_OPTION_CLASSES.forEach((opt, j) => {
    const rule = row[j];
    if (!options.has(opt)) {
      if (rule === '+') fail(`You need to supply the '${opt}' option for the '${typeName}' tunnel type`);
    } else {
      if (rule === 'x') fail(`Illegal '${opt}' option with the '${typeName}' tunnel type`);
      if (rule === '1') {
        if (last === null) last = opt;
        else fail(`The option '${opt}' conflicts with the '${last}' option in the '${typeName}' tunnel type`);
      }
    }
  });
}

function serviceKeyOf(svc: SvcRec): ServiceKey {
  const family: Family = svc.af ?? 'inet';
  if (svc.fwmark !== 0) return { kind: 'fwmark', family, fwmark: svc.fwmark };
  const protocol: Protocol = protocolName(svc.protocol) ?? 'tcp';
  return { kind: 'addr', family, protocol, address: svc.address ?? '0.0.0.0', port: svc.port };
}

function serviceOf(svc: SvcRec): Service {
  const persistent = (svc.flags & SVC_F_PERSISTENT) !== 0;
  return {
    key: serviceKeyOf(svc),
    scheduler: svc.sched,
    flags: {
      persistent,
      onePacket: (svc.flags & SVC_F_ONEPACKET) !== 0,
      sched1: (svc.flags & SVC_F_SCHED1) !== 0,
      sched2: (svc.flags & SVC_F_SCHED2) !== 0,
      sched3: (svc.flags & SVC_F_SCHED3) !== 0,
    },
    persistenceTimeout: svc.timeout,
    netmask: svc.netmask,
    pe: svc.pe,
  };
}

function destinationOf(d: DestRec): Destination {
  return {
    family: d.af ?? 'inet',
    address: d.address ?? '0.0.0.0',
    port: d.port,
    forward: d.forward,
    weight: d.weight,
    upperThreshold: d.upper,
    lowerThreshold: d.lower,
    tunnelType: TUNNEL_TYPES[d.tunType] as TunnelType,
    tunnelPort: d.tunPort,
    tunnelFlags: { noCsum: d.tunFlags === 0, csum: (d.tunFlags & 1) !== 0, remCsum: (d.tunFlags & 2) !== 0 },
  };
}

/**
 * A canonical decimal number (no sign, blanks or leading zeros) up to `max`, else -1. Where it accepts,
 * it agrees with stringToNumber(); it refuses much that stringToNumber() accepts.
 */
function canonicalDecimal(s: string, max: number): number {
  const n = s.length;
  if (n === 0 || n > 10) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9 || (c === 0 && i === 0 && n > 1)) return -1;
    v = v * 10 + c;
  }
  return v <= max ? v : -1;
}

/** Whether s[from, to) is a dotted quad exactly as inet_ntoa() writes it (its inet_aton() value prints back as itself). */
function isCanonicalIpv4(s: string, from: number, to: number): boolean {
  let dots = 0;
  let digits = 0;
  let octet = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return false;
      digits = 0;
      octet = 0;
    } else {
      const d = c - 48;
      if (d < 0 || d > 9 || (digits === 1 && octet === 0)) return false;
      octet = octet * 10 + d;
      if (++digits > 3 || octet > 255) return false;
    }
  }
  return dots === 3 && digits > 0;
}

/** "a.b.c.d:port" in canonical form into rec (address, af, port), as parseService() reads it; false otherwise. */
function canonicalIpv4Port(word: string, rec: { af: Family | null; address: string | null; port: number }): boolean {
  const colon = word.indexOf(':');
  if (colon < 0 || !isCanonicalIpv4(word, 0, colon)) return false;
  const port = canonicalDecimal(word.slice(colon + 1), 65535);
  if (port < 0) return false;
  rec.af = 'inet';
  rec.address = word.slice(0, colon);
  rec.port = port;
  return true;
}

/**
 * The fast path for the lines `ipvsadm -Sn` writes most: `-A -t|-u A:P -s SCHED` and
 * `-a -t|-u A:P -r A:P -m|-g -w N`, with canonical IPv4 addresses and numbers. Gives exactly what
 * parseCommand() gives for such a line, and undefined for anything else (then use parseCommand()).
 */
export function parseSavedRule(argv: readonly string[]): Command | undefined {
  const n = argv.length;
  if (n !== 5 && n !== 8) return undefined;
  const a0 = argv[0];
  const proto = argv[1] === '-t' ? IPPROTO_TCP : argv[1] === '-u' ? IPPROTO_UDP : 0;
  if (proto === 0) return undefined;
  const svc: SvcRec = {
    af: null,
    protocol: proto,
    address: null,
    port: 0,
    fwmark: 0,
    sched: '',
    flags: 0,
    timeout: 0,
    netmask: 0xffffffff,
    pe: '',
  };
  if (!canonicalIpv4Port(argv[2], svc)) return undefined;
  if (n === 5) {
    if (a0 !== '-A' || argv[3] !== '-s' || svc.port === 0) return undefined;
    const sched = argv[4];
    if (sched.length > 15) return undefined;
    for (let i = 0; i < sched.length; i++) {
      const c = sched.charCodeAt(i);
      if (c < 97 || c > 122) return undefined;
    }
    svc.sched = sched;
    return { kind: 'add-service', service: serviceOf(svc) };
  }
  if (a0 !== '-a' || argv[3] !== '-r' || argv[6] !== '-w') return undefined;
  const fwd = argv[5];
  if (fwd !== '-m' && fwd !== '-g') return undefined;
  const dest: DestRec = {
    af: null,
    address: null,
    port: 0,
    forward: fwd === '-m' ? 'masq' : 'route',
    weight: DEFAULT_WEIGHT,
    upper: 0,
    lower: 0,
    tunType: 0,
    tunPort: 0,
    tunFlags: 0,
  };
  if (!canonicalIpv4Port(argv[4], dest)) return undefined;
  if (dest.forward === 'route') dest.port = svc.port;
  const weight = canonicalDecimal(argv[7], 2147483647);
  if (weight < 0) return undefined;
  dest.weight = weight;
  return { kind: 'add-dest', service: serviceKeyOf(svc), dest: destinationOf(dest) };
}

const COMMAND_OF_TAG: Partial<Record<string, CommandName>> = {
  A: 'add-service',
  E: 'edit-service',
  D: 'delete-service',
  a: 'add-server',
  e: 'edit-server',
  d: 'delete-server',
  C: 'flush',
  L: 'list',
  Z: 'zero',
  set: 'set',
  R: 'restore',
  S: 'save',
  'start-daemon': 'start-daemon',
  'stop-daemon': 'stop-daemon',
};

/**
 * Parse one ipvsadm invocation. `argv` excludes the program name. An empty argv is a plain
 * listing (`ipvsadm` alone). Throws RuleError with ipvsadm's message and exit status.
 */
export function parseCommand(argv: readonly string[], opts: ParseOptions = {}): Command {
  const resolver = opts.resolver ?? defaultResolver();
  const program = opts.program ?? 'ipvsadm';
  if (argv.length === 0) return { kind: 'list', target: { what: 'services' }, format: { ...DEFAULT_LIST_FORMAT } };

  const tryHelp = (): never => {
    throw new RuleError(`Try \`${program} -h' or '${program} --help' for more information.`, EXIT.POPT_OR_KERNEL);
  };

  const svc: SvcRec = {
    af: null,
    protocol: 0,
    address: null,
    port: 0,
    fwmark: 0,
    sched: '',
    flags: 0,
    timeout: 0,
    netmask: 0xffffffff,
    pe: '',
  };
  const dest: DestRec = {
    af: null,
    address: null,
    port: 0,
    forward: 'route',
    weight: DEFAULT_WEIGHT,
    upper: 0,
    lower: 0,
    tunType: 0,
    tunPort: 0,
    tunFlags: 0,
  };
  const daemon: DaemonRec = {
    state: 'master',
    mcastIfn: '',
    syncId: 0,
    syncMaxLen: 0,
    mcastGroup: '',
    mcastPort: 0,
    mcastTtl: 0,
  };
  const format: ListFormat = { ...DEFAULT_LIST_FORMAT };
  const options = new Set<OptionClass>();
  const setOption = (o: OptionClass): void => {
    if (options.has(o)) fail(`multiple '${o}' options specified`);
    options.add(o);
  };

  const popt = new PoptContext(argv, OPTION_TABLE);
  const first = popt.nextOption();
  if (first.kind !== 'option') return tryHelp();
  let cmd: CommandName;
  switch (first.def.tag) {
    case 'h':
      return { kind: 'help' };
    case 'v':
      return { kind: 'version' };
    case 'start-daemon':
    case 'stop-daemon': {
      cmd = first.def.tag;
      const a = first.arg ?? '';
      if (a === 'master' || a === 'backup') daemon.state = a;
      else fail(cmd === 'start-daemon' ? 'illegal start-daemon parameter specified' : 'illegal start_daemon specified');
      break;
    }
    default: {
      const c = COMMAND_OF_TAG[first.def.tag];
      if (c === undefined) return tryHelp();
      cmd = c;
    }
  }

  let schedFlagsArg = '';
  for (;;) {
    const ev = popt.nextOption();
    if (ev.kind === 'end') break;
    if (ev.kind === 'error') {
      throw new RuleError(`${popt.badOption()}: ${POPT_ERROR_TEXT[ev.code]}`, EXIT.POPT_OR_KERNEL);
    }
    const arg = ev.arg ?? '';
    switch (ev.def.tag) {
      case 't':
      case 'u':
      case 'sctp': {
        setOption('service-address');
        svc.protocol = ev.def.tag === 't' ? IPPROTO_TCP : ev.def.tag === 'u' ? IPPROTO_UDP : IPPROTO_SCTP;
        const r = parseService(arg, svc, resolver);
        if (!(r & SERVICE_ADDR)) fail('illegal virtual server address[:port] specified');
        break;
      }
      case 'f':
        setOption('service-address');
        svc.af = 'inet';
        svc.protocol = IPPROTO_TCP;
        svc.fwmark = parseFwmark(arg);
        break;
      case 's':
        setOption('scheduler');
        svc.sched = arg.slice(0, 15);
        break;
      case 'p':
        setOption('persistent');
        svc.flags |= SVC_F_PERSISTENT;
        svc.timeout = parseTimeout(ev.arg, 1, MAX_TIMEOUT);
        break;
      case 'M':
        setOption('netmask');
        if (svc.af !== 'inet6') {
          const v = inetAton(arg) ?? (arg === '' ? undefined : toNumber(resolver.hostToIpv4(arg)));
          if (v === null || v === undefined) fail('illegal virtual server persistent mask specified');
          svc.netmask = v;
        } else {
          const n = atoi(arg);
          if (n < 1 || n > 128) fail('illegal ipv6 netmask specified');
          svc.netmask = n;
        }
        break;
      case 'r': {
        setOption('real-server');
        const t = { af: svc.af, address: svc.address, port: svc.port, netmask: svc.netmask, protocol: svc.protocol };
        const r = parseService(arg, t, resolver);
        dest.af = t.af;
        dest.address = t.address;
        dest.port = t.port;
        if (!(r & SERVICE_ADDR)) fail('illegal real server address[:port] specified');
        if (r === SERVICE_ADDR) dest.port = svc.port;
        break;
      }
      case 'i':
        setOption('forwarding-method');
        dest.forward = 'tunnel';
        break;
      case 'g':
        setOption('forwarding-method');
        dest.forward = 'route';
        break;
      case 'm':
        setOption('forwarding-method');
        dest.forward = 'masq';
        break;
      case 'w':
        setOption('weight');
        // Debian's ipvsadm accepts weights up to INT_MAX (upstream: 65535).
        dest.weight = stringToNumber(arg, 0, 2147483647);
        if (dest.weight === -1) fail('illegal weight specified');
        break;
      case 'x':
        setOption('u-threshold');
        dest.upper = stringToNumber(arg, 0, 2147483647);
        if (dest.upper === -1) fail('illegal u_threshold specified');
        break;
      case 'y':
        setOption('l-threshold');
        dest.lower = stringToNumber(arg, 0, 2147483647);
        if (dest.lower === -1) fail('illegal l_threshold specified');
        break;
      case 'c':
        setOption('connection');
        break;
      case 'n':
        setOption('numeric');
        format.numeric = true;
        break;
      case 'mcast-interface':
        setOption('mcast-interface');
        daemon.mcastIfn = arg.slice(0, 15);
        break;
      case 'syncid':
        setOption('syncid');
        daemon.syncId = stringToNumber(arg, 0, 255);
        if (daemon.syncId === -1) fail('illegal syncid specified');
        break;
      case 'timeout':
        setOption('timeout');
        break;
      case 'daemon':
        setOption('daemon');
        break;
      case 'stats':
        setOption('stats');
        format.stats = true;
        break;
      case 'rate':
        setOption('rate');
        format.rate = true;
        break;
      case 'thresholds':
        setOption('thresholds');
        format.thresholds = true;
        break;
      case 'persistent-conn':
        setOption('persistent-conn');
        format.persistentConn = true;
        break;
      case 'nosort':
        setOption('nosort');
        format.noSort = true;
        break;
      case 'sort':
        break;
      case 'X':
        setOption('exact');
        format.exact = true;
        break;
      case '6':
        if (svc.fwmark !== 0) {
          svc.af = 'inet6';
          svc.netmask = 128;
        } else fail('-6 used before -f\n');
        break;
      case 'o':
        setOption('ops');
        svc.flags |= SVC_F_ONEPACKET;
        break;
      case 'pe':
        setOption('pe');
        svc.pe = arg.slice(0, 16);
        break;
      case 'b':
        setOption('sched-flags');
        schedFlagsArg = arg.slice(0, 127);
        break;
      case 'mcast-group':
        setOption('mcast-group');
        daemon.mcastGroup = parseMcastGroup(arg);
        break;
      case 'mcast-port': {
        setOption('mcast-port');
        const n = stringToNumber(arg, 1, 65535);
        if (n === -1) fail('illegal mcast-port specified');
        daemon.mcastPort = n;
        break;
      }
      case 'mcast-ttl': {
        setOption('mcast-ttl');
        const n = stringToNumber(arg, 1, 255);
        if (n === -1) fail('illegal mcast-ttl specified');
        daemon.mcastTtl = n;
        break;
      }
      case 'sync-maxlen': {
        setOption('sync-maxlen');
        const n = stringToNumber(arg, 1, 65535 - 20 - 8);
        if (n === -1) fail('illegal sync-maxlen specified');
        daemon.syncMaxLen = n;
        break;
      }
      case 'tun-info':
        setOption('tun-info');
        format.tunInfo = true;
        break;
      case 'tun-type': {
        setOption('tun-type');
        const k = (TUNNEL_TYPES as readonly string[]).indexOf(arg);
        if (k < 0) fail('illegal tunnel type specified');
        dest.tunType = k;
        break;
      }
      case 'tun-port': {
        setOption('tun-port');
        const n = stringToNumber(arg, 1, 65535);
        if (n === -1) fail('illegal tunnel port specified');
        dest.tunPort = n;
        break;
      }
      case 'tun-nocsum':
        setOption('tun-nocsum');
        break;
      case 'tun-csum':
        setOption('tun-csum');
        dest.tunFlags |= 1;
        break;
      case 'tun-remcsum':
        setOption('tun-remcsum');
        dest.tunFlags |= 2;
        break;
      default:
        // A second command, -h/-v after the command, ...
        fail(`invalid option \`${popt.badOption()}'`);
    }
  }

  const timeouts = { tcp: 0, tcpFin: 0, udp: 0 };
  if (cmd === 'set') {
    const a0 = popt.getArg();
    const a1 = a0 === undefined ? undefined : popt.getArg();
    const a2 = a1 === undefined ? undefined : popt.getArg();
    if (a0 === undefined || a1 === undefined || a2 === undefined) fail('--set option requires 3 timeout values');
    timeouts.tcp = parseTimeout(a0, 0, MAX_TIMEOUT);
    timeouts.tcpFin = parseTimeout(a1, 0, MAX_TIMEOUT);
    timeouts.udp = parseTimeout(a2, 0, MAX_TIMEOUT);
  }
  const extra = popt.getArg();
  if (extra !== undefined) fail(`unexpected argument ${extra}`);

  if (schedFlagsArg !== '') {
    svc.flags &= ~(SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3);
    svc.flags |= parseSchedFlags(svc.sched, schedFlagsArg);
  }

  checkCommandOptions(cmd, options);

  if (cmd === 'add-service' || cmd === 'edit-service') {
    if (svc.fwmark === 0 && svc.port === 0 && !(svc.flags & SVC_F_PERSISTENT)) {
      fail('Zero port specified for non-persistent service');
    }
    if (svc.flags & SVC_F_ONEPACKET && svc.fwmark === 0 && svc.protocol !== IPPROTO_UDP) {
      fail('One-Packet Scheduling is only for UDP virtual services');
    }
    if (svc.sched === '') svc.sched = DEFAULT_SCHEDULER;
  }
  if (cmd === 'start-daemon' && daemon.mcastIfn === '') daemon.mcastIfn = DEFAULT_MCAST_INTERFACE;

  if (cmd === 'add-server' || cmd === 'edit-server') {
    if (svc.fwmark === 0 && (dest.forward === 'tunnel' || dest.forward === 'route')) dest.port = svc.port;
    if (dest.af !== svc.af && dest.forward !== 'tunnel') {
      fail('Different address family is allowed only for tunneling servers');
    }
    const tunnelOption = TUNNEL_OPTION_CLASSES.some((o) => options.has(o)) || options.has('tun-type');
    if (tunnelOption && dest.forward !== 'tunnel') fail('Tunnel options conflict with forward method');
    checkTunnelOptions(dest.tunType, options);
  }

  switch (cmd) {
    case 'list': {
      const hasAny = (...o: OptionClass[]): boolean => o.some((x) => options.has(x));
      if (
        (hasAny('connection', 'timeout', 'daemon') && hasAny('stats', 'rate', 'thresholds')) ||
        (hasAny('timeout', 'daemon') && hasAny('persistent-conn'))
      ) {
        fail('options conflicts in the list command');
      }
      if (options.has('connection')) return { kind: 'list', target: { what: 'connections' }, format };
      if (options.has('service-address')) return { kind: 'list', target: { what: 'service', service: serviceKeyOf(svc) }, format };
      if (options.has('timeout')) return { kind: 'list', target: { what: 'timeout' }, format };
      if (options.has('daemon')) return { kind: 'list', target: { what: 'daemon' }, format };
      return { kind: 'list', target: { what: 'services' }, format };
    }
    case 'restore':
      return { kind: 'restore' };
    case 'save':
      return { kind: 'save', numeric: format.numeric };
    case 'flush':
      return { kind: 'clear' };
    case 'add-service':
      return { kind: 'add-service', service: serviceOf(svc) };
    case 'edit-service':
      return { kind: 'edit-service', service: serviceOf(svc) };
    case 'delete-service':
      return { kind: 'delete-service', key: serviceKeyOf(svc) };
    case 'zero':
      return options.has('service-address') ? { kind: 'zero', service: serviceKeyOf(svc) } : { kind: 'zero' };
    case 'add-server':
      return { kind: 'add-dest', service: serviceKeyOf(svc), dest: destinationOf(dest) };
    case 'edit-server':
      return { kind: 'edit-dest', service: serviceKeyOf(svc), dest: destinationOf(dest) };
    case 'delete-server': {
      const d = destinationOf(dest);
      return { kind: 'delete-dest', service: serviceKeyOf(svc), dest: { family: d.family, address: d.address, port: d.port } };
    }
    case 'set':
      return { kind: 'set', timeouts };
    case 'start-daemon': {
      const sd: SyncDaemon = { ...daemon };
      return { kind: 'start-daemon', daemon: sd };
    }
    case 'stop-daemon':
      return { kind: 'stop-daemon', state: daemon.state, syncId: daemon.syncId };
  }
}

function toNumber(ipv4: string | undefined): number | undefined {
  if (ipv4 === undefined) return undefined;
  return inetPton4(ipv4) ?? undefined;
}

/** Every command name, in ipvsadm's order (for help and tests). */
export const IPVSADM_COMMANDS: readonly CommandName[] = COMMAND_NAMES;
