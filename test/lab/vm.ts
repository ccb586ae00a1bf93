/**
 * The lab VM: Debian's stock kernel (real IPVS as modules) booted with qemu under TCG, the host's root file
 * system shared read-only over 9p under a tmpfs overlay. A payload bash script runs as root inside it; its
 * exit status comes back through a read-write 9p share (the run dir), never by parsing the console.
 *
 * The shell parts beside this file do the work inside and around the VM: prepare-kernel.sh (download and
 * cache the kernel), build-initramfs.sh (busybox + virtio/9p/overlay modules + init.sh), init.sh (the
 * initramfs /init) and run-payload.sh (runs the payload in the VM, in both modes).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';

export interface LabVmOptions {
  /** Bash script run as root in the VM; cwd = the checkout's absolute path (the same as on the host). */
  script: string;
  /** 'shell' (default): the script runs right after the root is mounted. 'systemd': systemd as PID 1 with a
   * D-Bus system bus; the script runs once multi-user.target is reached. */
  init?: 'shell' | 'systemd';
  /** qemu is killed after this long; the result then has timedOut = true. Default 10 minutes. */
  timeoutMs?: number;
  memoryMb?: number;
  cpus?: number;
  /** Exported to the script (names must be shell identifiers). */
  env?: Record<string, string>;
  /** Absolute paths of .ko files loaded at boot instead of the stock modules of the same name; every later
   * modprobe of such a name (also as a dependency) loads this file, after its own dependencies. */
  extraModules?: string[];
  /** Live console output (kernel messages and the script's stdout/stderr), with \r removed. */
  onConsole?: (chunk: string) => void;
  /** The Debian kernel series to boot (scripts/lab-kernel.sh); default: $LAB_KERNEL, else 6.1. */
  kernel?: LabKernelSeries;
  /** TCP services of the host the VM may reach. Without any, the VM has no network device. With them it gets
   * one (LAB_NET_IF, address LAB_NET_ADDR, on qemu's user network 10.0.2.0/24 with `restrict=on`: no route
   * out, nothing of the host reachable but these), and each guest connection to guestAddress:guestPort is
   * piped by a `socat` qemu starts to hostAddress:hostPort. */
  guestForwards?: GuestForward[];
}

/** A TCP address in the VM's user network that leads to a service on the host (see LabVmOptions). */
export interface GuestForward {
  /** An address of 10.0.2.0/24 other than the gateway (.2), DNS (.3) and the guest's own (.15). */
  guestAddress: string;
  guestPort: number;
  /** Default 127.0.0.1. */
  hostAddress?: string;
  hostPort: number;
}

/** The VM's side of its user network, when it has one (guestForwards). */
export const LAB_NET = { ifname: 'eth0', address: '10.0.2.15', prefix: 24, mac: '52:54:00:12:34:56' } as const;

/** What scripts/lab-kernel.sh resolves: 6.1 follows linux-image-amd64, 6.12 linux-image-6.12-amd64. */
export type LabKernelSeries = '6.1' | '6.12';

/** The series LAB_KERNEL names (6.1 when unset), checked as scripts/lab-kernel.sh checks it. */
export function labKernelSeries(env: NodeJS.ProcessEnv = process.env): LabKernelSeries {
  const v = env.LAB_KERNEL ?? '';
  if (v === '' || v === '6.1') return '6.1';
  if (v === '6.12') return '6.12';
  throw new Error(`LAB_KERNEL='${v}': use 6.1 or 6.12`);
}

export interface LabVmResult {
  /** The script's exit status; 124 on timeout; 255 when the VM stopped without a status (see error). */
  exitCode: number;
  /** Everything the VM wrote to its serial console, with \r removed. */
  console: string;
  /** The host directory the script saw as $LAB_OUT. */
  outDir: string;
  /** Wall time from starting qemu to its exit. */
  durationMs: number;
  timedOut: boolean;
  /** Why there is no exit status of the script (set-up failure, VM crash, timeout). */
  error?: string;
  /** Measured inside the VM: uptime when the script started, and how long it ran. */
  timing?: { bootToPayloadMs: number; payloadMs: number };
}

export interface LabKernel {
  /** Kernel release, e.g. 6.1.0-57-amd64 (6.12.117+deb12-amd64 with LAB_KERNEL=6.12). */
  version: string;
  vmlinuz: string;
  /** …/lib/modules/<version> of the unpacked kernel package. */
  modulesDir: string;
}

const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000;
const RUNS_ROOT = process.env.LAB_RUNS_DIR ?? '/var/tmp/ipvs-bpf-lab';
/** Run dirs older than this are removed when a new run starts. */
const RUN_RETENTION_MS = 24 * 60 * 60 * 1000;
const RUN_DIR_PATTERN = /^\d{8}T\d{6}-\d+-[0-9a-f]{8}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const QEMU = 'qemu-system-x86_64';
/**
 * The VM's root is the host's, live over 9p: a package upgrade under a running VM swaps libraries its programs
 * are using (a running lab VM saw systemctl segfault). Every VM holds this lock shared for its whole life;
 * scripts/setup.sh holds it exclusively while apt-get changes packages. Keep the path equal to setup.sh's.
 */
export const HOST_PACKAGES_LOCK = '/run/lock/ipvs-bpf-host-packages.lock';
/**
 * How many lab VMs may run at once on this machine ($LAB_VM_SLOTS, default 2; 0: no limit). Under TCG each VM
 * keeps its vCPUs busy; six at once on two cores made every guest so slow that its own timeouts fired. A VM
 * waits for a free slot before its time limit starts.
 */
const VM_SLOTS = (() => {
  const v = process.env.LAB_VM_SLOTS ?? '2';
  if (!/^\d+$/.test(v)) throw new Error(`lab VM: LAB_VM_SLOTS must be a number of VMs (0: no limit), not '${v}'`);
  return Number(v);
})();

/** A held slot: a flock process that keeps the lock until its stdin closes (also when this process dies). */
export type Slot = { release(): void };

function holdSlot(lock: string, wait: boolean): Promise<Slot | undefined> {
  return new Promise((resolve, reject) => {
    const holder = spawn('flock', [...(wait ? [] : ['--nonblock']), lock, '-c', 'echo held; exec cat >/dev/null'], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    holder.on('error', (e) => reject(new Error(`lab VM: cannot run flock for a VM slot: ${e.message}`)));
    holder.stdout.setEncoding('utf8').once('data', () => resolve({ release: () => holder.stdin.end() }));
    holder.on('exit', () => resolve(undefined));
  });
}

/** One of `slots` locks in `dir` (the first free one, else waits for a random one); undefined: no limit. */
export async function acquireSlot(slots: number, dir: string, onWait: () => void): Promise<Slot | undefined> {
  if (slots === 0) return undefined;
  const lock = (i: number): string => path.join(dir, `ipvs-bpf-vm-slot.${i}.lock`);
  for (let i = 0; i < slots; i++) {
    const slot = await holdSlot(lock(i), false);
    if (slot) return slot;
  }
  onWait();
  const slot = await holdSlot(lock(Math.floor(Math.random() * slots)), true);
  if (!slot) throw new Error('lab VM: flock ended before holding a VM slot');
  return slot;
}

/** The checkout root: the nearest ancestor holding test/lab/init.sh (works from test/lab and dist/test/lab). */
export function checkoutRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'test/lab/init.sh'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`lab VM: no checkout (test/lab/init.sh) above ${__dirname}`);
  }
}

function labScript(name: string): string {
  return path.join(checkoutRoot(), 'test/lab', name);
}

/**
 * Runs a bash script (args after it) and parses the KEY=VALUE lines it prints on stdout; rejects with its
 * stderr when it exits non-zero. `what` names it in the error (default: "lab VM: <script name>").
 */
export function runKeyValueScript(
  script: string,
  env: Record<string, string> = {},
  opts: { args?: string[]; what?: string } = {},
): Promise<Record<string, string>> {
  const what = opts.what ?? `lab VM: ${path.basename(script)}`;
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script, ...(opts.args ?? [])], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) {
        reject(new Error(`${what} failed (exit ${code}):\n${err.trim()}`));
        return;
      }
      const values: Record<string, string> = {};
      for (const line of out.split('\n')) {
        const eq = line.indexOf('=');
        if (eq > 0) values[line.slice(0, eq)] = line.slice(eq + 1);
      }
      resolve(values);
    });
  });
}

function required(values: Record<string, string>, key: string, from: string): string {
  const v = values[key];
  if (!v) throw new Error(`lab VM: ${from} printed no ${key}`);
  return v;
}

/** Downloads (once, cached under /var/cache/ipvs-bpf/lab) and unpacks Debian's current stock kernel of the
 * series LAB_KERNEL names (6.1 by default, or 6.12), as scripts/lab-kernel.sh resolves it. */
export async function prepareLabKernel(series?: LabKernelSeries): Promise<LabKernel> {
  const v = await runKeyValueScript(labScript('prepare-kernel.sh'), kernelEnv(series));
  return {
    version: required(v, 'LAB_KVER', 'prepare-kernel.sh'),
    vmlinuz: required(v, 'LAB_VMLINUZ', 'prepare-kernel.sh'),
    modulesDir: required(v, 'LAB_MODULES_DIR', 'prepare-kernel.sh'),
  };
}

interface BootFiles {
  kernel: LabKernel;
  /** What qemu boots: the uncompressed vmlinux (direct PVH boot, seconds faster under TCG) or the bzImage. */
  bootImage: string;
  initramfs: string;
}

function kernelEnv(series: LabKernelSeries | undefined): Record<string, string> {
  return series ? { LAB_KERNEL: series } : {};
}

async function prepareBoot(series: LabKernelSeries | undefined): Promise<BootFiles> {
  const k = await runKeyValueScript(labScript('prepare-kernel.sh'), kernelEnv(series));
  const kernel: LabKernel = {
    version: required(k, 'LAB_KVER', 'prepare-kernel.sh'),
    vmlinuz: required(k, 'LAB_VMLINUZ', 'prepare-kernel.sh'),
    modulesDir: required(k, 'LAB_MODULES_DIR', 'prepare-kernel.sh'),
  };
  const i = await runKeyValueScript(labScript('build-initramfs.sh'), k);
  return { kernel, bootImage: k.LAB_VMLINUX || kernel.vmlinuz, initramfs: required(i, 'LAB_INITRAMFS', 'build-initramfs.sh') };
}

function findOnPath(exe: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    if (dir && existsSync(path.join(dir, exe))) return path.join(dir, exe);
  }
  return undefined;
}

function checkHost(): string {
  const qemu = findOnPath(QEMU);
  if (!qemu) {
    throw new Error(`lab VM: ${QEMU} not found on PATH; install the Debian packages qemu-system-x86, ` +
      'busybox-static, cpio and kmod (bash scripts/setup.sh does)');
  }
  return qemu;
}

/** Single-quotes a value for bash and busybox sh. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

function exportLines(vars: Record<string, string>): string {
  return Object.entries(vars).map(([k, v]) => `export ${k}=${shellQuote(v)}\n`).join('');
}

function newRunId(): string {
  const t = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  return `${t}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Removes run dirs of earlier runs that are older than RUN_RETENTION_MS (best effort). */
async function pruneOldRuns(): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(RUNS_ROOT);
  } catch {
    return;
  }
  const cutoff = Date.now() - RUN_RETENTION_MS;
  await Promise.all(names.filter((n) => RUN_DIR_PATTERN.test(n)).map(async (n) => {
    const dir = path.join(RUNS_ROOT, n);
    try {
      if ((await fs.stat(dir)).mtimeMs < cutoff) await fs.rm(dir, { recursive: true, force: true });
    } catch {
      // another run may be removing it too
    }
  }));
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

function validate(opts: LabVmOptions): void {
  for (const name of Object.keys(opts.env ?? {})) {
    if (!ENV_NAME.test(name)) throw new Error(`lab VM: env name ${JSON.stringify(name)} is not a shell identifier`);
  }
  for (const f of opts.guestForwards ?? []) {
    const m = /^10\.0\.2\.(\d{1,3})$/.exec(f.guestAddress);
    if (!m || +m[1] > 254 || ['2', '3', '15', '0'].includes(m[1])) {
      throw new Error(`lab VM: guest forward address ${f.guestAddress} is not a free address of 10.0.2.0/24 (.2, .3 and .15 are taken)`);
    }
    const host = f.hostAddress ?? '127.0.0.1';
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) throw new Error(`lab VM: guest forward host address ${host} is not an IPv4 address`);
    for (const [what, port] of [['guest port', f.guestPort], ['host port', f.hostPort]] as const) {
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`lab VM: guest forward ${what} ${port} is not a TCP port`);
    }
  }
  const fwdKeys = (opts.guestForwards ?? []).map((f) => `${f.guestAddress}:${f.guestPort}`);
  const dup = fwdKeys.find((k, i) => fwdKeys.indexOf(k) !== i);
  if (dup) throw new Error(`lab VM: guest forward ${dup} is given twice`);
  for (const ko of opts.extraModules ?? []) {
    if (!path.isAbsolute(ko) || !ko.endsWith('.ko')) throw new Error(`lab VM: extra module ${ko} is not an absolute path to a .ko`);
    if (!existsSync(ko)) throw new Error(`lab VM: extra module ${ko} does not exist`);
  }
}

/** qemu's user network (slirp) with restrict=on, IPv6 off (no router advertisements: the guest's addresses
 * are only those its payload adds) and one guestfwd per forward; qemu runs the cmd: per connection. */
function netdevArgs(forwards: GuestForward[]): string[] {
  const fwd = forwards.map((f) => `,guestfwd=tcp:${f.guestAddress}:${f.guestPort}-cmd:socat - TCP:${f.hostAddress ?? '127.0.0.1'}:${f.hostPort}`);
  return [
    '-netdev', `user,id=labnet,net=10.0.2.0/24,restrict=on,ipv6=off${fwd.join('')}`,
    '-device', `virtio-net-pci,netdev=labnet,mac=${LAB_NET.mac}`,
  ];
}

/** qemu processes still running, killed if this process exits first. */
const liveVms = new Set<import('node:child_process').ChildProcess>();
process.on('exit', () => {
  for (const vm of liveVms) vm.kill('SIGKILL');
});

/** Boots the lab VM, runs opts.script in it, and resolves when the VM is off (or killed on timeout). */
export async function runInVm(opts: LabVmOptions): Promise<LabVmResult> {
  validate(opts);
  const qemu = checkHost();
  const mode = opts.init ?? 'shell';
  const boot = await prepareBoot(opts.kernel);
  const checkout = checkoutRoot();

  await pruneOldRuns();
  const runDir = path.join(RUNS_ROOT, newRunId());
  const outDir = path.join(runDir, 'out');
  await fs.mkdir(outDir, { recursive: true });
  await fs.writeFile(path.join(runDir, 'boot.conf'), Object.entries({
    LAB_RUN_DIR: runDir,
    LAB_MODE: mode,
    LAB_KVER: boot.kernel.version,
    LAB_MODULES_DIR: boot.kernel.modulesDir,
    LAB_CHECKOUT: checkout,
  }).map(([k, v]) => `${k}=${shellQuote(v)}\n`).join(''));
  await fs.writeFile(path.join(runDir, 'env.sh'), exportLines({
    ...opts.env,
    LAB_OUT: outDir,
    LAB_CHECKOUT: checkout,
    LAB_MODE: mode,
    LAB_VM: '1',
  }));
  await fs.writeFile(path.join(runDir, 'payload.sh'), opts.script);
  if (opts.extraModules?.length) await fs.writeFile(path.join(runDir, 'extra-modules'), opts.extraModules.join('\n') + '\n');
  const forwards = opts.guestForwards ?? [];
  if (forwards.length) {
    await fs.writeFile(path.join(runDir, 'net.conf'), Object.entries({
      LAB_NET_IF: LAB_NET.ifname, LAB_NET_MAC: LAB_NET.mac, LAB_NET_ADDR: `${LAB_NET.address}/${LAB_NET.prefix}`,
    }).map(([k, v]) => `${k}=${shellQuote(v)}\n`).join(''));
  }

  // no_timer_check: under TCG on a busy host the kernel's IO-APIC timer check can fail spuriously.
  const cmdline = ['console=ttyS0', 'quiet', 'panic=-1', 'no_timer_check'];
  if (mode === 'systemd') cmdline.push('SYSTEMD_COLORS=0', 'systemd.show_status=error');
  const args = [
    '-accel', 'tcg', '-cpu', 'max',
    '-m', String(opts.memoryMb ?? 2048), '-smp', String(opts.cpus ?? 2),
    '-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio', '-no-reboot',
    '-kernel', boot.bootImage, '-initrd', boot.initramfs, '-append', cmdline.join(' '),
    '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
    '-virtfs', `local,path=${runDir},mount_tag=labrun,security_model=none,multidevs=remap`,
  ];
  if (forwards.length) args.push(...netdevArgs(forwards));

  const slot = await acquireSlot(VM_SLOTS, '/run/lock', () => process.stderr.write(
    `lab VM: ${VM_SLOTS} VMs are running on this machine (LAB_VM_SLOTS); waiting for one to end\n`));
  const started = Date.now();
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // flock --no-fork execs qemu once the lock is held: the child is qemu itself (signals, exit code), holding it
  const child = spawn('flock', ['--shared', '--no-fork', HOST_PACKAGES_LOCK, qemu, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  liveVms.add(child);
  let consoleText = '';
  let qemuStderr = '';
  let timedOut = false;
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    const chunk = d.replace(/\r/g, '');
    consoleText += chunk;
    opts.onConsole?.(chunk);
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (qemuStderr += d));
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);

  const qemuExit = await new Promise<{ code: number | null; spawnError?: Error }>((resolve) => {
    child.on('error', (e) => resolve({ code: null, spawnError: e }));
    child.on('close', (code) => resolve({ code }));
  });
  clearTimeout(timer);
  liveVms.delete(child);
  slot?.release();
  const durationMs = Date.now() - started;
  if (qemuExit.spawnError) throw new Error(`lab VM: cannot start ${qemu}: ${qemuExit.spawnError.message}`);

  const result: LabVmResult = { exitCode: 255, console: consoleText, outDir, durationMs, timedOut };
  const timing = Object.fromEntries(
    [...((await readOptional(path.join(runDir, 'timing'))) ?? '').matchAll(/(\w+)=([\d.]+)/g)].map((m) => [m[1], +m[2]]),
  );
  if (timing.boot_to_payload_s !== undefined && timing.payload_s !== undefined) {
    result.timing = { bootToPayloadMs: Math.round(timing.boot_to_payload_s * 1000), payloadMs: Math.round(timing.payload_s * 1000) };
  }

  const status = await readOptional(path.join(runDir, 'status'));
  const setupError = await readOptional(path.join(runDir, 'setup-error'));
  const initError = await readOptional(path.join(runDir, 'init-error'));
  if (timedOut) {
    result.exitCode = 124;
    result.error = `timed out after ${timeoutMs} ms (qemu killed)`;
  } else if (setupError !== undefined) {
    result.error = `set-up in the VM failed: ${setupError.trim()}`;
  } else if (status !== undefined && /^\d+\s*$/.test(status)) {
    result.exitCode = parseInt(status, 10);
  } else {
    result.error = initError?.trim() ??
      `the VM stopped without an exit status (qemu exit ${qemuExit.code}${qemuStderr ? `: ${qemuStderr.trim()}` : ''}); see the console`;
  }
  return result;
}
