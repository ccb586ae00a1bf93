/**
 * kube-proxy's configuration file (`--kube-proxy-config FILE`): a `kubeproxy.config.k8s.io/v1alpha1`
 * KubeProxyConfiguration, YAML or JSON, as kube-proxy reads it with `--config`, so that a node switches from
 * kube-proxy's ipvs mode without rewriting its configuration.
 *
 * Every field of v1alpha1 is listed in FIELDS (data, below) with what ipvs-bpf does with it:
 *   - use:     it means in ipvs-bpf what it means in kube-proxy's ipvs mode (clusterCIDR, nodePortAddresses,
 *              ipvs.*, iptables.masqueradeAll/masqueradeBit, bindAddress, healthz/metricsBindAddress, ...);
 *   - ignore:  it has no effect in ipvs mode or in ipvs-bpf (nftables.*, winkernel.*, conntrack.*, logging,
 *              oomScoreAdj, ...); accepted, and listed in `ignored` (logged) when set to anything but empty;
 *   - default: a feature ipvs-bpf does not have (enableProfiling, detectLocalMode other than ClusterCIDR,
 *              snatNodeInternalIP, ...); accepted at its default only, any other value is refused.
 * A field not in the table is refused, as kube-proxy's strict decoding refuses it. Every problem is
 * reported at once, each as `FILE:line N: field.path: message`; nothing is used when any is bad. Defaults
 * are kube-proxy's (v1alpha1 defaults.go): ipvs.syncPeriod 30s, scheduler rr, masqueradeBit 14, healthz
 * 0.0.0.0:10256 and metrics 127.0.0.1:10249 ([::]/[::1] when bindAddress is IPv6).
 */
import { readFileSync } from 'fs';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { Family } from '../ipvs/model';
import { SourceError } from '../sources/source';
import { canonicalIp, parseCidr, parseIp, type Cidr } from './cidr';
import { parseGoDuration } from './duration';

export const API_VERSION = 'kubeproxy.config.k8s.io/v1alpha1';
export const KIND = 'KubeProxyConfiguration';

/** IPVS schedulers kube-proxy's validation accepts for ipvs.scheduler (plus the kernel's newer ones). */
export const IPVS_SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'sh', 'dh', 'sed', 'nq', 'mh', 'fo', 'ovf', 'twos'] as const;

export interface HostPort {
  host: string;
  port: number;
}

/** What the file says, with kube-proxy's defaults filled in. Durations are in seconds. */
export interface KubeProxyConfig {
  /** The file read ('' for the defaults without a file). */
  file: string;
  featureGates: Readonly<Record<string, boolean>>;
  /** clientConnection.kubeconfig ('' when unset). */
  kubeconfig: string;
  /** hostnameOverride, trimmed and lower-cased as kube-proxy does ('' when unset). */
  hostnameOverride: string;
  /** bindAddress (the node's primary IP hint); '0.0.0.0' by default. */
  bindAddress: string;
  healthzBindAddress: HostPort;
  metricsBindAddress: HostPort;
  bindAddressHardFail: boolean;
  masqueradeAll: boolean;
  masqueradeBit: number;
  /** Pod CIDRs (clusterCIDR, at most one per family). */
  clusterCIDRs: Cidr[];
  /** nodePortAddresses: CIDRs and keywords; empty means every node address (kube-proxy's ipvs default). */
  nodePortAddresses: { cidrs: Cidr[]; primary: boolean };
  ipvs: {
    syncPeriod: number;
    minSyncPeriod: number;
    scheduler: string;
    excludeCIDRs: Cidr[];
    strictARP: boolean;
    /** Whole seconds; 0 leaves the kernel's value (as kube-proxy). */
    tcpTimeout: number;
    tcpFinTimeout: number;
    udpTimeout: number;
  };
  /** Fields set that have no effect here, with why (for the log). */
  ignored: { field: string; why: string }[];
}

type Kind = 'string' | 'bool' | 'int' | 'number' | 'duration' | 'strings' | 'gates' | 'any';
interface Leaf {
  kind: Kind;
  /** use: applied; ignore: accepted without effect; default: only the default value is accepted. */
  does: 'use' | 'ignore' | 'default';
  why?: string;
}
type Spec = { [field: string]: Leaf | Spec };

const use = (kind: Kind): Leaf => ({ kind, does: 'use' });
const ignore = (kind: Kind, why: string): Leaf => ({ kind, does: 'ignore', why });
const onlyDefault = (kind: Kind, why: string): Leaf => ({ kind, does: 'default', why });

const NOT_IPVS = 'applies to another proxy mode, not ipvs';
const CONNTRACK = 'ipvs-bpf does not set nf_conntrack sysctls (in bpf mode IPVS flows bypass nf_conntrack)';

/** Every v1alpha1 field (k8s.io/kube-proxy/config/v1alpha1 types.go). */
export const FIELDS: Spec = {
  apiVersion: use('string'),
  kind: use('string'),
  featureGates: use('gates'),
  clientConnection: {
    kubeconfig: use('string'),
    acceptContentTypes: ignore('string', 'ipvs-bpf always speaks JSON to the apiserver'),
    contentType: ignore('string', 'ipvs-bpf always speaks JSON to the apiserver'),
    qps: ignore('number', 'ipvs-bpf only lists and watches (no request rate to limit)'),
    burst: ignore('int', 'ipvs-bpf only lists and watches (no request rate to limit)'),
  },
  logging: ignore('any', 'ipvs-bpf logs to the journal; its level is log.level'),
  hostnameOverride: use('string'),
  bindAddress: use('string'),
  healthzBindAddress: use('string'),
  metricsBindAddress: use('string'),
  bindAddressHardFail: use('bool'),
  enableProfiling: onlyDefault('bool', 'ipvs-bpf has no /debug/pprof'),
  showHiddenMetricsForVersion: ignore('string', 'ipvs-bpf has no hidden metrics'),
  mode: use('string'),
  iptables: {
    masqueradeBit: use('int'),
    masqueradeAll: use('bool'),
    localhostNodePorts: ignore('bool', 'iptables mode only: ipvs mode never serves NodePorts on localhost'),
    snatNodeInternalIP: onlyDefault('bool', 'SNAT to the node InternalIP is not implemented'),
    syncPeriod: ignore('duration', 'ipvs mode uses ipvs.syncPeriod'),
    minSyncPeriod: ignore('duration', 'ipvs mode uses ipvs.minSyncPeriod'),
  },
  ipvs: {
    syncPeriod: use('duration'),
    minSyncPeriod: use('duration'),
    scheduler: use('string'),
    excludeCIDRs: use('strings'),
    strictARP: use('bool'),
    tcpTimeout: use('duration'),
    tcpFinTimeout: use('duration'),
    udpTimeout: use('duration'),
  },
  nftables: {
    masqueradeBit: ignore('int', NOT_IPVS),
    masqueradeAll: ignore('bool', NOT_IPVS),
    syncPeriod: ignore('duration', NOT_IPVS),
    minSyncPeriod: ignore('duration', NOT_IPVS),
  },
  winkernel: {
    networkName: ignore('string', NOT_IPVS),
    sourceVip: ignore('string', NOT_IPVS),
    enableDSR: ignore('bool', NOT_IPVS),
    rootHnsEndpointName: ignore('string', NOT_IPVS),
    forwardHealthCheckVip: ignore('bool', NOT_IPVS),
  },
  detectLocalMode: use('string'),
  detectLocal: {
    bridgeInterface: onlyDefault('string', 'only detectLocalMode ClusterCIDR is implemented'),
    interfaceNamePrefix: onlyDefault('string', 'only detectLocalMode ClusterCIDR is implemented'),
  },
  clusterCIDR: use('string'),
  nodePortAddresses: use('strings'),
  oomScoreAdj: ignore('int', 'set OOMScoreAdjust= in the systemd unit'),
  conntrack: {
    maxPerCore: ignore('int', CONNTRACK),
    min: ignore('int', CONNTRACK),
    tcpEstablishedTimeout: ignore('duration', CONNTRACK),
    tcpCloseWaitTimeout: ignore('duration', CONNTRACK),
    tcpBeLiberal: ignore('bool', CONNTRACK),
    udpTimeout: ignore('duration', CONNTRACK),
    udpStreamTimeout: ignore('duration', CONNTRACK),
  },
  configSyncPeriod: ignore('duration', 'ipvs-bpf keeps its watches and does not relist on a timer'),
  portRange: ignore('string', 'unused since the userspace proxy was removed'),
  windowsRunAsService: onlyDefault('bool', 'Windows only'),
};

/** Bad KubeProxyConfiguration: one line per problem, each naming the file, line and field. */
export class KubeProxyConfigError extends SourceError {
  override name = 'KubeProxyConfigError';
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
  }
}

function isLeaf(v: Leaf | Spec): v is Leaf {
  return typeof (v as Leaf).kind === 'string' && typeof (v as Leaf).does === 'string';
}

/** Empty in the sense of "left at its zero value" (what kubeadm writes for fields it does not set). */
function isEmpty(v: unknown): boolean {
  if (v === null || v === undefined || v === '' || v === false || v === 0 || v === '0s' || v === '0') return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.values(v as object).every(isEmpty);
  return false;
}

function kindProblem(kind: Kind, v: unknown): string | undefined {
  switch (kind) {
    case 'string':
      return typeof v === 'string' ? undefined : 'must be a string';
    case 'bool':
      return typeof v === 'boolean' ? undefined : 'must be true or false';
    case 'int':
      return typeof v === 'number' && Number.isInteger(v) ? undefined : 'must be an integer';
    case 'number':
      return typeof v === 'number' ? undefined : 'must be a number';
    case 'duration':
      if (typeof v !== 'string') return 'must be a duration text such as "30s" or "1m30s"';
      return parseGoDuration(v) === null ? `${JSON.stringify(v)} is not a duration (such as "30s", "1m30s", "250ms")` : undefined;
    case 'strings':
      return Array.isArray(v) && v.every((s) => typeof s === 'string') ? undefined : 'must be a list of strings';
    case 'gates':
      return typeof v === 'object' && !Array.isArray(v) && Object.values(v as object).every((b) => typeof b === 'boolean')
        ? undefined : 'must map feature names to true or false';
    case 'any':
      return undefined;
  }
}

/** host:port, [v6]:port, or a bare address (the default port is appended, as kube-proxy does). */
function hostPort(text: string, defaultPort: number): HostPort | string {
  let host = text;
  let port = defaultPort;
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? (text.split(':').length === 2 ? /^([^:]+):(\d+)$/.exec(text) : null);
  if (m) {
    host = m[1]!;
    if (m[2] !== undefined) port = Number(m[2]);
  }
  const ip = canonicalIp(host);
  if (ip === null) return `${JSON.stringify(text)} is not IP:port (such as 0.0.0.0:10256 or [::]:10256)`;
  if (!Number.isInteger(port) || port < 1 || port > 65535) return `port ${port} is out of range (1-65535)`;
  return { host: ip, port };
}

/** Parses KubeProxyConfiguration text. `file` names the input in errors. Throws KubeProxyConfigError. */
export function parseKubeProxyConfig(text: string, file: string): KubeProxyConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const problems: string[] = [];
  const lineOf = (path: readonly (string | number)[]): string => {
    const node = doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
    const pair = pairOf(doc, path);
    const off = pair ?? node?.range?.[0];
    return off === undefined ? ' ' : `line ${lines.linePos(off).line}: `;
  };
  const problem = (path: readonly (string | number)[], msg: string): void => {
    problems.push(`${file}:${lineOf(path)}${fieldName(path)}: ${msg}`);
  };
  for (const e of doc.errors) {
    problems.push(`${file}:line ${lines.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`);
  }
  if (problems.length) throw new KubeProxyConfigError(problems);
  const data: unknown = doc.toJS();
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new KubeProxyConfigError([`${file}: must hold a KubeProxyConfiguration object (apiVersion: ${API_VERSION})`]);
  }
  const ignored: KubeProxyConfig['ignored'] = [];

  // Every field against the table: unknown fields, wrong types, refused and ignored values.
  const walk = (obj: Record<string, unknown>, spec: Spec, path: string[]): void => {
    for (const [k, v] of Object.entries(obj)) {
      const p = [...path, k];
      const s = spec[k];
      if (s === undefined) {
        problem(p, `unknown field (not in ${KIND} ${API_VERSION})`);
        continue;
      }
      if (v === null) continue;
      if (!isLeaf(s)) {
        if (typeof v !== 'object' || Array.isArray(v)) problem(p, 'must be an object');
        else walk(v as Record<string, unknown>, s, p);
        continue;
      }
      const bad = kindProblem(s.kind, v);
      if (bad) {
        problem(p, bad);
        continue;
      }
      if (s.does === 'ignore' && !isEmpty(v)) ignored.push({ field: fieldName(p), why: s.why! });
      if (s.does === 'default' && !isEmpty(v)) problem(p, `${JSON.stringify(v)} is not supported: ${s.why} (leave it unset)`);
    }
  };
  walk(data as Record<string, unknown>, FIELDS, []);

  const get = (...path: string[]): unknown => path.reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), data);
  const str = (...path: string[]): string => {
    const v = get(...path);
    return typeof v === 'string' ? v : '';
  };
  const bool = (...path: string[]): boolean => get(...path) === true;
  const strs = (...path: string[]): string[] => {
    const v = get(...path);
    return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];
  };
  const seconds = (...path: string[]): number => {
    const v = get(...path);
    const s = typeof v === 'string' ? parseGoDuration(v) : null;
    return s ?? 0;
  };

  if (get('apiVersion') !== API_VERSION) {
    problem(['apiVersion'], `must be ${API_VERSION}${get('apiVersion') === undefined ? '' : `, not ${JSON.stringify(get('apiVersion'))}`}`);
  }
  if (get('kind') !== KIND) problem(['kind'], `must be ${KIND}${get('kind') === undefined ? '' : `, not ${JSON.stringify(get('kind'))}`}`);
  const mode = str('mode');
  if (mode !== '' && mode !== 'ipvs') {
    problem(['mode'], `${JSON.stringify(mode)}: ipvs-bpf takes the place of kube-proxy's ipvs mode only (mode: ipvs)`);
  }
  const detect = str('detectLocalMode');
  if (detect !== '' && detect !== 'ClusterCIDR') {
    problem(['detectLocalMode'], `${JSON.stringify(detect)} is not supported: only ClusterCIDR (pod traffic is traffic from clusterCIDR)`);
  }

  const bindAddress = str('bindAddress') || '0.0.0.0';
  const bindIp = parseIp(bindAddress);
  if (!bindIp) problem(['bindAddress'], `${JSON.stringify(bindAddress)} is not an IP address`);
  const v6 = bindIp?.family === 'inet6';
  const bindAt = (field: string, def: HostPort): HostPort => {
    const t = str(field);
    if (t === '') return def;
    const r = hostPort(t, def.port);
    if (typeof r === 'string') {
      problem([field], r);
      return def;
    }
    return r;
  };
  const healthzBindAddress = bindAt('healthzBindAddress', { host: v6 ? '::' : '0.0.0.0', port: 10256 });
  const metricsBindAddress = bindAt('metricsBindAddress', { host: v6 ? '::1' : '127.0.0.1', port: 10249 });

  const cidrList = (path: string[], texts: readonly string[]): Cidr[] =>
    texts.flatMap((t, i) => {
      const c = parseCidr(t.trim());
      if (!c) {
        problem([...path, i], `${JSON.stringify(t)} is not a CIDR (such as 10.0.0.0/8 or fd00::/64)`);
        return [];
      }
      return [c];
    });

  const clusterCIDRs = str('clusterCIDR') === '' ? [] : str('clusterCIDR').split(',').flatMap((t) => {
    const c = parseCidr(t.trim());
    if (!c) problem(['clusterCIDR'], `${JSON.stringify(t.trim())} is not a CIDR (such as 10.244.0.0/16, or a dual-stack pair 10.244.0.0/16,fd00:10:244::/56)`);
    return c ? [c] : [];
  });
  const families = new Set<Family>(clusterCIDRs.map((c) => c.family));
  if (clusterCIDRs.length > 2 || families.size < clusterCIDRs.length) {
    problem(['clusterCIDR'], 'must be one CIDR, or a dual-stack pair with one IPv4 and one IPv6 CIDR');
  }

  const npa = { cidrs: [] as Cidr[], primary: false };
  strs('nodePortAddresses').forEach((t, i) => {
    if (t === 'primary') npa.primary = true;
    else if (t === 'all') npa.cidrs.push(parseCidr('0.0.0.0/0')!, parseCidr('::/0')!);
    else if (t === 'localhost') npa.cidrs.push(parseCidr('127.0.0.0/8')!, parseCidr('::1/128')!);
    else {
      const c = parseCidr(t);
      if (c) npa.cidrs.push(c);
      else problem(['nodePortAddresses', i], `${JSON.stringify(t)} is not a CIDR or one of primary, localhost, all`);
    }
  });

  const scheduler = str('ipvs', 'scheduler') || 'rr';
  if (!(IPVS_SCHEDULERS as readonly string[]).includes(scheduler)) {
    problem(['ipvs', 'scheduler'], `${JSON.stringify(scheduler)} is not an IPVS scheduler (one of ${IPVS_SCHEDULERS.join(', ')})`);
  }
  const syncPeriod = seconds('ipvs', 'syncPeriod') || 30;
  const minSyncPeriod = seconds('ipvs', 'minSyncPeriod');
  for (const f of ['syncPeriod', 'minSyncPeriod', 'tcpTimeout', 'tcpFinTimeout', 'udpTimeout']) {
    if (seconds('ipvs', f) < 0) problem(['ipvs', f], 'must not be negative');
  }
  if (minSyncPeriod > syncPeriod) problem(['ipvs', 'minSyncPeriod'], `must not exceed ipvs.syncPeriod (${syncPeriod} s)`);
  const bit = get('iptables', 'masqueradeBit');
  const masqueradeBit = typeof bit === 'number' ? bit : 14;
  if (masqueradeBit < 0 || masqueradeBit > 31) problem(['iptables', 'masqueradeBit'], 'must be within 0-31');
  const kubeconfig = str('clientConnection', 'kubeconfig');

  const featureGates = (get('featureGates') ?? {}) as Record<string, boolean>;
  const excludeCIDRs = cidrList(['ipvs', 'excludeCIDRs'], strs('ipvs', 'excludeCIDRs'));

  if (problems.length) throw new KubeProxyConfigError(problems);
  return {
    file,
    featureGates: typeof featureGates === 'object' ? { ...featureGates } : {},
    kubeconfig,
    hostnameOverride: str('hostnameOverride').trim().toLowerCase(),
    bindAddress: bindIp ? canonicalIp(bindAddress)! : bindAddress,
    healthzBindAddress,
    metricsBindAddress,
    bindAddressHardFail: bool('bindAddressHardFail'),
    masqueradeAll: bool('iptables', 'masqueradeAll'),
    masqueradeBit,
    clusterCIDRs,
    nodePortAddresses: npa,
    ipvs: {
      syncPeriod,
      minSyncPeriod,
      scheduler,
      excludeCIDRs,
      strictARP: bool('ipvs', 'strictARP'),
      tcpTimeout: Math.floor(seconds('ipvs', 'tcpTimeout')),
      tcpFinTimeout: Math.floor(seconds('ipvs', 'tcpFinTimeout')),
      udpTimeout: Math.floor(seconds('ipvs', 'udpTimeout')),
    },
    ignored,
  };
}

/** ipvs.excludeCIDRs[1] */
function fieldName(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i ? `.${p}` : p)).join('');
}

/** The start of the `key: value` pair at `path` (so that the line is the key's, not the value's). */
function pairOf(doc: Document, path: readonly (string | number)[]): number | undefined {
  const parent = path.length > 1 ? doc.getIn(path.slice(0, -1), true) : doc.contents;
  const last = path[path.length - 1];
  if (isMap(parent)) {
    const item = parent.items.find((it) => isScalar(it.key) && it.key.value === last);
    const k = item?.key as { range?: [number, number, number] } | undefined;
    return k?.range?.[0];
  }
  if (isSeq(parent) && typeof last === 'number') {
    const n = parent.items[last] as { range?: [number, number, number] } | undefined;
    return n?.range?.[0];
  }
  return undefined;
}

/** kube-proxy's defaults, as for a file with only apiVersion and kind. */
export function defaultKubeProxyConfig(): KubeProxyConfig {
  return { ...parseKubeProxyConfig(`apiVersion: ${API_VERSION}\nkind: ${KIND}\n`, ''), file: '' };
}

/** Reads and parses the file. Throws KubeProxyConfigError. */
export function readKubeProxyConfig(file: string): KubeProxyConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new KubeProxyConfigError([`${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`]);
  }
  return parseKubeProxyConfig(text, file);
}
