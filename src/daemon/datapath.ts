/**
 * The data path as the daemon runs it. Mode ipvs: nothing (plain IPVS). Mode bpf: the pinned maps and
 * programs are opened (or loaded and pinned the first time), attached to the configured interfaces, and
 * the conntrack map is registered with the patched IPVS, which is then switched to its BPF mode.
 *
 * Everything here outlives the daemon on purpose: stopping closes our file descriptors only, so the
 * programs stay attached, the pins and the map registration stay, and live flows keep their entries.
 * A restart re-opens the same pins, re-attaching is a no-op and `attach` of the same map succeeds.
 */
import type { DaemonConfig } from './config';
import { controlCommand, hasBpfMode, ownedEntries, readControlState, setBpfMode, CONTROL_FILE } from './kernel-bpf';
import type { Logger } from './log';
import type { FlowRecord, InterfaceStatus } from './status';

export interface DataPath {
  readonly mode: 'bpf' | 'ipvs';
  /** Why this mode runs when another was asked for ('' when as configured). */
  readonly reason: string;
  interfaces(): InterfaceStatus[];
  /** Applies a reloaded configuration (interfaces, SNAT settings); logs what it cannot do. */
  configure(cfg: DaemonConfig): void;
  flowCount(): bigint;
  flows(): FlowRecord[];
  counters(): Record<string, bigint>;
  kernelCounters(): Record<string, string>;
  close(): void;
}

export type DataPathFactory = (cfg: DaemonConfig, log: Logger) => Promise<DataPath>;

export function plainIpvs(reason: string): DataPath {
  return {
    mode: 'ipvs',
    reason,
    interfaces: () => [],
    configure: () => undefined,
    flowCount: () => 0n,
    flows: () => [],
    counters: () => ({}),
    kernelCounters: () => ({}),
    close: () => undefined,
  };
}

/** The default factory: decides the mode from the configuration and the kernel. */
export const startDataPath: DataPathFactory = async (cfg, log) => {
  if (cfg.mode === 'ipvs') return plainIpvs('');
  if (!hasBpfMode()) {
    const why = `the kernel's IPVS has no BPF mode (${CONTROL_FILE} does not exist: stock IPVS, or the patched modules are not loaded)`;
    if (cfg.mode === 'bpf') throw new Error(`mode bpf: ${why}; load the patched modules (kernel-patch/) or set mode auto or ipvs`);
    log.warning(`mode auto: running plain IPVS: ${why}`);
    return plainIpvs(`auto: ${why}`);
  }
  return startBpf(cfg, log);
};

async function startBpf(cfg: DaemonConfig, log: Logger): Promise<DataPath> {
  // Loaded only in bpf mode: plain IPVS needs neither the addon nor the BPF objects.
  const { openDatapath } = await import('../bpf/loader');
  const { attachInterface, detachInterface } = await import('../bpf/attach');
  const { FlowTable, readStats } = await import('../bpf/flows');
  const { layout } = await import('../bpf/abi');
  const { native } = await import('../bpf/native');

  const dp = openDatapath({ pinDir: cfg.pinDir, maxEntries: cfg.mapEntries });
  log.info(`data path ${dp.reused ? 're-opened from the pins' : 'loaded and pinned'} under ${dp.pinDir}`);
  const attached = new Map<string, InterfaceStatus>();
  let current = cfg;

  const attach = (ifname: string, c: DaemonConfig): void => {
    const a = attachInterface(dp.progs, ifname, { xdp: c.xdp.enabled, xdpMode: c.xdp.mode });
    attached.set(ifname, { name: ifname, xdp: a.xdp?.mode ?? 'none' });
  };
  const kernelSettings = (c: DaemonConfig): void => {
    controlCommand(`snat ${c.snat.addresses.join(' ')}`.trimEnd());
    controlCommand(`ports ${c.snat.portMin} ${c.snat.portMax}`);
    controlCommand(`fallback ${c.snat.fallback}`);
  };

  try {
    for (const i of cfg.interfaces) attach(i, cfg);
    // The same map again succeeds (restart); the module takes its own reference.
    controlCommand(`attach ${dp.ctMap} ${layout.abiVersion}`);
    kernelSettings(cfg);
    setBpfMode(true);
  } catch (e) {
    dp.close();
    throw e;
  }
  log.info(`data path on ${[...attached.keys()].join(', ') || 'no interface'}; map ${native.mapInfo(dp.ctMap).id} registered with IPVS`);

  const table = new FlowTable(dp.ctMap);
  const fmt = (e: { addr: string; port: number }): string => (e.addr.includes(':') ? `[${e.addr}]:${e.port}` : `${e.addr}:${e.port}`);
  return {
    mode: 'bpf',
    reason: cfg.mode === 'auto' ? 'auto: the kernel\'s IPVS has the BPF mode' : '',
    interfaces: () => [...attached.values()],
    configure(next: DaemonConfig): void {
      const want = new Set(next.interfaces);
      for (const name of [...attached.keys()]) {
        if (want.has(name)) continue;
        try {
          detachInterface(name);
          attached.delete(name);
          log.notice(`data path detached from ${name}`);
        } catch (e) {
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
        kernelSettings(next);
      } catch (e) {
        log.error((e as Error).message);
      }
      current = next;
    },
    // From the kernel's counters: dumping the map copies 104 bytes per entry on every status refresh.
    flowCount: () => ownedEntries(readControlState()) ?? BigInt(native.mapDump(dp.ctMap).count),
    flows: () => table.list().map(({ key, value }) => ({
      kind: key.kind, proto: key.proto, src: fmt(key.src), dst: fmt(key.dst),
      natSrc: fmt(value.src), natDst: fmt(value.dst), packets: value.packets, bytes: value.bytes,
    })),
    counters: () => readStats(dp.statsMap),
    kernelCounters: () => readControlState(),
    close: () => dp.close(),
  };
}
