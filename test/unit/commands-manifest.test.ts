/**
 * Every external command the project's scripts and tests run is declared once, in scripts/commands.tsv, with
 * the Debian package that provides it (scripts/setup.sh installs those packages). A command that is used but
 * not declared is how `bpftool: command not found` reached a fresh machine; this test names it instead.
 * What the scanner sees and cannot see: test/unit/command-scan.ts.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { scanScriptSource, scanShell, shellFunctions, type ScanResult } from './command-scan';

const ROOT = path.resolve(__dirname, '../..');
const MANIFEST = 'scripts/commands.tsv';
/** Package column values that are not Debian packages: see the manifest's header. */
const NOT_DEBIAN = new Set(['npm', 'node', 'go']);
const SKIP_DIRS = new Set(['node_modules', 'dist', '.git', 'build', 'coverage']);
/** The scanner and its tests: their strings are fixtures, not commands the project runs. */
const SKIP_FILES = new Set(['test/unit/command-scan.ts', 'test/unit/command-scan.test.ts']);

interface Entry { command: string; pkg: string; why: string; line: number }

function readManifest(text: string): Entry[] {
  const entries: Entry[] = [];
  text.split('\n').forEach((raw, k) => {
    if (raw.trim() === '' || raw.startsWith('#')) return;
    const f = raw.split('\t');
    if (f.length !== 3 || f.some((x) => x.trim() === '')) {
      throw new Error(`${MANIFEST}:${k + 1}: want 3 tab-separated fields (command, package, why), got ${JSON.stringify(raw)}`);
    }
    entries.push({ command: f[0], pkg: f[1], why: f[2], line: k + 1 });
  });
  return entries;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(path.join(ROOT, dir))) {
    const rel = path.join(dir, name);
    if (statSync(path.join(ROOT, rel)).isDirectory()) {
      if (!SKIP_DIRS.has(name)) walk(rel, out);
    } else if (!SKIP_FILES.has(rel)) {
      out.push(rel);
    }
  }
  return out;
}

/** The scanned files: shell scripts (by extension or shebang), TS/JS that may start processes, package.json's scripts. */
function scannedFiles(): { shell: string[]; source: string[] } {
  const all = ['scripts', 'test', 'kernel-patch', 'native', 'bpf', 'src', '.ci'].flatMap((d) => (existsSync(path.join(ROOT, d)) ? walk(d) : []));
  const shell = all.filter((f) => f.endsWith('.sh') || (!/\.\w+$/.test(f) && /^#!.*\b(bash|sh)\b/.test(readFileSync(path.join(ROOT, f), 'utf8').split('\n')[0])));
  const source = all.filter((f) => /\.(ts|js)$/.test(f) && !f.endsWith('.d.ts'));
  return { shell, source };
}

function scanAll(): Map<string, { where: string[]; result: ScanResult }> {
  const { shell, source } = scannedFiles();
  const byFile = new Map<string, { where: string[]; result: ScanResult }>();
  const text = new Map(shell.map((f) => [f, readFileSync(path.join(ROOT, f), 'utf8')]));
  const functions = new Set([...text.values()].flatMap((t) => [...shellFunctions(t)]));
  for (const [f, t] of text) byFile.set(f, { where: [], result: scanShell(t, functions) });
  for (const f of source) byFile.set(f, { where: [], result: scanScriptSource(readFileSync(path.join(ROOT, f), 'utf8')) });
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const npmScripts: ScanResult = { uses: [], unseen: [] };
  for (const s of Object.values(pkg.scripts)) {
    const r = scanShell(s);
    npmScripts.uses.push(...r.uses);
    npmScripts.unseen.push(...r.unseen);
  }
  byFile.set('package.json', { where: [], result: npmScripts });
  return byFile;
}

/** The project's own executables, run by name: bin/ (installed on PATH by install-service.sh). */
function projectCommands(): Set<string> {
  return new Set(readdirSync(path.join(ROOT, 'bin')));
}

describe('commands manifest (scripts/commands.tsv)', () => {
  const manifestText = readFileSync(path.join(ROOT, MANIFEST), 'utf8');
  const entries = readManifest(manifestText);
  const declared = new Map(entries.map((e) => [e.command, e]));
  const scans = scanAll();
  const own = projectCommands();

  it('declares every external command the scripts, tests, demo and benchmarks run', () => {
    const missing = new Map<string, string[]>();
    for (const [file, { result }] of scans) {
      for (const u of result.uses) {
        if (declared.has(u.name) || own.has(u.name)) continue;
        const at = missing.get(u.name) ?? [];
        if (at.length < 3) at.push(`${file}:${u.line}`);
        missing.set(u.name, at);
      }
    }
    const report = [...missing].sort().map(([name, at]) => `${name} (${at.join(', ')})`);
    expect(report).toEqual([]);
  });

  it('declares each command once, with a package, and only commands something runs', () => {
    const seen = new Set<string>();
    const dup = entries.filter((e) => (seen.has(e.command) ? true : (seen.add(e.command), false))).map((e) => `${e.command} (line ${e.line})`);
    expect(dup).toEqual([]);
    const used = new Set([...scans.values()].flatMap(({ result }) => result.uses.map((u) => u.name)));
    // A row the scanner cannot confirm must say who runs it ("not seen by the scan: ...").
    const unused = entries.filter((e) => !e.command.startsWith('/') && !used.has(e.command) && !/not seen by the scan:/.test(e.why))
      .map((e) => e.command);
    expect(unused).toEqual([]);
    const badPkg = entries.filter((e) => !NOT_DEBIAN.has(e.pkg) && !/^[a-z0-9][a-z0-9+.-]+$/.test(e.pkg)).map((e) => `${e.command}: ${e.pkg}`);
    expect(badPkg).toEqual([]);
  });

  it('every declared command is on this machine after scripts/setup.sh', () => {
    const dirs = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin', path.join(ROOT, 'node_modules/.bin'),
      ...(process.env.PATH ?? '').split(':').filter(Boolean)];
    // a busybox applet is there when busybox is; a library row names a file
    const onMachine = (c: string): boolean => (c.startsWith('/') ? existsSync(c) : dirs.some((d) => existsSync(path.join(d, c))));
    const absent = entries
      .filter((e) => !onMachine(e.pkg === 'busybox-static' ? 'busybox' : e.command))
      .map((e) => `${e.command} (${e.pkg})`);
    expect(absent).toEqual([]);
  });
});
