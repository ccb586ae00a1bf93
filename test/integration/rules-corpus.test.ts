/**
 * The rule corpus (test/fixtures/rules) against the real ipvsadm 1.31 and the real IPVS of the lab
 * VM: every *.rules file goes through `ipvsadm -R` and comes back through `ipvsadm -Sn` exactly as
 * its *.expected says and as formatSave() prints it; the listings (-Ln and its formats) match
 * formatList(); every bad command gives ipvsadm's exact stderr and exit status, as parseCommand()
 * and the replay say.
 */
import { promises as fs, readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { prepareLabKernel, runInVm, type LabVmResult } from '../lab/vm';
import type { DesiredService, ServiceState } from '../../src/ipvs/model';
import { ZERO_STATS } from '../../src/ipvs/model';
import {
  createFileResolver,
  desiredState,
  formatConnections,
  formatList,
  formatSave,
  formatTimeouts,
  parseCommand,
  parseRules,
  RuleError,
  usageText,
  versionText,
  applyOp,
  commandToOp,
  type FormatListOptions,
} from '../../src/ipvs/rules';

jest.setTimeout(20 * 60 * 1000);

const FIXTURES = path.join(__dirname, '../fixtures/rules');
const ruleFiles = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.rules'))
  .map((f) => f.replace(/\.rules$/, ''));

interface BadCase {
  args: string[];
  setup?: string[][];
  stderr: string;
  status: number;
}
const bad = JSON.parse(readFileSync(path.join(FIXTURES, 'bad-commands.json'), 'utf8')) as { parse: BadCase[]; kernel: BadCase[] };
const badCases: BadCase[] = [...bad.parse, ...bad.kernel];

/** Listing variants compared with formatList (zero counters: nothing flows in the VM). */
const LIST_VARIANTS: { name: string; args: string; opts: FormatListOptions }[] = [
  { name: 'Ln', args: '-Ln', opts: { numeric: true } },
  { name: 'Ln-thresholds', args: '-Ln --thresholds', opts: { numeric: true, thresholds: true } },
  { name: 'Ln-persistent-conn', args: '-Ln --persistent-conn', opts: { numeric: true, persistentConn: true } },
  { name: 'Ln-tun-info', args: '-Ln --tun-info', opts: { numeric: true, tunInfo: true } },
  { name: 'Ln-stats', args: '-Ln --stats', opts: { numeric: true, stats: true } },
  { name: 'Ln-stats-exact', args: '-Ln --stats --exact', opts: { numeric: true, stats: true, exact: true } },
  { name: 'Ln-rate', args: '-Ln --rate', opts: { numeric: true, rate: true } },
];

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function vmScript(): string {
  const lines = [
    'set -u',
    'modprobe ip_vs',
    'cd "$LAB_OUT"',
    `F=${shellQuote(FIXTURES)}`,
    'ipvsadm -v > version.out; ipvsadm -h > help.out',
  ];
  for (const name of ruleFiles) {
    lines.push(
      'ipvsadm -C',
      `grep -v '^#' "$F/${name}.rules" | ipvsadm -R > ${name}.R.out 2>&1; echo $? > ${name}.R.rc`,
      `ipvsadm -Sn > ${name}.Sn`,
      ...LIST_VARIANTS.map((v) => `ipvsadm ${v.args} > ${name}.${v.name}`),
    );
  }
  lines.push('ipvsadm -C', `grep -v '^#' "$F/names.rules" | ipvsadm -R`, 'ipvsadm -S > names.S');
  badCases.forEach((c, k) => {
    lines.push('ipvsadm -C');
    for (const s of c.setup ?? []) lines.push(`ipvsadm ${s.map(shellQuote).join(' ')}`);
    lines.push(`ipvsadm ${c.args.map(shellQuote).join(' ')} > bad${k}.out 2> bad${k}.err; echo $? > bad${k}.rc`);
  });
  lines.push(
    'ipvsadm -C',
    'ipvsadm --set 900 121 300; ipvsadm -L --timeout > timeout.out',
    // One UDP connection for the -c listing: a local client, a DR real server.
    'ip link set lo up; ip addr add 10.99.0.1/32 dev lo',
    'ipvsadm -A -u 10.99.0.1:53 -s rr; ipvsadm -a -u 10.99.0.1:53 -r 10.99.0.2:53 -g',
    'ipvsadm -A -t 10.99.0.1:80 -s rr -p 300; ipvsadm -a -t 10.99.0.1:80 -r 10.99.0.3:80 -g',
    'ip route add 10.99.0.0/24 dev lo 2>/dev/null || true',
    'echo probe > /dev/udp/10.99.0.1/53 || true',
    'timeout 2 bash -c "echo x > /dev/tcp/10.99.0.1/80" 2>/dev/null || true',
    'cat /proc/net/ip_vs_conn > conn1.proc; ipvsadm -Lnc > conn.out; ipvsadm -Lnc --persistent-conn > connpc.out; cat /proc/net/ip_vs_conn > conn2.proc',
    'echo done > done',
  );
  return lines.join('\n') + '\n';
}

let vm: LabVmResult;
const out = (name: string): string => readFileSync(path.join(vm.outDir, name), 'utf8');

/** Kernel-like state with zero counters, from a desired state. */
function asState(services: DesiredService[]): ServiceState[] {
  return services.map((s) => ({
    ...s,
    stats: { ...ZERO_STATS },
    destinations: s.destinations.map((d) => ({ ...d, activeConns: 0, inactiveConns: 0, persistConns: 0, stats: { ...ZERO_STATS } })),
  }));
}

beforeAll(async () => {
  await prepareLabKernel();
  vm = await runInVm({ script: vmScript(), timeoutMs: 18 * 60 * 1000 });
  if (vm.exitCode !== 0) throw new Error(`lab VM failed (${vm.exitCode}): ${vm.error ?? ''}\n${vm.console.slice(-3000)}`);
  await fs.access(path.join(vm.outDir, 'done'));
});

const resolver = createFileResolver();

describe('rule corpus through the real ipvsadm -R / -Sn', () => {
  it.each(ruleFiles)('%s: ipvsadm -R accepts it and -Sn prints the .expected file and formatSave()', (name) => {
    const text = readFileSync(path.join(FIXTURES, `${name}.rules`), 'utf8');
    const expected = readFileSync(path.join(FIXTURES, `${name}.expected`), 'utf8');
    expect(out(`${name}.R.out`)).toBe('');
    expect(out(`${name}.R.rc`).trim()).toBe('0');
    expect(out(`${name}.Sn`)).toBe(expected);
    const state = desiredState(parseRules(text, name, { resolver }).commands);
    expect(formatSave(state, { numeric: true })).toBe(out(`${name}.Sn`));
  });

  it.each(ruleFiles)('%s: every -Ln listing format matches formatList()', (name) => {
    const text = readFileSync(path.join(FIXTURES, `${name}.rules`), 'utf8');
    const state = asState(desiredState(parseRules(text, name, { resolver }).commands));
    for (const v of LIST_VARIANTS) {
      expect({ variant: v.name, text: formatList(state, { ...v.opts, info: { version: '1.2.1', connTableSize: 4096 } }) }).toEqual({
        variant: v.name,
        text: out(`${name}.${v.name}`),
      });
    }
  });

  it('ipvsadm -S (names) prints the names from /etc/hosts and /etc/services like formatSave()', () => {
    const text = readFileSync(path.join(FIXTURES, 'names.rules'), 'utf8');
    expect(out('names.S')).toBe(readFileSync(path.join(FIXTURES, 'names.expected-S'), 'utf8'));
    const state = desiredState(parseRules(text, 'names', { resolver }).commands);
    expect(formatSave(state, { resolver })).toBe(out('names.S'));
  });
});

describe('bad commands through the real ipvsadm', () => {
  it.each(badCases.map((c, k) => [c.args.join(' '), k] as const))('%s', (_label, k) => {
    const c = badCases[k];
    expect({ stderr: out(`bad${k}.err`), status: Number(out(`bad${k}.rc`).trim()) }).toEqual({ stderr: c.stderr, status: c.status });
    // And ours says the same.
    let state: DesiredService[] = [];
    let ours: { stderr: string; status: number } | undefined;
    try {
      for (const s of c.setup ?? []) {
        const op = commandToOp(parseCommand(s, { resolver }));
        if (op) state = applyOp(state, op);
      }
      const op = commandToOp(parseCommand(c.args, { resolver }));
      if (op) applyOp(state, op);
    } catch (e) {
      if (!(e instanceof RuleError)) throw e;
      ours = { stderr: `${e.message}\n`, status: e.exitStatus };
    }
    expect(ours).toEqual({ stderr: c.stderr, status: c.status });
  });
});

describe('other listings through the real ipvsadm', () => {
  it('-v and -h', () => {
    expect(out('version.out')).toBe(versionText());
    expect(out('help.out')).toBe(usageText());
  });

  it('-L --timeout', () => {
    expect(out('timeout.out')).toBe(formatTimeouts({ tcp: 900, tcpFin: 121, udp: 300 }));
  });

  it('-Lnc and -Lnc --persistent-conn from /proc/net/ip_vs_conn', () => {
    const procs = [out('conn1.proc'), out('conn2.proc')];
    expect(procs[0].split('\n').length).toBeGreaterThan(2);
    // The emulated VM is slow: seconds pass between the reads, so the expire column (mm:ss) is
    // compared apart: it must lie between what the /proc reads before and after showed.
    const expires = (t: string): string[] => t.split('\n').slice(2).filter(Boolean).map((l) => l.slice(4, 9));
    const masked = (t: string): string => t.replace(/^(\S+ +)\d\d:\d\d/gm, '$1MM:SS');
    const within = (listing: string, lo: string, hi: string): boolean =>
      expires(listing).every((e, i) => e >= expires(lo)[i]! && e <= expires(hi)[i]!);
    for (const [file, opts] of [
      ['conn.out', { numeric: true }],
      ['connpc.out', { numeric: true, persistentConn: true }],
    ] as const) {
      const [later, earlier] = procs.map((p) => formatConnections(p, opts)).reverse();
      expect(masked(out(file))).toBe(masked(earlier!));
      expect(masked(out(file))).toBe(masked(later!));
      expect(within(out(file), later!, earlier!)).toBe(true);
    }
  });
});
