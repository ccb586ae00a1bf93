/**
 * Services + EndpointSlices + Node -> the IPVS table, case by case as kube-proxy's ipvs proxier builds it
 * (pkg/proxy/ipvs/proxier.go, pkg/proxy/topology.go, the endpoint and service caches). Each case names the
 * cluster state and the table, as the lines `ipvsadm -Sn` prints for it, plus the kube-ipvs0 addresses.
 */
import { formatSave } from '../../src/ipvs/rules';
import type { Family } from '../../src/ipvs/model';
import { parseCidr } from '../../src/kube/cidr';
import {
  keepsService, nodeAddressing, primaryNodeIps, translateService, type TranslateContext,
} from '../../src/kube/translate';
import type { Endpoint, EndpointSlice, Service } from '../../src/kube/types';

const NODE = 'node-a';
const ctx = (over: Partial<TranslateContext> = {}): TranslateContext => ({
  nodeName: NODE,
  zone: 'zone-1',
  families: ['inet', 'inet6'],
  scheduler: 'rr',
  nodeAddresses: new Set(['192.168.1.10', '2001:db8::10']),
  nodePortIPs: { inet: ['192.168.1.10'], inet6: ['2001:db8::10'] },
  preferSameNode: true,
  serviceProxyName: '',
  ...over,
});

const service = (spec: Partial<Service['spec']>, extra: Partial<Service> = {}): Service => ({
  metadata: { namespace: 'default', name: 'web', ...(extra.metadata ?? {}) },
  spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', ports: [{ name: 'http', protocol: 'TCP', port: 80 }], ...spec },
  ...(extra.status ? { status: extra.status } : {}),
});

const ep = (ip: string, over: Partial<Endpoint> = {}): Endpoint => ({
  addresses: [ip], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'node-b', ...over,
});
const local = (ip: string, over: Partial<Endpoint> = {}): Endpoint => ep(ip, { nodeName: NODE, ...over });
const terminating = (ip: string, serving: boolean, over: Partial<Endpoint> = {}): Endpoint =>
  ep(ip, { conditions: { ready: false, serving, terminating: true }, ...over });

const slice = (endpoints: Endpoint[], over: Partial<EndpointSlice> = {}): EndpointSlice => ({
  metadata: { namespace: 'default', name: `web-${Math.random().toString(36).slice(2, 7)}`, labels: { 'kubernetes.io/service-name': 'web' } },
  addressType: 'IPv4',
  endpoints,
  ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
  ...over,
});

/** The `ipvsadm -Sn` lines of the result, sorted (each -a line names its service, so this is the whole table). */
const table = (svc: Service, slices: EndpointSlice[], c: TranslateContext = ctx()): string[] =>
  formatSave(translateService(svc, slices, c).services, { numeric: true }).split('\n').filter((l) => l !== '').sort();

interface Case {
  name: string;
  svc: Service;
  slices: EndpointSlice[];
  ctx?: Partial<TranslateContext>;
  rules: string[];
  bind?: string[];
}

const CASES: Case[] = [
  {
    name: 'ClusterIP: one virtual service, ready endpoints as NAT destinations of weight 1, the VIP bound',
    svc: service({}),
    slices: [slice([ep('10.244.2.5'), ep('10.244.1.5')])],
    rules: ['-A -t 10.96.0.10:80 -s rr', '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1', '-a -t 10.96.0.10:80 -r 10.244.2.5:8080 -m -w 1'],
    bind: ['10.96.0.10'],
  },
  {
    name: 'no endpoints: the virtual service exists with no destinations',
    svc: service({}), slices: [], rules: ['-A -t 10.96.0.10:80 -s rr'], bind: ['10.96.0.10'],
  },
  { name: 'headless (clusterIP None) is ignored', svc: service({ clusterIP: 'None' }), slices: [slice([ep('10.244.1.5')])], rules: [], bind: [] },
  { name: 'ExternalName is ignored', svc: service({ type: 'ExternalName' }), slices: [], rules: [], bind: [] },
  {
    name: 'a Service claimed by another proxy (service-proxy-name) is ignored',
    svc: service({}, { metadata: { name: 'web', namespace: 'default', labels: { 'service.kubernetes.io/service-proxy-name': 'cilium' } } }),
    slices: [], rules: [], bind: [],
  },
  {
    name: 'with our own proxy name, only Services carrying it',
    svc: service({}, { metadata: { name: 'web', namespace: 'default', labels: { 'service.kubernetes.io/service-proxy-name': 'ipvs-bpf' } } }),
    slices: [], ctx: { serviceProxyName: 'ipvs-bpf' }, rules: ['-A -t 10.96.0.10:80 -s rr'],
  },
  {
    name: 'the headless label is honoured as kube-proxy selects on it',
    svc: service({}, { metadata: { name: 'web', namespace: 'default', labels: { 'service.kubernetes.io/headless': '' } } }),
    slices: [], rules: [],
  },
  {
    name: 'NodePort: also one virtual service per node IP, not bound',
    svc: service({ type: 'NodePort', ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }] }),
    slices: [slice([ep('10.244.1.5')])],
    ctx: { nodePortIPs: { inet: ['192.168.1.10', '10.0.0.5'], inet6: [] } },
    rules: [
      '-A -t 10.96.0.10:80 -s rr', '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1',
      '-A -t 192.168.1.10:30080 -s rr', '-a -t 192.168.1.10:30080 -r 10.244.1.5:8080 -m -w 1',
      '-A -t 10.0.0.5:30080 -s rr', '-a -t 10.0.0.5:30080 -r 10.244.1.5:8080 -m -w 1',
    ],
    bind: ['10.96.0.10'],
  },
  {
    name: 'externalIPs: bound unless a node address; other-family ones skipped in a single-stack Service',
    svc: service({ externalIPs: ['203.0.113.7', '192.168.1.10', '2001:db8::99'] }),
    slices: [],
    rules: ['-A -t 10.96.0.10:80 -s rr', '-A -t 203.0.113.7:80 -s rr', '-A -t 192.168.1.10:80 -s rr'],
    bind: ['10.96.0.10', '203.0.113.7'],
  },
  {
    name: 'LoadBalancer ingress: VIP-mode IPs only (ipMode Proxy and hostnames skipped)',
    svc: service({ type: 'LoadBalancer', ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }] }, {
      status: { loadBalancer: { ingress: [{ ip: '198.51.100.1' }, { ip: '198.51.100.2', ipMode: 'VIP' }, { ip: '198.51.100.3', ipMode: 'Proxy' }, { hostname: 'lb.example' }] } },
    }),
    slices: [],
    rules: ['-A -t 10.96.0.10:80 -s rr', '-A -t 198.51.100.1:80 -s rr', '-A -t 198.51.100.2:80 -s rr', '-A -t 192.168.1.10:30080 -s rr'],
    bind: ['10.96.0.10', '198.51.100.1', '198.51.100.2'],
  },
  {
    name: 'ClientIP affinity: persistence with the Service timeout, default 10800 s',
    svc: service({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } }, ports: [{ name: 'http', protocol: 'UDP', port: 53 }] }),
    slices: [slice([ep('10.244.1.5')], { ports: [{ name: 'http', protocol: 'UDP', port: 5353 }] })],
    rules: ['-A -u 10.96.0.10:53 -s rr -p 600', '-a -u 10.96.0.10:53 -r 10.244.1.5:5353 -m -w 1'],
  },
  {
    name: 'affinity without a config uses the API default',
    svc: service({ sessionAffinity: 'ClientIP' }), slices: [], rules: ['-A -t 10.96.0.10:80 -s rr -p 10800'],
  },
  {
    name: 'scheduler mh gets flag-2 (mh-port), as kube-proxy sets FlagSourceHash',
    svc: service({}), slices: [], ctx: { scheduler: 'mh' }, rules: ['-A -t 10.96.0.10:80 -s mh -b mh-port'],
  },
  {
    name: 'ports match by name and protocol; SCTP too; a slice port of another protocol gives no endpoints',
    svc: service({ ports: [{ name: 'dns', protocol: 'UDP', port: 53 }, { name: 'dns-tcp', protocol: 'TCP', port: 53 }, { name: 's', protocol: 'SCTP', port: 9 }] }),
    slices: [slice([ep('10.244.1.5')], { ports: [{ name: 'dns', protocol: 'UDP', port: 1053 }, { name: 'dns-tcp', protocol: 'TCP', port: 2053 }, { name: 's', protocol: 'UDP', port: 9 }] })],
    rules: [
      '-A -u 10.96.0.10:53 -s rr', '-a -u 10.96.0.10:53 -r 10.244.1.5:1053 -m -w 1',
      '-A -t 10.96.0.10:53 -s rr', '-a -t 10.96.0.10:53 -r 10.244.1.5:2053 -m -w 1',
      '-A --sctp-service 10.96.0.10:9 -s rr',
    ],
  },
  {
    name: 'overlapping slices: one destination per address and port',
    svc: service({}), slices: [slice([ep('10.244.1.5'), ep('10.244.1.6')]), slice([ep('10.244.1.5')])],
    rules: ['-A -t 10.96.0.10:80 -s rr', '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1', '-a -t 10.96.0.10:80 -r 10.244.1.6:8080 -m -w 1'],
  },
  {
    name: 'not ready and terminating-not-serving endpoints are left out while ready ones exist',
    svc: service({}),
    slices: [slice([ep('10.244.1.5'), ep('10.244.1.6', { conditions: { ready: false, serving: false, terminating: false } }), terminating('10.244.1.7', true)])],
    rules: ['-A -t 10.96.0.10:80 -s rr', '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1'],
  },
  {
    name: 'no ready endpoint: serving terminating endpoints are used',
    svc: service({}),
    slices: [slice([terminating('10.244.1.7', true), terminating('10.244.1.8', false), ep('10.244.1.9', { conditions: { ready: false } })])],
    rules: ['-A -t 10.96.0.10:80 -s rr', '-a -t 10.96.0.10:80 -r 10.244.1.7:8080 -m -w 1'],
  },
  {
    name: 'conditions left out mean ready (and serving)',
    svc: service({}), slices: [slice([{ addresses: ['10.244.1.5'] }])],
    rules: ['-A -t 10.96.0.10:80 -s rr', '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1'],
  },
  {
    name: 'externalTrafficPolicy Local: external virtual services get local endpoints only, ClusterIP all',
    svc: service({ type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }] }),
    slices: [slice([ep('10.244.2.5'), local('10.244.1.5')])],
    rules: [
      '-A -t 10.96.0.10:80 -s rr', '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1', '-a -t 10.96.0.10:80 -r 10.244.2.5:8080 -m -w 1',
      '-A -t 192.168.1.10:30080 -s rr', '-a -t 192.168.1.10:30080 -r 10.244.1.5:8080 -m -w 1',
    ],
  },
  {
    name: 'externalTrafficPolicy Local with no local endpoint falls back to the cluster endpoints (k/k#97081)',
    svc: service({ type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }] }),
    slices: [slice([ep('10.244.2.5')])],
    rules: [
      '-A -t 10.96.0.10:80 -s rr', '-a -t 10.96.0.10:80 -r 10.244.2.5:8080 -m -w 1',
      '-A -t 192.168.1.10:30080 -s rr', '-a -t 192.168.1.10:30080 -r 10.244.2.5:8080 -m -w 1',
    ],
  },
  {
    name: 'externalTrafficPolicy Local on a ClusterIP Service has no effect (only NodePort and LoadBalancer)',
    svc: service({ externalTrafficPolicy: 'Local', externalIPs: ['203.0.113.7'] }),
    slices: [slice([ep('10.244.2.5')])],
    rules: ['-A -t 10.96.0.10:80 -s rr', '-a -t 10.96.0.10:80 -r 10.244.2.5:8080 -m -w 1', '-A -t 203.0.113.7:80 -s rr', '-a -t 203.0.113.7:80 -r 10.244.2.5:8080 -m -w 1'],
  },
  {
    name: 'internalTrafficPolicy Local: the ClusterIP gets local endpoints only',
    svc: service({ internalTrafficPolicy: 'Local' }),
    slices: [slice([ep('10.244.2.5'), local('10.244.1.5')])],
    rules: ['-A -t 10.96.0.10:80 -s rr', '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1'],
  },
  {
    name: 'internalTrafficPolicy Local with no local endpoint: no destination (the Service never uses Cluster endpoints)',
    svc: service({ internalTrafficPolicy: 'Local' }), slices: [slice([ep('10.244.2.5')])], rules: ['-A -t 10.96.0.10:80 -s rr'],
  },
  {
    name: 'internalTrafficPolicy Local on an externally reachable Service falls back to cluster endpoints',
    svc: service({ internalTrafficPolicy: 'Local', externalIPs: ['203.0.113.7'] }), slices: [slice([ep('10.244.2.5')])],
    rules: ['-A -t 10.96.0.10:80 -s rr', '-a -t 10.96.0.10:80 -r 10.244.2.5:8080 -m -w 1', '-A -t 203.0.113.7:80 -s rr', '-a -t 203.0.113.7:80 -r 10.244.2.5:8080 -m -w 1'],
  },
  {
    name: 'Local policy: a local serving terminating endpoint is used when no local one is ready',
    svc: service({ internalTrafficPolicy: 'Local' }), slices: [slice([ep('10.244.2.5'), terminating('10.244.1.5', true, { nodeName: NODE })])],
    rules: ['-A -t 10.96.0.10:80 -s rr', '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1'],
  },
  {
    name: 'zone hints: every ready endpoint hinted and one for this zone -> only this zone',
    svc: service({}),
    slices: [slice([
      ep('10.244.1.5', { hints: { forZones: [{ name: 'zone-1' }] } }), ep('10.244.2.5', { hints: { forZones: [{ name: 'zone-2' }] } }),
    ])],
    rules: ['-A -t 10.96.0.10:80 -s rr', '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1'],
  },
  {
    name: 'zone hints: one ready endpoint without a hint -> no topology',
    svc: service({}),
    slices: [slice([ep('10.244.1.5', { hints: { forZones: [{ name: 'zone-1' }] } }), ep('10.244.2.5')])],
    rules: ['-A -t 10.96.0.10:80 -s rr', '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1', '-a -t 10.96.0.10:80 -r 10.244.2.5:8080 -m -w 1'],
  },
  {
    name: 'zone hints for other zones only -> no topology',
    svc: service({}), ctx: { zone: 'zone-9' },
    slices: [slice([ep('10.244.1.5', { hints: { forZones: [{ name: 'zone-1' }] } }), ep('10.244.2.5', { hints: { forZones: [{ name: 'zone-2' }] } })])],
    rules: ['-A -t 10.96.0.10:80 -s rr', '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1', '-a -t 10.96.0.10:80 -r 10.244.2.5:8080 -m -w 1'],
  },
  {
    name: 'node hints (trafficDistribution PreferSameNode) win over zone hints',
    svc: service({ trafficDistribution: 'PreferSameNode' }),
    slices: [slice([
      ep('10.244.1.5', { nodeName: NODE, hints: { forNodes: [{ name: NODE }], forZones: [{ name: 'zone-1' }] } }),
      ep('10.244.1.6', { hints: { forNodes: [{ name: 'node-b' }], forZones: [{ name: 'zone-1' }] } }),
    ])],
    rules: ['-A -t 10.96.0.10:80 -s rr', '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1'],
  },
  {
    name: 'node hints are ignored with PreferSameTrafficDistribution off (zone hints apply)',
    svc: service({}), ctx: { preferSameNode: false },
    slices: [slice([
      ep('10.244.1.5', { nodeName: NODE, hints: { forNodes: [{ name: NODE }], forZones: [{ name: 'zone-1' }] } }),
      ep('10.244.1.6', { hints: { forNodes: [{ name: 'node-b' }], forZones: [{ name: 'zone-1' }] } }),
    ])],
    rules: ['-A -t 10.96.0.10:80 -s rr', '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1', '-a -t 10.96.0.10:80 -r 10.244.1.6:8080 -m -w 1'],
  },
  {
    name: 'dual stack: one virtual service per family, IPv6 endpoints from the IPv6 slice, netmask /128 for affinity',
    svc: service({
      ipFamilies: ['IPv4', 'IPv6'], clusterIPs: ['10.96.0.10', 'fd00:10:96::a'], sessionAffinity: 'ClientIP', type: 'NodePort',
      ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }], externalIPs: ['2001:db8::99'],
    }),
    slices: [slice([ep('10.244.1.5')]), slice([ep('fd00:10:244::5')], { addressType: 'IPv6' })],
    rules: [
      '-A -t 10.96.0.10:80 -s rr -p 10800', '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1',
      '-A -t 192.168.1.10:30080 -s rr -p 10800', '-a -t 192.168.1.10:30080 -r 10.244.1.5:8080 -m -w 1',
      '-A -t [fd00:10:96::a]:80 -s rr -p 10800', '-a -t [fd00:10:96::a]:80 -r [fd00:10:244::5]:8080 -m -w 1',
      '-A -t [2001:db8::99]:80 -s rr -p 10800', '-a -t [2001:db8::99]:80 -r [fd00:10:244::5]:8080 -m -w 1',
      '-A -t [2001:db8::10]:30080 -s rr -p 10800', '-a -t [2001:db8::10]:30080 -r [fd00:10:244::5]:8080 -m -w 1',
    ],
    bind: ['10.96.0.10', '2001:db8::99', 'fd00:10:96::a'],
  },
  {
    name: 'dual-stack Service on an IPv4-only node: IPv4 only',
    svc: service({ ipFamilies: ['IPv6', 'IPv4'], clusterIPs: ['fd00:10:96::a', '10.96.0.10'] }),
    slices: [slice([ep('10.244.1.5')]), slice([ep('fd00:10:244::5')], { addressType: 'IPv6' })], ctx: { families: ['inet'] },
    rules: ['-A -t 10.96.0.10:80 -s rr', '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1'],
    bind: ['10.96.0.10'],
  },
  {
    name: 'an endpoint of the wrong family in a slice is skipped; so are FQDN slices',
    svc: service({}),
    slices: [slice([ep('fd00::5'), ep('10.244.1.5')]), slice([ep('10.244.1.9')], { addressType: 'FQDN' })],
    rules: ['-A -t 10.96.0.10:80 -s rr', '-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1'],
  },
];

describe('translateService', () => {
  test.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const context = ctx(c.ctx);
    expect(table(c.svc, c.slices, context)).toEqual([...c.rules].sort());
    if (c.bind) expect(translateService(c.svc, c.slices, context).bind).toEqual([...c.bind].sort());
  });

  test('health-check node port for an ETP Local LoadBalancer, with its local ready endpoints (unique IPs)', () => {
    const svc = service({
      type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000,
      ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }, { name: 'https', protocol: 'TCP', port: 443, nodePort: 30443 }],
    });
    const s = slice([local('10.244.1.5'), local('10.244.1.6', { conditions: { ready: false } }), ep('10.244.2.5')], {
      ports: [{ name: 'http', protocol: 'TCP', port: 8080 }, { name: 'https', protocol: 'TCP', port: 8443 }],
    });
    const r = translateService(svc, [s], ctx());
    expect(r.healthCheck).toEqual({ port: 32000, localEndpoints: 1 });
    expect(r.noLocalEndpoints).toEqual({ internal: false, external: false });
    const none = translateService(svc, [slice([ep('10.244.2.5')])], ctx());
    expect(none.healthCheck).toEqual({ port: 32000, localEndpoints: 0 });
    expect(none.noLocalEndpoints).toEqual({ internal: false, external: true });
    expect(translateService(service({ type: 'NodePort', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000 }), [], ctx()).healthCheck).toBeUndefined();
  });
});

test('virtual service attributes: persistence netmask per family, mh flag, NAT weight-1 destinations', () => {
  const r = translateService(service({ ipFamilies: ['IPv4', 'IPv6'], clusterIPs: ['10.96.0.10', 'fd00:10:96::a'], sessionAffinity: 'ClientIP' }),
    [slice([ep('fd00:10:244::5')], { addressType: 'IPv6' })], ctx({ scheduler: 'mh' }));
  expect(r.services.map((s) => [s.netmask, s.persistenceTimeout, s.flags])).toEqual([
    [0xffffffff, 10800, { persistent: true, onePacket: false, sched1: false, sched2: true, sched3: false }],
    [128, 10800, { persistent: true, onePacket: false, sched1: false, sched2: true, sched3: false }],
  ]);
  expect(r.services[1]!.destinations).toEqual([expect.objectContaining({ family: 'inet6', forward: 'masq', weight: 1, upperThreshold: 0, lowerThreshold: 0 })]);
});

describe('node addresses', () => {
  const local = [
    { address: '127.0.0.1', interface: 'lo' }, { address: '::1', interface: 'lo' },
    { address: '192.168.1.10', interface: 'eth0' }, { address: '10.0.0.5', interface: 'eth1' },
    { address: 'fe80::1', interface: 'eth0' }, { address: '2001:db8::10', interface: 'eth0' },
    { address: '10.96.0.10', interface: 'kube-ipvs0' },
  ];
  const npa = (cidrs: string[], primary = false) => ({ cidrs: cidrs.map((c) => parseCidr(c)!), primary });

  test('unset nodePortAddresses: every node address but kube-ipvs0, loopback and IPv6 link-local', () => {
    const r = nodeAddressing(local, npa([]), []);
    expect([...r.nodeAddresses].sort()).toEqual(['10.0.0.5', '192.168.1.10', '2001:db8::10']);
    expect(r.nodePortIPs).toEqual({ inet: ['10.0.0.5', '192.168.1.10'], inet6: ['2001:db8::10'] });
  });

  test('CIDRs select per family; a family without a CIDR matches all (as NewNodePortAddresses)', () => {
    expect(nodeAddressing(local, npa(['192.168.0.0/16']), []).nodePortIPs).toEqual({ inet: ['192.168.1.10'], inet6: ['2001:db8::10'] });
    expect(nodeAddressing(local, npa(['10.0.0.0/8', 'fe80::/10']), []).nodePortIPs).toEqual({ inet: ['10.0.0.5', '10.96.0.10'], inet6: ['fe80::1'] });
    expect(nodeAddressing(local, npa(['127.0.0.0/8']), []).nodePortIPs.inet).toEqual([]);
  });

  test('primary: the node primary IPs; bindAddress overrides the Node object', () => {
    const node = { metadata: { name: NODE }, status: { addresses: [
      { type: 'Hostname', address: NODE }, { type: 'ExternalIP', address: '198.51.100.9' }, { type: 'InternalIP', address: '10.0.0.5' },
      { type: 'InternalIP', address: '2001:db8::10' },
    ] } };
    expect(primaryNodeIps(node, '0.0.0.0')).toEqual(['10.0.0.5', '2001:db8::10']);
    expect(primaryNodeIps(node, '192.168.1.10')).toEqual(['192.168.1.10']);
    expect(nodeAddressing(local, npa([], true), primaryNodeIps(node, '0.0.0.0')).nodePortIPs).toEqual({ inet: ['10.0.0.5'], inet6: ['2001:db8::10'] });
  });
});

describe('services the kubernetes source leaves alone', () => {
  test('excludeCIDRs and families it does not proxy are kept; the rest is removed', () => {
    const keeps = keepsService([parseCidr('10.200.0.0/16')!], ['inet'] as Family[]);
    const addr = (family: Family, address: string) => ({ kind: 'addr' as const, family, protocol: 'tcp' as const, address, port: 80 });
    expect(keeps(addr('inet', '10.200.3.4'))).toBe(true);
    expect(keeps(addr('inet', '10.96.0.1'))).toBe(false);
    expect(keeps(addr('inet6', 'fd00::1'))).toBe(true);
    expect(keeps({ kind: 'fwmark', family: 'inet', fwmark: 7 })).toBe(false);
    expect(keeps({ kind: 'fwmark', family: 'inet6', fwmark: 7 })).toBe(true);
  });
});
