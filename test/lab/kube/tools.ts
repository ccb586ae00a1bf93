/**
 * The Go-built Kubernetes test tools (scripts/kube-tools.sh): kube-apiserver, kube-proxy and etcd from the
 * module pins under test/kube-tools/, cached under /var/cache/ipvs-bpf/kube. The first call on a machine
 * builds them (about 20 minutes on 2 cores); scripts/test.sh starts that build in the background early and
 * a call here waits for it (the script's flock).
 */
import * as path from 'node:path';
import { checkoutRoot, runKeyValueScript } from '../vm';

export interface KubeTools {
  dir: string;
  apiserver: string;
  proxy: string;
  etcd: string;
  kubernetesVersion: string;
  etcdVersion: string;
}

/** Builds (once) or finds the tools; rejects with the script's message (which names the build log). */
export async function kubeTools(): Promise<KubeTools> {
  const v = await runKeyValueScript(path.join(checkoutRoot(), 'scripts/kube-tools.sh'), {}, { what: 'kube-tools.sh' });
  const need = (k: string): string => {
    if (!v[k]) throw new Error(`kube-tools.sh printed no ${k}`);
    return v[k];
  };
  return {
    dir: need('KUBE_TOOLS_DIR'), apiserver: need('KUBE_APISERVER'), proxy: need('KUBE_PROXY'), etcd: need('ETCD'),
    kubernetesVersion: need('KUBERNETES_VERSION'), etcdVersion: need('ETCD_VERSION'),
  };
}
