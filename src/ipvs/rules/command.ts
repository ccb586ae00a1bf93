/**
 * One ipvsadm command line, parsed: what `ipvsadm ARGS` (or one line of `ipvsadm -R` input) asks
 * for, with ipvsadm's defaults already applied. Built on the shared model.
 */
import type {
  Destination,
  DestinationRef,
  IpvsOp,
  Service,
  ServiceKey,
  SyncDaemon,
  SyncDaemonState,
  Timeouts,
} from '../model';

/** How a listing is printed (`-L` options; `-S` uses only `numeric`). */
export interface ListFormat {
  /** -n */
  numeric: boolean;
  /** --stats */
  stats: boolean;
  /** --rate */
  rate: boolean;
  /** --thresholds */
  thresholds: boolean;
  /** --persistent-conn */
  persistentConn: boolean;
  /** --nosort */
  noSort: boolean;
  /** --exact (-X) */
  exact: boolean;
  /** --tun-info */
  tunInfo: boolean;
}

export const DEFAULT_LIST_FORMAT: Readonly<ListFormat> = Object.freeze({
  numeric: false,
  stats: false,
  rate: false,
  thresholds: false,
  persistentConn: false,
  noSort: false,
  exact: false,
  tunInfo: false,
});

/** What a `-L`/`-l` prints. */
export type ListTarget =
  /** every service, with the "IP Virtual Server version" header */
  | { what: 'services' }
  /** `-L -t addr:port`: one service, no header */
  | { what: 'service'; service: ServiceKey }
  /** `-L -c`: /proc/net/ip_vs_conn */
  | { what: 'connections' }
  /** `-L --timeout` */
  | { what: 'timeout' }
  /** `-L --daemon` */
  | { what: 'daemon' };

export type Command =
  | { kind: 'add-service'; service: Service }
  /** -E: every attribute is replaced; those not given take ipvsadm's defaults. */
  | { kind: 'edit-service'; service: Service }
  | { kind: 'delete-service'; key: ServiceKey }
  | { kind: 'add-dest'; service: ServiceKey; dest: Destination }
  /** -e: every attribute is replaced; those not given take ipvsadm's defaults. */
  | { kind: 'edit-dest'; service: ServiceKey; dest: Destination }
  | { kind: 'delete-dest'; service: ServiceKey; dest: DestinationRef }
  /** -C */
  | { kind: 'clear' }
  /** -R: read commands from standard input */
  | { kind: 'restore' }
  /** -S [-n] */
  | { kind: 'save'; numeric: boolean }
  | { kind: 'list'; target: ListTarget; format: ListFormat }
  /** -Z [service] */
  | { kind: 'zero'; service?: ServiceKey }
  /** --set tcp tcpfin udp (0 = leave unchanged) */
  | { kind: 'set'; timeouts: Timeouts }
  | { kind: 'start-daemon'; daemon: SyncDaemon }
  | { kind: 'stop-daemon'; state: SyncDaemonState; syncId: number }
  /** -h: print usageText() on stdout, exit 0 */
  | { kind: 'help' }
  /** -v: print versionText() on stdout, exit 0 */
  | { kind: 'version' };

export type CommandKind = Command['kind'];

/** ipvsadm's defaults. */
export const DEFAULT_SCHEDULER = 'wlc';
export const DEFAULT_PERSISTENCE_TIMEOUT = 360;
export const DEFAULT_WEIGHT = 1;
export const DEFAULT_MCAST_INTERFACE = 'eth0';
/** Longest -p / --set value: 31 days. */
export const MAX_TIMEOUT = 86400 * 31;

/** The kernel change a command makes, or undefined for commands that only read or print. */
export function commandToOp(cmd: Command): IpvsOp | undefined {
  switch (cmd.kind) {
    case 'add-service':
      return { op: 'add-service', service: cmd.service };
    case 'edit-service':
      return { op: 'edit-service', service: cmd.service };
    case 'delete-service':
      return { op: 'delete-service', key: cmd.key };
    case 'add-dest':
      return { op: 'add-dest', service: cmd.service, dest: cmd.dest };
    case 'edit-dest':
      return { op: 'edit-dest', service: cmd.service, dest: cmd.dest };
    case 'delete-dest':
      return { op: 'delete-dest', service: cmd.service, dest: cmd.dest };
    case 'clear':
      return { op: 'flush' };
    case 'zero':
      return cmd.service ? { op: 'zero', service: cmd.service } : { op: 'zero' };
    case 'set':
      return { op: 'set-timeouts', timeouts: cmd.timeouts };
    case 'start-daemon':
      return { op: 'start-daemon', daemon: cmd.daemon };
    case 'stop-daemon':
      return { op: 'stop-daemon', state: cmd.state };
    case 'restore':
    case 'save':
    case 'list':
    case 'help':
    case 'version':
      return undefined;
  }
}
