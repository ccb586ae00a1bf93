/**
 * The daemon as an operator meets it, in the lab VM under real systemd and a real system bus, stock 6.1
 * IPVS (so mode auto runs plain IPVS and says why): npm run install-service, start, D-Bus introspection
 * and properties, ipvs-bpfctl status, reload (good and bad rules), non-root reads allowed and changes
 * denied, root changes, LogControl1, restart, stop, and a broken configuration. One boot runs
 * test/integration/vm/daemon-systemd.sh, which records; the judgement is here.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { runInVm } from '../lab/vm';
import { compileForVm } from '../lab/compile';
import { NO_BPF_KERNEL } from '../../src/daemon/preflight';

jest.setTimeout(25 * 60 * 1000);

const ROOT = path.resolve(__dirname, '../..');
let dir = '';
let console_ = '';

interface Step { rc: number; out: string; err: string }
const step = (name: string): Step => {
  const f = (ext: string): string => {
    const p = path.join(dir, `${name}.${ext}`);
    if (!existsSync(p)) throw new Error(`step ${name} did not run in the VM; console tail:\n${console_.slice(-3000)}`);
    return readFileSync(p, 'utf8');
  };
  return { rc: Number(f('rc').trim()), out: f('out'), err: f('err') };
};
const file = (name: string): string => {
  const p = path.join(dir, name);
  if (!existsSync(p)) throw new Error(`${name} was not recorded in the VM; console tail:\n${console_.slice(-3000)}`);
  return readFileSync(p, 'utf8');
};
/**
 * The daemon's journal lines containing `texts`, each found after the one before it (the last line
 * containing texts[0], then the first containing each next): their monotonic times in seconds.
 */
const journalOrder = (texts: readonly string[]): number[] => {
  const lines = file('journal-mono.txt').split('\n');
  const times: number[] = [];
  let at = lines.map((l) => l.includes(texts[0]!)).lastIndexOf(true);
  for (const [i, text] of texts.entries()) {
    if (i > 0) at = lines.findIndex((l, j) => j > at && l.includes(text));
    expect({ text, after: texts[i - 1] ?? null, found: at >= 0 }).toEqual({ text, after: texts[i - 1] ?? null, found: true });
    times.push(Number(/^\[\s*([\d.]+)\]/.exec(lines[at]!)?.[1]));
  }
  return times;
};
const ok = (name: string): string => {
  const s = step(name);
  expect({ name, rc: s.rc, err: s.err }).toEqual({ name, rc: 0, err: '' });
  return s.out;
};

const START_RULES = [
  '-A -t 10.10.0.1:80 -s wrr',
  '-a -t 10.10.0.1:80 -r 10.10.1.1:80 -m -w 1',
  '-a -t 10.10.0.1:80 -r 10.10.1.2:80 -m -w 2',
  '-A -u 10.10.0.1:53 -s rr',
  '-a -u 10.10.0.1:53 -r 10.10.1.1:53 -m -w 1',
  '',
].join('\n');
/**
 * Services (x 3 real servers) of the large reloads the stop and the restart land in. The reload takes the
 * time the stop needs to arrive during it (the journal order is checked below); more only costs VM time.
 */
const BIG = 2000;
const RELOADED = '-A -t 10.10.0.1:80 -s wrr\n-a -t 10.10.0.1:80 -r 10.10.1.1:80 -m -w 5\n-a -t 10.10.0.1:80 -r 10.10.1.3:80 -m -w 1\n';

beforeAll(async () => {
  compileForVm('tsconfig.json');
  const r = await runInVm({ init: 'systemd', timeoutMs: 22 * 60 * 1000, script: 'bash test/integration/vm/daemon-systemd.sh', env: { DS_BIG_SERVICES: String(BIG) } });
  dir = path.join(r.outDir, 'daemon');
  console_ = r.console;
  if (r.exitCode !== 0) throw new Error(`VM payload failed (exit ${r.exitCode}, ${r.error ?? ''}):\n${r.console.slice(-4000)}`);
});

test('npm run install-service installs (and creates the group ipvs-bpf), --check-config validates the installed configuration', () => {
  expect(ok('install')).toMatch(/^installed: ipvs-bpf.service/m);
  expect(ok('group')).toMatch(/^ipvs-bpf:x:\d+:$/m);
  expect(ok('check-config')).toBe('configuration /etc/ipvs-bpf/config.json: valid; mode auto\n'
    + `mode auto: a start here runs plain IPVS: ${NO_BPF_KERNEL}\n`
    + 'rules /etc/ipvs-bpf/rules: valid; 2 services, 3 real servers\n');
});

test('systemctl start: active, IPVS equals the rule file', () => {
  ok('start');
  expect(ok('is-active')).toBe('active\n');
  expect(ok('save-start')).toBe(START_RULES);
});

test('D-Bus: introspectable by anyone, properties readable by anyone, auto mode says why it runs plain IPVS', () => {
  for (const s of ['introspect', 'introspect-nobody']) {
    const out = ok(s);
    for (const m of ['.Reload', '.ApplyRules', '.ListFlows', '.SetWeight', '.Services', '.ModeReason', 'org.ipvsbpf1.Manager', 'org.freedesktop.DBus.Properties']) {
      expect(out).toContain(m);
    }
  }
  expect(ok('prop-mode')).toBe('s "ipvs"\n');
  expect(ok('prop-reason')).toMatch(/^s "auto: the kernel\\'s IPVS has no BPF mode \(\/proc\/net\/ip_vs_bpf does not exist/);
  expect(ok('prop-version')).toBe(`s "${(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version}"\n`);
  const services = JSON.parse(ok('prop-services')) as { type: string; data: unknown[][] };
  expect(services.type).toBe('a(ssuttttta(ssiuuttttt))');
  // Services come in the kernel's (hash) order, as ipvsadm -Ln lists them.
  const byId = (a: unknown[], b: unknown[]): number => String(a[0]).localeCompare(String(b[0]));
  expect(services.data.map((s) => [s[0], s[1], (s[8] as unknown[][]).map((d) => [d[0], d[1], d[2]]).sort(byId)]).sort(byId)).toEqual([
    ['tcp 10.10.0.1:80', 'wrr', [['10.10.1.1:80', 'masq', 1], ['10.10.1.2:80', 'masq', 2]]],
    ['udp 10.10.0.1:53', 'rr', [['10.10.1.1:53', 'masq', 1]]],
  ]);
});

test('ipvs-bpfctl status, human (root) and -o json (nobody)', () => {
  const text = ok('status');
  expect(text).toMatch(/^ipvs-bpf \S+, mode ipvs \(configured auto\): auto: /);
  expect(text).toContain('Services: 2\n');
  expect(text).toContain('    -> 10.10.1.2:80 masq weight 2 active 0 inactive 0 conns 0\n');
  const j = JSON.parse(ok('status-json-nobody')) as { mode: string; configuredMode: string; services: { id: string }[]; lastReload: { ok: boolean; message: string } };
  expect(j.mode).toBe('ipvs');
  expect(j.configuredMode).toBe('auto');
  expect(j.services.map((s) => s.id).sort()).toEqual(['tcp 10.10.0.1:80', 'udp 10.10.0.1:53']);
  expect(j.lastReload).toEqual(expect.objectContaining({ ok: true, message: '2 added services, 3 added real servers' }));
  expect(step('status-not-running')).toEqual(expect.objectContaining({ rc: 3, out: '' }));
});

test('reload applies only the differences, and reports them', () => {
  ok('reload');
  expect(ok('save-reload')).toBe(RELOADED);
  expect(ok('prop-last-reload')).toMatch(/^\(tbs\) \d+ true "1 removed service, 1 removed real server, 1 changed real server, 1 added real server"\n$/);
  // PropertiesChanged was emitted for the changes.
  expect(readFileSync(path.join(dir, 'monitor.out'), 'utf8')).toMatch(/member=PropertiesChanged[\s\S]*string "Services"/);
});

test('a bad rules file: systemctl reload fails, nothing changes, the daemon keeps running, the journal names file:line', () => {
  expect(step('reload-bad').rc).not.toBe(0);
  expect(ok('save-reload-bad')).toBe(RELOADED);
  expect(ok('is-active-after-bad')).toBe('active\n');
  expect(readFileSync(path.join(dir, 'journal.txt'), 'utf8')).toContain('ipvs-bpf[');
  expect(readFileSync(path.join(dir, 'journal.txt'), 'utf8')).toMatch(/ipvs-bpf\[\d+\]: \/etc\/ipvs-bpf\/rules:line 5: illegal weight specified/);
});

test('a non-root caller is denied every change and ListFlows by the bus policy; a member of ipvs-bpf may ListFlows', () => {
  for (const s of ['deny-reload', 'deny-apply', 'deny-weight', 'deny-loglevel', 'list-flows-nobody']) {
    const r = step(s);
    expect({ s, rc: r.rc }).toEqual({ s, rc: 1 });
    expect(r.err).toMatch(/Access denied/);
    expect(r.err).not.toContain('needs root'); // the bus refused it; the daemon never saw the call
  }
  expect(ok('save-after-deny')).toBe(RELOADED);
  // the bus said no (dbus-send shows the bus's own text), before the daemon saw the call
  expect(step('list-flows-nobody-send').err).toContain('Rejected send message');
  // the member passes both checks and gets the daemon's own answer (no data path in ipvs mode)
  expect(step('list-flows-member')).toEqual(expect.objectContaining({ rc: 1, err: expect.stringContaining('no BPF data path in ipvs mode') }));
  expect(ok('prop-mode-member')).toBe('s "ipvs"\n');
});

test("behind a policy that allows everything, the daemon's own check still denies a non-root caller", () => {
  const needs: Record<string, string> = {
    'open-reload': 'org.freedesktop.DBus.Error.AccessDenied: access denied: Reload needs root',
    'open-apply': 'access denied: ApplyRules needs root',
    'open-weight': 'access denied: SetWeight needs root',
    'open-flows': 'access denied: ListFlows needs root or membership in the group ipvs-bpf',
    'open-loglevel': 'access denied: setting LogLevel needs root',
  };
  for (const [s, text] of Object.entries(needs)) {
    const r = step(s);
    expect({ s, rc: r.rc, denied: r.err.includes(text) }).toEqual({ s, rc: 1, denied: true });
  }
  expect(step('open-flows-member').err).toContain('no BPF data path in ipvs mode');
  expect(ok('open-save')).toBe(RELOADED);
  expect(readFileSync(path.join(dir, 'journal.txt'), 'utf8')).toMatch(/Reload refused: caller :1\.\d+ is uid 65534; needs root/);
});

test('root: SetWeight edits in place, ApplyRules is all or nothing, errors are named', () => {
  ok('weight');
  expect(step('weight-missing')).toEqual(expect.objectContaining({ rc: 1, err: expect.stringContaining('has no real server "10.99.0.1:80"') }));
  expect(ok('apply')).toBe('s "1 added service, 1 added real server"\n');
  const bad = step('apply-bad');
  expect(bad.rc).toBe(1);
  expect(bad.err).toContain('input:line 2: Service already exists');
  expect(ok('save-after-root')).toBe(
    '-A -t 10.10.0.1:80 -s wrr\n-a -t 10.10.0.1:80 -r 10.10.1.1:80 -m -w 9\n-a -t 10.10.0.1:80 -r 10.10.1.3:80 -m -w 1\n'
    + '-A -t 10.10.0.7:80 -s rr\n-a -t 10.10.0.7:80 -r 10.10.1.7:80 -m -w 1\n',
  );
  expect(step('list-flows').err).toContain('no BPF data path in ipvs mode');
});

test('the log level changes at run time (systemctl service-log-level, LogControl1)', () => {
  ok('service-log-level');
  expect(ok('prop-loglevel')).toBe('s "debug"\n');
});

test('restart: a new process, back to the rule files; stop leaves IPVS as it is', () => {
  ok('restart');
  expect(ok('is-active-restart')).toBe('active\n');
  expect(ok('main-pid-restart')).not.toBe(ok('main-pid'));
  // The runtime changes (weight 9, the ApplyRules service) give way to the files.
  expect(ok('save-restart')).toBe(RELOADED);
  ok('stop');
  expect(ok('save-stop')).toBe(RELOADED);
});

test('a broken configuration: start fails with a clear journal message, exit 78, no restart loop, IPVS untouched', () => {
  expect(step('start-bad').rc).not.toBe(0);
  expect(step('is-active-bad').out).toBe('failed\n');
  expect(ok('restarts-bad')).toBe('0\n');
  expect(ok('status-exit-bad')).toBe('78\n');
  expect(ok('save-bad')).toBe(RELOADED);
  expect(readFileSync(path.join(dir, 'journal.txt'), 'utf8')).toContain(
    'configuration invalid, not starting: /etc/ipvs-bpf/config.json: mode: must be one of the possible values: ["auto","bpf","ipvs"]: value was "fast"',
  );
});

test('mode bpf with an SNAT address that is not on this host: --check-config and the start fail with exit 78, the key named', () => {
  const want = 'snat.addresses: 10.9.0.1 is not assigned to any local interface';
  expect(step('check-bpf-bad')).toEqual({ rc: 78, out: '', err: `ipvs-bpf: configuration invalid (mode bpf):\n${want}\n` });
  expect(step('start-bpf-bad').rc).not.toBe(0);
  expect(step('is-active-bpf-bad').out).toBe('failed\n');
  expect(ok('restarts-bpf-bad')).toBe('0\n');
  expect(ok('status-exit-bpf-bad')).toBe('78\n');
  const journal = file('journal.txt');
  expect(journal).toContain('configuration invalid, not starting (IPVS left as it was):');
  expect(journal).toContain(`ipvs-bpf[`);
  expect(journal).toMatch(new RegExp(`ipvs-bpf\\[\\d+\\]: ${want}$`, 'm'));
});

test('the bus restarts under the daemon: it logs the loss, exits 1 (no uncaught exception), systemd starts it again and it serves', () => {
  ok('dbus-start');
  ok('dbus-restart');
  expect(ok('dbus-pid-after')).not.toBe(ok('dbus-pid-before'));
  expect(Number(ok('dbus-restarts-after'))).toBeGreaterThanOrEqual(1);
  expect(ok('dbus-mode-after')).toBe('s "ipvs"\n');
  expect(ok('dbus-save-after')).toBe(RELOADED);
  const journal = readFileSync(path.join(dir, 'journal.txt'), 'utf8');
  expect(journal).toMatch(/D-Bus connection lost \(.*\): exiting with status 1 so that systemd restarts the daemon/);
  expect(journal).toMatch(/ipvs-bpf.service: Main process exited, code=exited, status=1\/FAILURE/);
  expect(journal).not.toMatch(/Uncaught|UnhandledPromiseRejection|ipvs-bpf\[\d+\]: +at /);
});

test('systemctl restart during a large reload: the stop waits for the transaction, IPVS is the new table, never a mix', () => {
  const old = file('big1.old.rules');
  const neu = file('big1.new.rules');
  expect(neu.split('\n').filter((l) => l.startsWith('-A ')).length).toBe(BIG);
  expect(step('big1-restart').rc).toBe(0);
  expect(ok('big1-active')).toBe('active\n');
  const afterStop = file('big1-restart.after-stop.rules');
  expect([afterStop === old, afterStop === neu]).toEqual([false, true]);
  expect(file('journal.txt')).toMatch(/SIGTERM: waiting for the running reload to finish \(all or nothing\) before stopping/);
  // the stop arrived while the changes were being applied, not before or after
  const [applying, term, done] = journalOrder([`applying ${BIG * 4 + 1} changes`, 'SIGTERM: waiting for the running reload', 'reloaded: ']);
  console.log(`restart during the reload: SIGTERM ${(term - applying).toFixed(2)} s after the apply started, ${(done - term).toFixed(2)} s before it ended`);
});

test('systemctl stop during a large reload the kernel refuses at its end: the rollback completes, IPVS is the old table', () => {
  expect(step('big2-stop').rc).toBe(0);
  const old = file('big1.new.rules');
  expect(file('big2-stop.after-stop.rules')).toBe(old);
  expect(file('big2.final.rules')).toBe(old);
  const journal = file('journal.txt');
  expect(journal.match(/SIGTERM: waiting for the running reload to finish/g)?.length).toBe(2);
  expect(journal).toMatch(/reload refused, nothing changed:$/m);
  expect(journal).toMatch(new RegExp(`\\(${BIG * 3} changes already applied were rolled back\\); nothing was changed$`, 'm'));
  const [applying, term, done] = journalOrder([`applying ${BIG * 3 + 1} changes`, 'SIGTERM: waiting for the running reload', 'already applied were rolled back']);
  console.log(`stop during the refused reload: SIGTERM ${(term - applying).toFixed(2)} s after the apply started, ${(done - term).toFixed(2)} s before the rollback ended`);
  // within the unit's stop timeout: systemd did not have to kill it. The wall time of `systemctl stop`
  // also holds ExecStopPost's table dump, so it is kept for the record, not compared with TimeoutStopSec.
  expect(file('big2-stop.result').trim()).toBe('success');
  console.log(`systemctl stop during the refused reload took ${file('big2-stop.ms').trim()} ms`);
});

test('journal: priorities from the <N> prefix; messages carry no prefix, timestamp or colour', () => {
  const entries = readFileSync(path.join(dir, 'journal.json'), 'utf8').trim().split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((e) => e.SYSLOG_IDENTIFIER === 'ipvs-bpf' && typeof e.MESSAGE === 'string');
  const prio = (re: RegExp): string | undefined => entries.find((e) => re.test(e.MESSAGE as string))?.PRIORITY as string | undefined;
  expect(prio(/^started in ipvs mode/)).toBe('5');
  expect(prio(/^mode auto: running plain IPVS/)).toBe('4');
  expect(prio(/^reload refused, nothing changed/)).toBe('3');
  expect(prio(/^ready/)).toBe('6');
  for (const e of entries) {
    expect(e.MESSAGE).not.toMatch(/^<\d>|^\d{4}-\d\d-\d\dT/);
    expect(e.MESSAGE).not.toContain('\u001b[');
  }
});

test('hardening: systemd-analyze security rates the unit OK or better', () => {
  const text = readFileSync(path.join(dir, 'security.txt'), 'utf8');
  const m = /Overall exposure level for ipvs-bpf.service: ([\d.]+) (\w+)/.exec(text);
  expect(m).not.toBeNull();
  expect(Number(m![1])).toBeLessThan(4.5);
});
