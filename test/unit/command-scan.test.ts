/** The command scanner behind the commands manifest check: what it finds, and what it says it cannot see. */
import { scanScriptSource, scanShell } from './command-scan';

const names = (text: string, fns: string[] = []): string[] => scanShell(text, new Set(fns)).uses.map((u) => u.name);

describe('scanShell', () => {
  it('finds the first word of each simple command, behind separators, keywords and assignments', () => {
    expect(names('set -e\nA=1 B=2 ipvsadm -Ln | grep -q x && tc qdisc || { ethtool -K x; }\nif ! modprobe ip_vs; then exit 1; fi'))
      .toEqual(['ipvsadm', 'grep', 'tc', 'ethtool', 'modprobe']);
  });
  it('looks inside substitutions, -c strings, trap and wrappers', () => {
    expect(names('x=$(uname -r) y="$(id -u) `nproc`"\nbash -c \'bpftool prog\'\ntrap "rm -f x" EXIT\n' +
      'flock /run/l socat - -\ntimeout -s KILL 5 nc -l 1\nip netns exec ns1 conntrack -C\nflock 9\nfind . -exec sha256sum {} +'))
      .toEqual(['uname', 'id', 'nproc', 'bash', 'bpftool', 'rm', 'flock', 'socat', 'timeout', 'nc', 'ip', 'conntrack', 'flock', 'find', 'sha256sum']);
  });
  it('skips builtins, functions, case patterns, arrays, arithmetic, comments and heredoc bodies; paths count by basename', () => {
    const text = [
      'say() { echo "$*"; }', 'say hi  # ipvsadm in a comment', 'case $1 in', '  --x|-y) jq . ;;', '  *) sed q ;;', 'esac',
      'PKGS=(qemu cpio', '  busybox)', 'for ((i = 0; i < 3; i++)); do sleep 1; done', '((n++))',
      'cat >f <<EOF', 'notacommand here', 'EOF', '/usr/sbin/ipvsadm -C', './local.sh', 'topo_up',
    ].join('\n');
    expect(names(text, ['topo_up'])).toEqual(['jq', 'sed', 'sleep', 'cat', 'ipvsadm']);
  });
  it('reports command words that are expansions as unseen', () => {
    const r = scanShell('"$tool" -v\n$CTL add\n"${cmd[@]}"');
    expect(r.uses).toEqual([]);
    expect(r.unseen.map((u) => u.line)).toEqual([1, 2, 3]);
  });
  it('numbers lines from 1, across continuations', () => {
    expect(scanShell('a=1\nfoo \\\n  --x\nbar').uses).toEqual([{ name: 'foo', line: 2 }, { name: 'bar', line: 4 }]);
  });
});

describe('scanScriptSource', () => {
  it('reads execFile/spawn names and their wrapped commands, and exec shell strings', () => {
    const src = [
      "execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-w', 'x=1']);",
      "spawn('bash', ['-c', 'ipvsadm -Sn | wc -l']);",
      "execSync(`conntrack -C`);",
      'spawn(qemu, args); // qemu from a variable',
      "// spawn('commented', [])",
    ].join('\n');
    const r = scanScriptSource(src);
    expect(r.uses.map((u) => u.name)).toEqual(['ip', 'sysctl', 'bash', 'ipvsadm', 'wc', 'conntrack']);
    expect(r.unseen.map((u) => u.name)).toEqual(['qemu']);
  });
  it('reads script: payloads (strings, arrays, local functions with interpolated constants) and bash -c helpers', () => {
    const src = [
      "const PRELUDE = 'set -e\\nmodprobe ip_vs';",
      'function boot(r: string): string {', '  return `${PRELUDE}\\nipvsadm -R <${r}`;', '}',
      "function run(command: string) { return spawnSync('bash', ['-c', command]); }",
      "run('bpftool map');",
      "runInVm({ script: ['echo $(uname -r)', 'nstat -az'].join('\\n'), timeoutMs: 5 });",
      'runInVm({ script: boot(rules) });',
      "const opts = { script: 'tc qdisc' };",
    ].join('\n');
    expect(scanScriptSource(src).uses.map((u) => u.name).sort())
      .toEqual(['bash', 'bpftool', 'ipvsadm', 'modprobe', 'nstat', 'tc', 'uname']);
  });
});
