/**
 * The rule sources a configuration names: the rule files, keepalived configurations (keepalived), and the
 * kubernetes source when kubernetes.enabled or kubernetes.proxyConfig is set. With the kubernetes source on,
 * the default rule path may be absent (a node run from the apiserver alone needs no rule file). At a reload the running kubernetes source is kept
 * (its watches and their state) unless its settings changed.
 *
 * Kubernetes settings: kube-proxy's KubeProxyConfiguration (kubernetes.proxyConfig, else kube-proxy's
 * defaults); the apiserver from kubernetes.kubeconfig, else clientConnection.kubeconfig, else in-cluster;
 * the node name from kubernetes.nodeName, else hostnameOverride, else the host name (lower-cased, as
 * kube-proxy); both IP families when the kernel has IPv6 (kube-proxy's dual stack), else IPv4.
 */
import { existsSync } from 'fs';
import { hostname } from 'os';
import { destinationId, type Family } from '../ipvs/model';
import type { IpvsClient } from '../ipvs/netlink';
import { ApiClient } from '../kube/client';
import { connectionFromKubeconfig, inClusterConnection, type Connection } from '../kube/kubeconfig';
import { readLocalAddresses, syncDummyAddresses } from '../kube/netdev';
import { defaultKubeProxyConfig, readKubeProxyConfig, type KubeProxyConfig } from '../kube/proxy-config';
import { KubernetesSource } from '../kube/source';
import { DUMMY_DEVICE } from '../kube/translate';
import { RuleFileSource } from '../sources/rule-files';
import type { Source } from '../sources/source';
import { DEFAULT_RULES, kubernetesEnabled, type DaemonConfig } from './config';
import { keepalivedSource, type SourceFactory } from './daemon';
import type { Logger } from './log';
import type { HealthReporter } from '../metrics/health';

export interface KubeSettings {
  proxy: KubeProxyConfig;
  conn: Connection;
  nodeName: string;
  serviceProxyName: string;
  families: Family[];
  /** Equal for equal settings (a reload keeps the running source then). */
  signature: string;
}

/** Resolves the kubernetes settings of a configuration. Throws SourceError naming the file and field. */
export function kubeSettings(cfg: DaemonConfig, env: NodeJS.ProcessEnv = process.env): KubeSettings {
  const k = cfg.kubernetes;
  const proxy = k.proxyConfig ? readKubeProxyConfig(k.proxyConfig) : defaultKubeProxyConfig();
  const kubeconfig = k.kubeconfig || proxy.kubeconfig;
  const conn = kubeconfig ? connectionFromKubeconfig(kubeconfig) : inClusterConnection(env);
  const nodeName = k.nodeName || proxy.hostnameOverride || hostname().trim().toLowerCase();
  const families: Family[] = existsSync('/proc/net/if_inet6') ? ['inet', 'inet6'] : ['inet'];
  const meaning = { ...proxy, ignored: [], file: '' };
  const signature = JSON.stringify({ meaning, conn, nodeName, spn: k.serviceProxyName, families, drain: k.maxDrainSeconds }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  return { proxy, conn, nodeName, serviceProxyName: k.serviceProxyName, families, signature };
}

/** The rule files to read: none when the kubernetes source is on and the default rule path does not exist. */
export function ruleFilePaths(cfg: DaemonConfig): string[] {
  const defaultAbsent = cfg.rules.length === 1 && cfg.rules[0] === DEFAULT_RULES && !existsSync(DEFAULT_RULES);
  return kubernetesEnabled(cfg) && defaultAbsent ? [] : cfg.rules;
}

/** The factory the daemon runs with (main.ts): rule files, keepalived configurations, the kubernetes source. */
export function configuredSources(log: Logger, ipvs?: Pick<IpvsClient, 'service'>, health?: HealthReporter): SourceFactory {
  const signatures = new WeakMap<Source, string>();
  return (cfg, running) => {
    const out: Source[] = [new RuleFileSource(ruleFilePaths(cfg))];
    if (cfg.keepalived.length > 0) out.push(keepalivedSource(cfg, running, { log: (level, m) => log[level](m), health }));
    if (!kubernetesEnabled(cfg)) return out;
    const s = kubeSettings(cfg);
    const keep = running.find((r) => signatures.get(r) === s.signature);
    if (keep) {
      out.push(keep);
      return out;
    }
    for (const i of s.proxy.ignored) log.info(`${s.proxy.file}: ${i.field}: ignored: ${i.why}`);
    log.info(`kubernetes: node ${s.nodeName}, ${s.conn.origin}, scheduler ${s.proxy.ipvs.scheduler}, families ${s.families.join(' and ')}`);
    const src = new KubernetesSource({
      proxy: s.proxy,
      nodeName: s.nodeName,
      serviceProxyName: s.serviceProxyName,
      families: s.families,
      client: new ApiClient(s.conn),
      localAddresses: () => readLocalAddresses(),
      applyAddresses: (want) => syncDummyAddresses(DUMMY_DEVICE, want),
      ...(ipvs && cfg.kubernetes.maxDrainSeconds > 0 ? {
        drain: {
          maxSeconds: cfg.kubernetes.maxDrainSeconds,
          connections: async (key) => {
            const svc = await ipvs.service(key, { counters: false });
            return svc && new Map(svc.destinations.map((d) => [destinationId(d), d.activeConns + d.inactiveConns]));
          },
        },
      } : {}),
      log,
    });
    signatures.set(src, s.signature);
    out.push(src);
    return out;
  };
}
