/**
 * Which mode runs, and why. BPF mode takes every NAT connection's translation out of conntrack, so it runs
 * only where it can work: the patched IPVS is loaded, at least one interface and one SNAT address are
 * configured, every interface exists and every SNAT address is assigned to a local interface, in the
 * daemon's network namespace. `mode auto` runs plain IPVS otherwise (the reason in the log and in
 * ModeReason); `mode bpf` without them is a configuration error naming the key.
 */
import * as net from 'net';
import { createRtNetlink } from 'netlink';
import type { DaemonConfig } from './config';

/** The links and IPv4 addresses of a network namespace. */
export interface NetState {
  links: ReadonlySet<string>;
  /** IPv4 address -> the interface it is assigned to. */
  addresses: ReadonlyMap<string, string>;
}

/** The daemon's own namespace, read over rtnetlink (RTM_GETLINK, RTM_GETADDR dumps). */
export async function readNetState(): Promise<NetState> {
  const rt = createRtNetlink();
  try {
    const links = await rt.getLinks();
    const names = new Map<number, string>();
    for (const l of links) if (l.attrs.ifname !== undefined && l.data.index !== undefined) names.set(l.data.index, l.attrs.ifname);
    const addresses = new Map<string, string>();
    for (const a of await rt.getAddresses()) {
      const raw = a.attrs.local ?? a.attrs.address;
      if (a.data.family !== 2 || !raw || raw.length !== 4) continue;
      addresses.set([...raw].join('.'), names.get(a.data.index ?? -1) ?? `ifindex ${a.data.index}`);
    }
    return { links: new Set(names.values()), addresses };
  } finally {
    rt.socket.close();
  }
}

/** A configuration bpf mode cannot run with; the message names each key (`key: why`, one per line). */
export class ConfigProblem extends Error {
  override name = 'ConfigProblem';
}

type BpfSettings = Pick<DaemonConfig, 'interfaces' | 'snat'>;

/** What keeps bpf mode from working with these settings here, one `key: why` each ([] = nothing). */
export function bpfProblems(cfg: BpfSettings, state: NetState): string[] {
  const out: string[] = [];
  if (cfg.interfaces.length === 0) {
    out.push('interfaces: none configured (bpf mode needs the interfaces towards the clients and the real servers)');
  }
  for (const i of cfg.interfaces) if (!state.links.has(i)) out.push(`interfaces: ${i} does not exist`);
  if (cfg.snat.addresses.length === 0) {
    out.push('snat.addresses: none configured (bpf mode needs a local address the real servers route back to)');
  }
  for (const a of cfg.snat.addresses) {
    if (net.isIPv4(a) && !state.addresses.has(a)) out.push(`snat.addresses: ${a} is not assigned to any local interface`);
  }
  return out;
}

export interface ModeChoice {
  mode: 'bpf' | 'ipvs';
  /** Why, when not simply as configured ('' for mode ipvs and bpf). */
  reason: string;
  /** For mode bpf: what makes the configuration unusable (the start fails with these). */
  problems: string[];
}

export const NO_BPF_KERNEL = 'the kernel\'s IPVS has no BPF mode (/proc/net/ip_vs_bpf does not exist: stock IPVS, or the patched modules are not loaded)';

/** The mode a start with this configuration runs. */
export function chooseMode(cfg: Pick<DaemonConfig, 'mode'> & BpfSettings, kernelHasBpf: boolean, state: NetState): ModeChoice {
  if (cfg.mode === 'ipvs') return { mode: 'ipvs', reason: '', problems: [] };
  const problems = bpfProblems(cfg, state);
  if (cfg.mode === 'bpf') return { mode: 'bpf', reason: '', problems };
  if (!kernelHasBpf) return { mode: 'ipvs', reason: `auto: ${NO_BPF_KERNEL}`, problems: [] };
  if (problems.length) return { mode: 'ipvs', reason: `auto: not using the BPF mode: ${problems.join('; ')}`, problems: [] };
  return { mode: 'bpf', reason: 'auto: the kernel\'s IPVS has the BPF mode, and the interfaces and SNAT addresses are in place', problems: [] };
}
