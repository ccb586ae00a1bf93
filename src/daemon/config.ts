/**
 * The daemon's configuration: one convict schema (docs, defaults, formats, environment variables and
 * flags), read from a JSON file, IPVS_BPF_* variables and command-line flags, in rising precedence.
 * Unknown keys in the file and unknown flags are errors, so a typo is never silently ignored; a bad value
 * is reported with its path and the rule it breaks ("mode: must be one of ...: value was \"x\"").
 */
import convict from 'convict';
import { existsSync, readFileSync } from 'fs';
import * as net from 'net';
import { parseListen } from '../metrics/server';

export const DEFAULT_CONFIG_FILE = '/etc/ipvs-bpf/config.json';
export const DEFAULT_RULES = '/etc/ipvs-bpf/rules';

export const MODES = ['auto', 'bpf', 'ipvs'] as const;
export type Mode = (typeof MODES)[number];

/** Syslog priorities by name, lowest number = most severe (as journald and winston's syslog levels use them). */
export const LOG_LEVELS = ['emerg', 'alert', 'crit', 'error', 'warning', 'notice', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface DaemonConfig {
  /** The file this configuration was read from ('' when none was found). */
  config: string;
  rules: string[];
  /** keepalived.conf files whose LVS half is a rule source (with health checks). */
  keepalived: string[];
  mode: Mode;
  interfaces: string[];
  xdp: { enabled: boolean; mode: 'auto' | 'native' | 'generic' };
  pinDir: string;
  mapEntries: number;
  snat: { addresses: string[]; portMin: number; portMax: number; fallback: 'nat' | 'drop' };
  log: { level: LogLevel };
  dbus: { bus: 'system' | 'session' | 'none' };
  statusInterval: number;
  metrics: { listen: string; cacheMs: number };
  kubernetes: KubernetesConfig;
}

/** The kubernetes rule source (src/kube): kube-proxy's ipvs mode from the Kubernetes API. */
export interface KubernetesConfig {
  enabled: boolean;
  /** kubeconfig file; '' = clientConnection.kubeconfig of proxyConfig, else in-cluster. */
  kubeconfig: string;
  /** This node's name; '' = hostnameOverride of proxyConfig, else the host name. */
  nodeName: string;
  /** KubeProxyConfiguration file ('' = none: kube-proxy's defaults). */
  proxyConfig: string;
  /** service.kubernetes.io/service-proxy-name this daemon serves ('' = Services without the label). */
  serviceProxyName: string;
  /** Longest a removed TCP destination drains at weight 0 (0: removed at once). */
  maxDrainSeconds: number;
}

/** Whether the kubernetes source is configured (enabled, or a KubeProxyConfiguration named). */
export function kubernetesEnabled(cfg: Pick<DaemonConfig, 'kubernetes'>): boolean {
  return cfg.kubernetes.enabled || cfg.kubernetes.proxyConfig !== '';
}

const IFNAME = /^[^\s/:]{1,15}$/;

function splitList(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  return v.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

function listOf(check: (item: string) => string | undefined): (v: unknown) => void {
  return (v) => {
    if (!Array.isArray(v)) throw new Error('must be a list (JSON array, or comma-separated in a variable or flag)');
    for (const item of v) {
      if (typeof item !== 'string') throw new Error(`must be a list of strings, has ${JSON.stringify(item)}`);
      const bad = check(item);
      if (bad) throw new Error(`${JSON.stringify(item)} ${bad}`);
    }
  };
}

convict.addFormats({
  'path-list': {
    validate: listOf((p) => (p.startsWith('/') ? undefined : 'is not an absolute path')),
    coerce: splitList,
  },
  'ifname-list': {
    validate: listOf((n) => (IFNAME.test(n) ? undefined : 'is not an interface name (1-15 characters, no blank, / or :)')),
    coerce: splitList,
  },
  'ipv4-list': {
    validate: (v: unknown) => {
      listOf((a) => (net.isIPv4(a) ? undefined : 'is not an IPv4 address'))(v);
      if ((v as string[]).length > 16) throw new Error('has more than 16 addresses (the kernel takes at most 16)');
    },
    coerce: splitList,
  },
  'optional-absolute-path': {
    validate: (v: unknown) => {
      if (typeof v !== 'string' || (v !== '' && !v.startsWith('/'))) throw new Error('must be an absolute path (or empty)');
    },
  },
  // RFC 1123 subdomain, as Node names are.
  'node-name': {
    validate: (v: unknown) => {
      if (typeof v !== 'string' || (v !== '' && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(v)) || v.length > 253) {
        throw new Error('must be a Node name (lower-case letters, digits, - and ., at most 253 characters) or empty');
      }
    },
  },
  'label-value': {
    validate: (v: unknown) => {
      if (typeof v !== 'string' || (v !== '' && !/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(v))) {
        throw new Error('must be a label value (at most 63 letters, digits, -, _ and ., starting and ending alphanumeric) or empty');
      }
    },
  },
  'absolute-path': {
    validate: (v: unknown) => {
      if (typeof v !== 'string' || !v.startsWith('/')) throw new Error('must be an absolute path');
    },
  },
  'listen-address': {
    validate: (v: unknown) => {
      if (typeof v !== 'string') throw new Error('must be a string');
      if (v !== '') parseListen(v);
    },
  },
  'positive-int': {
    validate: (v: unknown) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new Error('must be a positive integer');
    },
    coerce: (v: unknown) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v),
  },
});

/** The schema; exported for --help. Every leaf has doc, default, and (where it makes sense) env and arg. */
export const SCHEMA = {
  config: {
    doc: 'The configuration file (JSON). A missing file is an error only when named by this flag or variable.',
    format: 'absolute-path',
    default: DEFAULT_CONFIG_FILE,
    env: 'IPVS_BPF_CONFIG',
    arg: 'config',
  },
  rules: {
    doc: 'ipvsadm rule files (ipvsadm-save / -R syntax) describing the whole IPVS table, applied in order; '
      + 'a directory stands for its *.rules files in name order',
    format: 'path-list',
    default: [DEFAULT_RULES],
    env: 'IPVS_BPF_RULES',
    arg: 'rules',
  },
  keepalived: {
    doc: 'keepalived.conf files (keepalived 2.2 syntax, with their includes) whose virtual_server blocks are a rule '
      + 'source beside the rule files, health checks included; VRRP blocks are ignored (see docs/keepalived.md)',
    format: 'path-list',
    default: [],
    env: 'IPVS_BPF_KEEPALIVED',
    arg: 'keepalived',
  },
  mode: {
    doc: 'bpf: IPVS plus the BPF data path (needs the patched IPVS); ipvs: plain IPVS; '
      + 'auto: bpf where the kernel has the patch, else ipvs (the status says why)',
    format: [...MODES],
    default: 'auto',
    env: 'IPVS_BPF_MODE',
    arg: 'mode',
  },
  interfaces: {
    doc: 'Interfaces that get the data path (tc SNAT/reply programs and the XDP fast path) in bpf mode',
    format: 'ifname-list',
    default: [],
    env: 'IPVS_BPF_INTERFACES',
    arg: 'interfaces',
  },
  xdp: {
    enabled: {
      doc: 'Attach the XDP fast path to the interfaces (tc programs are attached either way)',
      format: Boolean,
      default: true,
      env: 'IPVS_BPF_XDP',
      arg: 'xdp',
    },
    mode: {
      doc: 'XDP attach mode: native (driver), generic (skb), or auto (native, else generic)',
      format: ['auto', 'native', 'generic'],
      default: 'auto',
      env: 'IPVS_BPF_XDP_MODE',
      arg: 'xdp-mode',
    },
  },
  pinDir: {
    doc: 'bpffs directory where the maps and programs are pinned (what makes restarts hitless)',
    format: 'absolute-path',
    default: '/sys/fs/bpf/ipvs-bpf',
    env: 'IPVS_BPF_PIN_DIR',
    arg: 'pin-dir',
  },
  mapEntries: {
    doc: 'Capacity of the conntrack map in entries (three per connection); fixed once the map is pinned',
    format: 'positive-int',
    default: 1 << 20,
    env: 'IPVS_BPF_MAP_ENTRIES',
    arg: 'map-entries',
  },
  snat: {
    addresses: {
      doc: 'Local IPv4 addresses the patched IPVS uses as SNAT sources towards real servers (1-16)',
      format: 'ipv4-list',
      default: [],
      env: 'IPVS_BPF_SNAT_ADDRESSES',
      arg: 'snat-addresses',
    },
    portMin: { doc: 'Lowest SNAT source port', format: 'port', default: 1024, env: 'IPVS_BPF_SNAT_PORT_MIN', arg: 'snat-port-min' },
    portMax: { doc: 'Highest SNAT source port', format: 'port', default: 65535, env: 'IPVS_BPF_SNAT_PORT_MAX', arg: 'snat-port-max' },
    fallback: {
      doc: 'What a connection gets when its map entries cannot be written: nat (plain IPVS NAT) or drop',
      format: ['nat', 'drop'],
      default: 'nat',
      env: 'IPVS_BPF_SNAT_FALLBACK',
      arg: 'snat-fallback',
    },
  },
  log: {
    level: {
      doc: 'Least severe message logged (syslog names); changeable at run time over D-Bus',
      format: [...LOG_LEVELS],
      default: 'info',
      env: 'IPVS_BPF_LOG_LEVEL',
      arg: 'log-level',
    },
  },
  dbus: {
    bus: {
      doc: 'Where the D-Bus API is offered: system, session (tests), or none',
      format: ['system', 'session', 'none'],
      default: 'system',
      env: 'IPVS_BPF_DBUS',
      arg: 'dbus',
    },
  },
  statusInterval: {
    doc: 'Seconds between refreshes of the counters the D-Bus properties show',
    format: 'positive-int',
    default: 5,
    env: 'IPVS_BPF_STATUS_INTERVAL',
    arg: 'status-interval',
  },
  kubernetes: {
    enabled: {
      doc: "Also take IPVS services from the Kubernetes API as kube-proxy's ipvs mode builds them (Services, "
        + 'EndpointSlices, this Node); on as well when kubernetes.proxyConfig is set',
      format: Boolean,
      default: false,
      env: 'IPVS_BPF_KUBERNETES',
      arg: 'kubernetes',
    },
    kubeconfig: {
      doc: 'kubeconfig file for the apiserver; empty: clientConnection.kubeconfig of kubernetes.proxyConfig, else '
        + 'in-cluster (the pod service account and $KUBERNETES_SERVICE_HOST/PORT)',
      format: 'optional-absolute-path',
      default: '',
      env: 'IPVS_BPF_KUBECONFIG',
      arg: 'kubeconfig',
    },
    nodeName: {
      doc: "This node's Node name; empty: hostnameOverride of kubernetes.proxyConfig, else the host name (lower-cased)",
      format: 'node-name',
      default: '',
      env: 'IPVS_BPF_NODE_NAME',
      arg: 'node-name',
    },
    proxyConfig: {
      doc: "kube-proxy's configuration file (KubeProxyConfiguration kubeproxy.config.k8s.io/v1alpha1, YAML or JSON), "
        + "what kube-proxy's --config reads; empty: kube-proxy's defaults",
      format: 'optional-absolute-path',
      default: '',
      env: 'IPVS_BPF_KUBE_PROXY_CONFIG',
      arg: 'kube-proxy-config',
    },
    serviceProxyName: {
      doc: 'Serve only the Services labelled service.kubernetes.io/service-proxy-name with this value; empty: the '
        + 'Services without that label (as kube-proxy)',
      format: 'label-value',
      default: '',
      env: 'IPVS_BPF_SERVICE_PROXY_NAME',
      arg: 'service-proxy-name',
    },
    maxDrainSeconds: {
      doc: 'A TCP destination whose endpoint went away stays at weight 0 until its connections end, as kube-proxy does, '
        + 'but at most this many seconds (kube-proxy has no bound); 0 removes it at once',
      format: 'nat',
      default: 600,
      env: 'IPVS_BPF_MAX_DRAIN_SECONDS',
      arg: 'max-drain-seconds',
    },
  },
  metrics: {
    listen: {
      doc: 'ADDRESS:PORT where Prometheus metrics are served at /metrics (e.g. 127.0.0.1:9478, [::1]:9478); '
        + '"" (the default): no metrics listener',
      format: 'listen-address',
      default: '',
      env: 'IPVS_BPF_METRICS_LISTEN',
      arg: 'metrics-listen',
    },
    cacheMs: {
      doc: 'Milliseconds one IPVS table dump serves scrapes (scrapes during a dump wait for it): a scrape costs at most one dump',
      format: 'positive-int',
      default: 2000,
      env: 'IPVS_BPF_METRICS_CACHE_MS',
      arg: 'metrics-cache-ms',
    },
  },
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

interface Leaf { doc: string; default: unknown; env?: string; arg?: string; format: unknown }

function isLeaf(v: object): v is Leaf {
  return 'doc' in v && 'default' in v;
}

/** Every schema leaf with its dotted path. */
export function schemaLeaves(node: object = SCHEMA, prefix = ''): { path: string; leaf: Leaf }[] {
  return Object.entries(node).flatMap(([k, v]: [string, object]) => {
    const p = prefix ? `${prefix}.${k}` : k;
    return isLeaf(v) ? [{ path: p, leaf: v }] : schemaLeaves(v, p);
  });
}

/** Flags the daemon takes besides the configuration's own. */
export const ACTION_FLAGS = ['check-config', 'teardown', 'help', 'version'] as const;

/** Splits argv into the daemon's action flags and the configuration flags; unknown flags are errors. */
export function splitArgs(argv: readonly string[]): { actions: Set<string>; configArgs: string[] } {
  const known = new Set(schemaLeaves().flatMap(({ leaf }) => (leaf.arg ? [leaf.arg] : [])));
  const actions = new Set<string>();
  const configArgs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h') {
      actions.add('help');
      continue;
    }
    const m = /^--([a-z][a-z-]*)(=.*)?$/.exec(a);
    if (!m) throw new ConfigError(`unexpected argument ${JSON.stringify(a)} (try --help)`);
    const name = m[1]!;
    if ((ACTION_FLAGS as readonly string[]).includes(name)) {
      if (m[2] !== undefined) throw new ConfigError(`--${name} takes no value`);
      actions.add(name);
      continue;
    }
    if (!known.has(name)) throw new ConfigError(`unknown flag --${name} (try --help)`);
    if (m[2] !== undefined) {
      configArgs.push(a);
      continue;
    }
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new ConfigError(`--${name} needs a value`);
    configArgs.push(`--${name}=${v}`);
    i++;
  }
  return { actions, configArgs };
}

export interface LoadOptions {
  /** Configuration flags (as splitArgs returns them). */
  args?: readonly string[];
  env?: NodeJS.ProcessEnv;
}

/**
 * Defaults, then the file, then IPVS_BPF_* variables and flags; validated strictly. Throws ConfigError
 * whose message names each bad path.
 */
export function loadConfig(opts: LoadOptions = {}): DaemonConfig {
  const env = opts.env ?? process.env;
  const args = [...(opts.args ?? [])];
  let conf: convict.Config<DaemonConfig>;
  try {
    conf = convict<DaemonConfig>(SCHEMA as unknown as convict.Schema<DaemonConfig>, { env, args });
  } catch (e) {
    throw new ConfigError(errorText(e));
  }
  const file = conf.get('config');
  const named = env.IPVS_BPF_CONFIG !== undefined || args.some((a) => a.startsWith('--config='));
  if (existsSync(file)) {
    let data: unknown;
    try {
      data = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ConfigError(`${file}: ${errorText(e)}`);
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new ConfigError(`${file}: must hold a JSON object`);
    if ('config' in data) throw new ConfigError(`${file}: "config" cannot be set in the configuration file itself`);
    try {
      conf.load(data);
    } catch (e) {
      throw new ConfigError(`${file}: ${errorText(e)}`);
    }
  } else if (named) {
    throw new ConfigError(`${file}: no such configuration file`);
  }
  try {
    conf.validate({ allowed: 'strict' });
  } catch (e) {
    throw new ConfigError(`${existsSync(file) ? `${file}: ` : ''}${errorText(e)}`);
  }
  const out = conf.getProperties();
  if (!existsSync(file)) out.config = '';
  if (out.snat.portMin > out.snat.portMax) {
    throw new ConfigError(`snat.portMin: must not exceed snat.portMax: value was ${out.snat.portMin} > ${out.snat.portMax}`);
  }
  return out;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** --help: usage and every setting with its flag, variable, default and doc. */
export function helpText(program: string): string {
  const lines = [
    `Usage: ${program} [--check-config | --teardown] [--config FILE] [--<setting> VALUE ...]`,
    '',
    'The ipvs-bpf daemon: keeps IPVS equal to the rule files, runs the BPF data path, serves D-Bus.',
    '  --check-config   validate the configuration and the rule files, print the result, and exit (0 = valid)',
    '  --teardown       remove the BPF data path a stopped daemon leaves running: bpf_mode 0, map unregistered,',
    '                   programs detached from every interface, pins removed (IPVS rules stay); refused while the',
    '                   daemon runs; BPF-mode connections break',
    '  --help, -h       this text',
    '  --version        print the version',
    '',
    `Settings (file ${DEFAULT_CONFIG_FILE} < IPVS_BPF_* variables < flags; lists are comma-separated in`,
    'variables and flags, JSON arrays in the file):',
  ];
  for (const { path, leaf } of schemaLeaves()) {
    lines.push(`  ${path}${leaf.arg ? `  --${leaf.arg}` : ''}${leaf.env ? `  $${leaf.env}` : ''}`);
    lines.push(`      ${leaf.doc}`);
    if (Array.isArray(leaf.format)) lines.push(`      one of: ${leaf.format.join(', ')}`);
    lines.push(`      default: ${JSON.stringify(leaf.default)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The settings a reload cannot change on a running daemon (they need a restart). */
export const RESTART_ONLY: readonly string[] = ['mode', 'pinDir', 'mapEntries', 'dbus.bus', 'metrics.listen'];
