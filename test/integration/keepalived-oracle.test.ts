/**
 * The oracle is real keepalived (Debian's 2.2.7) in the lab VM, one boot (vm/keepalived-oracle.sh):
 *  - the corpus (test/fixtures/keepalived/*.conf: addresses, fwmark, IPv6, groups with ranges and CIDR,
 *    includes, tunnels, keepalived's defaults and corrections) gives the same `ipvsadm -Sn` and
 *    `-Ln --thresholds` under keepalived and under ipvs-bpf, and both equal the corpus' .expected files;
 *  - failure reactions (test/fixtures/keepalived-lab/react.conf): a TCP_CHECK and an HTTP_GET real server
 *    whose listener is killed leave the table and come back when it listens again, the quorum virtual
 *    server swaps in its sorry server (the inhibited real server at weight 0) and back, misc_dynamic sets
 *    the weight: the same tables at every step, each reaction within keepalived's own time bound.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { prepareLabKernel, runInVm } from '../lab/vm';

jest.setTimeout(15 * 60 * 1000);

const ROOT = path.resolve(__dirname, '../..');
const FIX = path.join(ROOT, 'test/fixtures/keepalived');
/** react.conf's timing: delay_loop 1, retry 1, delay_before_retry 1, connect_timeout 1 (seconds). */
const DELAY_LOOP = 1;
const RETRY = 1;
const DBR = 1;
const CONNECT = 1;
/** Polling (0.2 s plus an ipvsadm start) and a loaded TCG VM: slack on top of keepalived's bound. */
const SLACK_MS = 3000;
const DOWN_BOUND_MS = (DELAY_LOOP + RETRY * (DBR + CONNECT)) * 1000 + SLACK_MS;
const UP_BOUND_MS = DELAY_LOOP * 1000 + SLACK_MS;

let out = '';
let consoleTail = '';
const kv = new Map<string, string>();
const file = (name: string): string => {
  const f = path.join(out, name);
  if (!existsSync(f)) throw new Error(`the VM payload wrote no ${name}; console tail:\n${consoleTail}`);
  return readFileSync(f, 'utf8');
};
/** ipvsadm -S lists real servers in the kernel's order, which follows the order of adds: compare as sets. */
const lines = (text: string): string[] => text.split('\n').filter((l) => l.trim() !== '').sort();
const ms = (key: string): number => {
  const v = kv.get(key);
  if (v === undefined) throw new Error(`no ${key} recorded; console tail:\n${consoleTail}`);
  return Number(v);
};

beforeAll(async () => {
  // The daemon as the VM runs it (bin/ipvs-bpf -> dist/src/daemon/main.js).
  execFileSync(path.join(ROOT, 'node_modules/.bin/tsc'), ['-p', path.join(ROOT, 'test/integration/vm/ipvs-bpf.tsconfig.json')], { cwd: ROOT, stdio: 'pipe' });
  await prepareLabKernel();
  const r = await runInVm({ script: 'bash test/integration/vm/keepalived-oracle.sh', timeoutMs: 12 * 60 * 1000 });
  out = r.outDir;
  consoleTail = r.console.slice(-4000);
  const f = path.join(out, 'results.kv');
  if (existsSync(f)) {
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) kv.set(line.slice(0, eq), line.slice(eq + 1));
    }
  }
  process.stdout.write(
    `keepalived-oracle: VM ${Math.round(r.durationMs / 1000)} s (boot ${Math.round((r.timing?.bootToPayloadMs ?? 0) / 1000)} s), exit ${r.exitCode}, out ${out}\n`
      + `${[...kv].map(([k, v]) => `  ${k}=${v}`).join('\n')}\n`,
  );
  if (r.exitCode !== 0 || !existsSync(path.join(out, 'done'))) {
    throw new Error(`VM payload failed (exit ${r.exitCode}${r.error ? `, ${r.error}` : ''}); console tail:\n${consoleTail}`);
  }
});

test('the VM ran Debian keepalived 2.2.7', () => {
  expect(file('keepalived.version')).toMatch(/^Keepalived v2\.2\.7 /m);
});

test('corpus: ipvs-bpf builds the table keepalived builds, and both are the .expected files', () => {
  const expected = readdirSync(FIX).filter((f) => f.endsWith('.expected')).flatMap((f) => lines(readFileSync(path.join(FIX, f), 'utf8')));
  const ka = lines(file('keepalived.corpus.Sn'));
  expect(lines(file('ipvs-bpf.corpus.Sn'))).toEqual(ka);
  expect(ka).toEqual(expected.sort());
});

test('corpus: thresholds (which -S does not print) are the same too', () => {
  expect(lines(file('ipvs-bpf.corpus.thresholds'))).toEqual(lines(file('keepalived.corpus.thresholds')));
});

describe('failure reactions', () => {
  it.each(['start', 'rs_down', 'rs_up', 'quorum_down', 'quorum_up'])('%s: the same table under both', (phase) => {
    expect(lines(file(`ipvs-bpf.${phase}.Sn`))).toEqual(lines(file(`keepalived.${phase}.Sn`)));
  });

  it('the tables are what keepalived documents: out, back, sorry server in with the inhibited real server at 0, back', () => {
    const t = (phase: string): string[] => lines(file(`keepalived.${phase}.Sn`)).filter((l) => l.startsWith('-a'));
    expect(t('start')).toEqual(
      [
        '-a -t 10.60.0.1:80 -r 10.60.1.1:80 -m -w 1',
        '-a -t 10.60.0.1:80 -r 10.60.1.2:80 -m -w 2',
        '-a -t 10.60.0.2:80 -r 10.60.1.3:80 -m -w 1',
        '-a -t 10.60.0.2:80 -r 10.60.1.4:80 -m -w 1',
        '-a -u 10.60.0.3:53 -r 10.60.1.5:53 -m -w 3',
      ].sort(),
    );
    expect(t('rs_down')).not.toContain('-a -t 10.60.0.1:80 -r 10.60.1.1:80 -m -w 1');
    expect(t('rs_up')).toEqual(t('start'));
    expect(t('quorum_down').filter((l) => l.includes('10.60.0.2'))).toEqual(
      ['-a -t 10.60.0.2:80 -r 10.60.1.4:80 -m -w 0', '-a -t 10.60.0.2:80 -r 10.60.1.9:80 -m -w 1'],
    );
    expect(t('quorum_up')).toEqual(t('start'));
  });

  it.each([
    ['rs_down', DOWN_BOUND_MS],
    ['rs_up', UP_BOUND_MS],
    ['http_down', DOWN_BOUND_MS],
    ['http_up', UP_BOUND_MS],
    ['quorum_down', DOWN_BOUND_MS],
    ['quorum_up', UP_BOUND_MS],
  ])('%s: both react within keepalived\'s bound (%d ms)', (phase, bound) => {
    const ka = ms(`keepalived.${phase}.ms`);
    const ours = ms(`ipvs-bpf.${phase}.ms`);
    expect({ phase, keepalived: ka >= 0 && ka <= bound, ipvsBpf: ours >= 0 && ours <= bound }).toEqual({ phase, keepalived: true, ipvsBpf: true });
  });
});
