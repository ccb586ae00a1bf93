/**
 * A real Kubernetes control plane for tests: etcd and kube-apiserver (scripts/kube-tools.sh builds them) on
 * host loopback, token auth (one system:masters token), its own PKI. No controller-manager: tests write
 * EndpointSlices themselves, including the one of the `kubernetes` Service (the apiserver's endpoint
 * reconciler is off, so that Service's endpoint is exactly what the test says: the address the lab VM
 * reaches the apiserver at, 10.0.2.100:6443, through a guest forward).
 *
 * Dual stack: Services get ClusterIPs from 10.96.0.0/16 and fd00:10:96::/112 (the kubernetes Service is
 * 10.96.0.1).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { KubeClient, type ApiTarget } from './client';
import { makePki } from './pki';
import type { KubeTools } from './tools';

/** Where the lab VM reaches the apiserver (LabVmOptions.guestForwards). */
export const VM_APISERVER = { address: '10.0.2.100', port: 6443 } as const;
export const SERVICE_CIDRS = ['10.96.0.0/16', 'fd00:10:96::/112'] as const;

export interface ControlPlane {
  dir: string;
  /** https://127.0.0.1:<port> */
  server: string;
  port: number;
  token: string;
  caPem: string;
  client: KubeClient;
  /** A kubeconfig for host processes (server on loopback). */
  kubeconfig: string;
  /** A kubeconfig for the lab VM (server https://10.0.2.100:6443); the same token and CA. */
  vmKubeconfig: string;
  /** Stops the apiserver, then etcd; keeps dir (logs) unless removeDir. */
  stop(opts?: { removeDir?: boolean }): Promise<void>;
}

export interface ControlPlaneOptions {
  tools: KubeTools;
  /** A fresh directory for data, PKI, kubeconfigs and logs (created). */
  dir: string;
  /** Extra kube-apiserver flags. */
  apiserverArgs?: string[];
  /** How long to wait for /readyz (default 120 s: a first start on a loaded 2-core machine is slow). */
  readyTimeoutMs?: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function kubeconfigYaml(server: string, caPem: string, token: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${Buffer.from(caPem).toString('base64')}`,
    'users:',
    '- name: admin',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: test',
    '  context: {cluster: test, user: admin}',
    'current-context: test',
    '',
  ].join('\n');
}

interface Proc {
  child: ChildProcess;
  exited: Promise<number | null>;
  name: string;
  log: string;
}

function startProcess(name: string, exe: string, args: string[], log: string): Proc {
  const out = createWriteStream(log);
  const child = spawn(exe, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(out, { end: false });
  child.stderr?.pipe(out, { end: false });
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (e) => {
      out.write(`spawn error: ${e.message}\n`);
      resolve(-1);
    });
    child.on('exit', (code) => resolve(code));
  });
  return { child, exited, name, log };
}

async function stopProcess(p: Proc, graceMs = 10_000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const t = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(t);
}

async function tail(file: string, lines = 15): Promise<string> {
  try {
    return (await fs.readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Polls fn until it resolves true, or fails when the process exits or the time is up. */
async function waitFor(what: string, proc: Proc, timeoutMs: number, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void proc.exited.then(() => (exited = true));
  let last = '';
  while (Date.now() < deadline) {
    if (exited) throw new Error(`${proc.name} exited (${proc.child.exitCode ?? proc.child.signalCode}) before ${what}; ${proc.log}:\n${await tail(proc.log)}`);
    try {
      if (await fn()) return;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`${proc.name}: not ${what} after ${timeoutMs} ms${last ? ` (last: ${last})` : ''}; ${proc.log}:\n${await tail(proc.log)}`);
}

const live = new Set<Proc>();
process.on('exit', () => {
  for (const p of live) p.child.kill('SIGKILL');
});

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const dir = opts.dir;
  await fs.mkdir(dir, { recursive: true });
  const readyMs = opts.readyTimeoutMs ?? 120_000;
  const pki = await makePki(path.join(dir, 'pki'), [
    'IP:127.0.0.1', `IP:${VM_APISERVER.address}`, 'IP:10.96.0.1', 'DNS:localhost',
    'DNS:kubernetes', 'DNS:kubernetes.default', 'DNS:kubernetes.default.svc', 'DNS:kubernetes.default.svc.cluster.local',
  ]);
  const caPem = await fs.readFile(pki.caCert, 'utf8');
  const token = randomBytes(24).toString('hex');
  const tokens = path.join(dir, 'tokens.csv');
  await fs.writeFile(tokens, `${token},admin,admin,"system:masters"\n`, { mode: 0o600 });

  const [etcdClient, etcdPeer, port] = [await freePort(), await freePort(), await freePort()];
  const etcd = startProcess('etcd', opts.tools.etcd, [
    '--name', 'test', '--data-dir', path.join(dir, 'etcd'),
    '--listen-client-urls', `http://127.0.0.1:${etcdClient}`, '--advertise-client-urls', `http://127.0.0.1:${etcdClient}`,
    '--listen-peer-urls', `http://127.0.0.1:${etcdPeer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${etcdPeer}`,
    '--initial-cluster', `test=http://127.0.0.1:${etcdPeer}`,
    '--unsafe-no-fsync', '--log-level', 'warn',
  ], path.join(dir, 'etcd.log'));
  live.add(etcd);
  const procs: Proc[] = [etcd];
  const stopAll = async (): Promise<void> => {
    for (const p of [...procs].reverse()) {
      await stopProcess(p);
      live.delete(p);
    }
  };
  try {
    await waitFor('healthy', etcd, readyMs, async () => {
      const res = await fetch(`http://127.0.0.1:${etcdClient}/health`);
      return res.ok && ((await res.json()) as { health?: string }).health === 'true';
    });

    const apiserver = startProcess('kube-apiserver', opts.tools.apiserver, [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1', `--secure-port=${port}`,
      `--advertise-address=${VM_APISERVER.address}`, '--endpoint-reconciler-type=none',
      `--service-cluster-ip-range=${SERVICE_CIDRS.join(',')}`,
      `--token-auth-file=${tokens}`, '--authorization-mode=Node,RBAC',
      `--tls-cert-file=${pki.serverCert}`, `--tls-private-key-file=${pki.serverKey}`,
      `--service-account-issuer=https://kubernetes.default.svc`,
      `--service-account-key-file=${pki.saPublicKey}`, `--service-account-signing-key-file=${pki.saPrivateKey}`,
      `--cert-dir=${path.join(dir, 'pki')}`, '--profiling=false', '--v=1',
      ...(opts.apiserverArgs ?? []),
    ], path.join(dir, 'kube-apiserver.log'));
    live.add(apiserver);
    procs.push(apiserver);
    const target: ApiTarget = { server: `https://127.0.0.1:${port}`, token, ca: caPem };
    const client = new KubeClient(target);
    await waitFor('ready (/readyz)', apiserver, readyMs, async () => (await client.request<string>('GET', '/readyz')) === 'ok');
    // The default namespace and the kubernetes Service come from the apiserver's own controllers, shortly
    // after /readyz.
    await waitFor('serving the kubernetes Service', apiserver, readyMs, async () => {
      await client.request('GET', '/api/v1/namespaces/default/services/kubernetes');
      return true;
    });

    const kubeconfig = path.join(dir, 'kubeconfig');
    const vmKubeconfig = path.join(dir, 'kubeconfig-vm');
    await fs.writeFile(kubeconfig, kubeconfigYaml(target.server, caPem, token), { mode: 0o600 });
    await fs.writeFile(vmKubeconfig, kubeconfigYaml(`https://${VM_APISERVER.address}:${VM_APISERVER.port}`, caPem, token), { mode: 0o600 });
    return {
      dir, server: target.server, port, token, caPem, client, kubeconfig, vmKubeconfig,
      async stop(o) {
        client.close();
        await stopAll();
        if (o?.removeDir) await fs.rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
