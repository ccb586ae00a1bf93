/**
 * Drain (D-Bus Drain, `ipvs-bpfctl drain`): weight 0 at once, removal when the real server's connections
 * end or when the maximum time is up, held against the sources (a reload does not put it back) until no
 * source names the real server. Over a simulated kernel (pure daemon logic).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../src/daemon/config';
import { ChangeRefused, Daemon, ruleFilesOnly } from '../../src/daemon/daemon';
import { plainIpvs } from '../../src/daemon/datapath';
import type { Logger } from '../../src/daemon/log';
import { ZERO_STATS, type DesiredService, type IpvsOp, type ServiceKey, type ServiceState } from '../../src/ipvs/model';
import type { IpvsClient } from '../../src/ipvs/netlink';
import { formatSave } from '../../src/ipvs/rules';
import { SimulatedTable } from '../../src/ipvs/rules/simulate';

/** The simulated kernel; `conns` sets a real server's active connections. */
class Kernel {
  readonly table = new SimulatedTable();
  conns = new Map<string, number>();
  private withCounters(s: DesiredService): ServiceState {
    return {
      ...s, stats: { ...ZERO_STATS },
      destinations: s.destinations.map((d) => ({ ...d, activeConns: this.conns.get(`${d.address}:${d.port}`) ?? 0, inactiveConns: 0, persistConns: 0, stats: { ...ZERO_STATS } })),
    };
  }
  async services(): Promise<ServiceState[]> {
    return this.table.services().map((s) => this.withCounters(s));
  }
  async eachService(_opts: unknown, each: (s: ServiceState) => void): Promise<void> {
    for (const s of await this.services()) each(s);
  }
  async service(k: ServiceKey): Promise<ServiceState | null> {
    const s = this.table.service(k);
    return s ? this.withCounters(s) : null;
  }
  async timeouts() {
    return { tcp: 900, tcpFin: 120, udp: 300 };
  }
  async daemons() {
    return [];
  }
  async apply(ops: readonly IpvsOp[]) {
    const results = ops.map((op) => {
      this.table.apply(op);
      return { op, status: 'ok' as const };
    });
    return { ok: true, results, applied: results.length, failed: 0, unknown: 0, skipped: 0, firstError: undefined, batches: 1 };
  }
  close(): void {}
}

const lines: string[] = [];
const log = Object.fromEntries([
  ...['emerg', 'alert', 'crit', 'error', 'warning', 'notice', 'info', 'debug'].map((l) => [l, (m: string) => void lines.push(`${l}: ${m}`)]),
  ['setLevel', () => undefined],
]) as unknown as Logger;
const dir = mkdtempSync(path.join(tmpdir(), 'ipvs-bpf-drain-'));
const rules = path.join(dir, 'a.rules');
writeFileSync(path.join(dir, 'none.json'), '{}');
const loadCfg = () => loadConfig({ args: [`--rules=${rules}`, '--mode=ipvs', '--dbus=none', `--config=${path.join(dir, 'none.json')}`], env: {} });
const TWO = '-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 3\n-a -t 10.0.0.1:80 -r 10.1.0.2:80 -m -w 1\n';
const table = (k: Kernel): string => formatSave(k.table.services(), { numeric: true });
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('drain', () => {
  test('weight 0 now, removed when its connections end, held over a reload until no source names it', async () => {
    writeFileSync(rules, TWO);
    const k = new Kernel();
    const d = await Daemon.start(loadCfg(), { log, loadConfig: loadCfg, ipvs: k as unknown as IpvsClient, dataPath: async () => plainIpvs(''), sources: ruleFilesOnly });
    k.conns.set('10.1.0.1:80', 2);
    expect(await d.drain('tcp 10.0.0.1:80', '10.1.0.1:80', 60)).toBe('draining 10.1.0.1:80 of tcp 10.0.0.1:80: weight 0, removed when its connections end (at most 60 s)');
    expect(table(k)).toContain('-r 10.1.0.1:80 -m -w 0');
    // A reload while draining keeps weight 0 (the rule file still says 3).
    await d.reload();
    expect(table(k)).toContain('-r 10.1.0.1:80 -m -w 0');
    await wait(1500);
    expect(table(k)).toContain('-r 10.1.0.1:80 -m -w 0'); // connections still there
    k.conns.set('10.1.0.1:80', 0);
    await wait(1500);
    expect(table(k)).toBe('-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.0.2:80 -m -w 1\n');
    expect(lines).toContain('notice: drained 10.1.0.1:80 of tcp 10.0.0.1:80: removed (no connections left)');
    expect(d.drainStatus()).toEqual([{ serviceId: 'tcp 10.0.0.1:80', serverId: '10.1.0.1:80', removed: true, secondsLeft: 0 }]);
    // Still out after a reload; once the file drops it, the drain is over, and adding it back adds it.
    await d.reload();
    expect(table(k)).not.toContain('10.1.0.1:80');
    writeFileSync(rules, '-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.0.2:80 -m -w 1\n');
    await d.reload();
    expect(d.drainStatus()).toEqual([]);
    writeFileSync(rules, TWO);
    await d.reload();
    expect(table(k)).toContain('-r 10.1.0.1:80 -m -w 3');
    await d.stop();
  });

  test('removed when the maximum time is up, connections or not; bad arguments refused', async () => {
    writeFileSync(rules, TWO);
    const k = new Kernel();
    const d = await Daemon.start(loadCfg(), { log, loadConfig: loadCfg, ipvs: k as unknown as IpvsClient, dataPath: async () => plainIpvs(''), sources: ruleFilesOnly });
    k.conns.set('10.1.0.2:80', 5);
    await d.drain('tcp 10.0.0.1:80', '10.1.0.2:80', 1);
    await wait(2600);
    expect(table(k)).not.toContain('10.1.0.2:80');
    expect(lines).toContain('notice: drained 10.1.0.2:80 of tcp 10.0.0.1:80: removed (time up with 5 connections left)');
    await expect(d.drain('tcp 10.0.0.9:80', '10.1.0.2:80', 1)).rejects.toThrow(ChangeRefused);
    await expect(d.drain('tcp 10.0.0.1:80', '10.9.9.9:80', 1)).rejects.toThrow('service tcp 10.0.0.1:80 has no real server "10.9.9.9:80"');
    await expect(d.drain('tcp 10.0.0.1:80', '10.1.0.1:80', -1)).rejects.toThrow('maximum drain time -1 s is out of range');
    await d.stop();
  });
});

describe('ipvs-bpfctl drain arguments', () => {
  const run = async (args: string[]): Promise<{ code: number; err: string; out: string }> => {
    const { drainMain } = await import('../../src/cli/drain');
    let err = '';
    let out = '';
    const code = await drainMain(args, { out: (t) => void (out += t), err: (t) => void (err += t) });
    return { code, err, out };
  };
  test.each([
    [['tcp 10.0.0.1:80'], 'needs SERVICE and SERVER'],
    [['tcp 10.0.0.1:80', '10.1.0.1:80', '--max-time', 'x'], '--max-time takes a number of seconds (0-604800), not x'],
    [['tcp 10.0.0.1:80', '10.1.0.1:80', '--wait'], 'unknown option --wait'],
  ])('%j is refused with status 2', async (args, msg) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.err).toContain(msg);
  });
  test('--help', async () => expect((await run(['--help'])).out).toMatch(/^Usage: ipvs-bpfctl drain SERVICE SERVER \[--max-time SECONDS\]/));
});
