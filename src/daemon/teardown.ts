/**
 * `ipvs-bpf --teardown`: removes what a stopped daemon leaves running on purpose (src/daemon/datapath.ts):
 * the patched IPVS is switched back to plain IPVS (net.ipv4.vs.bpf_mode 0), the conntrack map is
 * unregistered (`detach`: the module drops the entries of its live connections and its map reference),
 * our XDP and tc programs come off every interface that runs them, and the pins are removed, which frees
 * the maps and programs. IPVS rules stay (they are IPVS's, `ipvsadm -C` clears them).
 *
 * Connections made in BPF mode lose their translation with the map and break; connections made after the
 * switch back are plain IPVS NAT and are not affected. Each step is skipped when there is nothing to
 * undo, so teardown is idempotent; a step that fails is reported and the others still run.
 */
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'fs';
import * as path from 'path';
import type { DaemonConfig } from './config';
import { controlCommand, hasBpfMode, KernelControlError, MODE_SYSCTL, readControlState, setBpfMode } from './kernel-bpf';

export interface TeardownResult {
  /** What was done, one line each, in order. */
  done: string[];
  /** Steps that failed (the others still ran). */
  failed: string[];
}

/** Program names as the kernel keeps them (BPF_OBJ_NAME_LEN 16, NUL included). */
const OUR_PROGRAM_NAMES = new Set(['ipvs_xdp_fastpath', 'ipvs_tc_snat', 'ipvs_tc_reply', 'ipvs_xdp_pass'].map((n) => n.slice(0, 15)));

export async function teardown(cfg: DaemonConfig): Promise<TeardownResult> {
  const done: string[] = [];
  const failed: string[] = [];
  const step = (what: string, fn: () => string | undefined): void => {
    try {
      const r = fn();
      if (r) done.push(r);
    } catch (e) {
      failed.push(`${what}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };

  // 1. The kernel: back to plain IPVS first (new connections get no entries), then unregister the map.
  if (hasBpfMode()) {
    step('bpf_mode 0', () => {
      if (!existsSync(MODE_SYSCTL) || readFileSync(MODE_SYSCTL, 'utf8').trim() === '0') return undefined;
      setBpfMode(false);
      return 'net.ipv4.vs.bpf_mode = 0';
    });
    step('detach the map', () => {
      const mapId = readControlState().map_id;
      try {
        controlCommand('detach');
      } catch (e) {
        if (e instanceof KernelControlError && e.code === 'ENOENT') return undefined;
        throw e;
      }
      return `map ${mapId ?? '?'} unregistered from IPVS`;
    });
  }

  // 2. The programs: everything in our tc slot or XDP hook whose program is ours (by pinned id or name).
  const { native } = await import('../bpf/native');
  const { detachTc, detachXdp, TC_HANDLE, TC_PRIORITY } = await import('../bpf/attach');
  const pinned = new Set<number>();
  if (existsSync(cfg.pinDir)) {
    for (const f of readdirSync(cfg.pinDir)) {
      if (!f.startsWith('prog_')) continue;
      const fd = native.objGet(path.join(cfg.pinDir, f));
      if (fd === null) continue;
      try {
        pinned.add(native.progInfo(fd).id);
      } finally {
        native.closeFd(fd);
      }
    }
  }
  const ours = (id: number): boolean => {
    if (id === 0) return false;
    if (pinned.has(id)) return true;
    let fd: number;
    try {
      fd = native.progGetFdById(id);
    } catch {
      return false;
    }
    try {
      return OUR_PROGRAM_NAMES.has(native.progInfo(fd).name);
    } finally {
      native.closeFd(fd);
    }
  };
  const interfaces = new Set<string>([...cfg.interfaces, ...readdirSync('/sys/class/net')]);
  for (const ifname of interfaces) {
    let ifindex: number;
    try {
      ifindex = native.ifIndex(ifname);
    } catch {
      continue; // a configured interface that is gone
    }
    step(`${ifname}: XDP`, () => {
      const x = native.xdpQuery(ifindex);
      if (!ours(x.progId)) return undefined;
      detachXdp(ifname);
      return `${ifname}: XDP program ${x.progId} detached`;
    });
    for (const dir of ['ingress', 'egress'] as const) {
      step(`${ifname}: tc ${dir}`, () => {
        const id = native.tcQuery(ifindex, dir, TC_HANDLE, TC_PRIORITY);
        if (!ours(id)) return undefined;
        detachTc(ifname, dir);
        return `${ifname}: tc ${dir} program ${id} detached`;
      });
    }
  }

  // 3. The pins: the last references, so the maps and programs are freed.
  if (existsSync(cfg.pinDir)) {
    step(`remove ${cfg.pinDir}`, () => {
      const files = readdirSync(cfg.pinDir);
      for (const f of files) native.unpin(path.join(cfg.pinDir, f));
      rmdirSync(cfg.pinDir);
      return `${cfg.pinDir} removed (${files.length} pins)`;
    });
  }
  return { done, failed };
}
