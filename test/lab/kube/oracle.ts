/**
 * The kube-proxy oracle: a cluster state (a corpus file) is written to the test apiserver on the host, the
 * lab VM boots as the node, real `kube-proxy --proxy-mode=ipvs` runs there against that apiserver (through a
 * guest forward to 10.0.2.100:6443) until it has synced every IP family, and what it programmed comes back
 * as a ProxyTable. In the same boot an optional `then` script (sourced by oracle-payload.sh after
 * `kube-proxy --cleanup`) can run another proxy on the same node and record its table the same way.
 *
 * A corpus file (JSON; test/fixtures/kube/oracle/cluster.json):
 *   description, nodeName, nodeAddresses [{dev, cidr}] (added in the VM; devs other than eth0 are dummies),
 *   ipvsBefore [ipvsadm -R lines: the node's IPVS state before the proxy starts],
 *   kubeProxyConfiguration (a KubeProxyConfiguration; clientConnection.kubeconfig and hostnameOverride are
 *   filled in), objects [Kubernetes objects, created in order: Namespaces, Nodes, Services, the rest].
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { runInVm, LAB_NET, type LabVmResult } from '../vm';
import type { KubeObject } from './client';
import { VM_APISERVER, type ControlPlane } from './control-plane';
import { parseAddrs, parseIpvsSave, parseTimeouts, type ProxyTable } from './ipvs-table';
import type { KubeTools } from './tools';

export interface KubeCorpus {
  description: string;
  nodeName: string;
  nodeAddresses: { dev: string; cidr: string }[];
  ipvsBefore: string[];
  kubeProxyConfiguration: Record<string, unknown>;
  objects: KubeObject[];
}

function fail(file: string, field: string, why: string): never {
  throw new Error(`${file}: ${field}: ${why}`);
}

/** Reads and checks a corpus file; errors name the file and the field. */
export async function loadCorpus(file: string): Promise<KubeCorpus> {
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
  const c = raw as Partial<KubeCorpus>;
  if (!c || typeof c !== 'object') fail(file, '(top)', 'not an object');
  if (typeof c.description !== 'string') fail(file, 'description', 'want a string');
  if (typeof c.nodeName !== 'string' || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(c.nodeName)) fail(file, 'nodeName', 'want a DNS name');
  if (!Array.isArray(c.nodeAddresses)) fail(file, 'nodeAddresses', 'want a list');
  c.nodeAddresses.forEach((a, i) => {
    if (!a || typeof a.dev !== 'string' || !/^[a-z][a-z0-9]{0,14}$/.test(a.dev)) fail(file, `nodeAddresses[${i}].dev`, 'want an interface name');
    if (typeof a.cidr !== 'string' || !/^[0-9a-f.:]+\/\d{1,3}$/.test(a.cidr)) fail(file, `nodeAddresses[${i}].cidr`, 'want ADDRESS/PREFIX');
  });
  if (!Array.isArray(c.ipvsBefore) || c.ipvsBefore.some((l) => typeof l !== 'string' || !/^-[Aa] /.test(l))) {
    fail(file, 'ipvsBefore', 'want a list of ipvsadm -A/-a lines');
  }
  const kpc = c.kubeProxyConfiguration;
  if (!kpc || typeof kpc !== 'object' || kpc.kind !== 'KubeProxyConfiguration' || kpc.apiVersion !== 'kubeproxy.config.k8s.io/v1alpha1') {
    fail(file, 'kubeProxyConfiguration', 'want a kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration');
  }
  if (!Array.isArray(c.objects)) fail(file, 'objects', 'want a list');
  c.objects.forEach((o, i) => {
    if (!o || typeof o.apiVersion !== 'string' || typeof o.kind !== 'string' || typeof o.metadata?.name !== 'string') {
      fail(file, `objects[${i}]`, 'want apiVersion, kind and metadata.name');
    }
  });
  return c as KubeCorpus;
}

export interface OracleOptions {
  corpus: KubeCorpus;
  tools: KubeTools;
  /** Started, and holding nothing of another corpus. */
  controlPlane: ControlPlane;
  /** A bash file sourced in the VM after kube-proxy's table is recorded and cleaned up (see oracle-payload.sh). */
  thenScript?: string;
  /** Exported in the VM too (for thenScript). */
  env?: Record<string, string>;
  /** IP families kube-proxy must have synced (default 2: dual stack). */
  families?: 1 | 2;
  timeoutMs?: number;
  onConsole?: (chunk: string) => void;
}

export interface OracleRun {
  /** kube-proxy's table. */
  kubeProxy: ProxyTable;
  /** The VM's $LAB_OUT on the host: the raw files (oracle-payload.sh lists them). */
  outDir: string;
  vm: LabVmResult;
  /** Seconds from kube-proxy's start to its complete table, and of the whole payload (in the VM). */
  timing: { kubeProxySyncS?: number; payloadS?: number };
  /** Reads NAME.ipvs / NAME.addrs / NAME.timeouts written by record_tables NAME (e.g. a thenScript's). */
  table(name: string): Promise<ProxyTable>;
}

async function readTable(outDir: string, name: string): Promise<ProxyTable> {
  const read = (ext: string): Promise<string> => fs.readFile(path.join(outDir, `${name}.${ext}`), 'utf8');
  return { addrs: parseAddrs(await read('addrs')), services: parseIpvsSave(await read('ipvs')), timeouts: parseTimeouts(await read('timeouts')) };
}

/** Writes the corpus's objects to the apiserver and runs kube-proxy on them in one lab-VM boot. */
export async function runKubeProxyOracle(opts: OracleOptions): Promise<OracleRun> {
  const { corpus, controlPlane: cp } = opts;
  await cp.client.createAll(corpus.objects);

  const dir = path.join(cp.dir, 'oracle');
  await fs.mkdir(dir, { recursive: true });
  const kpc = {
    ...corpus.kubeProxyConfiguration,
    hostnameOverride: corpus.nodeName,
    clientConnection: { ...(corpus.kubeProxyConfiguration.clientConnection as object | undefined), kubeconfig: cp.vmKubeconfig },
  };
  const files = {
    KUBE_PROXY_CONFIG: path.join(dir, 'kube-proxy-config.json'),
    KUBE_NODE_ADDRS: path.join(dir, 'node-addrs'),
    KUBE_IPVS_BEFORE: path.join(dir, 'ipvs-before'),
  };
  await fs.writeFile(files.KUBE_PROXY_CONFIG, JSON.stringify(kpc, null, 1) + '\n');
  await fs.writeFile(files.KUBE_NODE_ADDRS, corpus.nodeAddresses.map((a) => `${a.dev} ${a.cidr}\n`).join(''));
  await fs.writeFile(files.KUBE_IPVS_BEFORE, corpus.ipvsBefore.map((l) => `${l}\n`).join(''));

  const vm = await runInVm({
    script: 'bash test/lab/kube/oracle-payload.sh',
    guestForwards: [{ guestAddress: VM_APISERVER.address, guestPort: VM_APISERVER.port, hostPort: cp.port }],
    env: {
      ...opts.env, ...files,
      KUBE_PROXY: opts.tools.proxy, KUBE_FAMILIES: String(opts.families ?? 2),
      KUBE_VM_KUBECONFIG: cp.vmKubeconfig, KUBE_NODE_NAME: corpus.nodeName, KUBE_NET_IF: LAB_NET.ifname,
      ...(opts.thenScript ? { KUBE_THEN: opts.thenScript } : {}),
    },
    memoryMb: 2048,
    timeoutMs: opts.timeoutMs ?? 8 * 60 * 1000,
    onConsole: opts.onConsole,
  });
  if (vm.exitCode !== 0) {
    let kpLog = '';
    try {
      kpLog = (await fs.readFile(path.join(vm.outDir, 'kube-proxy.log'), 'utf8')).trimEnd().split('\n').slice(-25).join('\n');
    } catch {
      // no log: it did not start
    }
    throw new Error(`kube-proxy oracle: the VM payload failed (exit ${vm.exitCode}${vm.error ? `: ${vm.error}` : ''}); ` +
      `console ends:\n${vm.console.trimEnd().split('\n').slice(-30).join('\n')}${kpLog ? `\nkube-proxy.log ends:\n${kpLog}` : ''}`);
  }
  const timingText = await fs.readFile(path.join(vm.outDir, 'timing'), 'utf8').catch(() => '');
  const num = (k: string): number | undefined => {
    const m = new RegExp(`${k}=([\\d.]+)`).exec(timingText);
    return m ? +m[1] : undefined;
  };
  return {
    kubeProxy: await readTable(vm.outDir, 'kube-proxy'),
    outDir: vm.outDir,
    vm,
    timing: { kubeProxySyncS: num('kube_proxy_sync_s'), payloadS: num('payload_s') },
    table: (name) => readTable(vm.outDir, name),
  };
}
