/**
 * scripts/prod-deps.js, the production-dependency list install-service.sh copies: on this checkout it must
 * list exactly what `npm ls --omit=dev --parseable --all` lists (the command it replaces), and on a small
 * made-up tree it must follow nested copies, optional and peer dependencies, and leave dev ones out.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const SCRIPT = path.join(ROOT, 'scripts/prod-deps.js');

const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '');

test('lists what npm ls --omit=dev --parseable --all lists for this checkout', () => {
  const npm = lines(execFileSync('npm', ['ls', '--omit=dev', '--parseable', '--all'], { cwd: ROOT, encoding: 'utf8' }))
    .filter((l) => l.includes('/node_modules/')).sort();
  const ours = lines(execFileSync('node', [SCRIPT], { cwd: ROOT, encoding: 'utf8' }));
  expect(npm.length).toBeGreaterThan(10);
  expect(ours).toEqual(npm);
});

describe('a made-up tree', () => {
  let dir = '';
  const pkg = (rel: string, json: object): void => {
    mkdirSync(path.join(dir, rel), { recursive: true });
    writeFileSync(path.join(dir, rel, 'package.json'), JSON.stringify(json));
  };
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'prod-deps-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('nested copies win over hoisted ones; optional absent is fine; peers count; dev ones are left out', () => {
    pkg('.', { name: 'app', dependencies: { a: '1', b: '1' }, optionalDependencies: { gone: '1' }, devDependencies: { d: '1' } });
    pkg('node_modules/a', { name: 'a', dependencies: { c: '2' }, peerDependencies: { p: '1', q: '1' }, peerDependenciesMeta: { q: { optional: true } } });
    pkg('node_modules/a/node_modules/c', { name: 'c', version: '2' });
    pkg('node_modules/b', { name: 'b', dependencies: { c: '1' } });
    pkg('node_modules/c', { name: 'c', version: '1' });
    pkg('node_modules/p', { name: 'p' });
    pkg('node_modules/d', { name: 'd', dependencies: { e: '1' } });
    pkg('node_modules/e', { name: 'e' });
    const out = lines(execFileSync('node', [SCRIPT], { cwd: dir, encoding: 'utf8' })).map((l) => path.relative(dir, l));
    expect(out).toEqual(['node_modules/a', 'node_modules/a/node_modules/c', 'node_modules/b', 'node_modules/c', 'node_modules/p']);
  });

  test('a missing required dependency is an error naming it and who needs it', () => {
    pkg('.', { name: 'app', dependencies: { a: '1' } });
    pkg('node_modules/a', { name: 'a', dependencies: { missing: '1' } });
    const r = spawnSync('node', [SCRIPT], { cwd: dir, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('prod-deps: missing (needed by node_modules/a) is not installed; run npm ci\n');
  });
});
