/**
 * Kubernetes Services + EndpointSlices + this Node -> the IPVS table kube-proxy's ipvs mode programs
 * (pkg/proxy/ipvs/proxier.go syncProxyRules, with pkg/proxy's service/endpoint caches and topology.go).
 * Pure functions: no API calls, no kernel. One Service at a time (translateService), so that a change to
 * one Service or its EndpointSlices recomputes that Service only.
 *
 * Per IP family the node serves, per Service port (Services with no ClusterIP of that family, headless
 * Services, ExternalName Services and those another proxy claims through service-proxy-name are skipped):
 *   - a virtual service on ClusterIP:port, its address bound to kube-ipvs0;
 *   - one on each externalIP and each LoadBalancer ingress IP (not ipMode Proxy) of the family, bound to
 *     kube-ipvs0 unless it is already a node address;
 *   - with a nodePort, one on each node IP NodePorts are served on (nodePortIPs);
 * each with the configured scheduler (mh adds flag-2, "mh-port"), ClientIP affinity as persistence with its
 * timeout (netmask /32 or /128), and the endpoints kube-proxy chooses: ready ones, else serving+terminating
 * ones, narrowed by topology hints (PreferSameNode, PreferSameZone), node-local ones for
 * internalTrafficPolicy Local (ClusterIP) and externalTrafficPolicy Local (the rest), falling back to the
 * cluster-wide list when the node has none (k/k#97081). Destinations: NAT (masq), weight 1.
 * Graceful termination (weight 0 until connections end) is not part of the desired table: the caller
 * keeps removed destinations draining.
 */
import {
  NO_SERVICE_FLAGS, NO_TUNNEL_FLAGS, serviceKeyId, type DesiredService, type Destination, type Family, type Protocol, type ServiceKey,
} from '../ipvs/model';
import { canonicalIp, cidrContains, isLinkLocal6, isLoopback, parseCidr, parseIp, type Cidr } from './cidr';
import type { KubeProxyConfig } from './proxy-config';
import {
  LABEL_HEADLESS, LABEL_SERVICE_NAME, LABEL_SERVICE_PROXY_NAME, LABEL_ZONE, type EndpointSlice, type K8sProtocol, type Node, type Service,
} from './types';

/** kube-proxy's sessionAffinityConfig.clientIP.timeoutSeconds default (3 hours). */
export const DEFAULT_AFFINITY_TIMEOUT = 10800;
export const DUMMY_DEVICE = 'kube-ipvs0';

/** What translateService needs about this node and the configuration. */
export interface TranslateContext {
  nodeName: string;
  /** The Node's topology.kubernetes.io/zone label ('' when none). */
  zone: string;
  /** The families this node proxies (both for dual stack). */
  families: readonly Family[];
  scheduler: string;
  /** Node addresses not on kube-ipvs0, minus loopback and IPv6 link-local (kube-proxy's nodeAddressSet). */
  nodeAddresses: ReadonlySet<string>;
  /** The addresses NodePort virtual services are made on, per family. */
  nodePortIPs: Readonly<Record<Family, readonly string[]>>;
  /** PreferSameTrafficDistribution (on by default since 1.34): node hints are honoured. */
  preferSameNode: boolean;
  /** service-proxy-name this proxy serves ('' = Services without the label). */
  serviceProxyName: string;
}

/** One endpoint as kube-proxy's endpoint cache keeps it. */
export interface EndpointInfo {
  ip: string;
  port: number;
  family: Family;
  isLocal: boolean;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  zoneHints: ReadonlySet<string>;
  nodeHints: ReadonlySet<string>;
}

/** A Service's contribution to the table. */
export interface ServiceResult {
  /** Virtual services with their destinations, in a stable order. */
  services: DesiredService[];
  /** Addresses to bind to kube-ipvs0 (canonical text). */
  bind: string[];
  /** healthCheckNodePort of an externalTrafficPolicy Local LoadBalancer, with its local ready endpoint count. */
  healthCheck?: { port: number; localEndpoints: number };
  /** Ports whose Local policy found no local endpoint while the Service has endpoints (kube-proxy's gauge). */
  noLocalEndpoints: { internal: boolean; external: boolean };
}

const EMPTY_RESULT = (): ServiceResult => ({ services: [], bind: [], noLocalEndpoints: { internal: false, external: false } });

const FAMILY_OF_API: Readonly<Record<string, Family>> = { IPv4: 'inet', IPv6: 'inet6' };
const PROTOCOLS: Readonly<Record<K8sProtocol, Protocol>> = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' };

/** Whether this proxy serves the Service at all (kube-proxy's label selector and ShouldSkipService). */
export function servesService(svc: Service, serviceProxyName: string): boolean {
  const labels = svc.metadata.labels ?? {};
  if (LABEL_HEADLESS in labels) return false;
  const claimed = labels[LABEL_SERVICE_PROXY_NAME];
  if (serviceProxyName === '' ? claimed !== undefined : claimed !== serviceProxyName) return false;
  const ip = svc.spec.clusterIP;
  if (!ip || ip === 'None') return false;
  return svc.spec.type !== 'ExternalName';
}

/** GetClusterIPByFamily: the Service's ClusterIP of `family`, or undefined. */
export function clusterIpOf(svc: Service, family: Family): string | undefined {
  const fams = svc.spec.ipFamilies ?? [];
  if (fams.length === 0) {
    const ip = svc.spec.clusterIP ? parseIp(svc.spec.clusterIP) : null;
    return ip && ip.family === family ? canonicalIp(svc.spec.clusterIP!)! : undefined;
  }
  const i = fams.findIndex((f) => FAMILY_OF_API[f] === family);
  const ip = i >= 0 ? svc.spec.clusterIPs?.[i] : undefined;
  return ip === undefined ? undefined : (canonicalIp(ip) ?? undefined);
}

/** The endpoints of each Service port of one family, keyed `portName/PROTOCOL`, deduplicated by ip:port. */
export function endpointsByPort(slices: Iterable<EndpointSlice>, family: Family, nodeName: string): Map<string, EndpointInfo[]> {
  const byPort = new Map<string, Map<string, EndpointInfo>>();
  for (const slice of slices) {
    if (FAMILY_OF_API[slice.addressType] !== family) continue;
    for (const p of slice.ports ?? []) {
      if (p.port === undefined || p.port === null) continue;
      const key = `${p.name ?? ''}/${p.protocol ?? 'TCP'}`;
      let set = byPort.get(key);
      if (!set) byPort.set(key, (set = new Map()));
      for (const ep of slice.endpoints ?? []) {
        const addr = ep.addresses?.[0];
        const ip = addr === undefined ? null : parseIp(addr);
        if (!ip || ip.family !== family) continue;
        const c = ep.conditions ?? {};
        const ready = c.ready === undefined || c.ready === null || c.ready;
        const info: EndpointInfo = {
          ip: canonicalIp(addr!)!,
          port: p.port,
          family,
          isLocal: ep.nodeName !== undefined && ep.nodeName === nodeName,
          ready,
          serving: c.serving === undefined || c.serving === null ? ready : c.serving,
          terminating: c.terminating === true,
          zoneHints: new Set((ep.hints?.forZones ?? []).map((z) => z.name)),
          nodeHints: new Set((ep.hints?.forNodes ?? []).map((n) => n.name)),
        };
        const id = `${info.ip}:${info.port}`;
        // Overlapping slices: the first one wins, except that a local copy wins over a remote one.
        if (!set.has(id) || info.isLocal) set.set(id, info);
      }
    }
  }
  return new Map([...byPort].map(([k, v]) => [k, [...v.values()]]));
}

interface PortInfo {
  internalLocal: boolean;
  externalLocal: boolean;
  externallyAccessible: boolean;
}

/** proxy.CategorizeEndpoints: the Cluster-policy and Local-policy endpoints, and whether any endpoint exists. */
export function categorizeEndpoints(
  endpoints: readonly EndpointInfo[],
  port: PortInfo,
  ctx: Pick<TranslateContext, 'nodeName' | 'zone' | 'preferSameNode'>,
): { cluster: EndpointInfo[] | undefined; local: EndpointInfo[] | undefined; hasAny: boolean } {
  let cluster: EndpointInfo[] | undefined;
  let local: EndpointInfo[] | undefined;
  let hasAny = false;
  if (endpoints.length === 0) return { cluster, local, hasAny };
  const usesCluster = !port.internalLocal || port.externallyAccessible;
  const usesLocal = port.internalLocal || (port.externalLocal && port.externallyAccessible);
  if (usesCluster) {
    const mode = topologyMode(endpoints, ctx);
    cluster = endpoints.filter((e) => e.ready && availableForTopology(e, mode, ctx));
    if (cluster.length === 0) cluster = endpoints.filter((e) => e.serving && e.terminating);
    if (cluster.length > 0) hasAny = true;
  }
  if (!usesLocal) return { cluster, local, hasAny };
  let localReady = false;
  let localServingTerminating = false;
  for (const e of endpoints) {
    if (e.ready) {
      hasAny = true;
      if (e.isLocal) localReady = true;
    } else if (e.serving && e.terminating) {
      hasAny = true;
      if (e.isLocal) localServingTerminating = true;
    }
  }
  if (localReady) local = endpoints.filter((e) => e.isLocal && e.ready);
  else if (localServingTerminating) local = endpoints.filter((e) => e.isLocal && e.serving && e.terminating);
  return { cluster, local, hasAny };
}

type TopologyMode = '' | 'PreferSameNode' | 'PreferSameZone';

function topologyMode(endpoints: readonly EndpointInfo[], ctx: Pick<TranslateContext, 'nodeName' | 'zone' | 'preferSameNode'>): TopologyMode {
  let anyReady = false;
  let allNodeHints = true;
  let forNode = false;
  let allZoneHints = true;
  let forZone = false;
  for (const e of endpoints) {
    if (!e.ready) continue;
    anyReady = true;
    if (e.nodeHints.size === 0) allNodeHints = false;
    else if (e.nodeHints.has(ctx.nodeName)) forNode = true;
    if (e.zoneHints.size === 0) allZoneHints = false;
    else if (e.zoneHints.has(ctx.zone)) forZone = true;
  }
  if (!anyReady) return '';
  if (ctx.preferSameNode && allNodeHints && forNode) return 'PreferSameNode';
  if (allZoneHints && forZone) return 'PreferSameZone';
  return '';
}

function availableForTopology(e: EndpointInfo, mode: TopologyMode, ctx: Pick<TranslateContext, 'nodeName' | 'zone'>): boolean {
  if (mode === '') return true;
  return mode === 'PreferSameNode' ? e.nodeHints.has(ctx.nodeName) : e.zoneHints.has(ctx.zone);
}

function ipsOfFamily(texts: readonly string[] | undefined, family: Family): string[] {
  const out: string[] = [];
  for (const t of texts ?? []) {
    const ip = parseIp(t);
    if (ip && ip.family === family) out.push(canonicalIp(t)!);
  }
  return out;
}

function destination(e: EndpointInfo): Destination {
  return {
    family: e.family, address: e.ip, port: e.port, forward: 'masq', weight: 1, upperThreshold: 0, lowerThreshold: 0,
    tunnelType: 'ipip', tunnelPort: 0, tunnelFlags: { ...NO_TUNNEL_FLAGS },
  };
}

/** Destinations in a stable order (kube-proxy adds them in map order; the kernel's order is not compared). */
function destinations(eps: readonly EndpointInfo[] | undefined): Destination[] {
  return [...(eps ?? [])].sort((a, b) => (a.ip === b.ip ? a.port - b.port : a.ip < b.ip ? -1 : 1)).map(destination);
}

/** The IPVS services and kube-ipvs0 addresses of one Service, given its EndpointSlices. */
export function translateService(svc: Service, slices: readonly EndpointSlice[], ctx: TranslateContext): ServiceResult {
  const out = EMPTY_RESULT();
  if (!servesService(svc, ctx.serviceProxyName)) return out;
  const spec = svc.spec;
  const externalLocal = (spec.type === 'NodePort' || spec.type === 'LoadBalancer') && spec.externalTrafficPolicy === 'Local';
  const internalLocal = spec.internalTrafficPolicy === 'Local';
  const affinity = spec.sessionAffinity === 'ClientIP';
  const timeout = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_AFFINITY_TIMEOUT;
  const mh = ctx.scheduler === 'mh';
  const bind = new Set<string>();
  const seen = new Set<string>();
  const localReadyIps = new Set<string>();

  for (const family of ctx.families) {
    const clusterIp = clusterIpOf(svc, family);
    if (clusterIp === undefined) continue;
    const externalIps = ipsOfFamily(spec.externalIPs, family);
    const lbIps = ipsOfFamily((svc.status?.loadBalancer?.ingress ?? []).filter((i) => i.ip && i.ipMode !== 'Proxy').map((i) => i.ip!), family);
    const eps = endpointsByPort(slices, family, ctx.nodeName);
    for (const list of eps.values()) for (const e of list) if (e.isLocal && e.ready) localReadyIps.add(e.ip);

    for (const sp of spec.ports ?? []) {
      const protocol = PROTOCOLS[sp.protocol ?? 'TCP'];
      if (!protocol) continue;
      const nodePort = sp.nodePort ?? 0;
      const port: PortInfo = {
        internalLocal, externalLocal, externallyAccessible: nodePort !== 0 || lbIps.length > 0 || externalIps.length > 0,
      };
      const endpoints = eps.get(`${sp.name ?? ''}/${sp.protocol ?? 'TCP'}`) ?? [];
      const { cluster, local, hasAny } = categorizeEndpoints(endpoints, port, ctx);
      const pick = (onlyLocal: boolean): EndpointInfo[] | undefined => (onlyLocal && local && local.length > 0 ? local : cluster);
      // As syncEndpoint counts them: for each virtual service that wants local endpoints and falls back.
      if (!local?.length && hasAny) {
        if (internalLocal) out.noLocalEndpoints.internal = true;
        if (externalLocal && (internalLocal || port.externallyAccessible)) out.noLocalEndpoints.external = true;
      }
      const add = (address: string, p: number, eps: EndpointInfo[] | undefined): void => {
        const key: ServiceKey = { kind: 'addr', family, protocol, address, port: p };
        const id = serviceKeyId(key);
        if (seen.has(id)) return; // the same VIP twice in one Service (e.g. an externalIP equal to an LB IP)
        seen.add(id);
        out.services.push({
          key,
          scheduler: ctx.scheduler,
          flags: { ...NO_SERVICE_FLAGS, persistent: affinity, sched2: mh },
          persistenceTimeout: affinity ? timeout : 0,
          netmask: family === 'inet' ? 0xffffffff : 128,
          pe: '',
          destinations: destinations(eps),
        });
      };
      add(clusterIp, sp.port, pick(internalLocal));
      bind.add(clusterIp);
      for (const ip of [...externalIps, ...lbIps]) {
        add(ip, sp.port, pick(externalLocal));
        if (!ctx.nodeAddresses.has(ip)) bind.add(ip);
      }
      if (nodePort !== 0) for (const ip of ctx.nodePortIPs[family]) add(ip, nodePort, pick(externalLocal));
    }
  }
  out.bind = [...bind].sort();
  if (spec.type === 'LoadBalancer' && externalLocal && spec.healthCheckNodePort) {
    out.healthCheck = { port: spec.healthCheckNodePort, localEndpoints: localReadyIps.size };
  }
  return out;
}

/** The name an EndpointSlice's Service has ("namespace/name"), or undefined for a slice of no Service. */
export function sliceServiceName(slice: EndpointSlice): string | undefined {
  const svc = slice.metadata.labels?.[LABEL_SERVICE_NAME];
  return svc === undefined ? undefined : `${slice.metadata.namespace ?? ''}/${svc}`;
}

/** Local addresses as the node's interfaces have them. */
export interface LocalAddress {
  address: string;
  interface: string;
}

/**
 * kube-proxy's nodeAddressSet (every local address except those on kube-ipvs0, loopback and IPv6 link-local)
 * and the NodePort addresses per family: all of nodeAddressSet when nodePortAddresses has no CIDR of the
 * family (or a zero CIDR), else the local addresses (kube-ipvs0's included) in its CIDRs, loopback excluded;
 * the keyword primary stands for the node's primary IPs.
 */
export function nodeAddressing(
  local: readonly LocalAddress[],
  npa: KubeProxyConfig['nodePortAddresses'],
  primaryIps: readonly string[],
): { nodeAddresses: Set<string>; nodePortIPs: Record<Family, string[]> } {
  const nodeAddresses = new Set<string>();
  for (const a of local) {
    const ip = parseIp(a.address);
    if (!ip || a.interface === DUMMY_DEVICE || isLoopback(ip) || isLinkLocal6(ip)) continue;
    nodeAddresses.add(canonicalIp(a.address)!);
  }
  const cidrs: Cidr[] = [...npa.cidrs];
  if (npa.primary) {
    for (const p of primaryIps) {
      const ip = parseIp(p);
      if (ip) cidrs.push(parseCidr(`${canonicalIp(p)}/${ip.family === 'inet' ? 32 : 128}`)!);
    }
  }
  const nodePortIPs: Record<Family, string[]> = { inet: [], inet6: [] };
  for (const family of ['inet', 'inet6'] as const) {
    const mine = cidrs.filter((c) => c.family === family);
    if (mine.length === 0 || mine.some((c) => c.prefix === 0)) {
      nodePortIPs[family] = [...nodeAddresses].filter((a) => parseIp(a)!.family === family).sort();
      continue;
    }
    const found = new Set<string>();
    for (const a of local) {
      const ip = parseIp(a.address);
      if (!ip || ip.family !== family || isLoopback(ip)) continue;
      if (mine.some((c) => cidrContains(c, ip))) found.add(canonicalIp(a.address)!);
    }
    nodePortIPs[family] = [...found].sort();
  }
  return { nodeAddresses, nodePortIPs };
}

/** The node's primary IPs as kube-proxy finds them: bindAddress if set, else the Node's first InternalIP (else ExternalIP) per family. */
export function primaryNodeIps(node: Node | undefined, bindAddress: string): string[] {
  const bind = parseIp(bindAddress);
  if (bind && bind.value !== 0n) return [canonicalIp(bindAddress)!];
  const out: string[] = [];
  for (const family of ['inet', 'inet6'] as const) {
    for (const type of ['InternalIP', 'ExternalIP']) {
      const a = node?.status?.addresses?.find((x) => x.type === type && parseIp(x.address)?.family === family);
      if (a) {
        out.push(canonicalIp(a.address)!);
        break;
      }
    }
  }
  return out;
}

/** The Node's zone label ('' when none). */
export function nodeZone(node: Node | undefined): string {
  return node?.metadata.labels?.[LABEL_ZONE] ?? '';
}

/** Kernel services the kubernetes source leaves alone: inside excludeCIDRs, or of a family it does not proxy. */
export function keepsService(excludeCIDRs: readonly Cidr[], families: readonly Family[]): (key: ServiceKey) => boolean {
  return (key) => {
    if (!families.includes(key.family)) return true;
    if (key.kind !== 'addr') return false;
    const ip = parseIp(key.address);
    return ip !== null && excludeCIDRs.some((c) => cidrContains(c, ip));
  };
}
