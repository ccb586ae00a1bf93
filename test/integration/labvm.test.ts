/** The lab VM itself: it boots Debian's stock kernel, IPVS works there, and results and status come back. */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LabKernel, prepareLabKernel, runInVm } from '../lab/vm';

// The project's testTimeout does not reach per-project configs in jest 29; each VM boot is bounded here.
jest.setTimeout(5 * 60 * 1000);

let kernel: LabKernel;

beforeAll(async () => {
  kernel = await prepareLabKernel();
}, 5 * 60 * 1000);

describe('lab VM, shell mode', () => {
  it('runs the script as root in the checkout on the stock kernel, with IPVS, netns+veth, env, LAB_OUT and the exit status', async () => {
    const r = await runInVm({
      env: { GREETING: "it's a \"test\" $HOME" },
      timeoutMs: 3 * 60 * 1000,
      script: [
        'set -e',
        'echo "kernel=$(uname -r) user=$(id -u) cwd=$PWD"',
        'echo "greeting=$GREETING"',
        'modprobe ip_vs',
        'ipvsadm -A -t 10.0.0.1:80 -s rr',
        'ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.2:8080 -m',
        'ipvsadm -Sn > "$LAB_OUT/rules"',
        'ip netns add peer',
        'ip link add lab0 type veth peer name lab1 netns peer',
        'ip addr add 192.0.2.1/24 dev lab0 && ip link set lab0 up',
        'ip -n peer addr add 192.0.2.2/24 dev lab1 && ip -n peer link set lab1 up',
        '(ip netns exec peer nc -l 192.0.2.2 9000 > /tmp/received &)',
        'for i in $(seq 50); do echo over-veth | nc -N 192.0.2.2 9000 2>/dev/null && break; sleep 0.2; done',
        'for i in $(seq 50); do [ -s /tmp/received ] && break; sleep 0.2; done',
        'echo "received=$(cat /tmp/received)"',
        'mount | grep -q " /sys/fs/bpf type bpf" && echo bpffs-ok',
        'touch /var/lab-probe /tmp/lab-probe && echo writable-ok',
        'echo "node-$(node --version)"',
        'exit 3',
      ].join('\n'),
    });
    expect(r.error).toBeUndefined();
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(3);
    const cwd = path.resolve(__dirname, '../..');
    expect(r.console).toContain(`kernel=${kernel.version} user=0 cwd=${cwd}`);
    expect(r.console).toContain(`greeting=it's a "test" $HOME`);
    expect(r.console).toContain('received=over-veth');
    expect(r.console).toContain('bpffs-ok');
    expect(r.console).toContain('writable-ok');
    expect(r.console).toMatch(/node-v\d+\./);
    const rules = await fs.readFile(path.join(r.outDir, 'rules'), 'utf8');
    expect(rules).toBe('-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.2:8080 -m -w 1\n');
    expect(r.timing?.bootToPayloadMs).toBeGreaterThan(0);
  });

  it('loads an extra module file in place of the stock one, also when pulled in as a dependency', async () => {
    // A copy of the stock ip_vs.ko at another path stands in for a patched build.
    const dir = await fs.mkdtemp('/var/tmp/labvm-test-');
    const ko = path.join(dir, 'ip_vs.ko');
    await fs.copyFile(path.join(kernel.modulesDir, 'kernel/net/netfilter/ipvs/ip_vs.ko'), ko);
    try {
      const r = await runInVm({
        extraModules: [ko],
        timeoutMs: 3 * 60 * 1000,
        script: [
          'set -e',
          'grep -q "^ip_vs " /proc/modules && echo loaded-at-boot',
          'rmmod ip_vs',
          'modprobe -v ip_vs_rr',   // needs ip_vs: must come from the extra file
        ].join('\n'),
      });
      expect(r.error).toBeUndefined();
      expect(r.exitCode).toBe(0);
      expect(r.console).toContain('loaded-at-boot');
      expect(r.console).toContain(`insmod ${ko}`);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('kills a VM that does not finish in time, and says so', async () => {
    const r = await runInVm({ script: 'sleep 600', timeoutMs: 10_000 });
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBe(124);
    expect(r.error).toMatch(/timed out/);
    expect(r.durationMs).toBeLessThan(15_000);
  });
});

describe('lab VM, other kernel series', () => {
  it('boots Debian\'s 6.12 kernel (linux-image-6.12-amd64) with kernel: \'6.12\', and stock IPVS works there', async () => {
    const k612 = await prepareLabKernel('6.12');
    expect(k612.version).toMatch(/^6\.12\.\d+\+deb12-amd64$/);
    const r = await runInVm({
      kernel: '6.12',
      timeoutMs: 3 * 60 * 1000,
      script: [
        'set -e',
        'echo "kernel=$(uname -r)"',
        'modprobe ip_vs',
        'ipvsadm -A -t 10.0.0.1:80 -s rr',
        'ipvsadm -Sn > "$LAB_OUT/rules"',
      ].join('\n'),
    });
    expect(r.error).toBeUndefined();
    expect(r.exitCode).toBe(0);
    expect(r.console).toContain(`kernel=${k612.version}\n`);
    expect(await fs.readFile(path.join(r.outDir, 'rules'), 'utf8')).toBe('-A -t 10.0.0.1:80 -s rr\n');
  });
});

describe('lab VM, systemd mode', () => {
  it('boots systemd as PID 1 with a D-Bus system bus, runs the script once the system is up, and powers off', async () => {
    const r = await runInVm({
      init: 'systemd',
      timeoutMs: 4 * 60 * 1000,
      script: [
        'echo "pid1=$(cat /proc/1/comm)"',
        'echo "state=$(systemctl is-system-running --wait)"',
        'busctl --system list --no-pager > "$LAB_OUT/bus-names"',
        'echo "tmp=$(findmnt -n -o FSTYPE /tmp)"',
        'exit 7',
      ].join('\n'),
    });
    expect(r.error).toBeUndefined();
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(7);
    expect(r.console).toContain('pid1=systemd');
    expect(r.console).toMatch(/state=(running|degraded)\n/);
    expect(r.console).toContain('tmp=tmpfs');
    const busNames = await fs.readFile(path.join(r.outDir, 'bus-names'), 'utf8');
    expect(busNames).toMatch(/^org\.freedesktop\.DBus\s/m);
  });
});
