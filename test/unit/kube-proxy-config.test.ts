/**
 * KubeProxyConfiguration (--kube-proxy-config): kubeadm's file is accepted as it is, the ipvs-mode fields
 * are read with kube-proxy's defaults, fields without effect are listed, unsupported values and unknown
 * fields are refused naming file, line and field, all at once. Also Go durations and CIDRs.
 */
import * as path from 'path';
import { cidrContains, formatCidr, parseCidr, parseIp } from '../../src/kube/cidr';
import { parseGoDuration } from '../../src/kube/duration';
import { defaultKubeProxyConfig, KubeProxyConfigError, parseKubeProxyConfig, readKubeProxyConfig } from '../../src/kube/proxy-config';

const HEAD = 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n';
const problems = (text: string): string[] => {
  try {
    parseKubeProxyConfig(text, 'kp.yaml');
  } catch (e) {
    if (e instanceof KubeProxyConfigError) return [...e.problems];
    throw e;
  }
  throw new Error('no error');
};

describe('Go durations', () => {
  test.each([
    ['0', 0], ['0s', 0], ['30s', 30], ['1m30s', 90], ['250ms', 0.25], ['1.5h', 5400], ['-2s', -2], ['1h2m3s4ms', 3723.004], ['.5s', 0.5],
  ])('%s = %d s', (t, s) => expect(parseGoDuration(t)).toBeCloseTo(s, 9));
  test.each(['', '30', 's', '1x', '1s2', '--1s', '1.s.'])('%j is not a duration', (t) => expect(parseGoDuration(t)).toBeNull());
});

describe('CIDRs', () => {
  test('parse, contain, format; host bits are cleared as Go does', () => {
    const c = parseCidr('10.244.1.7/16')!;
    expect(formatCidr(c)).toBe('10.244.0.0/16');
    expect(cidrContains(c, parseIp('10.244.200.1')!)).toBe(true);
    expect(cidrContains(c, parseIp('10.245.0.1')!)).toBe(false);
    expect(cidrContains(parseCidr('fd00:10:244::/56')!, parseIp('fd00:10:244:0:ff::1')!)).toBe(true);
    expect(cidrContains(parseCidr('0.0.0.0/0')!, parseIp('::1')!)).toBe(false);
    expect(formatCidr(parseCidr('FD00:0:0::1/128')!)).toBe('fd00::1/128');
    for (const bad of ['10.0.0.0', '10.0.0.0/33', '10.0.0/8', '::/129', '10.0.0.0/08', 'x/8']) expect(parseCidr(bad)).toBeNull();
  });
});

describe('KubeProxyConfiguration', () => {
  test("kubeadm's file is accepted as it is, with kube-proxy's defaults", () => {
    const file = path.join(__dirname, '../fixtures/kube/kubeadm-proxy.yaml');
    const c = readKubeProxyConfig(file);
    expect(c.file).toBe(file);
    expect(c.kubeconfig).toBe('/var/lib/kube-proxy/kubeconfig.conf');
    expect(c.clusterCIDRs.map(formatCidr)).toEqual(['10.244.0.0/16', 'fd00:10:244::/56']);
    expect(c.ipvs).toEqual({ syncPeriod: 30, minSyncPeriod: 0, scheduler: 'rr', excludeCIDRs: [], strictARP: false, tcpTimeout: 0, tcpFinTimeout: 0, udpTimeout: 0 });
    expect(c.healthzBindAddress).toEqual({ host: '0.0.0.0', port: 10256 });
    expect(c.metricsBindAddress).toEqual({ host: '127.0.0.1', port: 10249 });
    expect(c.masqueradeBit).toBe(14);
    expect(c.masqueradeAll).toBe(false);
    expect(c.nodePortAddresses).toEqual({ cidrs: [], primary: false });
    expect(c.ignored).toEqual([]);
  });

  test('the ipvs-mode fields, JSON as well as YAML', () => {
    const c = parseKubeProxyConfig(JSON.stringify({
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1', kind: 'KubeProxyConfiguration', mode: 'ipvs',
      bindAddress: '::', hostnameOverride: ' Node-1 ', healthzBindAddress: '[::]', metricsBindAddress: '0.0.0.0:9999',
      clusterCIDR: 'fd00:10:244::/56', nodePortAddresses: ['192.168.0.0/16', 'primary'],
      iptables: { masqueradeAll: true, masqueradeBit: 3 },
      ipvs: {
        scheduler: 'mh', strictARP: true, excludeCIDRs: ['10.200.0.0/16'], syncPeriod: '1m', minSyncPeriod: '2s',
        tcpTimeout: '900s', tcpFinTimeout: '2m', udpTimeout: '1.9s',
      },
      featureGates: { PreferSameTrafficDistribution: false },
    }), 'kp.json');
    expect(c.hostnameOverride).toBe('node-1');
    expect(c.bindAddress).toBe('::');
    expect(c.healthzBindAddress).toEqual({ host: '::', port: 10256 });
    expect(c.metricsBindAddress).toEqual({ host: '0.0.0.0', port: 9999 });
    expect(c.masqueradeAll).toBe(true);
    expect(c.masqueradeBit).toBe(3);
    expect(c.nodePortAddresses.primary).toBe(true);
    expect(c.nodePortAddresses.cidrs.map(formatCidr)).toEqual(['192.168.0.0/16']);
    expect(c.ipvs).toEqual({
      syncPeriod: 60, minSyncPeriod: 2, scheduler: 'mh', excludeCIDRs: [parseCidr('10.200.0.0/16')], strictARP: true,
      tcpTimeout: 900, tcpFinTimeout: 120, udpTimeout: 1,
    });
    expect(c.featureGates).toEqual({ PreferSameTrafficDistribution: false });
  });

  test('IPv6 bindAddress moves the default healthz and metrics addresses to IPv6', () => {
    const c = parseKubeProxyConfig(`${HEAD}bindAddress: "fd00::1"\n`, 'kp.yaml');
    expect([c.healthzBindAddress, c.metricsBindAddress]).toEqual([{ host: '::', port: 10256 }, { host: '::1', port: 10249 }]);
    expect(defaultKubeProxyConfig().healthzBindAddress).toEqual({ host: '0.0.0.0', port: 10256 });
  });

  test('fields without effect here are accepted and listed with why', () => {
    const c = parseKubeProxyConfig(`${HEAD}conntrack:\n  maxPerCore: 65536\noomScoreAdj: -999\nnftables:\n  masqueradeAll: true\n`, 'kp.yaml');
    expect(c.ignored).toEqual([
      { field: 'conntrack.maxPerCore', why: expect.stringContaining('nf_conntrack') },
      { field: 'oomScoreAdj', why: expect.stringContaining('OOMScoreAdjust') },
      { field: 'nftables.masqueradeAll', why: expect.stringContaining('another proxy mode') },
    ]);
  });

  test('every problem at once, each with file, line and field', () => {
    expect(problems([
      'apiVersion: kubeproxy.config.k8s.io/v1alpha2',
      'kind: KubeProxyConfiguration',
      'mode: nftables',
      'ipvs:',
      '  scheduler: maglev',
      '  excludeCIDRs: [10.0.0.0/8, 10.1.0.0]',
      '  syncPeriod: 10',
      '  minSyncPeriod: 1m',
      '  tcpTimeot: 1s',
      'enableProfiling: true',
      'detectLocalMode: NodeCIDR',
      'clusterCIDR: 10.244.0.0/16,10.245.0.0/16',
      'healthzBindAddress: localhost:10256',
      'nodePortAddresses: [primary, eth0]',
      'iptables: {masqueradeBit: 40, snatNodeInternalIP: true}',
      '',
    ].join('\n'))).toEqual([
      'kp.yaml:line 7: ipvs.syncPeriod: must be a duration text such as "30s" or "1m30s"',
      'kp.yaml:line 9: ipvs.tcpTimeot: unknown field (not in KubeProxyConfiguration kubeproxy.config.k8s.io/v1alpha1)',
      'kp.yaml:line 10: enableProfiling: true is not supported: ipvs-bpf has no /debug/pprof (leave it unset)',
      'kp.yaml:line 15: iptables.snatNodeInternalIP: true is not supported: SNAT to the node InternalIP is not implemented (leave it unset)',
      'kp.yaml:line 1: apiVersion: must be kubeproxy.config.k8s.io/v1alpha1, not "kubeproxy.config.k8s.io/v1alpha2"',
      'kp.yaml:line 3: mode: "nftables": ipvs-bpf takes the place of kube-proxy\'s ipvs mode only (mode: ipvs)',
      'kp.yaml:line 11: detectLocalMode: "NodeCIDR" is not supported: only ClusterCIDR (pod traffic is traffic from clusterCIDR)',
      'kp.yaml:line 13: healthzBindAddress: "localhost:10256" is not IP:port (such as 0.0.0.0:10256 or [::]:10256)',
      'kp.yaml:line 12: clusterCIDR: must be one CIDR, or a dual-stack pair with one IPv4 and one IPv6 CIDR',
      'kp.yaml:line 14: nodePortAddresses[1]: "eth0" is not a CIDR or one of primary, localhost, all',
      'kp.yaml:line 5: ipvs.scheduler: "maglev" is not an IPVS scheduler (one of rr, wrr, lc, wlc, lblc, lblcr, sh, dh, sed, nq, mh, fo, ovf, twos)',
      'kp.yaml:line 8: ipvs.minSyncPeriod: must not exceed ipvs.syncPeriod (30 s)',
      'kp.yaml:line 15: iptables.masqueradeBit: must be within 0-31',
      'kp.yaml:line 6: ipvs.excludeCIDRs[1]: "10.1.0.0" is not a CIDR (such as 10.0.0.0/8 or fd00::/64)',
    ]);
  });

  test('bad YAML and missing files are named with a line', () => {
    expect(problems(`${HEAD}ipvs:\n  scheduler: rr\n  scheduler: wrr\n`)).toEqual([expect.stringMatching(/^kp\.yaml:line 5: Map keys must be unique/)]);
    expect(problems('- a\n- b\n')).toEqual(['kp.yaml: must hold a KubeProxyConfiguration object (apiVersion: kubeproxy.config.k8s.io/v1alpha1)']);
    expect(problems('kind: KubeProxyConfiguration\n')).toEqual(['kp.yaml: apiVersion: must be kubeproxy.config.k8s.io/v1alpha1']);
    expect(() => readKubeProxyConfig('/nonexistent/kp.yaml')).toThrow('/nonexistent/kp.yaml: no such file');
  });
});
