/**
 * Runs inside the lab VM (as root, real IPVS): exercises the netlink client against the kernel and the real
 * ipvsadm, and writes what it observed to $LAB_OUT/ipvs-netlink-report.json. It asserts nothing itself: the
 * jest test (ipvs-netlink.test.ts) holds the expectations. Compiled by tsc to dist/, started with node.
 *
 * Environment: LAB_OUT (report dir), IPVS_LARGE_SERVICES (0 = no large-table check), IPVS_LARGE_DESTS,
 * IPVS_SKIP_CHECKS=1 (the large-table check only).
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import * as path from 'node:path';
import { IpvsError } from '../../../src/ipvs/errors';
import type { IpvsOp, ServiceKey, ServiceState } from '../../../src/ipvs/model';
import { IpvsClient, type ApplyResult } from '../../../src/ipvs/netlink';
import { netlinkAddon } from '../../../src/ipvs/netlink/bulk';
import { formatSave } from '../../../src/ipvs/rules/format';
import { sortServices } from '../../../src/ipvs/rules/sort';
import {
  CREATE_CASES,
  IPVSADM_RULES,
  dest,
  withoutState,
  type LargeTableFigures,
  largeTableOps,
  type CommandRun,
  type Jsonish,
  type LabReport,
  type ObservedError,
} from './ipvs-netlink-cases';

const report: LabReport = { failures: [] };

function run(command: string, input?: string): CommandRun {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('bash', ['-c', command], { input, encoding: 'utf8', maxBuffer: 256 << 20 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { command, status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', ms };
}

function observed(e: unknown): ObservedError | null {
  if (e instanceof IpvsError) return { errno: e.errno, code: e.code, message: e.message };
  throw e;
}

async function tryOp(f: () => Promise<unknown>): Promise<ObservedError | null> {
  try {
    await f();
    return null;
  } catch (e) {
    return observed(e);
  }
}

const statuses = (r: ApplyResult): string[] =>
  r.results.map((x) => (x.status === 'ok' || x.status === 'skipped' ? x.status : `${x.status}:${x.error.code}`));

function jsonish(s: ServiceState): Jsonish<ServiceState> {
  return JSON.parse(JSON.stringify(s, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as Jsonish<
    ServiceState
  >;
}

async function step(name: string, f: () => Promise<void>): Promise<void> {
  const t0 = Date.now();
  try {
    await f();
    console.log(`ipvs-netlink-checks: ${name} done in ${Date.now() - t0} ms`);
  } catch (e) {
    const msg = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e);
    report.failures.push(`${name}: ${msg}`);
    console.log(`ipvs-netlink-checks: ${name} FAILED: ${msg}`);
  }
}

async function main(): Promise<void> {
  const out = process.env.LAB_OUT ?? '/tmp';
  const loaded = (): boolean => /^ip_vs /m.test(readFileSync('/proc/modules', 'utf8'));
  const loadedBefore = loaded();
  const c = await IpvsClient.open();
  report.autoload = { loadedBefore, loadedAfter: loaded() };
  try {
    await step('flush-start', () => c.flush());
    await step('info', async () => {
      report.info = await c.info();
    });

    const checks = process.env.IPVS_SKIP_CHECKS !== '1';
    if (checks) await step('create', async () => {
      const ops: IpvsOp[] = [];
      for (const { service } of CREATE_CASES) {
        ops.push({ op: 'add-service', service });
        for (const d of service.destinations) ops.push({ op: 'add-dest', service: service.key, dest: d });
      }
      const r = await c.apply(ops);
      const listed = await c.services();
      const one = await c.service(CREATE_CASES[3].service.key);
      const missing = await c.service({ kind: 'fwmark', family: 'inet', fwmark: 4242 });
      report.create = {
        applyStatuses: statuses(r),
        save: run('ipvsadm -Sn'),
        thresholds: run('ipvsadm -Ln --exact --thresholds'),
        tunInfo: run('ipvsadm -Ln --exact --tun-info'),
        decoded: listed.map(withoutState),
        one: one ? withoutState(one) : null,
        missing: missing ? withoutState(missing) : null,
      };
    });

    if (checks) await step('errors', async () => {
      const svc = CREATE_CASES[0].service;
      const key = svc.key;
      const nokey: ServiceKey = { kind: 'addr', family: 'inet', protocol: 'tcp', address: '10.99.0.1', port: 80 };
      const d0 = svc.destinations[0];
      const nod = dest('inet', '10.99.9.9', 80, 'masq', 1);
      const checks: [string, () => Promise<unknown>, string][] = [
        ['add existing service', () => c.addService(svc), 'ipvsadm -A -t 10.10.0.1:80 -s rr'],
        ['edit missing service', () => c.editService({ ...svc, key: nokey }), 'ipvsadm -E -t 10.99.0.1:80 -s rr'],
        ['delete missing service', () => c.deleteService(nokey), 'ipvsadm -D -t 10.99.0.1:80'],
        [
          'bad scheduler',
          () => c.addService({ ...svc, key: nokey, scheduler: 'nosuchsched' }),
          'ipvsadm -A -t 10.99.0.1:80 -s nosuchsched',
        ],
        [
          'bad persistence engine',
          () => c.addService({ ...svc, key: nokey, pe: 'nope', flags: { ...svc.flags, persistent: true }, persistenceTimeout: 60 }),
          'ipvsadm -A -t 10.99.0.1:80 -s rr -p 60 --pe nope',
        ],
        ['add dest to missing service', () => c.addDest(nokey, nod), 'ipvsadm -a -t 10.99.0.1:80 -r 10.99.9.9:80 -m'],
        ['add existing dest', () => c.addDest(key, d0), 'ipvsadm -a -t 10.10.0.1:80 -r 10.10.1.1:8080 -m'],
        ['edit missing dest', () => c.editDest(key, nod), 'ipvsadm -e -t 10.10.0.1:80 -r 10.99.9.9:80 -m'],
        ['delete missing dest', () => c.deleteDest(key, nod), 'ipvsadm -d -t 10.10.0.1:80 -r 10.99.9.9:80'],
        [
          'thresholds out of order',
          () => c.addDest(key, { ...nod, upperThreshold: 5, lowerThreshold: 10 }),
          'ipvsadm -a -t 10.10.0.1:80 -r 10.99.9.9:80 -m -x 5 -y 10',
        ],
        ['zero missing service', () => c.zero(nokey), 'ipvsadm -Z -t 10.99.0.1:80'],
        ['stop missing daemon', () => c.stopDaemon('backup'), 'ipvsadm --stop-daemon backup'],
      ];
      report.errors = [];
      for (const [name, f, cmd] of checks) report.errors.push({ name, ours: await tryOp(f), ipvsadm: run(cmd) });
    });

    if (checks) await step('batch', async () => {
      const base = CREATE_CASES[0].service;
      const mk = (address: string) => ({ ...base, key: { ...base.key, address } as ServiceKey, destinations: [] });
      const a = mk('10.40.0.1');
      const b = mk('10.40.0.2');
      const same = await c.apply([
        { op: 'add-service', service: a },
        { op: 'add-service', service: a },
        { op: 'add-service', service: b },
      ]);
      const one = await IpvsClient.open({ maxBatchOps: 1 });
      let stop: ApplyResult;
      try {
        stop = await one.apply(
          [
            { op: 'add-service', service: mk('10.40.0.3') },
            { op: 'add-service', service: mk('10.40.0.3') },
            { op: 'add-service', service: mk('10.40.0.4') },
          ],
          { stopOnError: true },
        );
      } finally {
        one.close();
      }
      report.batch = {
        sameBatch: statuses(same),
        stopOnError: statuses(stop),
        stopOnErrorBatches: stop.batches,
        save: run('ipvsadm -Sn | grep 10.40.0. || true'),
      };
    });

    if (checks) await step('timeouts', async () => {
      const initial = await c.timeouts();
      await c.setTimeouts({ tcp: 1000, tcpFin: 60, udp: 200 });
      const afterSet = await c.timeouts();
      const ipvsadmList = run('ipvsadm -L --timeout');
      run('ipvsadm --set 901 121 301');
      const afterIpvsadmSet = await c.timeouts();
      run(`ipvsadm --set ${initial.tcp} ${initial.tcpFin} ${initial.udp}`);
      report.timeouts = { initial, afterSet, ipvsadmList, afterIpvsadmSet };
    });

    if (checks) await step('daemons', async () => {
      // The sync protocol refuses mixed-family services: remove them first.
      await c.flush();
      const r = await c.apply([
        {
          op: 'start-daemon',
          daemon: {
            state: 'master',
            mcastIfn: 'lo',
            syncId: 5,
            syncMaxLen: 1000,
            mcastGroup: '239.0.0.5',
            mcastPort: 9999,
            mcastTtl: 3,
          },
        },
      ]);
      const ours = await c.daemons();
      const ipvsadmList = run('ipvsadm -L --daemon');
      const ipvsadmStartBackup = run('ipvsadm --start-daemon backup --mcast-interface lo --syncid 7');
      const withBackup = await c.daemons();
      await c.stopDaemon('master');
      if (ipvsadmStartBackup.status === 0) await c.stopDaemon('backup');
      const afterStop = await c.daemons();
      const stopAgain = await tryOp(() => c.stopDaemon('master'));
      report.daemons = {
        startStatuses: statuses(r),
        ours,
        ipvsadmList,
        ipvsadmStartBackup,
        withBackup,
        afterStop,
        stopAgain,
        ipvsadmStopAgain: run('ipvsadm --stop-daemon master'),
      };
    });

    if (checks) await step('stats-and-zero', async () => {
      const setup = run(
        [
          'set -e',
          'ip netns add nlc',
          'ip link add nl0 type veth peer name nl1 netns nlc',
          'ip addr add 198.51.100.1/24 dev nl0 && ip link set nl0 up',
          'ip -n nlc addr add 198.51.100.2/24 dev nl1 && ip -n nlc link set nl1 up && ip -n nlc link set lo up',
        ].join('\n'),
      );
      if (setup.status !== 0) throw new Error(`netns setup failed: ${setup.stderr}`);
      const key: ServiceKey = { kind: 'addr', family: 'inet', protocol: 'tcp', address: '198.51.100.1', port: 7000 };
      await c.addService({
        key,
        scheduler: 'rr',
        flags: { persistent: false, onePacket: false, sched1: false, sched2: false, sched3: false },
        persistenceTimeout: 0,
        netmask: 0xffffffff,
        pe: '',
      });
      await c.addDest(key, dest('inet', '198.51.100.1', 7000, 'masq', 1));
      let received = '';
      const server = createServer((sock) => {
        sock.on('data', (d) => (received += d.toString()));
        sock.on('end', () => sock.end('pong\n'));
      });
      await new Promise<void>((res) => server.listen(7000, '198.51.100.1', () => res()));
      const port = (server.address() as AddressInfo).port;
      for (let i = 0; i < 3; i++) {
        await new Promise<void>((res) => {
          const p = spawn('ip', ['netns', 'exec', 'nlc', 'nc', '-N', '198.51.100.1', String(port)], {
            stdio: ['pipe', 'ignore', 'ignore'],
          });
          p.stdin.end(`ping${i}\n`);
          p.on('close', () => res());
        });
      }
      server.close();
      // Linux 6.1 publishes IPVS counters from its rate estimator, which folds the per-CPU counters
      // every 2 s: wait until all three connections show (bounded), then read both tools together.
      let afterTraffic = await c.service(key);
      for (let waited = 0; waited < 20_000 && (afterTraffic?.stats.conns ?? 0n) < 3n; waited += 500) {
        await new Promise((res) => setTimeout(res, 500));
        afterTraffic = await c.service(key);
      }
      await new Promise((res) => setTimeout(res, 2500));
      afterTraffic = await c.service(key);
      const ipvsadmStats = run('ipvsadm -Ln --stats --exact -t 198.51.100.1:7000');
      await c.zero(key);
      const afterZero = await c.service(key);
      if (!afterTraffic || !afterZero) throw new Error('service vanished');
      report.stats = {
        afterTraffic: jsonish(afterTraffic),
        ipvsadmStats,
        afterZero: jsonish(afterZero),
        transferred: received,
      };
      await c.deleteService(key);
    });

    if (checks) await step('from-ipvsadm', async () => {
      await c.flush();
      const restore = run('ipvsadm -R', IPVSADM_RULES);
      report.fromIpvsadm = { restore, decoded: (await c.services()).map(withoutState) };
    });

    await step('flush', async () => {
      await c.flush();
      report.flush = { save: run('ipvsadm -Sn'), services: (await c.services()).length };
    });

    const nLarge = Number(process.env.IPVS_LARGE_SERVICES ?? '0');
    if (nLarge > 0) await step('large-table', () => largeTable(c, nLarge, Number(process.env.IPVS_LARGE_DESTS ?? '10')));
  } finally {
    c.close();
    writeFileSync(path.join(out, 'ipvs-netlink-report.json'), JSON.stringify(report, null, 1));
  }
}

/**
 * A table large enough that apply() must split it into several sendmsg batches and the listing must spread
 * over the dump socket pool: what we write, what we read (in bulk through the netlink addon, and over a pool of 64
 * dump sockets) and what ipvsadm reads agree.
 * Functional only; the timings are the benchmark's (test/bench/vm/netlink-list.ts, npm run bench:ipvs).
 */
async function largeTable(c: IpvsClient, n: number, perService: number): Promise<void> {
  await c.flush();
  const ops = largeTableOps(n, perService);
  const r = await c.apply(ops);
  const listed = await c.services(); // bulk: through the netlink addon
  const pooled = await IpvsClient.open({ bulkReads: false, dumpSockets: 64, dumpReadBufferSize: 16384 });
  let other: ServiceState[];
  try {
    other = await pooled.services({ counters: false });
  } finally {
    pooled.close();
  }
  const streamed: ServiceState[] = [];
  await c.eachService({ counters: false, order: (l) => sortServices(l) }, (svc) => streamed.push(svc));
  const save = run('ipvsadm -Sn');
  const figures: LargeTableFigures = {
    services: n,
    destsPerService: perService,
    ops: ops.length,
    applyBatches: r.batches,
    applyOk: r.ok,
    listedServices: listed.length,
    listedDests: listed.reduce((s, x) => s + x.destinations.length, 0),
    bulkAddon: netlinkAddon() !== null,
    streamedAgrees: JSON.stringify(streamed.map(withoutState)) === JSON.stringify(sortServices(other).map(withoutState)),
    poolVariantsAgree: JSON.stringify(listed.map(withoutState)) === JSON.stringify(other.map(withoutState)),
    saveIdentical: formatSave(other, { numeric: true }) === save.stdout,
    ipvsadmSaveLines: save.stdout.split('\n').length - 1,
  };
  report.largeTable = figures;
  await c.flush();
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error('ipvs-netlink-checks: fatal', e);
    try {
      writeFileSync(
        path.join(process.env.LAB_OUT ?? '/tmp', 'ipvs-netlink-report.json'),
        JSON.stringify({ ...report, failures: [...report.failures, `fatal: ${String(e)}`] }, null, 1),
      );
    } finally {
      process.exit(1);
    }
  },
);
