/**
 * `test/lab/labvm`: run a bash command in the lab VM from a shell (humans, benchmarks, the demo).
 * Streams the VM console and exits with the command's status.
 */
import { patchedIpvsModules } from './patched-modules';
import { LabVmOptions, runInVm } from './vm';

const USAGE = `Usage: test/lab/labvm [options] -- 'bash command'

Boots the lab VM (Debian's stock 6.1 kernel with real IPVS, or 6.12 with LAB_KERNEL=6.12 in the
environment; under qemu/TCG, the host's root file system read-only with a tmpfs overlay) and runs the
command as root there, in this checkout's directory.
The console (kernel messages and the command's output) streams to stdout; labvm exits with the
command's exit status (124 on timeout, 255 if the VM failed before giving one).

Options:
  --systemd           boot systemd as PID 1 (with a D-Bus system bus) and run the command once
                      multi-user.target is reached (default: run it straight after mounting the root)
  --timeout SECS      kill the VM after SECS seconds (default 600)
  --env K=V           export K=V to the command (repeatable)
  --module PATH.ko    load this module instead of the stock one of the same name (repeatable)
  --patched           load the patched IPVS modules (kernel-patch/build.sh, built or cached)
  --memory MB         guest memory (default 2048)
  --cpus N            guest CPUs (default 2)
  -h, --help          this text

Inside the VM: $LAB_OUT is a directory shared with the host (printed at the end), modprobe works
(ip_vs, veth, nf_conntrack ... load on demand), /tmp /var /run are writable, node is on PATH.

Examples:
  test/lab/labvm -- 'modprobe ip_vs && ipvsadm -Ln'
  test/lab/labvm --systemd --env N=3 -- 'systemctl is-system-running --wait; echo $N'
  test/lab/labvm --patched -- 'modprobe ip_vs && ls /proc/net/ip_vs_bpf'
  LAB_KERNEL=6.12 test/lab/labvm -- 'uname -r; modprobe ip_vs && ipvsadm -Ln'
`;

function fail(message: string): never {
  process.stderr.write(`labvm: ${message}\n(see test/lab/labvm --help)\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): LabVmOptions & { patched: boolean } {
  const opts: LabVmOptions & { patched: boolean } = { script: '', patched: false };
  const env: Record<string, string> = {};
  const modules: string[] = [];
  let i = 0;
  const value = (flag: string): string => {
    const v = argv[++i];
    if (v === undefined) fail(`${flag} needs a value`);
    return v;
  };
  const positive = (flag: string, v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) fail(`${flag} needs a positive number, not ${JSON.stringify(v)}`);
    return n;
  };
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      opts.script = argv.slice(i + 1).join(' ');
      break;
    }
    switch (a) {
      case '-h':
      case '--help':
        process.stdout.write(USAGE);
        process.exit(0);
        break;
      case '--systemd':
        opts.init = 'systemd';
        break;
      case '--timeout':
        opts.timeoutMs = positive(a, value(a)) * 1000;
        break;
      case '--memory':
        opts.memoryMb = positive(a, value(a));
        break;
      case '--cpus':
        opts.cpus = positive(a, value(a));
        break;
      case '--env': {
        const kv = value(a);
        const eq = kv.indexOf('=');
        if (eq <= 0) fail(`--env needs K=V, not ${JSON.stringify(kv)}`);
        env[kv.slice(0, eq)] = kv.slice(eq + 1);
        break;
      }
      case '--module':
        modules.push(value(a));
        break;
      case '--patched':
        opts.patched = true;
        break;
      default:
        fail(`unknown argument ${JSON.stringify(a)} (the command goes after --)`);
    }
  }
  if (!opts.script.trim()) fail('no command given after --');
  if (Object.keys(env).length) opts.env = env;
  if (modules.length) opts.extraModules = modules;
  return opts;
}

async function main(): Promise<void> {
  const { patched, ...opts } = parseArgs(process.argv.slice(2));
  if (patched) opts.extraModules = [...(await patchedIpvsModules()), ...(opts.extraModules ?? [])];
  opts.onConsole = (chunk) => process.stdout.write(chunk);
  const r = await runInVm(opts);
  const timing = r.timing ? `, boot ${(r.timing.bootToPayloadMs / 1000).toFixed(1)} s, command ${(r.timing.payloadMs / 1000).toFixed(1)} s` : '';
  process.stderr.write(`labvm: exit ${r.exitCode} after ${(r.durationMs / 1000).toFixed(1)} s${timing}; LAB_OUT was ${r.outDir}\n`);
  if (r.error) process.stderr.write(`labvm: ${r.error}\n`);
  process.exitCode = r.exitCode;
}

main().catch((e: unknown) => {
  process.stderr.write(`labvm: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 255;
});
