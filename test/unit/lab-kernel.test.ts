/**
 * scripts/lab-kernel.sh, the one kernel resolver (setup.sh, the lab VM, the patch build). Its decisions are
 * tested with stand-ins for apt-cache, apt-get and id on PATH that answer from a "stale" or "fresh" set of
 * package lists (apt-get update switches to fresh); then once against this machine's real package lists.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { labKernelSeries } from '../lab/vm';

const RESOLVER = path.resolve(__dirname, '../../scripts/lab-kernel.sh');

/** What the package lists say, per state: the meta packages' dependency, candidates and available versions. */
interface Lists { depends: Record<string, string>; candidate: Record<string, string>; versions: Record<string, string[]> }

const STALE: Lists = {
  depends: { 'linux-image-amd64': 'linux-image-6.1.0-50-amd64', 'linux-image-6.12-amd64': 'linux-image-6.12.100+deb12-amd64' },
  candidate: { 'linux-image-6.1.0-50-amd64': '6.1.180-1', 'linux-image-6.12.100+deb12-amd64': '6.12.100-1~deb12u1' },
  versions: {
    'linux-headers-6.1.0-50-amd64': ['6.1.180-1'], 'linux-source-6.1': ['6.1.180-1'],
    'linux-headers-6.12.100+deb12-amd64': ['6.12.100-1~deb12u1'], 'linux-source-6.12': ['6.12.100-1~deb12u1'],
  },
};
const FRESH: Lists = {
  depends: { 'linux-image-amd64': 'linux-image-6.1.0-57-amd64', 'linux-image-6.12-amd64': 'linux-image-6.12.117+deb12-amd64' },
  candidate: { 'linux-image-6.1.0-57-amd64': '6.1.192-3', 'linux-image-6.12.117+deb12-amd64': '6.12.117-1~deb12u1' },
  versions: {
    'linux-headers-6.1.0-57-amd64': ['6.1.192-3'], 'linux-source-6.1': ['6.1.192-3', '6.1.180-1'],
    'linux-headers-6.12.117+deb12-amd64': ['6.12.117-1~deb12u1'],
    // the source's candidate is newer than the image the meta package points at
    'linux-source-6.12': ['6.12.118-1~deb12u1', '6.12.117-1~deb12u1'],
  },
};

const FAKE_APT_CACHE = `#!/bin/bash
d=$FAKE_APT/$(cat "$FAKE_APT/state")
case "$1" in
  depends) [ -f "$d/depends/$2" ] && printf '%s\\n  Depends: %s\\n' "$2" "$(cat "$d/depends/$2")" ;;
  policy) printf '%s:\\n  Installed: (none)\\n  Candidate: %s\\n' "$2" "$(cat "$d/candidate/$2" 2>/dev/null || echo '(none)')" ;;
  madison) [ -f "$d/versions/$2" ] && while read -r v; do echo " $2 | $v | http://deb.debian.org/debian x/main amd64 Packages"; done <"$d/versions/$2" ;;
esac
exit 0
`;
const FAKE_APT_GET = `#!/bin/bash
echo "apt-get $*" >>"$FAKE_APT/log"
[ "$1" = update ] && echo fresh >"$FAKE_APT/state"
exit 0
`;
const FAKE_ID = `#!/bin/bash
[ "$1" = -u ] && echo "\${FAKE_UID:-0}"
`;

let dir: string;

function writeLists(root: string, name: string, lists: Lists): void {
  for (const [kind, table] of Object.entries({ depends: lists.depends, candidate: lists.candidate })) {
    mkdirSync(path.join(root, name, kind), { recursive: true });
    for (const [pkg, v] of Object.entries(table)) writeFileSync(path.join(root, name, kind, pkg), v);
  }
  mkdirSync(path.join(root, name, 'versions'), { recursive: true });
  for (const [pkg, vs] of Object.entries(lists.versions)) writeFileSync(path.join(root, name, 'versions', pkg), vs.join('\n') + '\n');
}

interface Run { status: number | null; out: Record<string, string>; stderr: string; aptLog: string }

function resolve(env: Record<string, string>, args: string[] = []): Run {
  const r = spawnSync('bash', [RESOLVER, ...args], {
    encoding: 'utf8',
    env: {
      PATH: `${path.join(dir, 'bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      FAKE_APT: path.join(dir, 'apt'), LAB_CACHE: path.join(dir, 'cache'), LAB_APT_STAMP: path.join(dir, 'stamp'), ...env,
    },
  });
  const out = Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const log = path.join(dir, 'apt', 'log');
  return { status: r.status, out, stderr: r.stderr, aptLog: existsSync(log) ? readFileSync(log, 'utf8') : '' };
}

/** Sets the last successful update to `hours` ago. */
function updatedHoursAgo(hours: number): void {
  const stamp = path.join(dir, 'stamp');
  writeFileSync(stamp, '');
  const t = Date.now() / 1000 - hours * 3600;
  utimesSync(stamp, t, t);
}

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'lab-kernel-'));
  mkdirSync(path.join(dir, 'bin'));
  for (const [name, text] of Object.entries({ 'apt-cache': FAKE_APT_CACHE, 'apt-get': FAKE_APT_GET, id: FAKE_ID })) {
    writeFileSync(path.join(dir, 'bin', name), text);
    chmodSync(path.join(dir, 'bin', name), 0o755);
  }
  writeLists(path.join(dir, 'apt'), 'stale', STALE);
  writeLists(path.join(dir, 'apt'), 'fresh', FRESH);
  writeFileSync(path.join(dir, 'apt', 'state'), 'stale\n');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('scripts/lab-kernel.sh with stand-in apt tools', () => {
  it('refreshes package lists older than LAB_APT_MAX_AGE_H before resolving (the fresh-machine bug: -50 headers vs a -57 VM)', () => {
    updatedHoursAgo(48);
    const r = resolve({});
    expect(r.stderr).toMatch(/apt-get update \(the package lists are 48 h old\)/);
    expect(r.status).toBe(0);
    expect(r.aptLog).toMatch(/^apt-get update/);
    expect(r.out).toEqual({
      LAB_KSERIES: '6.1', LAB_KVER: '6.1.0-57-amd64', LAB_KIMAGE_PKG: 'linux-image-6.1.0-57-amd64', LAB_KPKG_VERSION: '6.1.192-3',
      LAB_KHEADERS_PKG: 'linux-headers-6.1.0-57-amd64', LAB_KSOURCE_PKG: 'linux-source-6.1',
      LAB_KSOURCE_TARBALL: '/usr/src/linux-source-6.1.tar.xz',
    });
  });

  it('refreshes when there is no update stamp at all', () => {
    const r = resolve({});
    expect(r.aptLog).toMatch(/^apt-get update/);
    expect(r.out.LAB_KVER).toBe('6.1.0-57-amd64');
  });

  it('trusts lists updated within LAB_APT_MAX_AGE_H: no update, the lists answer', () => {
    updatedHoursAgo(2);
    const r = resolve({});
    expect(r.status).toBe(0);
    expect(r.aptLog).toBe('');
    expect(r.out.LAB_KVER).toBe('6.1.0-50-amd64');
    expect(resolve({ LAB_APT_MAX_AGE_H: '1' }).out.LAB_KVER).toBe('6.1.0-57-amd64');
  });

  it('refreshes when recent lists cannot answer (meta package unknown), and resolves after', () => {
    updatedHoursAgo(1);
    rmSync(path.join(dir, 'apt', 'stale', 'depends', 'linux-image-amd64'));
    const r = resolve({});
    expect(r.stderr).toMatch(/apt-get update \(the package lists do not know linux-image-amd64's kernel\)/);
    expect(r.status).toBe(0);
    expect(r.out.LAB_KVER).toBe('6.1.0-57-amd64');
  });

  it('LAB_KERNEL=6.12 follows linux-image-6.12-amd64; the source is wanted at the image version, not its newer candidate', () => {
    updatedHoursAgo(48);
    const r = resolve({ LAB_KERNEL: '6.12' });
    expect(r.status).toBe(0);
    expect(r.out).toMatchObject({
      LAB_KSERIES: '6.12', LAB_KVER: '6.12.117+deb12-amd64', LAB_KPKG_VERSION: '6.12.117-1~deb12u1',
      LAB_KHEADERS_PKG: 'linux-headers-6.12.117+deb12-amd64', LAB_KSOURCE_PKG: 'linux-source-6.12',
      LAB_KSOURCE_TARBALL: '/usr/src/linux-source-6.12.tar.xz',
    });
  });

  it('refreshes when linux-source has no version matching the image', () => {
    updatedHoursAgo(1);
    writeFileSync(path.join(dir, 'apt', 'stale', 'versions', 'linux-source-6.1'), '6.1.170-3\n');
    const r = resolve({});
    expect(r.stderr).toMatch(/linux-source-6\.1 has no version 6\.1\.180-1/);
    expect(r.out.LAB_KVER).toBe('6.1.0-57-amd64');
  });

  it('a new ABI after an update is a new answer, not the memoised one', () => {
    updatedHoursAgo(1);
    expect(resolve({}).out.LAB_KVER).toBe('6.1.0-50-amd64');
    expect(resolve({}).out.LAB_KVER).toBe('6.1.0-50-amd64'); // memoised
    writeFileSync(path.join(dir, 'apt', 'state'), 'fresh\n');
    updatedHoursAgo(0); // what apt_update does after `apt-get update`
    expect(resolve({}).out.LAB_KVER).toBe('6.1.0-57-amd64');
  });

  it('--refresh updates whatever the stamp says', () => {
    updatedHoursAgo(0);
    expect(resolve({}, ['--refresh']).out.LAB_KVER).toBe('6.1.0-57-amd64');
  });

  it('not root: warns about stale lists and resolves; fails saying what to run when the lists cannot answer', () => {
    updatedHoursAgo(48);
    const warned = resolve({ FAKE_UID: '1000' });
    expect(warned.status).toBe(0);
    expect(warned.aptLog).toBe('');
    expect(warned.stderr).toMatch(/stale \(48 h old\): run 'apt-get update' or 'bash scripts\/setup\.sh' as root/);
    rmSync(path.join(dir, 'apt', 'stale', 'depends', 'linux-image-amd64'));
    const failed = resolve({ FAKE_UID: '1000', LAB_CACHE: path.join(dir, 'cache2') }); // not the memo of the run above
    expect(failed.status).toBe(1);
    expect(failed.out).toEqual({});
    expect(failed.stderr).toMatch(/do not know linux-image-amd64's kernel: run 'apt-get update' or 'bash scripts\/setup\.sh' as root/);
  });

  it('rejects a series it does not know, and a malformed pin', () => {
    expect(resolve({ LAB_KERNEL: '5.10' }).stderr).toMatch(/LAB_KERNEL='5\.10': use 6\.1 or 6\.12/);
    expect(resolve({ LAB_KERNEL_PKG: 'linux-image-amd64' }).status).toBe(1);
  });
});

describe('scripts/lab-kernel.sh on this machine', () => {
  // The real package lists (no refresh here: LAB_APT_MAX_AGE_H is huge); what they say moves with Debian.
  const real = (series: string): Record<string, string> => {
    const cache = mkdtempSync(path.join(tmpdir(), 'lab-kernel-real-'));
    try {
      const r = spawnSync('bash', [RESOLVER], { encoding: 'utf8', env: { ...process.env, LAB_KERNEL: series, LAB_CACHE: cache, LAB_APT_MAX_AGE_H: '1000000' } });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      return Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  };
  const madison = (pkg: string): string[] => spawnSync('apt-cache', ['madison', pkg], { encoding: 'utf8' }).stdout
    .split('\n').filter(Boolean).map((l) => l.split('|')[1].trim());

  it.each([['6.1', /^6\.1\.0-\d+-amd64$/], ['6.12', /^6\.12\.\d+\+deb12-amd64$/]])('LAB_KERNEL=%s: image, headers and source of one Debian version', (series, release) => {
    const k = real(series);
    expect(k.LAB_KSERIES).toBe(series);
    expect(k.LAB_KVER).toMatch(release);
    expect(k.LAB_KIMAGE_PKG).toBe(`linux-image-${k.LAB_KVER}`);
    expect(k.LAB_KHEADERS_PKG).toBe(`linux-headers-${k.LAB_KVER}`);
    expect(k.LAB_KSOURCE_PKG).toBe(`linux-source-${series}`);
    expect(madison(k.LAB_KIMAGE_PKG)).toContain(k.LAB_KPKG_VERSION);
    expect(madison(k.LAB_KHEADERS_PKG)).toContain(k.LAB_KPKG_VERSION);
    expect(madison(k.LAB_KSOURCE_PKG)).toContain(k.LAB_KPKG_VERSION);
  });
});

describe('labKernelSeries (test/lab/vm.ts): LAB_KERNEL as the tests read it', () => {
  it('6.1 when unset or empty, the series when named, an error naming the value otherwise', () => {
    expect(labKernelSeries({})).toBe('6.1');
    expect(labKernelSeries({ LAB_KERNEL: '' })).toBe('6.1');
    expect(labKernelSeries({ LAB_KERNEL: '6.1' })).toBe('6.1');
    expect(labKernelSeries({ LAB_KERNEL: '6.12' })).toBe('6.12');
    expect(() => labKernelSeries({ LAB_KERNEL: '6.6' })).toThrow("LAB_KERNEL='6.6': use 6.1 or 6.12");
  });
});
