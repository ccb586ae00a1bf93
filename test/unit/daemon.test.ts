/** The daemon's pure parts: configuration, log formats, rule sets, control-file parsing, the D-Bus value mapping. */
import { mkdtempSync, mkdirSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { ConfigError, helpText, kubernetesEnabled, loadConfig, schemaLeaves, splitArgs } from '../../src/daemon/config';
import { emptyStatus, MANAGER_PROPERTIES } from '../../src/daemon/dbus-api';
import { fromSystemdLevel, toSystemdLevel } from '../../src/daemon/dbus';
import { parseControlState } from '../../src/daemon/kernel-bpf';
import { createLogger, humanLine, journalLine } from '../../src/daemon/log';
import { checkConfig, teardownMain } from '../../src/daemon/main';
import { expandRuleFiles, readRuleSet, ruleSetFromTexts } from '../../src/sources/rule-files';
import { extraOps } from '../../src/sources/source';
import { summarizeOps } from '../../src/daemon/summary';
import type { DaemonStatus } from '../../src/daemon/status';
import { RuleFileError } from '../../src/ipvs/rules';

const dir = mkdtempSync(path.join(tmpdir(), 'ipvs-bpf-daemon-'));
const file = (name: string, text: string): string => {
  const p = path.join(dir, name);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, text);
  return p;
};
const NO_FILE = { IPVS_BPF_CONFIG: path.join(dir, 'none.json') };

describe('configuration', () => {
  test('defaults when there is no file at the default path', () => {
    const c = loadConfig({ env: {}, args: [] });
    expect(c.mode).toBe('auto');
    expect(c.rules).toEqual(['/etc/ipvs-bpf/rules']);
    expect(c.log.level).toBe('info');
    expect(c.mapEntries).toBe(1 << 20);
  });

  test('file < environment < flags; lists from comma-separated text', () => {
    const cfg = file('c1.json', JSON.stringify({ mode: 'bpf', interfaces: ['eth0'], log: { level: 'debug' }, snat: { addresses: ['10.0.0.1'] } }));
    const c = loadConfig({
      env: { IPVS_BPF_CONFIG: cfg, IPVS_BPF_MODE: 'ipvs', IPVS_BPF_INTERFACES: 'eth1, eth2' },
      args: ['--mode=auto', '--map-entries=4096', '--xdp=false'],
    });
    expect(c.config).toBe(cfg);
    expect(c.mode).toBe('auto');
    expect(c.interfaces).toEqual(['eth1', 'eth2']);
    expect(c.log.level).toBe('debug');
    expect(c.snat.addresses).toEqual(['10.0.0.1']);
    expect(c.mapEntries).toBe(4096);
    expect(c.xdp.enabled).toBe(false);
  });

  test('a bad value is reported with its path and the rule it breaks', () => {
    expect(() => loadConfig({ env: { IPVS_BPF_MODE: 'fast' } })).toThrow(
      'mode: must be one of the possible values: ["auto","bpf","ipvs"]: value was "fast"',
    );
    const cfg = file('c2.json', JSON.stringify({ snat: { addresses: ['10.0.0.1', '::1'] } }));
    expect(() => loadConfig({ env: { IPVS_BPF_CONFIG: cfg } })).toThrow(`${cfg}: snat.addresses: "::1" is not an IPv4 address`);
    expect(() => loadConfig({ env: {}, args: ['--rules=relative/path'] })).toThrow('rules: "relative/path" is not an absolute path');
    expect(() => loadConfig({ env: {}, args: ['--snat-port-min=2000', '--snat-port-max=1000'] })).toThrow(/snat\.portMin: must not exceed/);
  });

  test('unknown keys in the file are errors (typos do not pass silently)', () => {
    const cfg = file('c3.json', JSON.stringify({ intefaces: ['eth0'] }));
    expect(() => loadConfig({ env: { IPVS_BPF_CONFIG: cfg } })).toThrow("configuration param 'intefaces' not declared");
  });

  test('a named file must exist; the default one may be absent', () => {
    expect(() => loadConfig({ env: NO_FILE })).toThrow(`${NO_FILE.IPVS_BPF_CONFIG}: no such configuration file`);
    const bad = file('c4.json', '{ "mode": ');
    expect(() => loadConfig({ env: { IPVS_BPF_CONFIG: bad } })).toThrow(ConfigError);
  });

  test('flags: known ones pass, unknown and value-less ones are refused, actions are picked out', () => {
    expect(splitArgs(['--check-config', '--mode', 'ipvs', '--rules=/a,/b'])).toEqual({
      actions: new Set(['check-config']), configArgs: ['--mode=ipvs', '--rules=/a,/b'],
    });
    expect(() => splitArgs(['--mdoe', 'x'])).toThrow('unknown flag --mdoe');
    expect(() => splitArgs(['--mode'])).toThrow('--mode needs a value');
    expect(() => splitArgs(['stray'])).toThrow('unexpected argument');
    expect(splitArgs(['--teardown', '--pin-dir', '/sys/fs/bpf/x'])).toEqual({ actions: new Set(['teardown']), configArgs: ['--pin-dir=/sys/fs/bpf/x'] });
    expect(() => splitArgs(['--teardown=yes'])).toThrow('--teardown takes no value');
  });

  test('--teardown with a bad configuration touches nothing and exits 78', async () => {
    let err = '';
    const io = { out: () => undefined, err: (t: string) => void (err += t), env: NO_FILE };
    expect(await teardownMain(['--mode=fast'], { ...io, env: {} })).toBe(78);
    expect(err).toContain('configuration invalid: mode: must be one of the possible values');
    expect(helpText('ipvs-bpf')).toContain('--teardown');
  });

  test('every setting is documented and reachable by a flag and a variable; --help lists them', () => {
    const help = helpText('ipvs-bpf');
    for (const { path: p, leaf } of schemaLeaves()) {
      expect(leaf.doc.length).toBeGreaterThan(10);
      expect(leaf.env).toMatch(/^IPVS_BPF_[A-Z_]+$/);
      expect(help).toContain(`  ${p}  --${leaf.arg}  $${leaf.env}`);
    }
  });
});

describe('log formats', () => {
  test('journal: the syslog priority prefix on every line, nothing else', () => {
    expect(journalLine('error', 'bad\nsecond')).toBe('<3>bad\n<3>second');
    expect(journalLine('debug', 'x')).toBe('<7>x');
  });

  test('human: timestamp and level, colour only when asked', () => {
    const t = new Date('2024-01-02T03:04:05.000Z');
    expect(humanLine('warning', 'w', t)).toBe('2024-01-02T03:04:05.000Z WARNING w');
    expect(humanLine('error', 'e', t, true)).toBe('2024-01-02T03:04:05.000Z \u001b[31mERROR  \u001b[0m e');
  });

  test('the level filters and can be changed while running', async () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'notice', journal: true, write: (l) => lines.push(l) });
    log.info('hidden');
    log.notice('shown');
    log.setLevel('debug');
    log.debug('now shown');
    log.setLevel('error');
    log.warning('hidden again');
    await new Promise((r) => setImmediate(r));
    expect(lines.join('')).toBe('<5>shown\n<7>now shown\n');
    expect(log.level).toBe('error');
  });

  test('systemd LogControl1 level names', () => {
    expect(toSystemdLevel('error')).toBe('err');
    expect(fromSystemdLevel('err')).toBe('error');
    expect(fromSystemdLevel('warning')).toBe('warning');
    expect(fromSystemdLevel('loud')).toBeUndefined();
  });
});

describe('rule sets', () => {
  test('files replay in order from an empty table; later files may change what earlier ones made', () => {
    const r = ruleSetFromTexts([
      { name: 'a', text: '-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 2\n--set 100 0 0\n' },
      { name: 'b', text: '# comment\n-e -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 5\n-Z\n--set 0 20 0\n' },
    ]);
    expect(r.services).toHaveLength(1);
    expect(r.services[0]!.destinations[0]!.weight).toBe(5);
    expect(r.timeouts).toEqual({ tcp: 100, tcpFin: 20, udp: 0 });
    expect(r.ignored).toEqual([{ source: 'b', line: 3, why: expect.stringContaining('-Z') }]);
  });

  test('every bad line of every file, named file:line, and nothing else', () => {
    let err: unknown;
    try {
      ruleSetFromTexts([
        { name: '/etc/a.rules', text: '-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1 -w 99999999999\n' },
        { name: '/etc/b.rules', text: '\n-a -t 10.0.0.9:80 -r 10.0.1.1 -w x\n' },
      ]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RuleFileError);
    expect((err as Error).message).toBe('/etc/a.rules:line 2: illegal weight specified\n/etc/b.rules:line 2: illegal weight specified');
  });

  test('a line the replay refuses (state, not syntax) is named too', () => {
    expect(() => ruleSetFromTexts([{ name: 'f', text: '-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80\n' }])).toThrow('f:line 2: Service already exists');
  });

  test('directories stand for their *.rules files in name order; missing files are named', () => {
    file('rd/20-b.rules', '-A -t 10.0.0.2:80\n');
    file('rd/10-a.rules', '-A -t 10.0.0.1:80\n');
    file('rd/notes.txt', 'x');
    expect(expandRuleFiles([path.join(dir, 'rd')])).toEqual([path.join(dir, 'rd/10-a.rules'), path.join(dir, 'rd/20-b.rules')]);
    expect(readRuleSet([path.join(dir, 'rd')]).services.map((s) => s.key.kind === 'addr' && s.key.address)).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(() => readRuleSet([path.join(dir, 'missing.rules')])).toThrow(`${path.join(dir, 'missing.rules')}: no such rule file`);
  });

  test('extra ops: only timeouts that differ, only daemons not running', () => {
    const r = ruleSetFromTexts([{ name: 'f', text: '--set 100 0 0\n--start-daemon master --mcast-interface lo --syncid 3\n' }]);
    expect(extraOps(r, { timeouts: { tcp: 100, tcpFin: 120, udp: 300 }, daemons: [] })).toEqual([
      { op: 'start-daemon', daemon: expect.objectContaining({ state: 'master', syncId: 3 }) },
    ]);
    expect(extraOps(r, { timeouts: { tcp: 900, tcpFin: 120, udp: 300 }, daemons: [{ ...r.daemons[0]! }] })).toEqual([
      { op: 'set-timeouts', timeouts: { tcp: 100, tcpFin: 0, udp: 0 } },
    ]);
  });

  test('summaries', () => {
    expect(summarizeOps([])).toBe('no changes');
    expect(summarizeOps([{ op: 'delete-service', key: { kind: 'fwmark', family: 'inet', fwmark: 1 } }, { op: 'flush' }, { op: 'flush' }]))
      .toBe('1 removed service, 2 flushs');
  });

  test('the kubernetes section: off by default, on with --kube-proxy-config; paths absolute, names checked', () => {
    const c = loadConfig({ env: {}, args: [] });
    expect(c.kubernetes).toEqual({ enabled: false, kubeconfig: '', nodeName: '', proxyConfig: '', serviceProxyName: '', maxDrainSeconds: 600 });
    expect(kubernetesEnabled(c)).toBe(false);
    const { configArgs } = splitArgs(['--kube-proxy-config', '/var/lib/kube-proxy/config.conf', '--node-name', 'node-1', '--kubeconfig=/etc/k.conf']);
    const k = loadConfig({ env: {}, args: configArgs });
    expect(k.kubernetes).toEqual(expect.objectContaining({ proxyConfig: '/var/lib/kube-proxy/config.conf', nodeName: 'node-1', kubeconfig: '/etc/k.conf' }));
    expect(kubernetesEnabled(k)).toBe(true);
    expect(kubernetesEnabled(loadConfig({ env: { IPVS_BPF_KUBERNETES: 'true' } }))).toBe(true);
    expect(() => loadConfig({ env: {}, args: ['--kube-proxy-config=config.conf'] })).toThrow('kubernetes.proxyConfig: must be an absolute path (or empty)');
    expect(() => loadConfig({ env: {}, args: ['--node-name=Node_1'] })).toThrow('kubernetes.nodeName: must be a Node name');
    expect(() => loadConfig({ env: {}, args: ['--service-proxy-name=-x'] })).toThrow('kubernetes.serviceProxyName: must be a label value');
  });

  test('--check-config checks the KubeProxyConfiguration and the apiserver settings too', async () => {
    const good = file('kp/rules', '');
    const kc = file('kp/kubeconfig', 'apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n'
      + 'clusters: [{name: k, cluster: {server: "https://127.0.0.1:6443"}}]\nusers: [{name: u, user: {token: t}}]\n');
    const kp = file('kp/config.conf', `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\noomScoreAdj: -999\n`
      + `hostnameOverride: Node-7\nclientConnection: {kubeconfig: ${kc}}\n`);
    const bad = file('kp/bad.conf', 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: iptables\n');
    const noKubeconfig = file('kp/nokc.conf', 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n');
    let out = '';
    let err = '';
    const io = { out: (t: string) => void (out += t), err: (t: string) => void (err += t), env: {} };
    expect(await checkConfig([`--rules=${good}`, `--kube-proxy-config=${kp}`, '--mode=ipvs'], io)).toBe(0);
    expect(out).toContain(`kube-proxy configuration ${kp}: valid; scheduler rr\n${kp}: oomScoreAdj: will be ignored: set OOMScoreAdjust= in the systemd unit\n`);
    expect(out).toMatch(new RegExp(`kubernetes: node node-7, kubeconfig ${kc} \\(context c\\) \\(https://127.0.0.1:6443\\), families inet`));
    expect(await checkConfig([`--rules=${good}`, `--kube-proxy-config=${bad}`, '--mode=ipvs'], io)).toBe(78);
    expect(err).toBe(`ipvs-bpf: kube-proxy configuration invalid:\n${bad}:line 3: mode: "iptables": ipvs-bpf takes the place of kube-proxy's ipvs mode only (mode: ipvs)\n`);
    err = '';
    expect(await checkConfig([`--rules=${good}`, `--kube-proxy-config=${noKubeconfig}`, '--mode=ipvs'], io)).toBe(78);
    expect(err).toContain('ipvs-bpf: kubernetes configuration invalid:\nkubernetes: no kubeconfig');
  });

  test('--check-config reports valid files and bad lines, exit 0 / 78', async () => {
    const good = file('cc/good.rules', '-A -u 10.0.0.1:53 -s rr\n-a -u 10.0.0.1:53 -r 10.0.1.1:53 -m\n');
    const bad = file('cc/bad.rules', '-A -u 10.0.0.1:53 -s rr\n-a -u 10.0.0.1:53 -r 10.0.1.1:53 -m -x -1\n');
    let out = '';
    let err = '';
    const io = { out: (t: string) => void (out += t), err: (t: string) => void (err += t), env: NO_FILE };
    expect(await checkConfig([`--config=${file('cc/c.json', '{}')}`, `--rules=${good}`], io)).toBe(0);
    expect(out).toContain(`rules ${good}: valid; 1 services, 1 real servers`);
    expect(await checkConfig([`--rules=${good},${bad}`], { ...io, env: {} })).toBe(78);
    expect(err).toBe(`ipvs-bpf: rules invalid:\n${bad}:line 2: illegal u_threshold specified\n`);
  });
});

describe('the patched IPVS control file', () => {
  test('key value lines', () => {
    expect(parseControlState('abi 1\nmode 1\nsnat 10.0.2.1 10.0.2.2\nports 20000 40000\nconns 0\n\n')).toEqual({
      abi: '1', mode: '1', snat: '10.0.2.1 10.0.2.2', ports: '20000 40000', conns: '0',
    });
  });
});

describe('D-Bus property mapping', () => {
  test('every property survives the trip to D-Bus values and back', () => {
    const s: DaemonStatus = {
      version: '0.1.0', mode: 'ipvs', configuredMode: 'auto', modeReason: 'auto: no patch', interfaces: [{ name: 'eth0', xdp: 'native' }],
      ruleFiles: ['/etc/ipvs-bpf/rules'], lastReload: { usec: 1700000000000000n, ok: false, message: 'f:line 1: x' },
      services: [{
        id: 'tcp 10.0.0.1:80', scheduler: 'wrr', persistenceTimeout: 0, conns: 1n, inPkts: 2n, outPkts: 3n, inBytes: 4n, outBytes: 5n,
        realServers: [{ id: '10.0.1.1:80', forward: 'masq', weight: 3, activeConns: 1, inactiveConns: 0, conns: 6n, inPkts: 7n, outPkts: 8n, inBytes: 9n, outBytes: 2n ** 63n }],
      }],
      flowCount: 3n, dataPathCounters: { xdp_fwd: 10n }, kernelCounters: { abi: '1' },
      alerts: [{ counter: 'map_full', value: 7n, increase: 2n, lastUsec: 1700000000000001n, meaning: 'full' }],
    };
    const back = emptyStatus();
    for (const p of MANAGER_PROPERTIES) p.fromDbus(p.toDbus(s), back);
    expect(back).toEqual(s);
  });
});
