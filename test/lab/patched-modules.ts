/**
 * The patched IPVS modules for the lab VM's kernel: kernel-patch/build.sh builds them (cached under
 * /var/cache/ipvs-bpf/kmod, ~40 s cold, instant after) and this lists them for runInVm's extraModules,
 * which then loads them in place of the stock ones on every modprobe.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { checkoutRoot, prepareLabKernel, type LabKernelSeries } from './vm';

const run = promisify(execFile);

/** The same modules built by DKMS (kernel-patch/dkms.sh build: dkms add and build, no install, from the
 * checkout staged in /usr/src). Where the kernel's modules are compressed dkms leaves .ko.xz; those are unpacked
 * to /var/cache/ipvs-bpf/dkms/<release>/ (runInVm loads plain .ko files). */
export async function dkmsIpvsModules(series?: LabKernelSeries): Promise<string[]> {
  const kernel = await prepareLabKernel(series);
  const script = path.join(checkoutRoot(), 'kernel-patch', 'dkms.sh');
  let dir: string;
  try {
    const { stdout } = await run('bash', [script, 'build', '--kver', kernel.version], { maxBuffer: 64 << 20 });
    dir = stdout.trim().split('\n').pop() ?? '';
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`kernel-patch/dkms.sh build --kver ${kernel.version} failed: ${(err.stderr ?? err.message).trim().split('\n').slice(-5).join(' | ')}`);
  }
  let files = readdirSync(dir).filter((f) => /\.ko(\.xz)?$/.test(f)).sort();
  if (!files.some((f) => f.startsWith('ip_vs.ko'))) throw new Error(`no ip_vs.ko under ${dir}`);
  if (files.some((f) => f.endsWith('.xz'))) {
    const plain = path.join('/var/cache/ipvs-bpf/dkms', kernel.version);
    rmSync(plain, { recursive: true, force: true });
    mkdirSync(plain, { recursive: true });
    for (const f of files) {
      const out = path.join(plain, f.replace(/\.xz$/, ''));
      if (f.endsWith('.xz')) await run('bash', ['-c', 'xz -dc "$1" >"$2"', 'unxz', path.join(dir, f), out]);
      else await run('cp', [path.join(dir, f), out]);
    }
    dir = plain;
    files = files.map((f) => f.replace(/\.xz$/, ''));
  }
  const xt = files.filter((f) => f.startsWith('xt_ipvs.'));
  return [...files.filter((f) => !xt.includes(f)), ...xt].map((f) => path.join(dir, f));
}

/** Absolute paths of every patched IPVS module (ip_vs*.ko and xt_ipvs.ko) built for the lab kernel of the
 * series (default: $LAB_KERNEL, else 6.1). */
export async function patchedIpvsModules(series?: LabKernelSeries): Promise<string[]> {
  const kernel = await prepareLabKernel(series);
  const script = path.join(checkoutRoot(), 'kernel-patch', 'build.sh');
  let dir: string;
  try {
    const { stdout } = await run('bash', [script, '--kver', kernel.version, '--print-dir'], { maxBuffer: 64 << 20 });
    dir = stdout.trim().split('\n').pop() ?? '';
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`kernel-patch/build.sh --kver ${kernel.version} failed: ${(err.stderr ?? err.message).trim().split('\n').slice(-5).join(' | ')}`);
  }
  const ipvsDir = path.join(dir, 'net', 'netfilter', 'ipvs');
  const mods = readdirSync(ipvsDir).filter((f) => f.endsWith('.ko')).map((f) => path.join(ipvsDir, f));
  const xt = path.join(dir, 'net', 'netfilter', 'xt_ipvs.ko');
  if (!mods.some((m) => path.basename(m) === 'ip_vs.ko')) throw new Error(`no ip_vs.ko under ${ipvsDir}`);
  return [...mods.sort(), ...(readdirSync(path.dirname(xt)).includes('xt_ipvs.ko') ? [xt] : [])];
}
