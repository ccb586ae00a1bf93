/** The metrics module's pure parts: the table's text, the registry with a fixed source, the dump cache, health. */
import { NO_SERVICE_FLAGS, NO_TUNNEL_FLAGS, ZERO_STATS, type DestinationState, type ServiceKey, type ServiceState, type Stats } from '../../src/ipvs/model';
import { ALL_METRICS, BACKEND_LABELS, DATAPATH, HEALTH, SERVICE_LABELS, TABLE } from '../../src/metrics/names';
import { DaemonMetrics, kernelEventCounters, type DataPathReading, type MetricsSource } from '../../src/metrics/registry';
import { SnapshotCache } from '../../src/metrics/snapshot';
import { backendLabels, labelText, prepareTable, renderTableMetric, serviceLabels, tableSamples } from '../../src/metrics/table';
import { loadConfig, RESTART_ONLY } from '../../src/daemon/config';
import { CONTENT_TYPE } from '../../src/metrics/registry';
import { parseListen, serveMetrics } from '../../src/metrics/server';
import { parsePromText, type PromSample } from './prom-text';

const stats = (n: number): Stats => ({ ...ZERO_STATS, conns: BigInt(n), inPkts: BigInt(n * 10), outPkts: BigInt(n * 9), inBytes: BigInt(n * 1000), outBytes: BigInt(n * 900) });

function dest(address: string, port: number, weight: number, active: number, inactive: number, n: number): DestinationState {
  return {
    family: address.includes(':') ? 'inet6' : 'inet', address, port, forward: 'masq', weight, upperThreshold: 0, lowerThreshold: 0,
    tunnelType: 'ipip', tunnelPort: 0, tunnelFlags: { ...NO_TUNNEL_FLAGS }, activeConns: active, inactiveConns: inactive, persistConns: 0, stats: stats(n),
  };
}

function service(key: ServiceKey, dests: DestinationState[], s: Stats): ServiceState {
  return { key, scheduler: 'rr', flags: { ...NO_SERVICE_FLAGS }, persistenceTimeout: 0, netmask: 0xffffffff, pe: '', stats: s, destinations: dests };
}

const BIG = 2n ** 63n + 5n; // beyond float64's exact integers: must print exactly
const TABLE_FIXTURE: ServiceState[] = [
  service({ kind: 'addr', family: 'inet', protocol: 'tcp', address: '10.0.0.1', port: 80 },
    [dest('192.168.1.2', 8080, 1, 3, 1, 5), dest('192.168.1.3', 8080, 0, 0, 2, 7)], { ...stats(12), inBytes: BIG }),
  service({ kind: 'addr', family: 'inet6', protocol: 'udp', address: '2001:db8::1', port: 53 }, [dest('2001:db8::53', 53, 5, 0, 4, 4)], stats(4)),
  service({ kind: 'fwmark', family: 'inet', fwmark: 7 }, [], stats(0)),
];

const text = (name: string): string => renderTableMetric(prepareTable(TABLE_FIXTURE), name)!;

describe('table metrics', () => {
  test('labels follow node_exporter (procfs): proto in capitals, FWM with the mark and no address', () => {
    expect(serviceLabels(TABLE_FIXTURE[0]!.key)).toEqual({ local_address: '10.0.0.1', local_port: '80', proto: 'TCP', local_mark: '', family: 'inet' });
    expect(serviceLabels(TABLE_FIXTURE[2]!.key)).toEqual({ local_address: '', local_port: '0', proto: 'FWM', local_mark: '7', family: 'inet' });
  });

  test('per service: the kernel counters, 64-bit values exact', () => {
    expect(text(TABLE.inBytes.name).split('\n')).toEqual([
      '# HELP ipvs_bpf_incoming_bytes_total Bytes the virtual service received.',
      '# TYPE ipvs_bpf_incoming_bytes_total counter',
      `ipvs_bpf_incoming_bytes_total{local_address="10.0.0.1",local_port="80",proto="TCP",local_mark="",family="inet"} ${BIG}`,
      'ipvs_bpf_incoming_bytes_total{local_address="2001:db8::1",local_port="53",proto="UDP",local_mark="",family="inet6"} 4000',
      'ipvs_bpf_incoming_bytes_total{local_address="",local_port="0",proto="FWM",local_mark="7",family="inet"} 0',
    ]);
  });

  test('per real server: active, inactive, weight and its own counters', () => {
    const lines = (name: string): string[] => text(name).split('\n').slice(2);
    expect(lines(TABLE.active.name)).toEqual([
      'ipvs_bpf_backend_connections_active{local_address="10.0.0.1",local_port="80",remote_address="192.168.1.2",remote_port="8080",proto="TCP",local_mark="",family="inet"} 3',
      'ipvs_bpf_backend_connections_active{local_address="10.0.0.1",local_port="80",remote_address="192.168.1.3",remote_port="8080",proto="TCP",local_mark="",family="inet"} 0',
      'ipvs_bpf_backend_connections_active{local_address="2001:db8::1",local_port="53",remote_address="2001:db8::53",remote_port="53",proto="UDP",local_mark="",family="inet6"} 0',
    ]);
    expect(lines(TABLE.inactive.name).map((l) => l.split(' ')[1])).toEqual(['1', '2', '4']);
    expect(lines(TABLE.weight.name).map((l) => l.split(' ')[1])).toEqual(['1', '0', '5']);
    expect(lines(TABLE.backendOutPackets.name).map((l) => l.split(' ')[1])).toEqual(['45', '63', '36']);
    expect(text(TABLE.services.name).split('\n')[2]).toBe('ipvs_bpf_services 3');
    expect(text(TABLE.backends.name).split('\n')[2]).toBe('ipvs_bpf_backends 3');
  });

  test('the structured samples are the same values as the text', () => {
    for (const d of Object.values(TABLE)) {
      const fromText = parsePromText(text(d.name)).samples.map((s) => ({ labels: s.labels, value: Number(s.value) }));
      expect(tableSamples(TABLE_FIXTURE, d.name)).toEqual(fromText);
    }
    expect(renderTableMetric(prepareTable(TABLE_FIXTURE), 'ipvs_bpf_nothing')).toBeUndefined();
    // the fast label texts are the generic ones, in the labels' order
    const p = prepareTable(TABLE_FIXTURE);
    TABLE_FIXTURE.forEach((svc, i) => {
      expect(p.serviceText[i]).toBe(labelText(serviceLabels(svc.key), SERVICE_LABELS));
      svc.destinations.forEach((d, j) => expect(p.backendText[i]![j]).toBe(labelText(backendLabels(svc.key, d), BACKEND_LABELS)));
    });
  });
});

describe('the dump cache', () => {
  test('concurrent gets share one fetch; kept for maxAge; a failure is not kept', async () => {
    let now = 1000;
    let calls = 0;
    let fail = false;
    const c = new SnapshotCache(async () => {
      calls++;
      await new Promise((r) => setImmediate(r));
      if (fail) throw new Error('dump failed');
      return calls;
    }, 500, () => now);
    expect(await Promise.all([c.get(), c.get(), c.get()])).toEqual([1, 1, 1]);
    now += 499;
    expect(await c.get()).toBe(1);
    now += 1;
    fail = true;
    await expect(Promise.all([c.get(), c.get()])).rejects.toThrow('dump failed');
    expect(calls).toBe(2);
    fail = false;
    expect(await c.get()).toBe(3);
    c.invalidate();
    expect(await c.get()).toBe(4);
  });
});

const BPF_READING: DataPathReading = {
  version: '0.1.0', mode: 'bpf', configuredMode: 'auto',
  counters: { XDP_FWD_HIT: 10n, XDP_MISS: 2n, TC_SNAT_HIT: 0n },
  kernelCounters: { abi: '1', mode: '1', map_id: '17', snat: '10.0.2.1', ports: '20000 40000', fallback: 'nat', conns: '4', entries: '12', inserts: '15', map_full: '2', ports_exhausted: '1', fallbacks: '3' },
  mapEntries: 12n, mapCapacity: 4096, lastReload: { atMs: 1_700_000_001_000, ok: false },
};

function fixedSource(reading: DataPathReading = BPF_READING): MetricsSource & { dumps: number; fail: boolean } {
  const src = {
    dumps: 0,
    fail: false,
    async services(): Promise<ServiceState[]> {
      src.dumps++;
      await new Promise((r) => setImmediate(r));
      if (src.fail) throw new Error('netlink gone');
      return TABLE_FIXTURE;
    },
    dataPath: () => reading,
  };
  return src;
}

const scrape = async (m: DaemonMetrics): Promise<PromSample[]> => parsePromText((await m.render()).join('')).samples;
const value = (samples: PromSample[], name: string, labels: Record<string, string> = {}): string | undefined =>
  samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

describe('the registry', () => {
  test('every metric of names.ts is registered; a scrape is valid text with one HELP and TYPE per metric', async () => {
    const m = new DaemonMetrics({ source: fixedSource(), cacheMs: 1000 });
    for (const d of ALL_METRICS) expect(m.names()).toContain(d.name);
    expect(m.names()).toContain('process_cpu_seconds_total');
    const parsed = parsePromText((await m.render()).join(''));
    for (const d of ALL_METRICS) expect(parsed.types.get(d.name) ?? d.type).toBe(d.type);
    expect(parsed.types.get(TABLE.weight.name)).toBe('gauge');
  });

  test('data path: BPF counters by lower-case name, the kernel\'s event counters without its settings, map occupancy', async () => {
    const s = await scrape(new DaemonMetrics({ source: fixedSource(), cacheMs: 1000, processMetrics: false }));
    expect(value(s, DATAPATH.events.name, { counter: 'xdp_fwd_hit' })).toBe('10');
    expect(value(s, DATAPATH.events.name, { counter: 'tc_snat_hit' })).toBe('0');
    expect(s.filter((x) => x.name === DATAPATH.kernelEvents.name).map((x) => x.labels.counter).sort())
      .toEqual(['fallbacks', 'inserts', 'map_full', 'ports_exhausted']);
    expect(value(s, DATAPATH.kernelEvents.name, { counter: 'map_full' })).toBe('2');
    expect(value(s, DATAPATH.kernelConnections.name)).toBe('4');
    expect(value(s, DATAPATH.mapEntries.name)).toBe('12');
    expect(value(s, DATAPATH.mapCapacity.name)).toBe('4096');
    expect(value(s, DATAPATH.info.name, { mode: 'bpf', configured_mode: 'auto', version: '0.1.0' })).toBe('1');
    expect(value(s, TABLE.weight.name, { remote_address: '2001:db8::53' })).toBe('5');
    expect(kernelEventCounters({ conns: '1', entries: '3', inserts: 'x', deletes: '3' })).toEqual([['deletes', 3n]]);
  });

  test('plain ipvs mode: no data-path samples, the table all the same', async () => {
    const ipvsMode: DataPathReading = { version: '0.1.0', mode: 'ipvs', configuredMode: 'ipvs', counters: {}, kernelCounters: {}, mapEntries: null, mapCapacity: null, lastReload: { atMs: 0, ok: true } };
    const s = await scrape(new DaemonMetrics({ source: fixedSource(ipvsMode), cacheMs: 1000, processMetrics: false }));
    for (const d of [DATAPATH.events, DATAPATH.kernelEvents, DATAPATH.kernelConnections, DATAPATH.mapEntries, DATAPATH.mapCapacity]) {
      expect(s.filter((x) => x.name === d.name)).toEqual([]);
    }
    expect(value(s, TABLE.services.name)).toBe('3');
  });

  test('concurrent scrapes cost one dump; a change invalidates it; a failed dump leaves the rest served', async () => {
    let now = 0;
    const src = fixedSource();
    const m = new DaemonMetrics({ source: src, cacheMs: 5000, processMetrics: false, now: () => now });
    const all = await Promise.all([scrape(m), scrape(m), scrape(m)]);
    expect(src.dumps).toBe(1);
    expect(all[0]).toEqual(all[2]);
    now = 4999;
    await scrape(m);
    expect(src.dumps).toBe(1);
    m.reconciled('set_weight', 0.002, { ops: [] });
    await scrape(m);
    expect(src.dumps).toBe(1); // nothing applied: the dump still holds
    m.reconciled('set_weight', 0.002, { ops: [{ op: 'zero' }] });
    await scrape(m);
    expect(src.dumps).toBe(2);
    now = 20000;
    src.fail = true;
    const errors: unknown[] = [];
    const m2 = new DaemonMetrics({ source: src, cacheMs: 5000, processMetrics: false, now: () => now, onDumpError: (e) => errors.push(e) });
    const s = await scrape(m2);
    expect(errors).toHaveLength(1);
    expect(value(s, DATAPATH.dumpFailures.name)).toBe('1');
    expect(s.filter((x) => x.name === TABLE.weight.name)).toEqual([]);
    expect(value(s, DATAPATH.events.name, { counter: 'xdp_miss' })).toBe('2');
  });

  test('changes: reconcile histograms by trigger, failures, operations by kind, reloads', async () => {
    const m = new DaemonMetrics({ source: fixedSource(), cacheMs: 1000, processMetrics: false });
    m.reconciled('start', 0.2, { ops: [{ op: 'flush' }, { op: 'zero' }, { op: 'zero' }] });
    m.reconciled('reload', 0.03, { ops: [{ op: 'zero' }] });
    m.reconciled('reload', 0.5, { error: new Error('EEXIST') });
    m.reloaded(0.04, true);
    m.reloaded(0.6, false);
    const s = await scrape(m);
    expect(value(s, 'ipvs_bpf_reconcile_duration_seconds_count', { trigger: 'reload' })).toBe('2');
    expect(value(s, 'ipvs_bpf_reconcile_duration_seconds_bucket', { trigger: 'reload', le: '0.05' })).toBe('1');
    expect(value(s, 'ipvs_bpf_reconcile_duration_seconds_count', { trigger: 'start' })).toBe('1');
    expect(value(s, 'ipvs_bpf_reconcile_failures_total', { trigger: 'reload' })).toBe('1');
    expect(value(s, 'ipvs_bpf_reconcile_operations_total', { op: 'zero' })).toBe('3');
    expect(value(s, 'ipvs_bpf_reload_duration_seconds_count')).toBe('2');
    expect(value(s, 'ipvs_bpf_reload_failures_total')).toBe('1');
    expect(value(s, 'ipvs_bpf_last_reload_success')).toBe('0');
    expect(value(s, 'ipvs_bpf_last_reload_timestamp_seconds')).toBe('1700000001');
  });
});

describe('health metrics', () => {
  const svc: ServiceKey = { kind: 'addr', family: 'inet', protocol: 'tcp', address: '10.0.0.1', port: 80 };
  const rs = { address: '192.168.1.2', port: 8080 };
  test('the first verdict sets the state, a change counts one transition, a repeat none; forget drops it', async () => {
    const m = new DaemonMetrics({ source: fixedSource(), cacheMs: 1000, processMetrics: false });
    m.health.transition({ service: svc, server: rs, checker: 'TCP_CHECK', up: true });
    let s = await scrape(m);
    expect(value(s, HEALTH.up.name, { remote_address: '192.168.1.2', checker: 'TCP_CHECK', proto: 'TCP' })).toBe('1');
    expect(s.filter((x) => x.name === HEALTH.transitions.name)).toEqual([]);
    m.health.transition({ service: svc, server: rs, checker: 'TCP_CHECK', up: false });
    m.health.transition({ service: svc, server: rs, checker: 'TCP_CHECK', up: false });
    m.health.transition({ service: svc, server: rs, checker: 'TCP_CHECK', up: true });
    m.health.transition({ service: svc, server: { address: '192.168.1.3', port: 8080 }, checker: 'HTTP_GET', up: false });
    s = await scrape(m);
    expect(value(s, HEALTH.up.name, { remote_address: '192.168.1.2' })).toBe('1');
    expect(value(s, HEALTH.up.name, { remote_address: '192.168.1.3', checker: 'HTTP_GET' })).toBe('0');
    expect(value(s, HEALTH.transitions.name, { remote_address: '192.168.1.2', to: 'down' })).toBe('1');
    expect(value(s, HEALTH.transitions.name, { remote_address: '192.168.1.2', to: 'up' })).toBe('1');
    m.health.forget(svc, rs);
    s = await scrape(m);
    expect(s.filter((x) => x.name.startsWith('ipvs_bpf_healthcheck') && x.labels.remote_address === '192.168.1.2')).toEqual([]);
    expect(value(s, HEALTH.up.name, { remote_address: '192.168.1.3' })).toBe('0');
    m.health.forget(svc);
    s = await scrape(m);
    expect(s.filter((x) => x.name.startsWith('ipvs_bpf_healthcheck'))).toEqual([]);
  });
});

describe('the listener', () => {
  test('metrics.listen: ADDRESS:PORT, IPv6 in brackets; "" is off; a bad one is a configuration error naming the key', () => {
    expect(parseListen('127.0.0.1:9478')).toEqual({ host: '127.0.0.1', port: 9478 });
    expect(parseListen('[::1]:9478')).toEqual({ host: '::1', port: 9478 });
    expect(() => parseListen('::1:9478')).toThrow('must be ADDRESS:PORT');
    expect(() => parseListen('localhost:9478')).toThrow('"localhost" is not an IPv4 address');
    expect(() => parseListen('[10.0.0.1]:80')).toThrow('is not an IPv6 address');
    expect(() => parseListen('0.0.0.0:70000')).toThrow('port 70000 is out of range');
    expect(loadConfig({ env: {}, args: [] }).metrics).toEqual({ listen: '', cacheMs: 2000 });
    expect(loadConfig({ env: { IPVS_BPF_METRICS_LISTEN: '[::1]:9478' }, args: [] }).metrics.listen).toBe('[::1]:9478');
    expect(() => loadConfig({ env: {}, args: ['--metrics-listen=9478'] })).toThrow(/metrics\.listen: must be ADDRESS:PORT/);
    expect(RESTART_ONLY).toContain('metrics.listen');
  });

  test('GET /metrics is the text; HEAD has no body; other paths 404, other methods 405, a failed render 500', async () => {
    let fail = false;
    const errors: unknown[] = [];
    const big = `${'x_total 1\n'.repeat(200_000)}`; // 2 MB: written with backpressure
    const s = await serveMetrics({ render: async () => {
      if (fail) throw new Error('no table');
      return ['# TYPE x_total counter\n', big];
    } }, { host: '127.0.0.1', port: 0 }, { contentType: CONTENT_TYPE, onError: (e) => errors.push(e) });
    try {
      const url = `http://${s.address}`;
      const r = await fetch(`${url}/metrics`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(await r.text()).toBe(`# TYPE x_total counter\n${big}`);
      const h = await fetch(`${url}/metrics`, { method: 'HEAD' });
      expect(h.status).toBe(200);
      expect(await h.text()).toBe('');
      expect((await fetch(`${url}/`)).status).toBe(404);
      expect((await fetch(`${url}/metrics`, { method: 'POST' })).status).toBe(405);
      fail = true;
      const e = await fetch(`${url}/metrics`);
      expect(e.status).toBe(500);
      expect(await e.text()).toBe('no table\n');
      expect(errors).toHaveLength(1);
    } finally {
      await s.close();
    }
  });

  test('a real registry over HTTP: concurrent scrapes, one dump', async () => {
    const src = fixedSource();
    const m = new DaemonMetrics({ source: src, cacheMs: 60_000, processMetrics: false });
    const s = await serveMetrics(m, { host: '127.0.0.1', port: 0 }, { contentType: CONTENT_TYPE });
    try {
      const texts = await Promise.all([1, 2, 3, 4].map(async () => (await fetch(`http://${s.address}/metrics`)).text()));
      expect(src.dumps).toBe(1);
      expect(new Set(texts).size).toBe(1);
      expect(value(parsePromText(texts[0]!).samples, TABLE.backends.name)).toBe('3');
    } finally {
      await s.close();
    }
  });
});
