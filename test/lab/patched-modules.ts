/**
 * The patched IPVS modules for the lab VM's kernel: kernel-patch/build.sh builds them (cached under
 * /var/cache/ipvs-bpf/kmod, ~40 s cold, instant after) and this lists them for runInVm's extraModules,
 * which then loads them in place of the stock ones on every modprobe.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { checkoutRoot, prepareLabKernel, type LabKernelSeries } from './vm';

const run = promisify(execFile);

/** The same modules built by DKMS (kernel-patch/dkms.sh build: dkms add and build, no install, from the
 * checkout staged in /usr/src), as dkms left them (.ko, or .ko.xz where the kernel's modules are compressed). */
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
  const files = readdirSync(dir).filter((f) => /\.ko(\.xz)?$/.test(f)).sort();
  if (!files.some((f) => f.startsWith('ip_vs.ko'))) throw new Error(`no ip_vs.ko under ${dir}`);
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
