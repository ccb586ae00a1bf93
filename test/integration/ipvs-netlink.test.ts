/**
 * The IPVS netlink client against real IPVS in the lab VM, cross-checked with the real ipvsadm there.
 * One VM boot runs test/integration/vm/ipvs-netlink-checks.ts (compiled), which records what it observes;
 * the expectations live here.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { constants } from 'node:os';
import { runInVm } from '../lab/vm';
import { compileForVm } from '../lab/compile';
import { CREATE_CASES, dest, type CommandRun, type LabReport } from './vm/ipvs-netlink-cases';
import { NO_SERVICE_FLAGS, NO_TUNNEL_FLAGS, serviceKeyId, type DesiredService } from '../../src/ipvs/model';

jest.setTimeout(20 * 60 * 1000);

const E = constants.errno;
let report: LabReport;
let console_ = '';

const lines = (r: CommandRun): string[] => r.stdout.split('\n').filter((l) => l.length > 0);
const sortById = (xs: DesiredService[]): DesiredService[] =>
  [...xs]
    .map((s) => ({ ...s, destinations: [...s.destinations].sort((a, b) => (a.address + a.port < b.address + b.port ? -1 : 1)) }))
    .sort((a, b) => (serviceKeyId(a.key) < serviceKeyId(b.key) ? -1 : 1));

beforeAll(async () => {
  // Only the in-VM script and what it imports, so that unrelated work in progress cannot block this test.
  compileForVm('test/integration/vm/ipvs-netlink.tsconfig.json');
  const r = await runInVm({
    timeoutMs: 15 * 60 * 1000,
    env: { IPVS_LARGE_SERVICES: '300', IPVS_LARGE_DESTS: '10' },
    // No modprobe: resolving the "IPVS" family makes the kernel load ip_vs (MODULE_ALIAS_GENL_FAMILY).
    script: 'node dist/test/integration/vm/ipvs-netlink-checks.js',
  });
  console_ = r.console;
  const text = await fs.readFile(path.join(r.outDir, 'ipvs-netlink-report.json'), 'utf8').catch(() => '');
  if (!text) throw new Error(`no report from the VM (exit ${r.exitCode}, ${r.error ?? ''}):\n${r.console.slice(-4000)}`);
  report = JSON.parse(text) as LabReport;
});

test('every step ran', () => {
  expect(report.failures).toEqual([]);
  expect(console_).not.toMatch(/Error in native callback/);
});

test('opening the client loads ip_vs on demand', () => {
  expect(report.autoload).toEqual({ loadedBefore: false, loadedAfter: true });
});

test('info: the kernel version', () => {
  expect(report.info).toEqual({ version: '1.2.1', connTableSize: 4096 });
});

describe('services and destinations created by the client', () => {
  test('every op acknowledged', () => {
    const c = report.create!;
    expect(c.applyStatuses.every((s) => s === 'ok')).toBe(true);
    expect(c.applyStatuses).toHaveLength(CREATE_CASES.reduce((n, x) => n + 1 + x.service.destinations.length, 0));
  });

  test('ipvsadm -Sn prints exactly the rules', () => {
    const expected = CREATE_CASES.flatMap((x) => x.save).sort();
    expect(lines(report.create!.save).sort()).toEqual(expected);
  });

  test('the client reads back what it wrote', () => {
    expect(sortById(report.create!.decoded)).toEqual(sortById(CREATE_CASES.map((x) => x.service)));
    expect(sortById([report.create!.one!])).toEqual(sortById([CREATE_CASES[3].service]));
    expect(report.create!.missing).toBeNull();
  });

  test('thresholds as ipvsadm -Ln --thresholds shows them', () => {
    const got = lines(report.create!.thresholds);
    const row = (addr: string, u: number, l: number): string =>
      `  -> ${addr.padEnd(28)} ${String(u).padEnd(10)} ${String(l).padEnd(10)} ${'0'.padEnd(10)} ${'0'.padEnd(10)}`;
    expect(got).toContain(row('10.10.1.3:80', 100, 10));
    expect(got).toContain(row('10.10.8.1:8443', 2147483647, 1));
    expect(got).toContain(row('10.10.1.1:8080', 0, 0));
  });

  test('tunnel details as ipvsadm -Ln --tun-info shows them', () => {
    const got = lines(report.create!.tunInfo);
    const row = (addr: string, info: string, w: number): string =>
      `  -> ${addr.padEnd(28)} ${'Tunnel'.padEnd(7)} ${info.padEnd(13)} ${String(w).padEnd(6)} ${'0'.padEnd(10)} ${'0'.padEnd(10)}`;
    expect(got).toContain(row('10.10.4.2:0', 'gue:6080:+c', 3));
    expect(got).toContain(row('10.10.4.3:0', 'gre:r+c', 4));
    expect(got).toContain(row('10.10.1.3:80', 'ipip', 0));
  });
});

test('services created by ipvsadm -R decode to the model', () => {
  const f = report.fromIpvsadm!;
  expect(f.restore.status).toBe(0);
  const d = (over: Partial<DesiredService>): DesiredService => ({
    key: { kind: 'fwmark', family: 'inet', fwmark: 0 },
    scheduler: 'rr',
    flags: { ...NO_SERVICE_FLAGS },
    persistenceTimeout: 0,
    netmask: 0xffffffff,
    pe: '',
    destinations: [],
    ...over,
  });
  const expected: DesiredService[] = [
    d({
      key: { kind: 'addr', family: 'inet', protocol: 'tcp', address: '10.30.0.1', port: 80 },
      scheduler: 'wlc',
      flags: { ...NO_SERVICE_FLAGS, persistent: true },
      persistenceTimeout: 120,
      netmask: 0xffff0000,
      destinations: [
        dest('inet', '10.30.1.1', 80, 'route', 4, { upperThreshold: 50, lowerThreshold: 5 }),
        dest('inet6', '2001:db8:30::9', 80, 'tunnel', 2, {
          tunnelType: 'gue',
          tunnelPort: 5555,
          tunnelFlags: { ...NO_TUNNEL_FLAGS, remCsum: true },
        }),
      ],
    }),
    d({
      key: { kind: 'addr', family: 'inet6', protocol: 'udp', address: '2001:db8::30', port: 53 },
      scheduler: 'sh',
      flags: { ...NO_SERVICE_FLAGS, onePacket: true, sched2: true },
      netmask: 128,
      destinations: [dest('inet6', '2001:db8::31', 5353, 'masq', 1)],
    }),
    d({
      key: { kind: 'fwmark', family: 'inet', fwmark: 30 },
      flags: { ...NO_SERVICE_FLAGS, persistent: true },
      persistenceTimeout: 30,
      pe: 'sip',
      destinations: [
        dest('inet', '10.30.2.1', 0, 'tunnel', 2, {
          tunnelType: 'gue',
          tunnelPort: 6080,
          tunnelFlags: { ...NO_TUNNEL_FLAGS, csum: true },
        }),
        dest('inet', '10.30.2.2', 0, 'tunnel', 7, { tunnelType: 'gre' }),
      ],
    }),
    d({
      key: { kind: 'fwmark', family: 'inet6', fwmark: 31 },
      scheduler: 'dh',
      flags: { ...NO_SERVICE_FLAGS, persistent: true },
      persistenceTimeout: 100,
      netmask: 48,
    }),
  ];
  expect(sortById(f.decoded)).toEqual(sortById(expected));
});

describe('errors match ipvsadm', () => {
  const want: Record<string, [number, string]> = {
    'add existing service': [E.EEXIST, 'Service already exists'],
    'edit missing service': [E.ESRCH, 'No such service'],
    'delete missing service': [E.ESRCH, 'No such service'],
    'bad scheduler': [E.ENOENT, 'Scheduler or persistence engine not found'],
    'bad persistence engine': [E.ENOENT, 'Scheduler or persistence engine not found'],
    'add dest to missing service': [E.ESRCH, 'Service not defined'],
    'add existing dest': [E.EEXIST, 'Destination already exists'],
    'edit missing dest': [E.ENOENT, 'No such destination'],
    'delete missing dest': [E.ENOENT, 'No such destination'],
    'thresholds out of order': [E.ERANGE, 'Numerical result out of range'],
    'zero missing service': [E.ESRCH, 'No such service'],
    'stop missing daemon': [E.ESRCH, 'No daemon is running'],
  };
  test.each(Object.entries(want))('%s', (name, [errno, message]) => {
    const c = report.errors!.find((x) => x.name === name)!;
    expect(c).toBeDefined();
    expect(c.ours).toEqual({ errno, code: expect.any(String), message });
    // ipvsadm fails the same way and prints the same words.
    expect(c.ipvsadm.status).not.toBe(0);
    expect(c.ipvsadm.stderr.trim()).toBe(message);
  });
});

describe('pipelined writes', () => {
  test('in one batch every op is attempted and reported', () => {
    expect(report.batch!.sameBatch).toEqual(['ok', 'failed:EEXIST', 'ok']);
  });
  test('stopOnError sends nothing after the failing batch', () => {
    expect(report.batch!.stopOnError).toEqual(['ok', 'failed:EEXIST', 'skipped']);
    expect(report.batch!.stopOnErrorBatches).toBe(2);
    const saved = lines(report.batch!.save).filter((l) => l.startsWith('-A'));
    expect(saved.sort()).toEqual([
      '-A -t 10.40.0.1:80 -s rr',
      '-A -t 10.40.0.2:80 -s rr',
      '-A -t 10.40.0.3:80 -s rr',
    ]);
  });
});

test('timeouts: set and read by the client and by ipvsadm', () => {
  const t = report.timeouts!;
  expect(t.afterSet).toEqual({ tcp: 1000, tcpFin: 60, udp: 200 });
  expect(t.ipvsadmList.stdout).toContain('Timeout (tcp tcpfin udp): 1000 60 200');
  expect(t.afterIpvsadmSet).toEqual({ tcp: 901, tcpFin: 121, udp: 301 });
});

test('sync daemons: start, list, stop', () => {
  const d = report.daemons!;
  expect(d.startStatuses).toEqual(['ok']);
  const master = {
    state: 'master',
    mcastIfn: 'lo',
    syncId: 5,
    syncMaxLen: 1000,
    mcastGroup: '239.0.0.5',
    mcastPort: 9999,
    mcastTtl: 3,
  };
  expect(d.ours).toEqual([master]);
  expect(d.ipvsadmList.stdout).toContain(
    'master sync daemon (mcast=lo, syncid=5, maxlen=1000, group=239.0.0.5, port=9999, ttl=3)',
  );
  expect(d.ipvsadmStartBackup.status).toBe(0);
  expect(d.withBackup).toEqual([
    master,
    {
      state: 'backup',
      mcastIfn: 'lo',
      syncId: 7,
      syncMaxLen: expect.any(Number),
      mcastGroup: '224.0.0.81',
      mcastPort: 8848,
      mcastTtl: 1,
    },
  ]);
  expect(d.afterStop).toEqual([]);
  expect(d.stopAgain).toEqual({ errno: E.ESRCH, code: 'ESRCH', message: 'No daemon is running' });
  expect(d.ipvsadmStopAgain.stderr.trim()).toBe('No daemon is running');
});

test('stats follow real traffic, match ipvsadm --stats, and zero clears them', () => {
  const s = report.stats!;
  expect(s.transferred).toBe('ping0\nping1\nping2\n');
  const st = s.afterTraffic.stats;
  expect(st.conns).toBe('3');
  expect(Number(st.inPkts)).toBeGreaterThanOrEqual(9);
  expect(Number(st.inBytes)).toBeGreaterThan(0);
  const svcLine = lines(s.ipvsadmStats).find((l) => l.startsWith('TCP'))!;
  expect(svcLine.split(/\s+/).slice(2)).toEqual([st.conns, st.inPkts, st.outPkts, st.inBytes, st.outBytes]);
  // A masq destination on a local address stays masq in the kernel's view.
  expect(s.afterTraffic.destinations[0].forward).toBe('masq');
  expect(s.afterTraffic.destinations[0].stats.conns).toBe('3');
  for (const v of Object.values(s.afterZero.stats).slice(0, 5)) expect(v).toBe('0');
});

test('flush empties the tables', () => {
  expect(report.flush!.save.stdout).toBe('');
  expect(report.flush!.services).toBe(0);
});

test('a 300 x 10 table: apply splits it into batches, the bulk read and the socket pool list it alike, -Sn matches ipvsadm', () => {
  const b = report.largeTable!;
  expect(b.applyOk).toBe(true);
  expect(b.applyBatches).toBeGreaterThan(1);
  expect(b.applyBatches).toBeLessThan(b.ops / 50);
  expect(b.listedServices).toBe(300);
  expect(b.listedDests).toBe(3000);
  expect(b.bulkAddon).toBe(true);
  expect(b.streamedAgrees).toBe(true);
  expect(b.poolVariantsAgree).toBe(true);
  expect(b.saveIdentical).toBe(true);
  expect(b.ipvsadmSaveLines).toBe(3300);
});
