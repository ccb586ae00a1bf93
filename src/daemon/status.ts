/**
 * What the daemon reports about itself: the status snapshot behind the D-Bus properties and
 * `ipvs-bpfctl status`, and the flows of ListFlows. Plain data; 64-bit counters are bigint.
 */
import type { ServiceState } from '../ipvs/model';
import { destinationId, serviceKeyId } from '../ipvs/model';

export interface InterfaceStatus {
  name: string;
  /** 'native' | 'generic' | 'none' (tc only) */
  xdp: string;
}

export interface ReloadStatus {
  /** Wall clock of the last reload attempt, microseconds since the epoch (systemd's timestamp unit). */
  usec: bigint;
  ok: boolean;
  /** Summary of the change, or why it was refused. */
  message: string;
}

export interface CounterSet {
  conns: bigint;
  inPkts: bigint;
  outPkts: bigint;
  inBytes: bigint;
  outBytes: bigint;
}

export interface RealServerStatus extends CounterSet {
  /** "10.0.0.2:80" or "[2001:db8::2]:80" */
  id: string;
  forward: string;
  weight: number;
  activeConns: number;
  inactiveConns: number;
}

export interface ServiceStatus extends CounterSet {
  /** "tcp 10.0.0.1:80", "fwmark 1 inet" (serviceKeyId) */
  id: string;
  scheduler: string;
  persistenceTimeout: number;
  realServers: RealServerStatus[];
}

export interface DaemonStatus {
  version: string;
  /** What runs: 'bpf' or 'ipvs'. */
  mode: string;
  configuredMode: string;
  /** Why the mode is what it is (e.g. auto without the patched kernel). */
  modeReason: string;
  interfaces: InterfaceStatus[];
  ruleFiles: string[];
  lastReload: ReloadStatus;
  services: ServiceStatus[];
  flowCount: bigint;
  dataPathCounters: Record<string, bigint>;
  kernelCounters: Record<string, string>;
  /** Kernel counters of connections that missed the BPF path and grew while this daemon ran. */
  alerts: AlertStatus[];
}

export interface AlertStatus {
  /** A /proc/net/ip_vs_bpf counter, e.g. "ports_exhausted". */
  counter: string;
  value: bigint;
  /** How much it grew since the daemon started. */
  increase: bigint;
  /** Wall clock of the last increase seen, microseconds since the epoch. */
  lastUsec: bigint;
  meaning: string;
}

/** One ListFlows page: `next` is the cursor of the next page, 0n when there is none. */
export interface FlowPage {
  flows: FlowRecord[];
  next: bigint;
}

export interface FlowRecord {
  kind: string;
  proto: string;
  src: string;
  dst: string;
  natSrc: string;
  natDst: string;
  packets: bigint;
  bytes: bigint;
}

function counters(s: { stats: { conns: bigint; inPkts: bigint; outPkts: bigint; inBytes: bigint; outBytes: bigint } }): CounterSet {
  const { conns, inPkts, outPkts, inBytes, outBytes } = s.stats;
  return { conns, inPkts, outPkts, inBytes, outBytes };
}

/** One service as the status shows it. */
export function serviceStatus(s: ServiceState): ServiceStatus {
  return {
    id: serviceKeyId(s.key),
    scheduler: s.scheduler,
    persistenceTimeout: s.persistenceTimeout,
    ...counters(s),
    realServers: s.destinations.map((d) => ({
      id: destinationId(d),
      forward: d.forward,
      weight: d.weight,
      activeConns: d.activeConns,
      inactiveConns: d.inactiveConns,
      ...counters(d),
    })),
  };
}

/** The service table as the status shows it. */
export function servicesStatus(table: readonly ServiceState[]): ServiceStatus[] {
  return table.map(serviceStatus);
}

/** JSON with bigints as decimal strings (for -o json and comparisons). */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), indent);
}
