/**
 * The kube-proxy oracle (issue 10): a real kube-apiserver + etcd (built from the pinned Go modules) on host
 * loopback holds a dual-stack cluster state with every Service feature kube-proxy's ipvs mode programs
 * (test/fixtures/kube/oracle/cluster.json); the lab VM boots once as the node and real
 * `kube-proxy --proxy-mode=ipvs` programs it. Its table must equal the checked-in expected file, which that
 * same kube-proxy generated (KUBE_ORACLE_UPDATE=1 rewrites it; review the diff), and the features the corpus
 * names must be visible in it, so a wrong golden file cannot pass unnoticed. In the same boot, after
 * `kube-proxy --cleanup`, ipvs-bpf runs in kubernetes mode on the same node and input
 * (test/lab/kube/ours-payload.sh): its table must equal kube-proxy's, except the differences listed in
 * ON_PURPOSE with their reason.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { startControlPlane, type ControlPlane } from '../lab/kube/control-plane';
import { diffTables, renderTable, stripComments, type ProxyTable } from '../lab/kube/ipvs-table';
import { loadCorpus, runKubeProxyOracle, type KubeCorpus, type OracleRun } from '../lab/kube/oracle';
import { kubeTools, type KubeTools } from '../lab/kube/tools';

// A cold build of the tools takes ~20 min on 2 cores (scripts/test.sh starts it in the background early).
const BUILD_TIMEOUT_MS = 45 * 60 * 1000;
jest.setTimeout(10 * 60 * 1000);

const FIXTURES = path.join(__dirname, '../fixtures/kube/oracle');
const CORPUS = path.join(FIXTURES, 'cluster.json');
const EXPECTED = path.join(FIXTURES, 'cluster.kube-proxy.expected');

/** Differences from kube-proxy's table that ipvs-bpf makes on purpose (diffTables lines), with the reason. */
const ON_PURPOSE: { diff: string; why: string }[] = [];

let tools: KubeTools;
let cp: ControlPlane;
let corpus: KubeCorpus;

beforeAll(async () => {
  corpus = await loadCorpus(CORPUS);
  tools = await kubeTools();
  cp = await startControlPlane({ tools, dir: await fs.mkdtemp('/var/tmp/ipvs-bpf-kube-') });
}, BUILD_TIMEOUT_MS);

afterAll(async () => {
  await cp?.stop({ removeDir: process.env.KUBE_KEEP_DIR !== '1' });
});

/** The -A line and destinations of one virtual server, or undefined. */
function service(t: ProxyTable, key: string): { line: string; dests: string[] } | undefined {
  return t.services.find((s) => s.key === key);
}
function dests(t: ProxyTable, key: string): string[] {
  const s = service(t, key);
  if (!s) throw new Error(`no virtual server ${key} in:\n${renderTable(t)}`);
  return s.dests.map((d) => d.replace(/^.* -r (\S+) .*$/, '$1'));
}

describe('kube-proxy --proxy-mode=ipvs as the oracle', () => {
  it('the control plane is real: kube-apiserver and etcd at the pinned versions, dual-stack Service ranges', async () => {
    const version = await cp.client.request<{ gitVersion: string }>('GET', '/version');
    expect(version.gitVersion).toBe(tools.kubernetesVersion);
    const k = await cp.client.request<{ spec: { clusterIP: string } }>('GET', '/api/v1/namespaces/default/services/kubernetes');
    expect(k.spec.clusterIP).toBe('10.96.0.1');
  });

  let run: OracleRun;
  it('records kube-proxy\'s table for the corpus in one VM boot, equal to the checked-in expected file', async () => {
    const started = Date.now();
    run = await runKubeProxyOracle({ corpus, tools, controlPlane: cp, thenScript: path.join(__dirname, '../lab/kube/ours-payload.sh') });
    const text = renderTable(run.kubeProxy);
    const header = `# kube-proxy ${tools.kubernetesVersion} --proxy-mode=ipvs on ${path.basename(CORPUS)} (test/integration/kube-oracle.test.ts;\n` +
      '# KUBE_ORACLE_UPDATE=1 rewrites this file from the real kube-proxy: review the diff)\n';
    if (process.env.KUBE_ORACLE_UPDATE === '1') await fs.writeFile(EXPECTED, header + text);
    console.log(`kube-oracle: VM ${run.vm.durationMs} ms wall (boot to payload ${run.vm.timing?.bootToPayloadMs} ms), ` +
      `kube-proxy to a complete table ${run.timing.kubeProxySyncS} s, test ${Date.now() - started} ms; raw files in ${run.outDir}`);
    expect(text).toBe(stripComments(await fs.readFile(EXPECTED, 'utf8')));
  });

  it('the table shows the corpus\'s features (a check on the expected file itself)', () => {
    const t = run.kubeProxy;
    // kubernetes Service -> the VM's way to the apiserver; ClusterIPs bound to kube-ipvs0.
    expect(dests(t, '-t 10.96.0.1:443')).toEqual(['10.0.2.100:6443']);
    expect(t.addrs).toEqual(expect.arrayContaining(['10.96.0.1/32', '10.96.10.1/32', 'fd00:10:96::15/128']));
    // ready and unknown-ready endpoints, not the not-ready one; each port, UDP too
    expect(dests(t, '-t 10.96.10.1:80')).toEqual(['10.244.1.10:8080', '10.244.2.10:8080', '10.244.2.11:8080']);
    expect(dests(t, '-u 10.96.10.1:53')).toEqual(['10.244.1.10:5353', '10.244.2.10:5353', '10.244.2.11:5353']);
    // NodePort on every node address, both families for the dual-stack Service
    for (const a of ['10.0.2.15', '192.168.100.15']) expect(dests(t, `-t ${a}:30080`)).toHaveLength(2);
    for (const a of ['[fd00:10:0:2::15]', '[fd00:100::15]']) expect(dests(t, `-t ${a}:30015`)).toEqual(['[fd00:10:244:1::150]:8080', '[fd00:10:244:2::150]:8080']);
    // externalIPs: a foreign one is bound, a node address is not
    expect(service(t, '-t 192.168.100.50:8443')).toBeDefined();
    expect(service(t, '-t 10.0.2.15:8443')).toBeDefined();
    expect(t.addrs).toContain('192.168.100.50/32');
    expect(t.addrs).not.toContain('10.0.2.15/32');
    // LB ingress: VIP mode served, ipMode Proxy skipped; ETP Local external VSs only local endpoints
    expect(service(t, '-t 203.0.113.10:443')).toBeDefined();
    expect(service(t, '-t 203.0.113.11:443')).toBeUndefined();
    expect(dests(t, '-t 203.0.113.20:80')).toEqual(['10.244.1.50:8080']);
    expect(dests(t, '-t 10.0.2.15:30081')).toEqual(['10.244.1.50:8080']);
    expect(dests(t, '-t 10.96.10.5:80')).toHaveLength(3);
    // session affinity: persistence with the Service's timeout
    expect(service(t, '-t 10.96.10.8:80')?.line).toMatch(/ -p 600\b/);
    expect(service(t, '-t 10.96.10.9:80')?.line).toMatch(/ -p 10800\b/);
    // ITP Local; terminating fallback; topology hints
    expect(dests(t, '-t 10.96.10.10:80')).toEqual(['10.244.1.100:8080']);
    expect(dests(t, '-t 10.96.10.13:80')).toEqual(['10.244.2.130:8080', '10.244.2.131:8080']);
    expect(dests(t, '-t 10.96.10.14:80')).toEqual(['10.244.2.140:8080']);
    expect(dests(t, '-t 10.96.10.17:80')).toEqual(['10.244.1.170:8080', '10.244.2.170:8080']);
    expect(dests(t, '-t 10.96.10.18:80')).toHaveLength(2);
    // not kube-proxy's: headless, another proxy's; excludeCIDRs keeps a foreign VS, others are removed
    expect(service(t, '-t 10.96.10.20:80')).toBeUndefined();
    expect(t.services.some((s) => s.dests.some((d) => d.includes('10.244.2.190')))).toBe(false);
    expect(service(t, '-t 10.99.0.5:80')).toBeDefined();
    expect(service(t, '-t 10.96.200.200:80')).toBeUndefined();
    // the KubeProxyConfiguration's IPVS timeouts
    expect(t.timeouts).toBe('900 60 120');
  });

  it('ipvs-bpf in kubernetes mode programs the same table on the same node and input', async () => {
    const failed = await fs.readFile(path.join(run.outDir, 'ours.error'), 'utf8').catch(() => undefined);
    if (failed !== undefined) {
      const log = await fs.readFile(path.join(run.outDir, 'ours.log'), 'utf8').catch(() => '(no log)');
      throw new Error(`${failed.trim()}; ours.log ends:\n${log.trimEnd().split('\n').slice(-30).join('\n')}`);
    }
    const ours = await run.table('ours');
    const timing = await fs.readFile(path.join(run.outDir, 'timing-ours'), 'utf8');
    console.log(`kube-oracle: ipvs-bpf in sync: ${timing.trim()}; kube-proxy ${run.timing.kubeProxySyncS} s`);
    const allowed = new Set(ON_PURPOSE.map((d) => d.diff));
    expect(diffTables(run.kubeProxy, ours).filter((d) => !allowed.has(d))).toEqual([]);
  });
});
