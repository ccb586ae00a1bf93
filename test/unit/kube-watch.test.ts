/**
 * The list-and-watch client against a stand-in apiserver (kube-fake-apiserver.ts): list then watch with
 * bookmarks and a timeout, reconnect from the last version, 410 -> relist with the deletions in between,
 * backoff on refusals, silent and dropped connections retried. Then the kubernetes source on top: the first
 * complete view, incremental changes that name only the virtual services they change, nothing removed
 * before the first view, node label changes, and two Services claiming one virtual service; and the daemon
 * over rule files plus the kubernetes source (the simulated kernel): one table, per-Service syncs, clashes named.
 */
import { mkdtempSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { loadConfig } from '../../src/daemon/config';
import { Daemon } from '../../src/daemon/daemon';
import { plainIpvs } from '../../src/daemon/datapath';
import type { Logger } from '../../src/daemon/log';
import type { IpvsClient } from '../../src/ipvs/netlink';
import { parseCidr } from '../../src/kube/cidr';
import { ApiClient } from '../../src/kube/client';
import { RuleFileSource } from '../../src/sources/rule-files';
import { FakeIpvs, plainService } from './fake-ipvs';
import { Informer, type InformerEvent } from '../../src/kube/informer';
import { defaultKubeProxyConfig } from '../../src/kube/proxy-config';
import { KubernetesSource, labelSelector } from '../../src/kube/source';
import type { EndpointSlice, Node, Service } from '../../src/kube/types';
import { serviceKeyId, type ServiceKey } from '../../src/ipvs/model';
import { FakeApiserver } from './kube-fake-apiserver';

jest.setTimeout(20_000);

const SVC = '/api/v1/services';
const EPS = '/apis/discovery.k8s.io/v1/endpointslices';
const NODES = '/api/v1/nodes';

let api: FakeApiserver;
const clients: ApiClient[] = [];
const client = (): ApiClient => {
  const c = new ApiClient({
    server: api.url, ca: '', insecureSkipTlsVerify: false, cert: '', key: '', token: 'tok', tokenFile: '', serverName: '', origin: 'fake apiserver',
  });
  clients.push(c);
  return c;
};
const until = async (what: string, cond: () => boolean, ms = 3000): Promise<void> => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

beforeEach(async () => {
  api = new FakeApiserver();
  await api.start();
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await api.stop();
});

const obj = (name: string, extra: object = {}) => ({ metadata: { name, namespace: 'default' }, ...extra });
const FAST = { backoff: { initialMs: 20, maxMs: 100 }, timeoutSeconds: [60, 60] as [number, number] };

describe('Informer', () => {
  test('lists, then watches from the list version with bookmarks, a timeout and the selector', async () => {
    api.put(SVC, obj('a'));
    const inf = new Informer<{ metadata: { name: string } }>(client(), { name: 'services', path: SVC, query: { labelSelector: labelSelector('') }, ...FAST });
    const events: InformerEvent<unknown>[] = [];
    inf.onEvents((e) => events.push(...e));
    inf.start();
    await inf.whenSynced();
    expect([...inf.store.keys()]).toEqual(['default/a']);
    await until('a watch', () => api.openWatches === 1);
    const watchReq = api.requests.find((r) => r.includes('watch=1'))!;
    expect(watchReq).toContain('allowWatchBookmarks=true');
    expect(watchReq).toContain('timeoutSeconds=60');
    expect(watchReq).toContain('resourceVersion=101');
    expect(decodeURIComponent(watchReq)).toContain('labelSelector=!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless');
    expect(api.requests[0]).toContain('limit=500');
    api.put(SVC, obj('b'));
    api.put(SVC, obj('a', { spec: { x: 1 } }));
    api.delete(SVC, 'b', 'default');
    await until('three events', () => events.length === 4);
    expect(events.map((e) => `${e.type} ${e.key}`)).toEqual(['add default/a', 'add default/b', 'update default/a', 'delete default/b']);
    await inf.stop();
  });

  test('a watch the server ends continues from the last version (no relist); a bookmark moves the version', async () => {
    api.put(SVC, obj('a'));
    const inf = new Informer<{ metadata: { name: string } }>(client(), { name: 'services', path: SVC, ...FAST });
    inf.start();
    await inf.whenSynced();
    await until('watch', () => api.openWatches === 1);
    api.put(SVC, obj('b'));
    await until('b', () => inf.store.has('default/b'));
    api.bookmark(SVC);
    api.compact(); // history before the bookmark is gone: continuing from the bookmark must still work
    api.endWatches();
    await until('a second watch', () => api.openWatches === 1 && inf.stats.watches === 2);
    api.put(SVC, obj('c'));
    await until('c', () => inf.store.has('default/c'));
    expect(inf.stats).toEqual(expect.objectContaining({ lists: 1, relists410: 0, errors: 0 }));
    await inf.stop();
  });

  test('410 Gone: relist, reporting what was deleted and changed meanwhile as one batch', async () => {
    api.put(SVC, obj('a'));
    api.put(SVC, obj('b'));
    const inf = new Informer<{ metadata: { name: string } }>(client(), { name: 'services', path: SVC, ...FAST });
    const batches: string[][] = [];
    inf.onEvents((e) => batches.push(e.map((x) => `${x.type} ${x.key}`)));
    inf.start();
    await inf.whenSynced();
    await until('watch', () => api.openWatches === 1);
    api.dropWatches();
    // While disconnected: changes, then compaction, so the informer's version is too old.
    api.delete(SVC, 'a', 'default');
    api.put(SVC, obj('b', { spec: { x: 2 } }));
    api.put(SVC, obj('c'));
    api.compact();
    await until('relist', () => inf.stats.relists410 === 1 && inf.stats.lists === 2);
    expect(batches.at(-1)!.sort()).toEqual(['add default/c', 'delete default/a', 'update default/b']);
    expect([...inf.store.keys()].sort()).toEqual(['default/b', 'default/c']);
    await inf.stop();
  });

  test('refusals back off and retry; a silent watch is abandoned and reopened', async () => {
    api.refuseNext(500, 3);
    const errors: string[] = [];
    const inf = new Informer<{ metadata: { name: string } }>(client(), {
      name: 'services', path: SVC, ...FAST, idleMs: 200, onError: (m) => errors.push(m),
    });
    const t0 = Date.now();
    inf.start();
    await inf.whenSynced();
    expect(errors).toHaveLength(3);
    expect(errors[0]).toMatch(/^services: GET \/api\/v1\/services: HTTP 500 InternalError: injected; retrying in 0\.0\d s$/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(20 + 40 + 80 - 30); // 20, 40, 80 ms, jittered by +-20 %
    // The fake never ends a watch on its own; with nothing arriving the informer gives up on it and reconnects.
    await until('a reopened watch', () => inf.stats.watches >= 2, 3000);
    expect(inf.lastError).toMatch(/nothing received for 0.2 s/);
    api.put(SVC, obj('late'));
    await until('late', () => inf.store.has('default/late'));
    await inf.stop();
  });
});

const service = (name: string, clusterIP: string, spec: Partial<Service['spec']> = {}): Service => ({
  metadata: { name, namespace: 'default' },
  spec: { type: 'ClusterIP', clusterIP, ports: [{ name: 'http', protocol: 'TCP', port: 80 }], ...spec },
});
const slice = (svc: string, name: string, ips: string[]): EndpointSlice => ({
  metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': svc } },
  addressType: 'IPv4',
  endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true }, nodeName: 'node-b' })),
  ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
});
const node = (zone: string): Node => ({ metadata: { name: 'node-a', labels: { 'topology.kubernetes.io/zone': zone } } });

function source(over: Partial<ConstructorParameters<typeof KubernetesSource>[0]> = {}) {
  const logs: string[] = [];
  const log = { error: (m: string) => logs.push(`error ${m}`), warning: (m: string) => logs.push(`warning ${m}`), info: (m: string) => logs.push(`info ${m}`), debug: () => undefined };
  const src = new KubernetesSource({
    proxy: defaultKubeProxyConfig(), nodeName: 'node-a', serviceProxyName: '', families: ['inet'], client: client(),
    localAddresses: async () => [{ address: '192.168.1.10', interface: 'eth0' }], log, syncWaitMs: 2000, ...FAST, ...over,
  });
  const changes: (string[] | 'all')[] = [];
  src.subscribe((keys?: readonly ServiceKey[]) => changes.push(keys ? keys.map(serviceKeyId).sort() : 'all'));
  return { src, changes, logs };
}

describe('KubernetesSource', () => {
  test('the first complete view, then only the virtual services an EndpointSlice change touches', async () => {
    api.put(SVC, service('web', '10.96.0.10', { type: 'NodePort', ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }] }));
    api.put(SVC, service('db', '10.96.0.20'));
    api.put(EPS, slice('web', 'web-1', ['10.244.1.5']));
    api.put(NODES, node('z1'));
    const { src, changes } = source();
    const t = await src.read();
    expect(src.synced).toBe(true);
    expect([...t.services.keys()].sort()).toEqual(['tcp 10.96.0.10:80', 'tcp 10.96.0.20:80', 'tcp 192.168.1.10:30080']);
    expect(t.services.get('tcp 10.96.0.10:80')!.destinations.map((d) => d.address)).toEqual(['10.244.1.5']);
    expect(src.dummyAddresses()).toEqual(['10.96.0.10', '10.96.0.20']);
    changes.length = 0;
    api.put(EPS, slice('db', 'db-1', ['10.244.2.7']));
    await until('db change', () => changes.length > 0);
    expect(changes).toEqual([['tcp 10.96.0.20:80']]);
    expect(src.current().services.get('tcp 10.96.0.20:80')!.destinations.map((d) => d.address)).toEqual(['10.244.2.7']);
    api.put(EPS, slice('web', 'web-1', ['10.244.1.5', '10.244.1.6']));
    await until('web change', () => changes.length > 1);
    expect(changes[1]).toEqual(['tcp 10.96.0.10:80', 'tcp 192.168.1.10:30080']);
    api.delete(SVC, 'db', 'default');
    await until('db gone', () => changes.length > 2);
    expect(changes[2]).toEqual(['tcp 10.96.0.20:80']);
    expect(src.current().services.has('tcp 10.96.0.20:80')).toBe(false);
    // A change that changes no virtual service reports nothing.
    api.put(SVC, { ...service('web', '10.96.0.10', { type: 'NodePort', ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }] }), metadata: { name: 'web', namespace: 'default', annotations: { a: 'b' } } });
    api.put(EPS, slice('db', 'db-1', ['10.244.2.8'])); // db is gone: its slice changes nothing either
    api.put(SVC, service('last', '10.96.0.30'));
    await until('last', () => changes.length > 3);
    expect(changes[3]).toEqual(['tcp 10.96.0.30:80']);
    src.close();
  });

  test('no complete view yet: names nothing and keeps every kernel service; asks for a full sync once it has one', async () => {
    api.refuseNext(503, 1000);
    const { src, changes, logs } = source({ syncWaitMs: 100 });
    const t = await src.read();
    expect(t.services.size).toBe(0);
    expect(src.keeps({ kind: 'addr', family: 'inet', protocol: 'tcp', address: '10.96.0.99', port: 80 })).toBe(true);
    expect(logs.some((l) => l.startsWith('warning kubernetes: no complete view from fake apiserver yet (Services: GET /api/v1/services: HTTP 503'))).toBe(true);
    api.refuseNext(503, 0);
    api.put(SVC, service('web', '10.96.0.10'));
    await until('full sync request', () => changes.includes('all'), 5000);
    expect([...src.current().services.keys()]).toEqual(['tcp 10.96.0.10:80']);
    expect(src.keeps({ kind: 'addr', family: 'inet', protocol: 'tcp', address: '10.96.0.99', port: 80 })).toBe(false);
    src.close();
  });

  test('a Node zone change recomputes the Services with topology hints', async () => {
    api.put(SVC, service('web', '10.96.0.10'));
    api.put(EPS, {
      ...slice('web', 'web-1', []),
      endpoints: [
        { addresses: ['10.244.1.5'], conditions: { ready: true }, hints: { forZones: [{ name: 'z1' }] } },
        { addresses: ['10.244.2.5'], conditions: { ready: true }, hints: { forZones: [{ name: 'z2' }] } },
      ],
    });
    api.put(NODES, node('z1'));
    const { src, changes } = source();
    await src.read();
    expect(src.current().services.get('tcp 10.96.0.10:80')!.destinations.map((d) => d.address)).toEqual(['10.244.1.5']);
    api.put(NODES, node('z2'));
    await until('zone change', () => changes.length > 0);
    expect(changes[0]).toEqual(['tcp 10.96.0.10:80']);
    expect(src.current().services.get('tcp 10.96.0.10:80')!.destinations.map((d) => d.address)).toEqual(['10.244.2.5']);
    src.close();
  });

  test('two Services claiming one virtual service: the first by name has it, the other takes over when it goes', async () => {
    api.put(SVC, service('b', '10.96.0.11', { externalIPs: ['203.0.113.7'] }));
    api.put(SVC, service('a', '10.96.0.10', { externalIPs: ['203.0.113.7'] }));
    api.put(EPS, slice('a', 'a-1', ['10.244.1.1']));
    api.put(EPS, slice('b', 'b-1', ['10.244.1.2']));
    const { src, changes, logs } = source();
    await src.read();
    expect(src.current().services.get('tcp 203.0.113.7:80')!.destinations.map((d) => d.address)).toEqual(['10.244.1.1']);
    expect(logs.some((l) => l.includes('virtual service tcp 203.0.113.7:80 is claimed by Services default/a, default/b; default/a has it'))).toBe(true);
    api.delete(SVC, 'a', 'default');
    await until('takeover', () => changes.length > 0);
    expect(changes[0]).toEqual(['tcp 10.96.0.10:80', 'tcp 203.0.113.7:80']);
    expect(src.current().services.get('tcp 203.0.113.7:80')!.destinations.map((d) => d.address)).toEqual(['10.244.1.2']);
    src.close();
  });
});

describe('graceful termination', () => {
  const weights = (src: KubernetesSource, id: string) =>
    src.current().services.get(id)?.destinations.map((d) => `${d.address}=${d.weight}`).sort();

  test('a removed TCP destination drains at weight 0 until its connections end; one that comes back gets weight 1', async () => {
    api.put(SVC, service('web', '10.96.0.10'));
    api.put(EPS, slice('web', 'web-1', ['10.244.1.5', '10.244.1.6', '10.244.1.7']));
    const conns = new Map([['10.244.1.6:8080', 3], ['10.244.1.7:8080', 1]]);
    const asked: string[] = [];
    const { src, changes } = source({
      drain: { maxSeconds: 60, checkMs: 30, connections: async (k) => (asked.push(serviceKeyId(k)), conns) },
    });
    await src.read();
    api.put(EPS, slice('web', 'web-1', ['10.244.1.5']));
    await until('the change', () => changes.length > 0);
    expect(weights(src, 'tcp 10.96.0.10:80')).toEqual(['10.244.1.5=1', '10.244.1.6=0', '10.244.1.7=0']);
    await until('a drain check', () => asked.length >= 2);
    expect(weights(src, 'tcp 10.96.0.10:80')).toEqual(['10.244.1.5=1', '10.244.1.6=0', '10.244.1.7=0']);
    conns.set('10.244.1.6:8080', 0);
    await until('6 gone', () => weights(src, 'tcp 10.96.0.10:80')!.length === 2);
    expect(weights(src, 'tcp 10.96.0.10:80')).toEqual(['10.244.1.5=1', '10.244.1.7=0']);
    expect(changes.at(-1)).toEqual(['tcp 10.96.0.10:80']);
    api.put(EPS, slice('web', 'web-1', ['10.244.1.5', '10.244.1.7']));
    await until('7 back', () => weights(src, 'tcp 10.96.0.10:80')!.includes('10.244.1.7=1'));
    expect(weights(src, 'tcp 10.96.0.10:80')).toEqual(['10.244.1.5=1', '10.244.1.7=1']);
    src.close();
  });

  test('draining ends after maxSeconds even with connections; UDP destinations go at once', async () => {
    api.put(SVC, service('web', '10.96.0.10', { ports: [{ name: 'http', protocol: 'TCP', port: 80 }, { name: 'dns', protocol: 'UDP', port: 53 }] }));
    const both = (ips: string[]): EndpointSlice => ({ ...slice('web', 'web-1', ips), ports: [{ name: 'http', protocol: 'TCP', port: 8080 }, { name: 'dns', protocol: 'UDP', port: 5353 }] });
    api.put(EPS, both(['10.244.1.5', '10.244.1.6']));
    const { src, logs } = source({ drain: { maxSeconds: 0.2, checkMs: 30, connections: async () => new Map([['10.244.1.6:8080', 5]]) } });
    await src.read();
    api.put(EPS, both(['10.244.1.5']));
    await until('udp change', () => weights(src, 'udp 10.96.0.10:53')!.length === 1);
    expect(weights(src, 'tcp 10.96.0.10:80')).toEqual(['10.244.1.5=1', '10.244.1.6=0']);
    await until('overdue', () => weights(src, 'tcp 10.96.0.10:80')!.length === 1, 3000);
    expect(logs.some((l) => l.includes('tcp 10.96.0.10:80: 10.244.1.6:8080 still had 5 connections after 0.2 s of draining; removed'))).toBe(true);
    src.close();
  });
});

describe('the daemon with the kubernetes source', () => {
  test('rule files and Kubernetes in one table; an EndpointSlice change reads and changes its Service only; a clash names both', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ipvs-bpf-kube-daemon-'));
    const rules = path.join(dir, 'r.rules');
    writeFileSync(rules, '-A -t 10.0.0.1:80 -s rr\n');
    const args = [`--rules=${rules}`, '--mode=ipvs', '--dbus=none', `--config=${path.join(dir, 'c.json')}`];
    writeFileSync(path.join(dir, 'c.json'), '{}');
    const load = () => loadConfig({ args, env: {} });
    const logs: string[] = [];
    const log = Object.fromEntries([...['emerg', 'alert', 'crit', 'error', 'warning', 'notice', 'info', 'debug']
      .map((l) => [l, (m: string) => void logs.push(`${l}: ${m}`)]), ['setLevel', () => undefined]]);

    api.put(SVC, service('web', '10.96.0.10'));
    api.put(SVC, service('db', '10.96.0.20'));
    api.put(EPS, slice('web', 'web-1', ['10.244.1.5']));
    const ipvs = new FakeIpvs();
    ipvs.table.apply({ op: 'add-service', service: plainService('10.200.0.1') }); // in excludeCIDRs: kept
    ipvs.table.apply({ op: 'add-service', service: plainService('10.9.9.9') }); // foreign: removed
    const proxy = { ...defaultKubeProxyConfig() };
    proxy.ipvs = { ...proxy.ipvs, excludeCIDRs: [parseCidr('10.200.0.0/16')!] };
    const kube = new KubernetesSource({
      proxy, nodeName: 'node-a', serviceProxyName: '', families: ['inet'], client: client(), log: { error: () => undefined, warning: () => undefined, info: () => undefined, debug: () => undefined },
      localAddresses: async () => [], ...FAST,
    });
    const d = await Daemon.start(load(), {
      log: log as unknown as Logger, loadConfig: load, ipvs: ipvs as unknown as IpvsClient, dataPath: async () => plainIpvs(''),
      sources: (cfg) => [new RuleFileSource(cfg.rules), kube],
    });
    const ids = () => ipvs.table.services().map((s) => serviceKeyId(s.key)).sort();
    expect(ids()).toEqual(['tcp 10.0.0.1:80', 'tcp 10.200.0.1:80', 'tcp 10.96.0.10:80', 'tcp 10.96.0.20:80']);
    const dumps = ipvs.dumps;
    ipvs.reads = [];
    api.put(EPS, slice('db', 'db-1', ['10.244.2.7', '10.244.2.8']));
    await until('db destinations', () => (ipvs.table.service({ kind: 'addr', family: 'inet', protocol: 'tcp', address: '10.96.0.20', port: 80 })?.destinations.length ?? 0) === 2);
    expect(ipvs.reads).toEqual(['tcp 10.96.0.20:80']);
    expect(ipvs.dumps).toBe(dumps);
    // A Service on the rule files' VIP: refused, named, nothing changed.
    api.put(SVC, service('clash', '10.0.0.1'));
    await until('the refusal', () => logs.some((l) => l.startsWith('error: source changes refused')));
    expect(logs.find((l) => l.startsWith('error: source changes refused'))).toContain(`service tcp 10.0.0.1:80 is named by both rules ${rules} and kubernetes`);
    expect(ids()).toEqual(['tcp 10.0.0.1:80', 'tcp 10.200.0.1:80', 'tcp 10.96.0.10:80', 'tcp 10.96.0.20:80']);
    await d.stop();
  });
});
