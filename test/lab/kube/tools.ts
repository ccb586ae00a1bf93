/**
 * The Go-built Kubernetes test tools (scripts/kube-tools.sh): kube-apiserver, kube-proxy and etcd from the
 * module pins under test/kube-tools/, cached under /var/cache/ipvs-bpf/kube. The first call on a machine
 * builds them (about 20 minutes on 2 cores); scripts/test.sh starts that build in the background early and
 * a call here waits for it (the script's flock).
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { checkoutRoot } from '../vm';

export interface KubeTools {
  dir: string;
  apiserver: string;
  proxy: string;
  etcd: string;
  kubernetesVersion: string;
  etcdVersion: string;
}

/** Builds (once) or finds the tools; rejects with the script's message (which names the build log). */
export function kubeTools(): Promise<KubeTools> {
  const script = path.join(checkoutRoot(), 'scripts/kube-tools.sh');
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) {
        reject(new Error(`kube-tools.sh failed (exit ${code}): ${err.trim()}`));
        return;
      }
      const v = Object.fromEntries(out.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      const need = (k: string): string => {
        if (!v[k]) throw new Error(`kube-tools.sh printed no ${k}`);
        return v[k];
      };
      try {
        resolve({
          dir: need('KUBE_TOOLS_DIR'), apiserver: need('KUBE_APISERVER'), proxy: need('KUBE_PROXY'), etcd: need('ETCD'),
          kubernetesVersion: need('KUBERNETES_VERSION'), etcdVersion: need('ETCD_VERSION'),
        });
      } catch (e) {
        reject(e);
      }
    });
  });
}
