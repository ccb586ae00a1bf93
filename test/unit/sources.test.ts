/**
 * Rule sources: merging the desired tables of several sources (conflicts name both), and the daemon over
 * them: a start and a reload reconcile the merged table, a source's own change reads and changes only the
 * services it names, kept services survive, a refused change changes nothing. The kernel is the simulated
 * IPVS table (the same checks as the kernel's, as ipvs-bpfctl's tests use it).
 */
import { mkdtempSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { loadConfig } from '../../src/daemon/config';
import { Daemon, ruleFilesOnly, type SourceFactory } from '../../src/daemon/daemon';
import { plainIpvs } from '../../src/daemon/datapath';
import type { Logger } from '../../src/daemon/log';
import { serviceKeyId, NO_SERVICE_FLAGS, NO_TUNNEL_FLAGS, type DesiredService, type ServiceKey } from '../../src/ipvs/model';
import type { IpvsClient } from '../../src/ipvs/netlink';
import { formatSave } from '../../src/ipvs/rules';
import { FakeIpvs } from './fake-ipvs';
import { RuleFileSource } from '../../src/sources/rule-files';
import {
  EMPTY_TABLE, lookupService, mergeTables, SourceConflictError, tableOf, type DesiredTable, type Source, type SourceChanged,
} from '../../src/sources/source';

const key = (address: string, port = 80): ServiceKey => ({ kind: 'addr', family: 'inet', protocol: 'tcp', address, port });
const svc = (address: string, dests: string[], port = 80): DesiredService => ({
  key: key(address, port), scheduler: 'rr', flags: { ...NO_SERVICE_FLAGS }, persistenceTimeout: 0, netmask: 0xffffffff, pe: '',
  destinations: dests.map((a) => ({
    family: 'inet', address: a, port: 8080, forward: 'masq', weight: 1, upperThreshold: 0, lowerThreshold: 0,
    tunnelType: 'ipip', tunnelPort: 0, tunnelFlags: { ...NO_TUNNEL_FLAGS },
  })),
});

describe('mergeTables', () => {
  test('services of every source, in source order; one source is passed through', () => {
    const a = tableOf([svc('10.0.0.1', ['10.1.0.1'])]);
    const b = tableOf([svc('10.0.0.2', []), svc('10.0.0.3', [])]);
    const m = mergeTables([{ name: 'rules /a', table: a }, { name: 'kubernetes', table: b }]);
    expect([...m.services.keys()]).toEqual(['tcp 10.0.0.1:80', 'tcp 10.0.0.2:80', 'tcp 10.0.0.3:80']);
    expect(m.owner('tcp 10.0.0.3:80')).toBe('kubernetes');
    expect(m.owner('tcp 10.0.0.9:80')).toBeUndefined();
    const one = mergeTables([{ name: 'rules /a', table: a }]);
    expect(one.services).toBe(a.services);
    expect(one.owner('tcp 10.0.0.1:80')).toBe('rules /a');
  });

  test('the same virtual service in two sources is a conflict naming both; every conflict is listed', () => {
    const a = tableOf([svc('10.0.0.1', []), svc('10.0.0.2', [])], { timeouts: { tcp: 900, tcpFin: 0, udp: 300 } });
    const b = tableOf([svc('10.0.0.2', [])], { timeouts: { tcp: 900, tcpFin: 120, udp: 60 } });
    let err: unknown;
    try {
      mergeTables([{ name: 'rules /a', table: a }, { name: 'kubernetes', table: b }]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SourceConflictError);
    expect((err as Error).message).toBe('service tcp 10.0.0.2:80 is named by both rules /a and kubernetes\n'
      + 'timeout udp is 300 s in rules /a but 60 s in kubernetes');
    expect(() => lookupService([{ name: 'rules /a', table: a }, { name: 'kubernetes', table: b }], 'tcp 10.0.0.2:80'))
      .toThrow('service tcp 10.0.0.2:80 is named by both rules /a and kubernetes');
    expect(lookupService([{ name: 'rules /a', table: a }, { name: 'kubernetes', table: b }], 'tcp 10.0.0.1:80')?.key).toEqual(key('10.0.0.1'));
  });

  test('timeouts merge field by field; equal sync daemons are fine, different ones conflict', () => {
    const d = { state: 'master' as const, mcastIfn: 'lo', syncId: 1, syncMaxLen: 0, mcastGroup: '', mcastPort: 0, mcastTtl: 0 };
    const m = mergeTables([
      { name: 'a', table: tableOf([], { timeouts: { tcp: 900, tcpFin: 0, udp: 0 }, daemons: [d] }) },
      { name: 'b', table: tableOf([], { timeouts: { tcp: 900, tcpFin: 30, udp: 0 }, daemons: [{ ...d }] }) },
    ]);
    expect(m.timeouts).toEqual({ tcp: 900, tcpFin: 30, udp: 0 });
    expect(m.daemons).toEqual([d]);
    expect(() => mergeTables([{ name: 'a', table: tableOf([], { daemons: [d] }) }, { name: 'b', table: tableOf([], { daemons: [{ ...d, syncId: 2 }] }) }]))
      .toThrow('sync daemon master is set differently by a and b');
    expect(mergeTables([{ name: 'a', table: EMPTY_TABLE }, { name: 'b', table: EMPTY_TABLE }]).timeouts).toBeUndefined();
  });
});

/** A source that changes on its own, as a watch does. */
class WatchSource implements Source {
  private services = new Map<string, DesiredService>();
  private cb?: SourceChanged;
  closed = false;
  constructor(readonly name: string, private readonly keep?: (k: ServiceKey) => boolean) {}
  async read(): Promise<DesiredTable> {
    return this.current();
  }
  current(): DesiredTable {
    return { services: this.services, daemons: [], ignored: [] };
  }
  subscribe(cb: SourceChanged): void {
    this.cb = cb;
  }
  keeps(k: ServiceKey): boolean {
    return this.keep?.(k) ?? false;
  }
  close(): void {
    this.closed = true;
  }
  set(s: DesiredService): void {
    this.services.set(serviceKeyId(s.key), s);
    this.cb?.([s.key]);
  }
  remove(k: ServiceKey): void {
    this.services.delete(serviceKeyId(k));
    this.cb?.([k]);
  }
}

const lines: string[] = [];
const log = Object.fromEntries(
  [
    ...['emerg', 'alert', 'crit', 'error', 'warning', 'notice', 'info', 'debug'].map((l) => [l, (m: string) => void lines.push(`${l}: ${m}`)]),
    ['setLevel', () => undefined],
  ],
) as unknown as Logger;
const dir = mkdtempSync(path.join(tmpdir(), 'ipvs-bpf-sources-'));
const rulesFile = path.join(dir, 'a.rules');
const cfgArgs = [`--rules=${rulesFile}`, '--mode=ipvs', '--dbus=none', `--config=${path.join(dir, 'none.json')}`];
const loadCfg = () => loadConfig({ args: cfgArgs, env: {} });
const settle = () => new Promise((r) => setImmediate(r));

async function startWith(ipvs: FakeIpvs, sources: SourceFactory): Promise<Daemon> {
  return Daemon.start(loadCfg(), { log, loadConfig: loadCfg, ipvs: ipvs as unknown as IpvsClient, dataPath: async () => plainIpvs(''), sources });
}

describe('the daemon over several sources', () => {
  beforeEach(() => {
    lines.length = 0;
    writeFileSync(path.join(dir, 'none.json'), '{}');
  });

  test('rule files alone: the same table as the rule files, foreign services removed (as before sources)', async () => {
    writeFileSync(rulesFile, '-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.0.1:8080 -m\n');
    const ipvs = new FakeIpvs();
    ipvs.table.apply({ op: 'add-service', service: svc('10.9.9.9', []) });
    const d = await startWith(ipvs, ruleFilesOnly);
    expect(formatSave(ipvs.table.services(), { numeric: true })).toBe('-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.0.1:8080 -m -w 1\n');
    expect(lines).toContain(`notice: started in ipvs mode; rules ${rulesFile}: 1 removed service, 1 added service, 1 added real server`);
    await d.stop();
  });

  test('merged with a watch source; its own changes read and change only the services they name', async () => {
    writeFileSync(rulesFile, '-A -t 10.0.0.1:80 -s rr\n');
    const ipvs = new FakeIpvs();
    const kube = new WatchSource('kubernetes');
    kube.set(svc('10.96.0.1', ['10.244.0.5']));
    const d = await startWith(ipvs, (cfg) => [new RuleFileSource(cfg.rules), kube]);
    expect(ipvs.table.services().map((s) => serviceKeyId(s.key))).toEqual(['tcp 10.0.0.1:80', 'tcp 10.96.0.1:80']);
    const dumps = ipvs.dumps;
    ipvs.applied = [];
    kube.set(svc('10.96.0.1', ['10.244.0.5', '10.244.0.6']));
    kube.set(svc('10.96.0.2', []));
    await settle();
    await settle();
    expect(ipvs.reads).toEqual(['tcp 10.96.0.1:80', 'tcp 10.96.0.2:80']); // both changes in one sync
    expect(ipvs.dumps).toBe(dumps); // no table dump, no status refresh
    expect(ipvs.applied.map((o) => o.op)).toEqual(['add-dest', 'add-service']);
    ipvs.applied = [];
    ipvs.reads = [];
    kube.remove(key('10.96.0.2'));
    await settle();
    await settle();
    expect(ipvs.reads).toEqual(['tcp 10.96.0.2:80']);
    expect(ipvs.applied).toEqual([{ op: 'delete-service', key: key('10.96.0.2') }]);
    await d.stop();
    expect(kube.closed).toBe(true);
  });

  test('a conflict between two sources refuses the start and names both; nothing is applied', async () => {
    writeFileSync(rulesFile, '-A -t 10.96.0.1:80 -s rr\n');
    const ipvs = new FakeIpvs();
    const kube = new WatchSource('kubernetes');
    kube.set(svc('10.96.0.1', []));
    await expect(startWith(ipvs, (cfg) => [new RuleFileSource(cfg.rules), kube]))
      .rejects.toThrow(`service tcp 10.96.0.1:80 is named by both rules ${rulesFile} and kubernetes`);
    expect(ipvs.applied).toEqual([]);
    expect(kube.closed).toBe(true);
  });

  test('a conflicting or refused source change changes nothing, is logged, and the next sync is a full one', async () => {
    writeFileSync(rulesFile, '-A -t 10.0.0.1:80 -s rr\n');
    const ipvs = new FakeIpvs();
    const kube = new WatchSource('kubernetes');
    const d = await startWith(ipvs, (cfg) => [new RuleFileSource(cfg.rules), kube]);
    ipvs.applied = [];
    kube.set(svc('10.0.0.1', []));
    await settle();
    await settle();
    expect(ipvs.applied).toEqual([]);
    expect(lines.some((l) => l.startsWith('error: source changes refused, nothing changed')
      && l.includes(`service tcp 10.0.0.1:80 is named by both rules ${rulesFile} and kubernetes`))).toBe(true);
    kube.remove(key('10.0.0.1'));
    ipvs.refuse = (op) => op.op === 'add-dest';
    kube.set(svc('10.96.0.3', ['10.244.0.7']));
    await settle();
    await settle();
    expect(ipvs.table.services().map((s) => serviceKeyId(s.key))).toEqual(['tcp 10.0.0.1:80']); // rolled back
    ipvs.refuse = undefined;
    const dumps = ipvs.dumps;
    kube.set(svc('10.96.0.4', []));
    await settle();
    await settle();
    expect(ipvs.dumps).toBe(dumps + 1); // full: the earlier refusal's changes are retried too
    expect(ipvs.table.services().map((s) => serviceKeyId(s.key))).toEqual(['tcp 10.0.0.1:80', 'tcp 10.96.0.3:80', 'tcp 10.96.0.4:80']);
    await d.stop();
  });

  test('a source may keep kernel services nobody names (excludeCIDRs); others are removed', async () => {
    writeFileSync(rulesFile, '');
    const ipvs = new FakeIpvs();
    ipvs.table.apply({ op: 'add-service', service: svc('192.168.7.1', []) });
    ipvs.table.apply({ op: 'add-service', service: svc('10.9.9.9', []) });
    const kube = new WatchSource('kubernetes', (k) => k.kind === 'addr' && k.address.startsWith('192.168.'));
    const d = await startWith(ipvs, (cfg) => [new RuleFileSource(cfg.rules), kube]);
    expect(ipvs.table.services().map((s) => serviceKeyId(s.key))).toEqual(['tcp 192.168.7.1:80']);
    kube.set(svc('192.168.7.1', ['10.244.0.1']));
    kube.remove(key('192.168.7.1'));
    await settle();
    await settle();
    expect(ipvs.table.services().map((s) => serviceKeyId(s.key))).toEqual(['tcp 192.168.7.1:80']);
    await d.stop();
  });

  test('a reload builds the sources again, keeps the ones the factory returns, closes the others', async () => {
    writeFileSync(rulesFile, '');
    const ipvs = new FakeIpvs();
    const kubes: WatchSource[] = [];
    const factory: SourceFactory = (cfg, running) => {
      const keep = running.find((s) => s.name === 'kubernetes');
      const k = keep ?? new WatchSource('kubernetes');
      if (!keep) kubes.push(k as WatchSource);
      return cfg.log.level === 'debug' ? [new RuleFileSource(cfg.rules)] : [new RuleFileSource(cfg.rules), k];
    };
    const d = await startWith(ipvs, factory);
    await d.reload();
    expect(kubes).toHaveLength(1);
    expect(kubes[0]!.closed).toBe(false);
    cfgArgs.push('--log-level=debug');
    try {
      await d.reload();
    } finally {
      cfgArgs.pop();
    }
    expect(kubes[0]!.closed).toBe(true);
    kubes[0]!.set(svc('10.96.0.9', []));
    await settle();
    expect(ipvs.table.services()).toEqual([]);
    await d.stop();
  });
});
