/**
 * The patched IPVS's control interface (kernel-patch/README.md): the control file /proc/net/ip_vs_bpf
 * (one command per write, from the process that holds the map fd) and the sysctl net.ipv4.vs.bpf_mode.
 * Stock IPVS has neither; that is how `auto` mode tells the kernels apart.
 */
import { closeSync, existsSync, openSync, readFileSync, writeFileSync, writeSync } from 'fs';

export const CONTROL_FILE = '/proc/net/ip_vs_bpf';
export const MODE_SYSCTL = '/proc/sys/net/ipv4/vs/bpf_mode';

/** What the errno of a refused control command means (from the README's table). */
const WHY: Record<string, string> = {
  EINVAL: 'malformed command, or the fd is not a BPF map',
  EBADF: 'no such file descriptor',
  EPROTO: 'ABI version or map name differs from the module\'s',
  EMEDIUMTYPE: 'the map is not a hash map',
  EMSGSIZE: 'key or value size differs from the module\'s',
  EBUSY: 'a different map is attached (detach first)',
  ENOENT: 'nothing attached',
  EADDRNOTAVAIL: 'address not usable for SNAT (0/8, multicast, broadcast or loopback)',
  E2BIG: 'more than 16 SNAT addresses',
  ERANGE: 'port range out of bounds',
  EOPNOTSUPP: 'unknown command',
};

export class KernelControlError extends Error {
  override name = 'KernelControlError';
  constructor(readonly command: string, readonly code: string) {
    super(`${CONTROL_FILE}: "${command}" refused: ${code}${WHY[code] ? ` (${WHY[code]})` : ''}`);
  }
}

/** Whether the loaded IPVS has the BPF mode (the control file exists once the patched ip_vs is loaded). */
export function hasBpfMode(controlFile = CONTROL_FILE): boolean {
  return existsSync(controlFile);
}

/** One command, one write(2). */
export function controlCommand(command: string, controlFile = CONTROL_FILE): void {
  const fd = openSync(controlFile, 'w');
  try {
    writeSync(fd, `${command}\n`);
  } catch (e) {
    throw new KernelControlError(command, (e as NodeJS.ErrnoException).code ?? 'EIO');
  } finally {
    closeSync(fd);
  }
}

/** The control file's `key value` lines. */
export function parseControlState(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    const sp = t.indexOf(' ');
    if (sp < 0) out[t] = '';
    else out[t.slice(0, sp)] = t.slice(sp + 1).trim();
  }
  return out;
}

export function readControlState(controlFile = CONTROL_FILE): Record<string, string> {
  try {
    return parseControlState(readFileSync(controlFile, 'utf8'));
  } catch {
    return {};
  }
}

export function setBpfMode(on: boolean, sysctl = MODE_SYSCTL): void {
  writeFileSync(sysctl, on ? '1\n' : '0\n');
}

/**
 * Map entries the patched IPVS currently holds: its `entries` line (kernel-patch/README.md), kept by the
 * module at every insert and delete, so no map copy is needed. null without that line (stock IPVS, a
 * module older than the line, an unreadable file).
 */
export function ownedEntries(state: Record<string, string>): bigint | null {
  const { entries } = state;
  return entries !== undefined && /^\d+$/.test(entries) ? BigInt(entries) : null;
}
