/**
 * Safe defaults: which mode a configuration runs (bpf only with interfaces that exist and SNAT addresses
 * assigned here), --check-config's verdict, this namespace read over rtnetlink, and the alerts on the
 * patched IPVS's fallback counters (logged rate-limited, shown in the status).
 */
import { mkdtempSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { ALERT_COUNTERS, CounterAlerts } from '../../src/daemon/alerts';
import { loadConfig } from '../../src/daemon/config';
import { checkConfig } from '../../src/daemon/main';
import { bpfProblems, chooseMode, NO_BPF_KERNEL, readNetState, type NetState } from '../../src/daemon/preflight';
import { formatStatus } from '../../src/cli/status';
import { emptyStatus } from '../../src/daemon/dbus-api';

const dir = mkdtempSync(path.join(tmpdir(), 'ipvs-bpf-mode-'));
const rules = path.join(dir, 'rules');
writeFileSync(rules, '-A -t 10.0.0.100:80 -s rr\n');
const HERE: NetState = { links: new Set(['lo', 'eth0', 'eth1']), addresses: new Map([['127.0.0.1', 'lo'], ['10.9.0.1', 'lo'], ['192.0.2.2', 'eth0']]) };
const cfg = (over: object): ReturnType<typeof loadConfig> => {
  const f = path.join(dir, `c${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(f, JSON.stringify({ rules: [rules], ...over }));
  return loadConfig({ env: { IPVS_BPF_CONFIG: f } });
};

describe('the mode a start runs', () => {
  test('the shipped defaults (auto, no interfaces, no SNAT address) run plain IPVS even with the patched kernel, and say why', () => {
    const c = cfg({});
    expect([c.mode, c.interfaces, c.snat.addresses]).toEqual(['auto', [], []]);
    const ch = chooseMode(c, true, HERE);
    expect(ch.mode).toBe('ipvs');
    expect(ch.reason).toBe('auto: not using the BPF mode: interfaces: none configured (bpf mode needs the interfaces towards the clients and '
      + 'the real servers); snat.addresses: none configured (bpf mode needs a local address the real servers route back to)');
  });

  test('auto: bpf only with the patched kernel, existing interfaces and assigned SNAT addresses', () => {
    const good = cfg({ interfaces: ['eth0', 'eth1'], snat: { addresses: ['10.9.0.1'] } });
    expect(chooseMode(good, true, HERE)).toEqual(expect.objectContaining({ mode: 'bpf', problems: [] }));
    expect(chooseMode(good, false, HERE)).toEqual({ mode: 'ipvs', reason: `auto: ${NO_BPF_KERNEL}`, problems: [] });
    const missing = cfg({ interfaces: ['eth0', 'eth7'], snat: { addresses: ['10.9.0.1', '10.9.0.2'] } });
    expect(chooseMode(missing, true, HERE)).toEqual({
      mode: 'ipvs', problems: [],
      reason: 'auto: not using the BPF mode: interfaces: eth7 does not exist; snat.addresses: 10.9.0.2 is not assigned to any local interface',
    });
  });

  test('bpf: every problem, each naming its key; ipvs: none checked', () => {
    expect(chooseMode(cfg({ mode: 'bpf', interfaces: ['eth9'], snat: { addresses: ['10.9.0.9'] } }), true, HERE).problems).toEqual([
      'interfaces: eth9 does not exist', 'snat.addresses: 10.9.0.9 is not assigned to any local interface',
    ]);
    expect(bpfProblems(cfg({ mode: 'bpf', interfaces: [] }), HERE)).toHaveLength(2);
    expect(chooseMode(cfg({ mode: 'ipvs' }), true, HERE)).toEqual({ mode: 'ipvs', reason: '', problems: [] });
  });
});

describe('--check-config', () => {
  const run = async (args: string[], net: NetState): Promise<{ code: number; out: string; err: string }> => {
    let out = '';
    let err = '';
    const code = await checkConfig(args, { out: (t) => void (out += t), err: (t) => void (err += t), env: {} }, async () => net);
    return { code, out, err };
  };
  const conf = (over: object): string => {
    const f = path.join(dir, `cc${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(f, JSON.stringify({ rules: [rules], ...over }));
    return `--config=${f}`;
  };

  test('mode bpf with an SNAT address not assigned here: exit 78, the key and the address named', async () => {
    const r = await run([conf({ mode: 'bpf', interfaces: ['eth0'], snat: { addresses: ['10.9.0.1', '10.9.0.5'] } })], HERE);
    expect(r).toEqual({ code: 78, out: '', err: 'ipvs-bpf: configuration invalid (mode bpf):\nsnat.addresses: 10.9.0.5 is not assigned to any local interface\n' });
  });

  test('mode auto says what a start here runs; mode bpf with everything in place is valid', async () => {
    const a = await run([conf({})], HERE);
    expect(a.code).toBe(0);
    expect(a.out).toMatch(/^mode auto: a start here runs plain IPVS: /m);
    const b = await run([conf({ mode: 'bpf', interfaces: ['eth0'], snat: { addresses: ['10.9.0.1'] } })], HERE);
    expect(b).toEqual(expect.objectContaining({ code: 0, err: '' }));
  });
});

test("this namespace over rtnetlink: lo exists and holds 127.0.0.1; an address nobody has is absent", async () => {
  const s = await readNetState();
  expect(s.links.has('lo')).toBe(true);
  expect(s.addresses.get('127.0.0.1')).toBe('lo');
  expect(s.addresses.has('192.0.2.254')).toBe(false);
  expect(bpfProblems({ interfaces: ['lo', 'nosuch0'], snat: { addresses: ['127.0.0.1', '192.0.2.254'], portMin: 1, portMax: 2, fallback: 'nat' } }, s))
    .toEqual(['interfaces: nosuch0 does not exist', 'snat.addresses: 192.0.2.254 is not assigned to any local interface']);
});

describe('alerts on the fallback counters', () => {
  const counters = (over: Record<string, number>): Record<string, string> =>
    Object.fromEntries([...Object.keys(ALERT_COUNTERS), 'inserts'].map((k) => [k, String(over[k] ?? 0)]));

  test('the first reading is the baseline; growth is logged at once, then at most once per interval per counter', () => {
    const a = new CounterAlerts(60_000);
    expect(a.observe(counters({ fallbacks: 5, inserts: 9 }), 0)).toEqual([]);
    expect(a.status()).toEqual([]);
    expect(a.observe(counters({ fallbacks: 7, ports_exhausted: 2, inserts: 99 }), 5_000)).toEqual([
      `kernel counter fallbacks grew by 2 to 7 in the last 5 s: ${ALERT_COUNTERS.fallbacks}`,
      `kernel counter ports_exhausted grew by 2 to 2 in the last 5 s: ${ALERT_COUNTERS.ports_exhausted}`,
    ]);
    expect(a.observe(counters({ fallbacks: 9, ports_exhausted: 2 }), 10_000)).toEqual([]);
    expect(a.observe(counters({ fallbacks: 12, ports_exhausted: 2, map_full: 1 }), 30_000)).toEqual([
      `kernel counter map_full grew by 1 to 1 in the last 30 s: ${ALERT_COUNTERS.map_full}`,
    ]);
    expect(a.observe(counters({ fallbacks: 12, ports_exhausted: 2, map_full: 1 }), 65_000)).toEqual([
      `kernel counter fallbacks grew by 5 to 12 in the last 60 s: ${ALERT_COUNTERS.fallbacks}`,
    ]);
    expect(a.status()).toEqual([
      { counter: 'fallbacks', value: 12n, increase: 7n, lastUsec: 30_000_000n, meaning: ALERT_COUNTERS.fallbacks },
      { counter: 'ports_exhausted', value: 2n, increase: 2n, lastUsec: 5_000_000n, meaning: ALERT_COUNTERS.ports_exhausted },
      { counter: 'map_full', value: 1n, increase: 1n, lastUsec: 30_000_000n, meaning: ALERT_COUNTERS.map_full },
    ]);
  });

  test('a counter that goes down (module reloaded) is a new baseline, not an alert; missing counters are skipped', () => {
    const a = new CounterAlerts(60_000);
    a.observe(counters({ insert_errors: 50 }), 0);
    expect(a.observe(counters({ insert_errors: 3 }), 1_000)).toEqual([]);
    expect(a.observe({}, 2_000)).toEqual([]);
    expect(a.observe(counters({ insert_errors: 4 }), 3_000)).toEqual([
      `kernel counter insert_errors grew by 1 to 4 in the last 2 s: ${ALERT_COUNTERS.insert_errors}`,
    ]);
  });

  test('ipvs-bpfctl status shows them', () => {
    const s = emptyStatus();
    s.alerts = [{ counter: 'ports_exhausted', value: 9n, increase: 4n, lastUsec: 1_700_000_000_000_000n, meaning: 'm' }];
    expect(formatStatus(s)).toContain('ALERT ports_exhausted 9 (+4 since the daemon started, last 2023-11-14T22:13:20.000Z): m\n');
  });
});
