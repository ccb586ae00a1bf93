/**
 * ipvs-bpfctl against the real ipvsadm 1.31 and real IPVS in the lab VM: both directions of restore
 * and save, every listing format, every bad command of the corpus, the executable itself, and the
 * atomic -R (nothing half-applied, the input line named). One VM boot runs
 * test/integration/vm/ipvs-bpfctl-checks.ts, which records; the judgement is here.
 */
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { runInVm } from '../lab/vm';
import { compileForVm } from '../lab/compile';
import { LISTINGS, type CtlReport, type Run } from './vm/ipvs-bpfctl-checks';

jest.setTimeout(20 * 60 * 1000);

const ROOT = path.resolve(__dirname, '../..');
const FIXTURES = path.join(ROOT, 'test/fixtures/rules');
const names = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.rules'))
  .map((f) => f.replace(/\.rules$/, ''));
let report: CtlReport;

/** Our messages name our program where ipvsadm names itself ("Try `ipvs-bpfctl -h' ..."). */
const asIpvsadm = (r: Run): Run => ({ ...r, stderr: r.stderr.replace(/ipvs-bpfctl/g, 'ipvsadm') });

beforeAll(async () => {
  compileForVm('tsconfig.json');
  const r = await runInVm({
    timeoutMs: 18 * 60 * 1000,
    script: 'modprobe ip_vs && node --single-threaded dist/test/integration/vm/ipvs-bpfctl-checks.js',
  });
  let text = '';
  try {
    text = readFileSync(path.join(r.outDir, 'ipvs-bpfctl-report.json'), 'utf8');
  } catch {
    throw new Error(`no report from the VM (exit ${r.exitCode}, ${r.error ?? ''}):\n${r.console.slice(-4000)}`);
  }
  report = JSON.parse(text) as CtlReport;
});

test('every step ran', () => {
  expect(report.failures).toEqual([]);
});

describe.each(names)('fixture %s', (name) => {
  const expected = (): string => readFileSync(path.join(FIXTURES, `${name}.expected`), 'utf8');

  test('ipvs-bpfctl -R, then ipvsadm -Sn prints the expected table', () => {
    const f = report.fixtures[name]!;
    expect(f.oursRestore).toEqual({ status: 0, stdout: '', stderr: '' });
    expect(f.ipvsadmSaveAfterOurs).toEqual({ status: 0, stdout: expected(), stderr: '' });
  });

  test('ipvsadm -R, then ipvs-bpfctl prints what ipvsadm prints, for -Sn and every -Ln format', () => {
    const f = report.fixtures[name]!;
    expect(f.ipvsadmRestore.status).toBe(0);
    expect(f.listings['-Sn']!.ours.stdout).toBe(expected());
    for (const l of LISTINGS) {
      expect({ listing: l, ...f.listings[l]!.ours }).toEqual({ listing: l, ...f.listings[l]!.ipvsadm });
    }
  });
});

test('every bad command: the same stderr and exit status as ipvsadm', () => {
  expect(report.bad.length).toBeGreaterThan(100);
  for (const b of report.bad) {
    expect({ args: b.args.join(' '), ...asIpvsadm(b.ours) }).toEqual({ args: b.args.join(' '), ...b.ipvsadm });
  }
});

test('--set / -L --timeout and the sync daemon commands match ipvsadm', () => {
  const b = report.binary;
  expect(b['set']).toEqual({ status: 0, stdout: '', stderr: '' });
  expect(b['timeout-ipvsadm']!.stdout).toBe('Timeout (tcp tcpfin udp): 901 122 301\n');
  expect(b['timeout-ours']).toEqual(b['timeout-ipvsadm']);
  expect(b['start-daemon']!.status).toBe(0);
  expect(b['daemon-ipvsadm']!.stdout).toMatch(/^master sync daemon \(mcast=lo, syncid=7/);
  expect(b['daemon-ours']).toEqual(b['daemon-ipvsadm']);
  expect(b['start-daemon-again']).toEqual({ status: 255, stdout: '', stderr: 'Daemon has already run\n' });
  expect(b['stop-daemon']!.status).toBe(0);
  expect(b['daemon-after-stop']!.stdout).toBe('');
});

describe('the executable', () => {
  test('-R from stdin, -Sn and -Ln --stats', () => {
    const b = report.binary;
    expect(b['R']).toEqual({ status: 0, stdout: '', stderr: '' });
    expect(b['R-ipvsadm-Sn']!.stdout).toBe(readFileSync(path.join(FIXTURES, 'basic-v4.expected'), 'utf8'));
    expect(b['Sn']).toEqual(b['R-ipvsadm-Sn']);
    expect(b['Ln-stats']).toEqual(b['Ln-stats-ipvsadm']);
  });

  test('errors: kernel refusal exits 255 with ipvsadm\'s text, bad input exits 2', () => {
    expect(report.binary['A-existing']).toEqual({ status: 255, stdout: '', stderr: 'Service already exists\n' });
    expect(report.binary['bad-weight']).toEqual({ status: 2, stdout: '', stderr: 'illegal weight specified\n' });
  });

  test('-h, -e, -Z, -C', () => {
    const b = report.binary;
    expect(b['h']!.status).toBe(0);
    expect(b['h']!.stdout).toMatch(/ipvs-bpfctl -A\|E virtual-service/);
    expect(b['e']!.status).toBe(0);
    expect(b['e-ipvsadm-Sn']!.stdout).toContain('-a -t 192.168.10.1:80 -r 10.0.0.12:8080 -m -w 9\n');
    expect(b['Z']!.status).toBe(0);
    expect(b['C']!.status).toBe(0);
    expect(b['C-ipvsadm-Sn']!.stdout).toBe('');
  });
});

describe('atomic -R', () => {
  test('a bad line: every bad line named, nothing applied, exit 2', () => {
    const a = report.atomic['bad-line']!;
    expect(a.run.status).toBe(2);
    expect(a.run.stderr).toBe('line 3: illegal weight specified\nipvs-bpfctl: -R input refused; nothing was changed\n');
    expect(a.after).toBe(a.before);
  });

  test('a line the kernel table would refuse is caught before any change', () => {
    const a = report.atomic['exists-in-kernel']!;
    expect(a.run.status).toBe(255);
    expect(a.run.stderr).toMatch(/^line 2: Service already exists\n/);
    expect(a.after).toBe(a.before);
  });

  test('a refusal part-way rolls back what was applied, names the line, exits 255', () => {
    const a = report.atomic['kernel-refusal']!;
    expect(a.before).toBe('-A -t 10.9.0.1:80 -s rr\n-a -t 10.9.0.1:80 -r 10.9.1.9:80 -m -w 3\n');
    expect(a.run.status).toBe(255);
    // Lines 1-3 were applied before the refusal; line 5 rode in the same pipelined batch and was
    // applied by the kernel after line 4 failed: all four are undone.
    expect(a.run.stderr).toBe('line 4: No such device (4 changes already applied were rolled back)\n');
    expect(a.after).toBe(a.before);
  });
});
