/**
 * Runs in the lab VM (real IPVS, real ipvsadm 1.31): drives ipvs-bpfctl and ipvsadm side by side and
 * records what each printed and returned, for test/integration/ipvs-bpfctl.test.ts to judge.
 *
 * Most runs call the CLI's main() in-process (node starts slowly under TCG); a few spawn bin/ipvs-bpfctl
 * itself so the executable, its exit statuses and stdin handling are covered too.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { main } from '../../../src/cli/ipvs-bpfctl';

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

export interface BadCase {
  args: string[];
  setup?: string[][];
  stderr: string;
  status: number;
}

export interface CtlReport {
  fixtures: Record<
    string,
    {
      /** ours -R (in-process), then ipvsadm -Sn */
      oursRestore: Run;
      ipvsadmSaveAfterOurs: Run;
      /** ipvsadm -R, then ours -Sn and every listing by both */
      ipvsadmRestore: Run;
      listings: Record<string, { ipvsadm: Run; ours: Run }>;
    }
  >;
  bad: { args: string[]; ipvsadm: Run; ours: Run }[];
  binary: Record<string, Run>;
  atomic: Record<string, { before: string; run: Run; after: string }>;
  failures: string[];
}

const ROOT = path.resolve(__dirname, '../../../..');
const FIXTURES = path.join(ROOT, 'test/fixtures/rules');
const CTL = path.join(ROOT, 'bin/ipvs-bpfctl');

export const LISTINGS = ['-Sn', '-Ln', '-Ln --stats', '-Ln --stats --exact', '-Ln --rate', '-Ln --thresholds', '-Ln --persistent-conn', '-Ln --tun-info'];

function sh(cmd: string, args: string[], input?: string): Run {
  const r = spawnSync(cmd, args, { input: input ?? '', encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

const ipvsadm = (args: string[], input?: string): Run => sh('ipvsadm', args, input);

async function ours(args: string[], input = ''): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const status = await main(args, { out: (t) => void (stdout += t), err: (t) => void (stderr += t), stdin: () => input });
  return { status, stdout, stderr };
}

const words = (s: string): string[] => s.split(' ').filter((w) => w !== '');
const save = (): string => ipvsadm(['-Sn']).stdout;

async function run(): Promise<CtlReport> {
  const report: CtlReport = { fixtures: {}, bad: [], binary: {}, atomic: {}, failures: [] };
  const step = async (name: string, f: () => Promise<void>): Promise<void> => {
    try {
      await f();
    } catch (e) {
      report.failures.push(`${name}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
  };

  const names = readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.rules'))
    .map((f) => f.replace(/\.rules$/, ''));
  for (const name of names) {
    await step(`fixture ${name}`, async () => {
      const text = readFileSync(path.join(FIXTURES, `${name}.rules`), 'utf8');
      ipvsadm(['-C']);
      const oursRestore = await ours(['-R'], text);
      const ipvsadmSaveAfterOurs = ipvsadm(['-Sn']);
      ipvsadm(['-C']);
      // ipvsadm -R does not take comment lines; ipvsadm-restore drops them the same way.
      const ipvsadmRestore = ipvsadm(['-R'], text.split('\n').filter((l) => !l.trimStart().startsWith('#')).join('\n'));
      const listings: Record<string, { ipvsadm: Run; ours: Run }> = {};
      for (const l of LISTINGS) listings[l] = { ipvsadm: ipvsadm(words(l)), ours: await ours(words(l)) };
      report.fixtures[name] = { oursRestore, ipvsadmSaveAfterOurs, ipvsadmRestore, listings };
    });
  }

  const bad = JSON.parse(readFileSync(path.join(FIXTURES, 'bad-commands.json'), 'utf8')) as { parse: BadCase[]; kernel: BadCase[] };
  for (const c of [...bad.parse, ...bad.kernel]) {
    await step(`bad ${c.args.join(' ')}`, async () => {
      const setup = (): void => {
        ipvsadm(['-C']);
        for (const s of c.setup ?? []) ipvsadm(s);
      };
      setup();
      const a = ipvsadm(c.args);
      setup();
      const o = await ours(c.args);
      report.bad.push({ args: c.args, ipvsadm: a, ours: o });
    });
  }

  await step('timeouts and daemons', async () => {
    ipvsadm(['-C']);
    report.binary['set'] = await ours(['--set', '901', '122', '301']);
    report.binary['timeout-ipvsadm'] = ipvsadm(['-L', '--timeout']);
    report.binary['timeout-ours'] = await ours(['-L', '--timeout']);
    report.binary['start-daemon'] = await ours(['--start-daemon', 'master', '--mcast-interface', 'lo', '--syncid', '7']);
    report.binary['daemon-ipvsadm'] = ipvsadm(['-L', '--daemon']);
    report.binary['daemon-ours'] = await ours(['-L', '--daemon']);
    report.binary['start-daemon-again'] = await ours(['--start-daemon', 'master', '--mcast-interface', 'lo']);
    report.binary['stop-daemon'] = await ours(['--stop-daemon', 'master']);
    report.binary['daemon-after-stop'] = ipvsadm(['-L', '--daemon']);
  });

  // The executable itself: stdin, exit statuses, output.
  await step('binary', async () => {
    ipvsadm(['-C']);
    const basic = readFileSync(path.join(FIXTURES, 'basic-v4.rules'), 'utf8');
    report.binary['R'] = sh(CTL, ['-R'], basic);
    report.binary['R-ipvsadm-Sn'] = ipvsadm(['-Sn']);
    report.binary['Sn'] = sh(CTL, ['-Sn']);
    report.binary['Ln-stats'] = sh(CTL, ['-Ln', '--stats']);
    report.binary['Ln-stats-ipvsadm'] = ipvsadm(['-Ln', '--stats']);
    report.binary['A-existing'] = sh(CTL, words(basic.split('\n').find((l) => l.startsWith('-A'))!));
    report.binary['bad-weight'] = sh(CTL, ['-a', '-t', '10.1.1.1:80', '-r', '10.2.2.2', '-w', 'x']);
    report.binary['h'] = sh(CTL, ['-h']);
    report.binary['e'] = sh(CTL, ['-e', '-t', '192.168.10.1:80', '-r', '10.0.0.12:8080', '-m', '-w', '9']);
    report.binary['e-ipvsadm-Sn'] = ipvsadm(['-Sn']);
    report.binary['Z'] = sh(CTL, ['-Z']);
    report.binary['C'] = sh(CTL, ['-C']);
    report.binary['C-ipvsadm-Sn'] = ipvsadm(['-Sn']);
  });

  // Atomic -R: nothing half-applied.
  const atomic = async (name: string, setup: string[], input: string): Promise<void> => {
    await step(`atomic ${name}`, async () => {
      ipvsadm(['-C']);
      for (const l of setup) ipvsadm(words(l));
      const before = save();
      const r = sh(CTL, ['-R'], input);
      report.atomic[name] = { before, run: r, after: save() };
    });
  };
  await atomic(
    'bad-line',
    ['-A -t 10.9.0.1:80 -s rr'],
    '-A -t 10.9.0.2:80 -s rr\n-a -t 10.9.0.2:80 -r 10.9.1.1:80 -m\n-a -t 10.9.0.2:80 -r 10.9.1.2:80 -m -w nine\n-A -t 10.9.0.3:80\n',
  );
  await atomic('exists-in-kernel', ['-A -t 10.9.0.1:80 -s rr'], '-A -t 10.9.0.2:80 -s rr\n-A -t 10.9.0.1:80 -s wlc\n');
  // The kernel refuses line 4 (no such interface); lines 1-3 were applied and must be rolled back,
  // including the edit of the pre-existing service's scheduler.
  await atomic(
    'kernel-refusal',
    ['-A -t 10.9.0.1:80 -s rr', '-a -t 10.9.0.1:80 -r 10.9.1.9:80 -m -w 3'],
    '-A -t 10.9.0.2:80 -s rr\n-a -t 10.9.0.2:80 -r 10.9.1.1:80 -m\n-E -t 10.9.0.1:80 -s wlc\n' +
      '--start-daemon master --mcast-interface nosuch0\n-A -t 10.9.0.3:80\n',
  );
  return report;
}

// Only when run as a program: the jest test imports this module for its types and LISTINGS.
if (require.main === module) {
  run()
    .then((report) => {
      writeFileSync(path.join(process.env.LAB_OUT ?? '/tmp', 'ipvs-bpfctl-report.json'), JSON.stringify(report));
    })
    .catch((e: unknown) => {
      process.stderr.write(`ipvs-bpfctl-checks: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    });
}
