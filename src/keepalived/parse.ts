/**
 * keepalived.conf (its LVS half, as keepalived 2.2.7 reads it) -> KeepalivedConfig. keepalived's
 * defaults, inheritance and its own corrections (logged by it as warnings: no protocol means UDP, a
 * quorum above the total weight is lowered, ...) are applied the same way, so the IPVS table comes
 * out as keepalived's does. Where keepalived logs "ignoring" and carries on with a bad value, we
 * refuse the file instead: every problem names file, line and keyword, and nothing is applied.
 * VRRP and the global settings that have no meaning here are read and ignored, said once each.
 */
import { type Destination, type Family, type Protocol, type Service, type ServiceFlags, type ServiceKey, type TunnelType } from '../ipvs/model';
import { formatIpv4, formatIpv6, inetAton, inetPton4, inetPton6 } from '../ipvs/rules/inet';
import type { Checker, CheckerKind, HttpUrl, KeepalivedConfig, RealServer, SorryServer, VirtualServer, Where } from './config';
import { KeepalivedConfigError, type ConfigProblem } from './errors';
import { fsSource, lexConfig, type FileSource, type Statement } from './lexer';

/** Root blocks of the VRRP half: accepted and ignored. */
const VRRP_ROOTS = new Set([
  'vrrp_instance', 'vrrp_sync_group', 'vrrp_script', 'vrrp_track_process', 'static_ipaddress', 'static_routes',
  'static_rules', 'garp_group', 'linkbeat_interfaces',
]);
/** Root blocks we refuse: they change what the LVS half does and we do not implement them. */
const UNSUPPORTED_ROOTS: Record<string, string> = {
  SSL: 'SSL (client certificates for SSL_GET) is not supported',
  bfd_instance: 'BFD is not supported',
  track_file: 'track_file is not supported',
};
const SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'sh', 'mh', 'dh', 'fo', 'ovf', 'lblcr', 'sed', 'nq', 'twos'];
/** Checkers we refuse, with why. */
const UNSUPPORTED_CHECKERS: Record<string, string> = {
  SMTP_CHECK: 'SMTP_CHECK is not supported',
  BFD_CHECK: 'BFD_CHECK is not supported',
  PING_CHECK: 'PING_CHECK is not supported (it needs raw ICMP sockets)',
  FILE_CHECK: 'FILE_CHECK is not supported',
  track_file: 'track_file is not supported',
  track_bfd: 'track_bfd is not supported',
};
const IPVS_WEIGHT_MAX = 2147483647;
const LVS_MAX_TIMEOUT = 86400 * 31;
const IPVS_FWMARK_MAX = 0xffffffff;
/** A group range larger than this is refused (keepalived would add every address, one by one). */
export const MAX_GROUP_RANGE = 65536;

class Bad extends Error {}

interface Addr {
  family: Family;
  address: string;
}

function parseAddr(text: string): Addr | null {
  const t = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (t.includes(':')) {
    const b = inetPton6(t);
    return b ? { family: 'inet6', address: formatIpv6(b) } : null;
  }
  const v = inetPton4(t) ?? inetAton(t);
  return v === null ? null : { family: 'inet', address: formatIpv4(v) };
}

function u32(text: string | undefined, min: number, max: number): number | null {
  if (text === undefined || !/^\d+$/.test(text)) return null;
  const v = Number(text);
  return v >= min && v <= max ? v : null;
}

/** read_timer(): seconds, with an optional fraction. */
function seconds(text: string | undefined, min: number): number | null {
  if (text === undefined || !/^\d+(\.\d+)?$/.test(text)) return null;
  const v = Number(text);
  return v >= min ? v : null;
}

function truth(text: string | undefined): boolean | null {
  if (text === undefined) return true;
  const t = text.toLowerCase();
  if (['true', 'on', 'yes'].includes(t)) return true;
  if (['false', 'off', 'no'].includes(t)) return false;
  return null;
}

/** Inheritable settings: undefined = not set at this level. */
interface Timing {
  retry?: number;
  delayBeforeRetry?: number;
  warmup?: number;
  connectTimeout?: number;
  delayLoop?: number;
  alpha?: boolean;
  inhibit?: boolean;
  virtualhost?: string;
}

interface Forward {
  forward?: 'masq' | 'route' | 'tunnel';
  tunnelType: TunnelType;
  tunnelPort: number;
  tunnelFlags: Destination['tunnelFlags'];
}

interface RawServer extends Timing, Forward {
  where: Where;
  addr: Addr;
  port: number;
  weight?: number;
  upper: number;
  lower: number;
  notifyUp?: string;
  notifyDown?: string;
  checkers: Statement[];
}

interface GroupEntry {
  where: Where;
  kind: 'addr' | 'fwmark';
  family?: Family;
  /** Expanded addresses (addr entries). */
  addresses: string[];
  port: number;
  fwmark: number;
}

/** Tunnel flags 0 (what the rule parser also reads for "no flags"). */
const NOCSUM: Destination['tunnelFlags'] = Object.freeze({ noCsum: true, csum: false, remCsum: false });
const NO_FWD = (): Forward => ({ tunnelType: 'ipip', tunnelPort: 0, tunnelFlags: { ...NOCSUM } });

/** Parses one keepalived.conf (with its includes). Throws KeepalivedConfigError listing every problem. */
export function parseKeepalivedConfig(file: string, src: FileSource = fsSource): KeepalivedConfig {
  const { statements, files } = lexConfig(file, src);
  const problems: ConfigProblem[] = [];
  const ignored: string[] = [];
  const warnings: string[] = [];
  const fail = (st: Statement, message: string, keyword = st.keyword): never => {
    problems.push({ file: st.file, line: st.line, keyword, message });
    throw new Bad(message);
  };
  const failAt = (w: Where, keyword: string, message: string): never => {
    problems.push({ file: w.file, line: w.line, keyword, message });
    throw new Bad(message);
  };
  /** Runs one statement's handler; a problem is recorded and the next statement is read. */
  const guarded = (fn: () => void): void => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof Bad)) throw e;
    }
  };
  const where = (st: Statement): Where => ({ file: st.file, line: st.line });
  const arg = (st: Statement, k: number, what: string): string => st.args[k] ?? fail(st, `${what} missing`);
  const noArgs = (st: Statement, max: number): void => {
    if (st.args.length > max) fail(st, `unexpected "${st.args[max]}"`);
  };
  const noBlock = (st: Statement): void => {
    if (st.block !== undefined) fail(st, 'takes no { } block');
  };
  const needBlock = (st: Statement): Statement[] => st.block ?? fail(st, 'needs a { } block');

  const groups = new Map<string, { where: Where; entries: GroupEntry[] }>();
  const rawVs: { st: Statement }[] = [];
  const globalIgnored: string[] = [];
  const vrrpIgnored: string[] = [];

  for (const st of statements) {
    guarded(() => {
      if (st.keyword === 'global_defs') {
        for (const g of needBlock(st)) if (!globalIgnored.includes(g.keyword)) globalIgnored.push(g.keyword);
      } else if (VRRP_ROOTS.has(st.keyword)) {
        vrrpIgnored.push(`${st.keyword}${st.args[0] ? ` ${st.args[0]}` : ''} (${st.file}:${st.line})`);
      } else if (st.keyword in UNSUPPORTED_ROOTS) {
        fail(st, UNSUPPORTED_ROOTS[st.keyword]);
      } else if (st.keyword === 'virtual_server_group') {
        const name = arg(st, 0, 'group name');
        noArgs(st, 1);
        if (groups.has(name)) fail(st, `virtual_server_group ${name} defined twice`);
        const entries: GroupEntry[] = [];
        for (const e of needBlock(st)) guarded(() => entries.push(groupEntry(e)));
        groups.set(name, { where: where(st), entries });
      } else if (st.keyword === 'virtual_server') {
        rawVs.push({ st });
      } else {
        fail(st, 'unknown keyword');
      }
    });
  }
  if (globalIgnored.length > 0) ignored.push(`global_defs ignored (VRRP, SMTP and process settings do not apply): ${globalIgnored.join(', ')}`);
  if (vrrpIgnored.length > 0) ignored.push(`VRRP configuration ignored (VRRP stays keepalived's job): ${vrrpIgnored.join(', ')}`);

  function groupEntry(e: Statement): GroupEntry {
    noBlock(e);
    if (e.keyword === 'fwmark') {
      const fwmark = u32(e.args[0], 0, IPVS_FWMARK_MAX) ?? fail(e, `fwmark "${e.args[0] ?? ''}" must be in [0, ${IPVS_FWMARK_MAX}]`);
      noArgs(e, 2);
      let family: Family | undefined;
      if (e.args[1] !== undefined) {
        if (e.args[1] !== 'inet' && e.args[1] !== 'inet6') fail(e, `family "${e.args[1]}" must be inet or inet6`);
        family = e.args[1] as Family;
      }
      return { where: where(e), kind: 'fwmark', family, addresses: [], port: 0, fwmark };
    }
    noArgs(e, 2);
    const port = e.args[0] === undefined ? 0 : (u32(e.args[0], 0, 65535) ?? fail(e, `port "${e.args[0]}" must be in [0, 65535]`));
    const text = e.keyword;
    let addresses: string[];
    let family: Family;
    const slash = text.indexOf('/');
    const dash = text.indexOf('-');
    if (slash >= 0) {
      const a = parseAddr(text.slice(0, slash)) ?? fail(e, 'not an IP address');
      const bits = a.family === 'inet' ? 32 : 128;
      const len = u32(text.slice(slash + 1), 1, bits) ?? fail(e, `netmask must be in [1, ${bits}]`);
      const hostBits = bits - len;
      if (hostBits > (a.family === 'inet' ? 8 : 16)) {
        fail(e, `a group range may only vary the last ${a.family === 'inet' ? 'octet' : '16 bits'} (as keepalived steps it)`);
      }
      family = a.family;
      const { prefix, last } = splitLast(a);
      if ((last & ((1 << hostBits) - 1)) !== 0) fail(e, 'address has bits set beyond the netmask');
      addresses = rangeOf(prefix, family, last, last | ((1 << hostBits) - 1));
    } else if (dash >= 0) {
      const a = parseAddr(text.slice(0, dash)) ?? fail(e, 'not an IP address');
      family = a.family;
      const endText = text.slice(dash + 1);
      const { prefix, last } = splitLast(a);
      let end: number;
      if ((a.family === 'inet' && endText.includes('.')) || (a.family === 'inet6' && endText.includes(':'))) {
        const b = parseAddr(endText) ?? fail(e, 'range end is not an IP address');
        const eb = splitLast(b);
        if (b.family !== a.family || eb.prefix !== prefix) fail(e, `a group range may only vary the last ${a.family === 'inet' ? 'octet' : '16 bits'}`);
        end = eb.last;
      } else {
        end = a.family === 'inet' ? (u32(endText, 0, 255) ?? fail(e, 'range end must be in [0, 255]')) : parseInt(endText, 16);
        if (a.family === 'inet6' && (!/^[0-9a-fA-F]{1,4}$/.test(endText) || Number.isNaN(end))) fail(e, 'range end must be 1-4 hex digits');
      }
      if (end <= last) fail(e, 'range end is not greater than its start');
      addresses = rangeOf(prefix, family, last, end);
    } else {
      const a = parseAddr(text) ?? fail(e, 'not an IP address or range');
      family = a.family;
      addresses = [a.address];
    }
    if (addresses.length > MAX_GROUP_RANGE) fail(e, `range has more than ${MAX_GROUP_RANGE} addresses`);
    return { where: where(e), kind: 'addr', family, addresses, port, fwmark: 0 };
  }

  const virtualServers: VirtualServer[] = [];
  const seenKeys = new Map<string, Where>();
  for (const { st } of rawVs) guarded(() => {
    const vs = virtualServer(st);
    if (vs === undefined) return;
    for (const s of vs.services) {
      const id = keyId(s.key);
      const prev = seenKeys.get(id);
      if (prev) fail(st, `service ${id} is already defined at ${prev.file}:${prev.line}`);
      seenKeys.set(id, vs.where);
    }
    virtualServers.push(vs);
  });

  function forwarding(st: Statement, base: Forward): Forward {
    const m = arg(st, 0, 'forwarding method');
    const out: Forward = { ...base, tunnelFlags: { ...base.tunnelFlags } };
    if (m === 'NAT') out.forward = 'masq';
    else if (m === 'DR') out.forward = 'route';
    else if (m === 'TUN') out.forward = 'tunnel';
    else fail(st, `unknown forwarding method "${m}" (NAT, DR or TUN)`);
    let type: TunnelType = 'ipip';
    let port = 0;
    let csum: 'noCsum' | 'csum' | 'remCsum' = 'noCsum';
    for (let i = 1; i < st.args.length; i++) {
      const w = st.args[i];
      if (w === 'type') {
        const t = st.args[++i] ?? fail(st, 'tunnel type missing');
        if (t !== 'ipip' && t !== 'gue' && t !== 'gre') fail(st, `unknown tunnel type "${t}"`);
        type = t as TunnelType;
      } else if (w === 'port') {
        port = u32(st.args[++i], 1, 65535) ?? fail(st, 'tunnel port must be in [1, 65535]');
      } else if (w === 'nocsum' || w === 'csum' || w === 'remcsum') {
        csum = w === 'nocsum' ? 'noCsum' : w === 'csum' ? 'csum' : 'remCsum';
      } else fail(st, `unknown tunnel option "${w}"`);
    }
    if (st.args.length > 1 && out.forward !== 'tunnel') fail(st, 'tunnel options need TUN');
    if ((type === 'gue') !== (port !== 0)) fail(st, 'gue tunnels need a port, other tunnels take none');
    if (type === 'ipip' && csum !== 'noCsum') fail(st, 'ipip tunnels take no checksum option');
    if (type === 'gre' && csum === 'remCsum') fail(st, 'gre tunnels do not support remcsum');
    if (st.args.length > 1 || out.forward === 'tunnel') {
      out.tunnelType = type;
      out.tunnelPort = port;
      out.tunnelFlags = { noCsum: csum === 'noCsum', csum: csum === 'csum', remCsum: csum === 'remCsum' };
    }
    return out;
  }

  function timingKeyword(st: Statement, t: Timing, level: 'virtual server' | 'real server'): boolean {
    switch (st.keyword) {
      case 'retry':
        t.retry = u32(st.args[0], 1, 0xffffffff) ?? fail(st, `retry "${st.args[0] ?? ''}" must be a whole number >= 1`);
        return true;
      case 'delay_before_retry':
        t.delayBeforeRetry = seconds(st.args[0], 0) ?? fail(st, 'must be a number of seconds');
        return true;
      case 'warmup':
        t.warmup = seconds(st.args[0], 0) ?? fail(st, 'must be a number of seconds');
        return true;
      case 'connect_timeout':
        t.connectTimeout = seconds(st.args[0], 0.000001) ?? fail(st, 'must be a number of seconds > 0');
        return true;
      case 'delay_loop':
        t.delayLoop = seconds(st.args[0], 0.000001) ?? fail(st, 'must be a number of seconds > 0');
        return true;
      case 'inhibit_on_failure':
        if (level === 'virtual server') noArgs(st, 0);
        t.inhibit = truth(st.args[0]) ?? fail(st, `"${st.args[0]}" is not true/false`);
        return true;
      case 'alpha':
        if (level === 'virtual server') noArgs(st, 0);
        t.alpha = truth(st.args[0]) ?? fail(st, `"${st.args[0]}" is not true/false`);
        return true;
      case 'smtp_alert':
      case 'snmp_name':
        if (!ignored.includes(`${st.keyword} ignored (no SMTP or SNMP here)`)) ignored.push(`${st.keyword} ignored (no SMTP or SNMP here)`);
        return true;
      default:
        return false;
    }
  }

  function virtualServer(st: Statement): VirtualServer | undefined {
    const a0 = arg(st, 0, 'address, "fwmark" or "group"');
    noArgs(st, 2);
    let family: Family | undefined;
    let addr: Addr | undefined;
    let vsPort = 0;
    let fwmark: number | undefined;
    let group: { where: Where; entries: GroupEntry[] } | undefined;
    let groupName = '';
    if (a0 === 'group') {
      groupName = arg(st, 1, 'group name');
      group = groups.get(groupName) ?? fail(st, `no virtual_server_group named "${groupName}"`);
      if (group.entries.length === 0) fail(st, `virtual_server_group ${groupName} has no entries`);
    } else if (a0 === 'fwmark') {
      fwmark = u32(st.args[1], 0, IPVS_FWMARK_MAX) ?? fail(st, `fwmark "${st.args[1] ?? ''}" must be in [0, ${IPVS_FWMARK_MAX}]`);
    } else {
      addr = parseAddr(a0) ?? fail(st, `"${a0}" is not an IP address`);
      family = addr.family;
      if (st.args[1] !== undefined) vsPort = u32(st.args[1], 0, 65535) ?? fail(st, `port "${st.args[1]}" must be in [0, 65535]`);
    }
    const name = group ? `group ${groupName}` : fwmark !== undefined ? `FWM ${fwmark}` : `${addr!.family === 'inet6' ? `[${addr!.address}]` : addr!.address}:${vsPort}`;
    const t: Timing = {};
    let fwd: Forward = NO_FWD();
    let scheduler = '';
    const flags: ServiceFlags = { persistent: false, onePacket: false, sched1: false, sched2: false, sched3: false };
    let pe = '';
    let persistenceTimeout = 0;
    let granularity: { text: string; st: Statement } | undefined;
    let protocol: Protocol | undefined;
    let quorum = 1;
    let hysteresis = 0;
    let quorumUp: string | undefined;
    let quorumDown: string | undefined;
    let omega = false;
    let vsWeight = 1;
    let sorry: { addr: Addr; port: number; fwd: Forward; inhibit: boolean; where: Where } | undefined;
    const rss: RawServer[] = [];
    const before = problems.length;

    for (const k of needBlock(st)) guarded(() => {
      if (k.keyword !== 'real_server') noBlock(k);
      if (timingKeyword(k, t, 'virtual server')) return;
      switch (k.keyword) {
        case 'ip_family': {
          const f = arg(k, 0, 'family');
          if (f !== 'inet' && f !== 'inet6') fail(k, `unknown address family "${f}"`);
          if (family !== undefined && family !== f) fail(k, `${f} conflicts with the address family of the virtual server`);
          family = f as Family;
          return;
        }
        case 'lb_algo':
        case 'lvs_sched': {
          const s = arg(k, 0, 'scheduler');
          if (!SCHEDULERS.includes(s)) fail(k, `unknown scheduler "${s}" (${SCHEDULERS.join(', ')})`);
          scheduler = s;
          return;
        }
        case 'ops':
          flags.onePacket = true;
          return;
        case 'flag-1':
          flags.sched1 = true;
          return;
        case 'flag-2':
          flags.sched2 = true;
          return;
        case 'flag-3':
          flags.sched3 = true;
          return;
        case 'sh-port':
        case 'sh-fallback':
        case 'mh-port':
        case 'mh-fallback': {
          const want = k.keyword.slice(0, 2);
          if (scheduler !== want) fail(k, `only applies to the ${want} scheduler (set lb_algo ${want} before it)`);
          if (k.keyword.endsWith('fallback')) flags.sched1 = true;
          else flags.sched2 = true;
          return;
        }
        case 'hashed':
          fail(k, 'hashed has no effect in keepalived 2.2 and is refused here');
          return;
        case 'lb_kind':
        case 'lvs_method':
          fwd = forwarding(k, fwd);
          return;
        case 'persistence_engine':
          pe = arg(k, 0, 'engine name');
          return;
        case 'persistence_timeout':
          persistenceTimeout = k.args[0] === undefined ? 360 : (u32(k.args[0], 1, LVS_MAX_TIMEOUT) ?? fail(k, `must be in [1, ${LVS_MAX_TIMEOUT}] seconds`));
          return;
        case 'persistence_granularity':
          granularity = { text: arg(k, 0, 'netmask or prefix length'), st: k };
          if (!persistenceTimeout) persistenceTimeout = 360;
          return;
        case 'protocol': {
          const p = arg(k, 0, 'protocol').toLowerCase();
          if (p !== 'tcp' && p !== 'udp' && p !== 'sctp') fail(k, `unknown protocol "${k.args[0]}" (TCP, UDP or SCTP)`);
          protocol = p as Protocol;
          return;
        }
        case 'ha_suspend':
          fail(k, 'ha_suspend is not supported (checks would depend on VRRP addresses)');
          return;
        case 'virtualhost':
          t.virtualhost = arg(k, 0, 'host name');
          return;
        case 'omega':
          omega = true;
          return;
        case 'quorum_up':
          quorumUp = k.args.join(' ') || fail(k, 'script missing');
          return;
        case 'quorum_down':
          quorumDown = k.args.join(' ') || fail(k, 'script missing');
          return;
        case 'quorum':
          quorum = u32(k.args[0], 1, 0xffffffff) ?? fail(k, 'must be a whole number >= 1');
          return;
        case 'hysteresis':
          hysteresis = u32(k.args[0], 0, 0xffffffff) ?? fail(k, 'must be a whole number >= 0');
          return;
        case 'weight':
          vsWeight = u32(k.args[0], 1, IPVS_WEIGHT_MAX) ?? fail(k, `must be in [1, ${IPVS_WEIGHT_MAX}]`);
          return;
        case 'sorry_server': {
          const sa = parseAddr(arg(k, 0, 'address')) ?? fail(k, `"${k.args[0]}" is not an IP address`);
          const sp = k.args[1] === undefined ? 0 : (u32(k.args[1], 0, 65535) ?? fail(k, 'port must be in [0, 65535]'));
          noArgs(k, 2);
          sorry = { addr: sa, port: sp, fwd: { ...fwd, tunnelFlags: { ...fwd.tunnelFlags } }, inhibit: false, where: where(k) };
          return;
        }
        case 'sorry_server_inhibit':
          if (!sorry) fail(k, 'sorry_server_inhibit before (or without) sorry_server');
          sorry!.inhibit = true;
          return;
        case 'sorry_server_lvs_method':
          if (!sorry) fail(k, 'sorry_server_lvs_method before (or without) sorry_server');
          sorry!.fwd = forwarding(k, sorry!.fwd);
          return;
        case 'real_server':
          rss.push(realServer(k, fwd));
          return;
        default:
          fail(k, 'unknown keyword in virtual_server');
      }
    });
    if (problems.length > before) return undefined;

    if (rss.length === 0) {
      warnings.push(`${st.file}:${st.line}: virtual server ${name} has no real servers - ignored (as keepalived does)`);
      return undefined;
    }
    // The family: from the address, ip_family, else the first non-tunnelled real or sorry server.
    for (const r of rss) {
      if (r.forward === 'tunnel') continue;
      if (family === undefined) family = r.addr.family;
      else if (r.addr.family !== family) failAt(r.where, 'real_server', `address family of real server ${r.addr.address} does not match the virtual server's`);
    }
    if (sorry && sorry.fwd.forward !== 'tunnel') {
      if (family === undefined) family = sorry.addr.family;
      else if (sorry.addr.family !== family) failAt(sorry.where, 'sorry_server', "address family of the sorry server does not match the virtual server's");
    }
    if (group && family === undefined) {
      family = group.entries.some((e) => e.family === 'inet') ? 'inet' : group.entries.some((e) => e.family === 'inet6') ? 'inet6' : undefined;
    }
    if (family === undefined) family = rss.every((r) => r.addr.family === rss[0].addr.family) ? rss[0].addr.family : 'inet';

    const byAddress = !!addr || (!!group && group.entries.some((e) => e.kind === 'addr'));
    if (byAddress) {
      if (protocol === undefined) {
        warnings.push(`${st.file}:${st.line}: virtual server ${name}: no protocol set - UDP (as keepalived does)`);
        protocol = 'udp';
      }
      if (flags.onePacket && protocol !== 'udp') {
        warnings.push(`${st.file}:${st.line}: virtual server ${name}: ops needs UDP - cleared (as keepalived does)`);
        flags.onePacket = false;
      }
      if (!persistenceTimeout && ((addr && vsPort === 0) || (group && group.entries.some((e) => e.kind === 'addr' && e.port === 0)))) {
        warnings.push(`${st.file}:${st.line}: virtual server ${name}: port 0 is only valid when persistent - persistence_timeout 360 (as keepalived does)`);
        persistenceTimeout = 360;
      }
    }
    if (!scheduler) scheduler = 'wlc';
    if (fwd.forward === undefined) fwd = { ...fwd, forward: 'masq' };

    let netmask = family === 'inet6' ? 128 : 0xffffffff;
    if (granularity) {
      const g = granularity;
      if (family === 'inet6') netmask = u32(g.text, 1, 128) ?? fail(g.st, 'IPv6 persistence_granularity must be a prefix length in [1, 128]');
      else {
        const v = inetPton4(g.text) ?? inetAton(g.text);
        if (v === null) fail(g.st, `"${g.text}" is not an IPv4 netmask`);
        netmask = v!;
      }
    }
    flags.persistent = persistenceTimeout > 0;

    const svcBase = { scheduler, flags, persistenceTimeout, pe: persistenceTimeout > 0 ? pe : '' };
    const services: { service: Service; port: number }[] = [];
    if (group) {
      for (const e of group.entries) {
        if (e.kind === 'fwmark') {
          const key: ServiceKey = { kind: 'fwmark', family: e.family ?? family, fwmark: e.fwmark };
          // keepalived's group commands reset the persistence netmask to the full mask.
          services.push({ service: { ...svcBase, flags: { ...flags }, key, netmask: key.family === 'inet6' ? 128 : 0xffffffff }, port: 0 });
        } else {
          for (const a of e.addresses) {
            // keepalived's group range command resets the persistence netmask to the full mask.
            const key: ServiceKey = { kind: 'addr', family: e.family!, protocol: protocol!, address: a, port: e.port };
            services.push({ service: { ...svcBase, flags: { ...flags }, key, netmask: e.family === 'inet6' ? 128 : 0xffffffff }, port: e.port });
          }
        }
      }
    } else if (fwmark !== undefined) {
      services.push({ service: { ...svcBase, key: { kind: 'fwmark', family, fwmark }, netmask }, port: 0 });
    } else {
      services.push({ service: { ...svcBase, key: { kind: 'addr', family, protocol: protocol!, address: addr!.address, port: vsPort }, netmask }, port: vsPort });
    }

    const dest = (r: { addr: Addr; port: number } & Forward, weight: number, upper: number, lower: number): Destination => {
      const forward = r.forward ?? fwd.forward!;
      const tun = r.forward === undefined ? fwd : r;
      let port = r.port;
      // As keepalived corrects them: NAT without a port takes the service's; DR/TUN take the
      // service's port (fwmark services: none).
      if (!group) {
        if (fwmark !== undefined) port = forward === 'masq' ? port : 0;
        else if (forward !== 'masq' || port === 0) port = vsPort;
      }
      return {
        family: r.addr.family,
        address: r.addr.address,
        port,
        forward,
        weight,
        upperThreshold: upper,
        lowerThreshold: lower,
        tunnelType: forward === 'tunnel' ? tun.tunnelType : 'ipip',
        tunnelPort: forward === 'tunnel' ? tun.tunnelPort : 0,
        tunnelFlags: forward === 'tunnel' ? { ...tun.tunnelFlags } : { ...NOCSUM },
      };
    };

    const realServers: RealServer[] = [];
    const seenRs = new Map<string, Where>();
    let weightSum = 0;
    for (const r of rss) guarded(() => {
      const d = dest(r, r.weight ?? vsWeight, r.upper, r.lower);
      const id = `${d.address}:${d.port}`;
      const prev = seenRs.get(id);
      if (prev) failAt(r.where, 'real_server', `real server ${id} is already defined at ${prev.file}:${prev.line}`);
      seenRs.set(id, r.where);
      const inhibit = r.inhibit ?? t.inhibit ?? false;
      const alpha = r.alpha ?? t.alpha ?? false;
      weightSum += d.weight;
      const checkers: Checker[] = [];
      for (const c of r.checkers) guarded(() => checkers.push(checker(c, r, t, d, alpha)));
      realServers.push({ where: r.where, dest: d, inhibit, alpha, notifyUp: r.notifyUp, notifyDown: r.notifyDown, checkers });
    });
    if (problems.length > before) return undefined;

    let sorryServer: SorryServer | undefined;
    if (sorry) sorryServer = { dest: dest({ addr: sorry.addr, port: sorry.port, ...sorry.fwd }, 1, 0, 0), inhibit: sorry.inhibit };
    if (quorum > weightSum) {
      warnings.push(`${st.file}:${st.line}: virtual server ${name}: quorum ${quorum} exceeds the total weight ${weightSum} - lowered to ${weightSum} (as keepalived does)`);
      quorum = weightSum;
    }
    if (hysteresis >= quorum && hysteresis > 0) {
      warnings.push(`${st.file}:${st.line}: virtual server ${name}: hysteresis ${hysteresis} >= quorum ${quorum} - set to ${Math.max(quorum - 1, 0)} (as keepalived does)`);
      hysteresis = Math.max(quorum - 1, 0);
    }
    return {
      where: where(st),
      name,
      services: services.map((s) => s.service),
      realServers,
      sorryServer,
      quorum,
      hysteresis,
      quorumUp,
      quorumDown,
      alpha: t.alpha ?? false,
      omega,
      delayLoop: t.delayLoop ?? 60,
    };
  }

  function realServer(st: Statement, vsFwd: Forward): RawServer {
    const a = parseAddr(arg(st, 0, 'address')) ?? fail(st, `"${st.args[0]}" is not an IP address`);
    const port = st.args[1] === undefined ? 0 : (u32(st.args[1], 0, 65535) ?? fail(st, 'port must be in [0, 65535]'));
    noArgs(st, 2);
    // A real server takes the forwarding method set so far (as keepalived copies it when it reads the line).
    const r: RawServer = { where: where(st), addr: a, port, upper: 0, lower: 0, checkers: [], ...vsFwd, tunnelFlags: { ...vsFwd.tunnelFlags } };
    for (const k of st.block ?? []) guarded(() => {
      if (k.keyword in UNSUPPORTED_CHECKERS) fail(k, UNSUPPORTED_CHECKERS[k.keyword]);
      if (['TCP_CHECK', 'HTTP_GET', 'SSL_GET', 'MISC_CHECK', 'DNS_CHECK', 'UDP_CHECK'].includes(k.keyword)) {
        r.checkers.push(k);
        return;
      }
      noBlock(k);
      if (timingKeyword(k, r, 'real server')) return;
      switch (k.keyword) {
        case 'weight':
          r.weight = u32(k.args[0], 0, IPVS_WEIGHT_MAX) ?? fail(k, `must be in [0, ${IPVS_WEIGHT_MAX}]`);
          return;
        case 'lvs_method':
          Object.assign(r, forwarding(k, r));
          return;
        case 'uthreshold':
          r.upper = u32(k.args[0], 0, 0xffffffff) ?? fail(k, 'must be a whole number');
          return;
        case 'lthreshold':
          r.lower = u32(k.args[0], 0, 0xffffffff) ?? fail(k, 'must be a whole number');
          return;
        case 'notify_up':
          if (r.notifyUp) fail(k, 'notify_up given twice');
          r.notifyUp = k.args.join(' ') || fail(k, 'script missing');
          return;
        case 'notify_down':
          if (r.notifyDown) fail(k, 'notify_down given twice');
          r.notifyDown = k.args.join(' ') || fail(k, 'script missing');
          return;
        case 'virtualhost':
          r.virtualhost = arg(k, 0, 'host name');
          return;
        default:
          fail(k, 'unknown keyword in real_server');
      }
    });
    return r;
  }

  function checker(st: Statement, r: RawServer, vsT: Timing, d: Destination, rsAlpha: boolean): Checker {
    const kind = st.keyword as CheckerKind;
    const c: Timing & { connectIp?: string; connectPort?: number; bindTo?: string; bindPort?: number } = {};
    const http = { urls: [] as HttpUrl[], virtualhost: undefined as string | undefined, httpProtocol: '1.0' as '1.0' | '1.0C' | '1.1', enableSni: false };
    const misc = { argv: [] as string[], timeout: 0, dynamic: false };
    const dns = { type: 'SOA', name: '' };
    const udp = { payload: Buffer.alloc(0) as Buffer, requireReply: undefined as Buffer | undefined, minReplyLength: 0, maxReplyLength: 0 };
    const hex = (k: Statement, text: string): Buffer => {
      const h = text.replace(/\s+/g, '');
      if (!/^([0-9a-fA-F]{2})*$/.test(h)) fail(k, `"${text}" is not a hex string`);
      return Buffer.from(h, 'hex');
    };
    for (const k of st.block ?? []) guarded(() => {
      if (!(kind !== 'HTTP_GET' && kind !== 'SSL_GET') && k.keyword === 'url') {
        const u: HttpUrl = { path: '', statusCodes: [] };
        for (const x of needBlock(k)) guarded(() => {
          noBlock(x);
          switch (x.keyword) {
            case 'path':
              u.path = arg(x, 0, 'path');
              return;
            case 'digest': {
              const dg = arg(x, 0, 'md5 digest');
              if (!/^[0-9a-fA-F]{32}$/.test(dg)) fail(x, `"${dg}" is not an md5 digest (32 hex digits)`);
              u.digest = dg.toLowerCase();
              return;
            }
            case 'status_code':
              for (const w of x.args) {
                const m = /^(\d+)(?:-(\d+))?$/.exec(w) ?? fail(x, `"${w}" is not a status code or range`);
                const lo = Number(m[1]);
                const hi = m[2] === undefined ? lo : Number(m[2]);
                if (lo < 100 || hi > 599 || lo > hi) fail(x, `"${w}" must be within 100-599`);
                u.statusCodes.push([lo, hi]);
              }
              if (x.args.length === 0) fail(x, 'status code missing');
              return;
            case 'virtualhost':
              u.virtualhost = arg(x, 0, 'host name');
              return;
            default:
              if (x.keyword.startsWith('regex')) fail(x, 'regex checks are not supported');
              fail(x, 'unknown keyword in url');
          }
        });
        if (!u.path) fail(k, 'url has no path');
        if (u.statusCodes.length === 0) u.statusCodes.push([200, 299]);
        http.urls.push(u);
        return;
      }
      noBlock(k);
      switch (k.keyword) {
        case 'connect_ip': {
          const a = parseAddr(arg(k, 0, 'address')) ?? fail(k, `"${k.args[0]}" is not an IP address`);
          c.connectIp = a.address;
          return;
        }
        case 'connect_port':
          c.connectPort = u32(k.args[0], 1, 65535) ?? fail(k, 'must be in [1, 65535]');
          return;
        case 'bindto': {
          const a = parseAddr(arg(k, 0, 'address')) ?? fail(k, `"${k.args[0]}" is not an IP address`);
          c.bindTo = a.address;
          return;
        }
        case 'bind_port':
          c.bindPort = u32(k.args[0], 1, 65535) ?? fail(k, 'must be in [1, 65535]');
          return;
        case 'bind_if':
          fail(k, 'bind_if is not supported');
          return;
        case 'fwmark':
          fail(k, 'a checker fwmark (SO_MARK) is not supported');
          return;
        case 'log_all_failures':
          return;
        case 'nb_get_retry':
          if (kind !== 'HTTP_GET' && kind !== 'SSL_GET') fail(k, 'unknown keyword in checker');
          c.retry = u32(k.args[0], 1, 0xffffffff) ?? fail(k, 'must be a whole number >= 1');
          return;
      }
      if (timingKeyword(k, c, 'real server')) {
        if (k.keyword === 'inhibit_on_failure') fail(k, 'inhibit_on_failure belongs to the real server or virtual server');
        return;
      }
      if (kind === 'HTTP_GET' || kind === 'SSL_GET') {
        if (k.keyword === 'virtualhost') return void (http.virtualhost = arg(k, 0, 'host name'));
        if (k.keyword === 'http_protocol') {
          const v = arg(k, 0, 'version');
          if (v === '1.0' || v === '1.1') http.httpProtocol = v;
          else if (v === '1.0C' || v === '1.0c') http.httpProtocol = '1.0C';
          else fail(k, `unknown http_protocol "${v}" (1.0, 1.0C or 1.1)`);
          return;
        }
        if (k.keyword === 'enable_sni') return void (http.enableSni = truth(k.args[0]) ?? fail(k, 'not true/false'));
        if (k.keyword === 'fast_recovery') fail(k, 'fast_recovery is not supported');
      } else if (kind === 'MISC_CHECK') {
        if (k.keyword === 'misc_path') return void (misc.argv = splitCommand(k.args.join(' ')) ?? fail(k, 'unmatched quote in the command'));
        if (k.keyword === 'misc_timeout') return void (misc.timeout = u32(k.args[0], 0, 0xffffffff) ?? fail(k, 'must be a whole number of seconds'));
        if (k.keyword === 'misc_dynamic') return void (misc.dynamic = true);
        if (k.keyword === 'user') fail(k, 'user is not supported (scripts run as the daemon\'s user)');
      } else if (kind === 'DNS_CHECK') {
        if (k.keyword === 'type') {
          const ty = arg(k, 0, 'query type').toUpperCase();
          if (!['A', 'NS', 'CNAME', 'SOA', 'MX', 'TXT', 'AAAA'].includes(ty)) fail(k, `unknown DNS type "${k.args[0]}"`);
          return void (dns.type = ty);
        }
        if (k.keyword === 'name') return void (dns.name = arg(k, 0, 'name'));
      } else if (kind === 'UDP_CHECK') {
        if (k.keyword === 'payload') return void (udp.payload = hex(k, arg(k, 0, 'hex payload')));
        if (k.keyword === 'require_reply') return void (udp.requireReply = k.args[0] === undefined ? Buffer.alloc(0) : hex(k, k.args.join('')));
        if (k.keyword === 'min_reply_length') return void (udp.minReplyLength = u32(k.args[0], 0, 65535) ?? fail(k, 'must be in [0, 65535]'));
        if (k.keyword === 'max_reply_length') return void (udp.maxReplyLength = u32(k.args[0], 0, 65535) ?? fail(k, 'must be in [0, 65535]'));
      }
      fail(k, `unknown keyword in ${kind}`);
    });
    if ((kind === 'HTTP_GET' || kind === 'SSL_GET') && http.urls.length === 0) fail(st, 'HTTP_GET/SSL_GET needs at least one url');
    if (kind === 'MISC_CHECK' && misc.argv.length === 0) fail(st, 'MISC_CHECK needs misc_path');
    const defaultRetry = kind === 'MISC_CHECK' ? 0 : kind === 'DNS_CHECK' ? 3 : 1;
    const defaultDbr = kind === 'HTTP_GET' || kind === 'SSL_GET' ? 3 : kind === 'DNS_CHECK' ? 0 : 1;
    const delayLoop = c.delayLoop ?? r.delayLoop ?? vsT.delayLoop ?? 60;
    const rsRetry = r.retry ?? vsT.retry;
    const rsDbr = r.delayBeforeRetry ?? vsT.delayBeforeRetry;
    const rsWarm = r.warmup ?? vsT.warmup;
    const base = {
      where: { file: st.file, line: st.line },
      connectIp: c.connectIp ?? d.address,
      connectPort: c.connectPort ?? (kind === 'DNS_CHECK' && d.port === 0 ? 53 : d.port),
      bindTo: c.bindTo ?? '',
      bindPort: c.bindPort ?? 0,
      connectTimeout: c.connectTimeout ?? r.connectTimeout ?? vsT.connectTimeout ?? 5,
      retry: c.retry ?? rsRetry ?? defaultRetry,
      delayBeforeRetry: c.delayBeforeRetry ?? rsDbr ?? (defaultDbr || delayLoop),
      warmup: c.warmup ?? rsWarm ?? delayLoop,
      delayLoop,
      alpha: c.alpha ?? rsAlpha,
    };
    if (kind !== 'MISC_CHECK' && base.connectPort === 0) fail(st, 'no port to check (give the real server a port or set connect_port)');
    switch (kind) {
      case 'TCP_CHECK':
        return { ...base, kind };
      case 'HTTP_GET':
      case 'SSL_GET':
        return { ...base, kind, ...http, virtualhost: http.virtualhost ?? r.virtualhost ?? vsT.virtualhost };
      case 'MISC_CHECK':
        return { ...base, kind, argv: misc.argv, timeout: misc.timeout || delayLoop, dynamic: misc.dynamic };
      case 'DNS_CHECK':
        return { ...base, kind, ...dns };
      case 'UDP_CHECK':
        return { ...base, kind, ...udp };
    }
    return fail(st, 'unknown checker');
  }

  if (problems.length > 0) throw new KeepalivedConfigError(problems);
  return { files, virtualServers, ignored, warnings };
}

function splitLast(a: Addr): { prefix: string; last: number } {
  if (a.family === 'inet') {
    const k = a.address.lastIndexOf('.');
    return { prefix: a.address.slice(0, k + 1), last: Number(a.address.slice(k + 1)) };
  }
  const b = inetPton6(a.address)!;
  return { prefix: Buffer.from(b.slice(0, 14)).toString('hex'), last: (b[14] << 8) | b[15] };
}

function rangeOf(prefix: string, family: Family, start: number, end: number): string[] {
  const out: string[] = [];
  for (let v = start; v <= end && out.length <= MAX_GROUP_RANGE; v++) {
    if (family === 'inet') out.push(`${prefix}${v}`);
    else {
      const b = new Uint8Array(16);
      b.set(Buffer.from(prefix, 'hex'));
      b[14] = v >> 8;
      b[15] = v & 0xff;
      out.push(formatIpv6(b));
    }
  }
  return out;
}

function keyId(k: ServiceKey): string {
  return k.kind === 'fwmark' ? `fwmark ${k.fwmark} ${k.family}` : `${k.protocol} ${k.family === 'inet6' ? `[${k.address}]` : k.address}:${k.port}`;
}

/** Splits a command line as keepalived does for scripts: blanks separate, '...' and "..." quote, \ escapes. */
export function splitCommand(text: string): string[] | null {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let q: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (q) {
      if (ch === q) q = undefined;
      else if (ch === '\\' && q === '"' && i + 1 < text.length) cur += text[++i];
      else cur += ch;
    } else if (ch === "'" || ch === '"') {
      q = ch;
      has = true;
    } else if (ch === '\\' && i + 1 < text.length) {
      cur += text[++i];
      has = true;
    } else if (ch === ' ' || ch === '\t') {
      if (has) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (q) return null;
  if (has) out.push(cur);
  return out;
}
