/**
 * The data path as the daemon runs it. Mode ipvs: nothing (plain IPVS). Mode bpf: the pinned maps and
 * programs are opened (or loaded and pinned the first time), attached to the configured interfaces, and
 * the conntrack map is registered with the patched IPVS, which is then switched to its BPF mode.
 *
 * Everything here outlives the daemon on purpose: stopping closes our file descriptors only, so the
 * programs stay attached, the pins and the map registration stay, and live flows keep their entries.
 * A restart re-opens the same pins, re-attaching is a no-op and `attach` of the same map succeeds.
 * After an upgrade (other BPF objects on disk) the start replaces each changed program in place on every
 * interface and keeps the maps (src/bpf/loader.ts): established flows go on; one log line per program.
 * The device map (where XDP may redirect) is kept equal to the interfaces that run the XDP fast path.
 */
import type { DaemonConfig } from './config';
import { controlCommand, hasBpfMode, ownedEntries, readControlState, setBpfMode } from './kernel-bpf';
import type { Logger } from './log';
import { bpfProblems, chooseMode, ConfigProblem, NO_BPF_KERNEL, readNetState } from './preflight';
import type { FlowPage, InterfaceStatus } from './status';

export interface DataPath {
  readonly mode: 'bpf' | 'ipvs';
  /** Why this mode runs when another was asked for ('' when as configured). */
  readonly reason: string;
  interfaces(): InterfaceStatus[];
  /**
   * Checks a reloaded configuration before anything is applied: throws ConfigProblem when the running mode
   * cannot work with it (the reload is refused). Returns what a restart would do differently ('' if nothing).
   */
  check(cfg: DaemonConfig): Promise<string>;
  /** Applies a reloaded configuration (interfaces, SNAT settings); logs what it cannot do. */
  configure(cfg: DaemonConfig): void;
  flowCount(): bigint;
  /** Capacity of the conntrack map in entries (the pinned map's, which may predate mapEntries); null in ipvs mode. */
  mapCapacity(): number | null;
  /** At most `limit` map entries from `cursor` (0n: the start); next 0n: no more. */
  flows(cursor: bigint, limit: number): FlowPage;
  counters(): Record<string, bigint>;
  kernelCounters(): Record<string, string>;
  close(): void;
}

export type DataPathFactory = (cfg: DaemonConfig, log: Logger) => Promise<DataPath>;

export function plainIpvs(reason: string, configured: DaemonConfig['mode'] = 'ipvs'): DataPath {
  return {
    mode: 'ipvs',
    reason,
    interfaces: () => [],
    async check(next: DaemonConfig): Promise<string> {
      if (configured !== 'auto') return '';
      const would = chooseMode({ ...next, mode: 'auto' }, hasBpfMode(), await readNetState());
      return would.mode === 'bpf' ? 'mode auto: a restart would switch to the BPF mode (the interfaces and SNAT addresses are in place now)' : '';
    },
    configure: () => undefined,
    flowCount: () => 0n,
    mapCapacity: () => null,
    flows: () => ({ flows: [], next: 0n }),
    counters: () => ({}),
    kernelCounters: () => ({}),
    close: () => undefined,
  };
}

/**
 * The default factory: decides the mode from the configuration, the kernel and this namespace's links and
 * addresses (preflight.ts). Mode bpf with unusable settings throws ConfigProblem (a configuration error).
 */
export const startDataPath: DataPathFactory = async (cfg, log) => {
  if (cfg.mode === 'ipvs') return plainIpvs('');
  const choice = chooseMode(cfg, hasBpfMode(), await readNetState());
  if (choice.problems.length) throw new ConfigProblem(choice.problems.join('\n'));
  if (cfg.mode === 'bpf' && !hasBpfMode()) {
    throw new Error(`mode bpf: ${NO_BPF_KERNEL}; load the patched modules (kernel-patch/) or set mode auto or ipvs`);
  }
  if (choice.mode === 'ipvs') {
    log.warning(`mode auto: running plain IPVS: ${choice.reason.replace(/^auto: /, '')}`);
    return plainIpvs(choice.reason, 'auto');
  }
  return startBpf(cfg, log, choice.reason);
};

async function startBpf(cfg: DaemonConfig, log: Logger, reason: string): Promise<DataPath> {
  // Loaded only in bpf mode: plain IPVS needs neither the addon nor the BPF objects.
  const { openDatapath } = await import('../bpf/loader');
  const { attachInterface, detachInterface } = await import('../bpf/attach');
  const { setRedirectDevices } = await import('../bpf/devmap');
  const { FlowTable, readStats } = await import('../bpf/flows');
  const { layout } = await import('../bpf/abi');
  const { native } = await import('../bpf/native');

  const dp = openDatapath({ pinDir: cfg.pinDir, maxEntries: cfg.mapEntries });
  const count = (a: string): number => dp.changes.filter((c) => c.action === a).length;
  log.info(dp.reused ? `data path re-opened from the pins under ${dp.pinDir}`
    : `data path under ${dp.pinDir} from ${dp.objects.join(', ')}: ${count('loaded')} programs loaded, ${count('replaced')} replaced, ${count('kept')} kept`);
  const attached = new Map<string, InterfaceStatus>();
  let current = cfg;
  /** new program id -> hooks where it took the place of another program in this attach round */
  const swapped = new Map<number, string[]>();

  const attach = (ifname: string, c: DaemonConfig): void => {
    const a = attachInterface(dp.progs, ifname, { xdp: c.xdp.enabled, xdpMode: c.xdp.mode, known: dp.previous });
    attached.set(ifname, { name: ifname, xdp: a.xdp?.mode ?? 'none' });
    const note = (hook: string, progId: number, replaced?: number): void => {
      if (replaced === undefined) return;
      swapped.set(progId, [...(swapped.get(progId) ?? []), `${ifname} ${hook} (was ${replaced})`]);
    };
    note('xdp', a.xdp?.progId ?? 0, a.xdp?.replaced);
    note('egress', a.tcEgress.progId, a.tcEgress.replaced);
    note('ingress', a.tcIngress.progId, a.tcIngress.replaced);
  };
  const exists = (ifname: string): boolean => {
    try {
      native.ifIndex(ifname);
      return true;
    } catch {
      return false;
    }
  };
  const redirectTo = (): void => {
    const names = [...attached.values()].filter((i) => i.xdp !== 'none').map((i) => i.name);
    setRedirectDevices(dp.devMap, names, (n) => log.warning(`XDP redirect devices: ${n} no longer exists, left out`));
  };
  const kernelSettings = (c: DaemonConfig): void => {
    controlCommand(`snat ${c.snat.addresses.join(' ')}`.trimEnd());
    controlCommand(`ports ${c.snat.portMin} ${c.snat.portMax}`);
    controlCommand(`fallback ${c.snat.fallback}`);
  };

  try {
    for (const i of cfg.interfaces) attach(i, cfg);
    redirectTo();
    // The same map again succeeds (restart); the module takes its own reference.
    controlCommand(`attach ${dp.ctMap} ${layout.abiVersion}`);
    kernelSettings(cfg);
    setBpfMode(true);
  } catch (e) {
    dp.close();
    throw e;
  }
  for (const c of dp.changes) {
    if (c.action !== 'replaced' || !c.old) continue;
    const where = swapped.get(c.current.id) ?? [];
    swapped.delete(c.current.id);
    log.notice(`program ${c.program} replaced (${c.reason}): id ${c.old.id} tag ${c.old.tag} -> id ${c.current.id} tag ${c.current.tag}; `
      + `in place on ${where.join(', ') || 'no interface'}; maps kept`);
  }
  // attachments that did not run the pinned program (an interrupted upgrade, another tool)
  for (const [id, where] of swapped) log.notice(`pinned program ${id} attached in place of another on ${where.join(', ')}`);
  swapped.clear();
  // every interface runs the new programs now: the old ones go with their last attachment
  dp.releasePrevious();
  log.info(`data path on ${[...attached.keys()].join(', ') || 'no interface'}; map ${native.mapInfo(dp.ctMap).id} registered with IPVS; `
    + `XDP redirects to ${[...attached.values()].filter((i) => i.xdp !== 'none').map((i) => i.name).join(', ') || 'no device'}`);

  const table = new FlowTable(dp.ctMap);
  const capacity = native.mapInfo(dp.ctMap).maxEntries;
  const fmt = (e: { addr: string; port: number }): string => (e.addr.includes(':') ? `[${e.addr}]:${e.port}` : `${e.addr}:${e.port}`);
  return {
    mode: 'bpf',
    reason,
    interfaces: () => [...attached.values()],
    async check(next: DaemonConfig): Promise<string> {
      const problems = bpfProblems(next, await readNetState());
      if (problems.length === 0) return '';
      const restart = cfg.mode === 'auto' ? '\nmode auto: a restart with this configuration would run plain IPVS' : '';
      throw new ConfigProblem(`${problems.join('\n')}${restart}`);
    },
    configure(next: DaemonConfig): void {
      const want = new Set(next.interfaces);
      for (const name of [...attached.keys()]) {
        if (want.has(name)) continue;
        try {
          detachInterface(name);
          attached.delete(name);
          log.notice(`data path detached from ${name}`);
        } catch (e) {
          if (!exists(name)) {
            attached.delete(name); // gone with its programs
            log.notice(`data path: ${name} no longer exists`);
            continue;
          }
          log.error(`cannot detach the data path from ${name}: ${(e as Error).message}`);
        }
      }
      for (const name of next.interfaces) {
        const before = attached.get(name);
        if (before && current.xdp.enabled === next.xdp.enabled && current.xdp.mode === next.xdp.mode) continue;
        try {
          if (before && !next.xdp.enabled) detachInterface(name);
          attach(name, next);
          log.notice(`data path attached to ${name}`);
        } catch (e) {
          log.error(`cannot attach the data path to ${name}: ${(e as Error).message}`);
        }
      }
      try {
        redirectTo();
      } catch (e) {
        log.error(`cannot update the XDP redirect devices: ${(e as Error).message}`);
      }
      swapped.clear();
      try {
        kernelSettings(next);
      } catch (e) {
        log.error((e as Error).message);
      }
      current = next;
    },
    // The kernel's own count: dumping the map copies 104 bytes per entry on every status refresh.
    flowCount: () => ownedEntries(readControlState()) ?? BigInt(native.mapDump(dp.ctMap).count),
    mapCapacity: () => capacity,
    // The cursor is the map's bucket token + 1 (0 = start / no more): it survives the end of listed flows.
    flows(cursor: bigint, limit: number): FlowPage {
      const page = table.page(cursor === 0n ? null : Number(cursor - 1n), limit);
      return {
        flows: page.flows.map(({ key, value }) => ({
          kind: key.kind, proto: key.proto, src: fmt(key.src), dst: fmt(key.dst),
          natSrc: fmt(value.src), natDst: fmt(value.dst), packets: value.packets, bytes: value.bytes,
        })),
        next: page.next === null ? 0n : BigInt(page.next) + 1n,
      };
    },
    counters: () => readStats(dp.statsMap),
    kernelCounters: () => readControlState(),
    close: () => dp.close(),
  };
}
