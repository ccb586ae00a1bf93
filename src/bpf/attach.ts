/**
 * Attach/detach by interface name. Attachments are netlink-based (XDP) and tc filters
 * (clsact, direct action), so they outlive the daemon process; attaching again with the
 * same program is a no-op and with another program replaces it in place.
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

export interface XdpAttachment { ifname: string; ifindex: number; mode: XdpMode; progId: number }

export function attachXdp(ifname: string, progFd: number, mode: XdpMode | 'auto' = 'auto'): XdpAttachment {
  const ifindex = native.ifIndex(ifname);
  const progId = native.progInfo(progFd).id;
  const cur = native.xdpQuery(ifindex);
  if (cur.progId === progId && (cur.mode === 'native' || cur.mode === 'generic') && (mode === 'auto' || mode === cur.mode)) {
    return { ifname, ifindex, mode: cur.mode, progId };
  }
  const used = native.xdpAttach(ifindex, progFd, mode);
  return { ifname, ifindex, mode: used, progId };
}

export function detachXdp(ifname: string): void {
  const ifindex = native.ifIndex(ifname);
  const cur = native.xdpQuery(ifindex);
  if (cur.mode === 'native' || cur.mode === 'generic') native.xdpDetach(ifindex, cur.mode);
}

export function xdpState(ifname: string): { mode: string; progId: number } {
  return native.xdpQuery(native.ifIndex(ifname));
}

export function attachTc(ifname: string, dir: TcDirection, progFd: number, priority = TC_PRIORITY): number {
  const ifindex = native.ifIndex(ifname);
  const progId = native.progInfo(progFd).id;
  if (native.tcQuery(ifindex, dir, TC_HANDLE, priority) === progId) return progId;
  return native.tcAttach(ifindex, dir, progFd, TC_HANDLE, priority);
}

export function detachTc(ifname: string, dir: TcDirection, priority = TC_PRIORITY): void {
  native.tcDetach(native.ifIndex(ifname), dir, TC_HANDLE, priority);
}

export function tcProgId(ifname: string, dir: TcDirection, priority = TC_PRIORITY): number {
  return native.tcQuery(native.ifIndex(ifname), dir, TC_HANDLE, priority);
}

export interface InterfaceAttachment { ifname: string; xdp?: XdpAttachment; tcEgress: number; tcIngress: number }

/** tc SNAT on egress, tc reply on ingress, and (unless xdp is false) the XDP fast path. */
export function attachInterface(
  progs: DatapathPrograms,
  ifname: string,
  opts: { xdp?: boolean; xdpMode?: XdpMode | 'auto' } = {},
): InterfaceAttachment {
  const tcEgress = attachTc(ifname, 'egress', progs.tcEgress);
  const tcIngress = attachTc(ifname, 'ingress', progs.tcIngress);
  const xdp = opts.xdp === false ? undefined : attachXdp(ifname, progs.xdp, opts.xdpMode ?? 'auto');
  return { ifname, xdp, tcEgress, tcIngress };
}

export function detachInterface(ifname: string): void {
  detachXdp(ifname);
  detachTc(ifname, 'egress');
  detachTc(ifname, 'ingress');
}
