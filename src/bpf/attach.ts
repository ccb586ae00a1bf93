/**
 * Attach/detach by interface name. Attachments are netlink-based (XDP) and tc filters
 * (clsact, direct action), so they outlive the daemon process; attaching again with the
 * same program is a no-op and with another program replaces it in place, without a moment
 * with no program: tc by replacing the program of our filter (same handle and priority),
 * XDP with XDP_FLAGS_REPLACE and the program found attached as the expected old one (the
 * swap fails rather than overwrite a program attached meanwhile by someone else).
 *
 * XDP_TX / XDP_REDIRECT into a veth need NAPI on the receiving peer: attach
 * ipvs_xdp_pass (Datapath.progs.xdpPass) there or enable GRO on it. The fast path assumes
 * complete checksums in the frames it rewrites (true for NICs); a veth peer whose stack
 * hands over CHECKSUM_PARTIAL skbs (the default) must run with tx checksumming off.
 */
import { native, TcDirection, XdpMode } from './native';
import type { DatapathPrograms } from './loader';

/** tc filter handle and priority used for our programs (one slot per hook). */
export const TC_HANDLE = 0x1b5;
export const TC_PRIORITY = 1;

/** replaced: the id of the program this attach swapped out (absent when there was none or it was ours already). */
export interface XdpAttachment { ifname: string; ifindex: number; mode: XdpMode; progId: number; replaced?: number }

/** A program we hold a descriptor of (e.g. the one a pin held before an upgrade), by id. */
export interface KnownProgram { id: number; fd: number }

/** A descriptor of the attached program to name as the expected old one: ours, or by id (CAP_SYS_ADMIN). */
function expectedOld(id: number, known: readonly KnownProgram[]): { fd: number; close: boolean } | undefined {
  const k = known.find((p) => p.id === id);
  if (k) return { fd: k.fd, close: false };
  try {
    return { fd: native.progGetFdById(id), close: true };
  } catch {
    return undefined; // EPERM without CAP_SYS_ADMIN (the systemd unit), or gone
  }
}

/**
 * XDP on ifname, in place of whatever runs there in the same mode. The swap names the attached program
 * as the expected old one (known: descriptors of programs we may find attached, such as the pinned
 * programs before an upgrade); without a descriptor of it, a plain attach, which is still an atomic swap.
 */
export function attachXdp(ifname: string, progFd: number, mode: XdpMode | 'auto' = 'auto', known: readonly KnownProgram[] = []): XdpAttachment {
  const ifindex = native.ifIndex(ifname);
  const progId = native.progInfo(progFd).id;
  const cur = native.xdpQuery(ifindex);
  const curMode = cur.mode === 'native' || cur.mode === 'generic' ? cur.mode : undefined;
  const keep = curMode !== undefined && (mode === 'auto' || mode === curMode) ? curMode : undefined;
  if (keep && cur.progId === progId) return { ifname, ifindex, mode: keep, progId };
  const old = keep && cur.progId !== 0 ? expectedOld(cur.progId, known) : undefined;
  if (keep && old) {
    try {
      native.xdpReplace(ifindex, progFd, old.fd, keep);
    } finally {
      if (old.close) native.closeFd(old.fd);
    }
    return { ifname, ifindex, mode: keep, progId, replaced: cur.progId };
  }
  const used = native.xdpAttach(ifindex, progFd, mode);
  return { ifname, ifindex, mode: used, progId, ...(cur.progId ? { replaced: cur.progId } : {}) };
}

export function detachXdp(ifname: string): void {
  const ifindex = native.ifIndex(ifname);
  const cur = native.xdpQuery(ifindex);
  if (cur.mode === 'native' || cur.mode === 'generic') native.xdpDetach(ifindex, cur.mode);
}

export function xdpState(ifname: string): { mode: string; progId: number } {
  return native.xdpQuery(native.ifIndex(ifname));
}

export interface TcAttachment { progId: number; replaced?: number }

export function attachTc(ifname: string, dir: TcDirection, progFd: number, priority = TC_PRIORITY): TcAttachment {
  const ifindex = native.ifIndex(ifname);
  const progId = native.progInfo(progFd).id;
  const cur = native.tcQuery(ifindex, dir, TC_HANDLE, priority);
  if (cur === progId) return { progId };
  // BPF_TC_F_REPLACE on our handle/priority: the filter stays, its program is swapped
  return { progId: native.tcAttach(ifindex, dir, progFd, TC_HANDLE, priority), ...(cur ? { replaced: cur } : {}) };
}

export function detachTc(ifname: string, dir: TcDirection, priority = TC_PRIORITY): void {
  native.tcDetach(native.ifIndex(ifname), dir, TC_HANDLE, priority);
}

export function tcProgId(ifname: string, dir: TcDirection, priority = TC_PRIORITY): number {
  return native.tcQuery(native.ifIndex(ifname), dir, TC_HANDLE, priority);
}

export interface InterfaceAttachment { ifname: string; xdp?: XdpAttachment; tcEgress: TcAttachment; tcIngress: TcAttachment }

/** tc SNAT on egress, tc reply on ingress, and (unless xdp is false) the XDP fast path. */
export function attachInterface(
  progs: DatapathPrograms,
  ifname: string,
  opts: { xdp?: boolean; xdpMode?: XdpMode | 'auto'; known?: readonly KnownProgram[] } = {},
): InterfaceAttachment {
  const tcEgress = attachTc(ifname, 'egress', progs.tcEgress);
  const tcIngress = attachTc(ifname, 'ingress', progs.tcIngress);
  const xdp = opts.xdp === false ? undefined : attachXdp(ifname, progs.xdp, opts.xdpMode ?? 'auto', opts.known);
  return { ifname, xdp, tcEgress, tcIngress };
}

export function detachInterface(ifname: string): void {
  detachXdp(ifname);
  detachTc(ifname, 'egress');
  detachTc(ifname, 'ingress');
}
