/**
 * What the lab checks of the IPVS netlink client create, and the shape of the report the in-VM script
 * (ipvs-netlink-checks.ts) writes for the jest test (ipvs-netlink.test.ts) to assert on.
 */
import {
  NO_SERVICE_FLAGS,
  NO_TUNNEL_FLAGS,
  type DesiredService,
  type Destination,
  type Family,
  type ForwardMethod,
  type IpvsInfo,
  type IpvsOp,
  type ServiceKey,
  type ServiceState,
  type SyncDaemon,
  type Timeouts,
} from '../../../src/ipvs/model';
import { toDesired } from '../../../src/ipvs/rules/simulate';

export function dest(
  family: Family,
  address: string,
  port: number,
  forward: ForwardMethod,
  weight: number,
  extra: Partial<Destination> = {},
): Destination {
  return {
    family,
    address,
    port,
    forward,
    weight,
    upperThreshold: 0,
    lowerThreshold: 0,
    tunnelType: 'ipip',
    tunnelPort: 0,
    tunnelFlags: { ...NO_TUNNEL_FLAGS },
    ...extra,
  };
}

export interface CreateCase {
  service: DesiredService;
  /** The lines `ipvsadm -Sn` prints for it (any order). */
  save: string[];
}

const V4 = 0xffffffff;

/** Services of every kind, created with the client and read back with ipvsadm. */
export const CREATE_CASES: CreateCase[] = [
  {
    service: {
      key: { kind: 'addr', family: 'inet', protocol: 'tcp', address: '10.10.0.1', port: 80 },
      scheduler: 'rr',
      flags: { ...NO_SERVICE_FLAGS },
      persistenceTimeout: 0,
      netmask: V4,
      pe: '',
      destinations: [
        dest('inet', '10.10.1.1', 8080, 'masq', 1),
        dest('inet', '10.10.1.2', 80, 'route', 2),
        dest('inet', '10.10.1.3', 80, 'tunnel', 0, { upperThreshold: 100, lowerThreshold: 10 }),
      ],
    },
    save: [
      '-A -t 10.10.0.1:80 -s rr',
      '-a -t 10.10.0.1:80 -r 10.10.1.1:8080 -m -w 1',
      '-a -t 10.10.0.1:80 -r 10.10.1.2:80 -g -w 2',
      '-a -t 10.10.0.1:80 -r 10.10.1.3:80 -i -w 0 --tun-type ipip',
    ],
  },
  {
    service: {
      key: { kind: 'addr', family: 'inet', protocol: 'udp', address: '10.10.0.2', port: 53 },
      scheduler: 'wrr',
      flags: { ...NO_SERVICE_FLAGS, persistent: true, onePacket: true },
      persistenceTimeout: 600,
      netmask: 0xffffff00,
      pe: '',
      destinations: [dest('inet', '10.10.2.1', 53, 'masq', 5)],
    },
    save: ['-A -u 10.10.0.2:53 -s wrr -p 600 -M 255.255.255.0 -o', '-a -u 10.10.0.2:53 -r 10.10.2.1:53 -m -w 5'],
  },
  {
    service: {
      key: { kind: 'addr', family: 'inet', protocol: 'sctp', address: '10.10.0.3', port: 5060 },
      scheduler: 'sh',
      flags: { ...NO_SERVICE_FLAGS, sched1: true, sched2: true },
      persistenceTimeout: 0,
      netmask: V4,
      pe: '',
      destinations: [dest('inet', '10.10.3.1', 5060, 'route', 1)],
    },
    save: [
      '-A --sctp-service 10.10.0.3:5060 -s sh -b sh-fallback,sh-port',
      '-a --sctp-service 10.10.0.3:5060 -r 10.10.3.1:5060 -g -w 1',
    ],
  },
  {
    service: {
      key: { kind: 'fwmark', family: 'inet', fwmark: 1 },
      scheduler: 'lc',
      flags: { ...NO_SERVICE_FLAGS, sched3: true },
      persistenceTimeout: 0,
      netmask: V4,
      pe: '',
      destinations: [
        dest('inet', '10.10.4.1', 0, 'route', 1),
        dest('inet', '10.10.4.2', 0, 'tunnel', 3, {
          tunnelType: 'gue',
          tunnelPort: 6080,
          tunnelFlags: { ...NO_TUNNEL_FLAGS, csum: true },
        }),
        dest('inet', '10.10.4.3', 0, 'tunnel', 4, {
          tunnelType: 'gre',
          tunnelFlags: { ...NO_TUNNEL_FLAGS, remCsum: true },
        }),
        dest('inet6', '2001:db8:4::1', 0, 'tunnel', 1),
      ],
    },
    save: [
      '-A -f 1 -s lc -b flag-3',
      '-a -f 1 -r 10.10.4.1:0 -g -w 1',
      '-a -f 1 -r 10.10.4.2:0 -i -w 3 --tun-type gue --tun-port 6080 --tun-csum',
      '-a -f 1 -r 10.10.4.3:0 -i -w 4 --tun-type gre --tun-remcsum',
      '-a -f 1 -r [2001:db8:4::1]:0 -i -w 1 --tun-type ipip',
    ],
  },
  {
    service: {
      key: { kind: 'fwmark', family: 'inet6', fwmark: 2 },
      scheduler: 'rr',
      flags: { ...NO_SERVICE_FLAGS },
      persistenceTimeout: 0,
      netmask: 128,
      pe: '',
      destinations: [dest('inet6', '2001:db8:5::1', 0, 'route', 1)],
    },
    save: ['-A -f 2 -6 -s rr', '-a -f 2 -6 -r [2001:db8:5::1]:0 -g -w 1'],
  },
  {
    service: {
      key: { kind: 'addr', family: 'inet6', protocol: 'tcp', address: '2001:db8::6', port: 443 },
      scheduler: 'mh',
      flags: { ...NO_SERVICE_FLAGS, persistent: true, sched1: true },
      persistenceTimeout: 300,
      netmask: 64,
      pe: '',
      destinations: [dest('inet6', '2001:db8:6::1', 443, 'masq', 1)],
    },
    save: [
      '-A -t [2001:db8::6]:443 -s mh -p 300 -M 64 -b mh-fallback',
      '-a -t [2001:db8::6]:443 -r [2001:db8:6::1]:443 -m -w 1',
    ],
  },
  {
    service: {
      key: { kind: 'addr', family: 'inet6', protocol: 'udp', address: '2001:db8::7', port: 5060 },
      scheduler: 'rr',
      flags: { ...NO_SERVICE_FLAGS, persistent: true },
      persistenceTimeout: 360,
      netmask: 128,
      pe: 'sip',
      destinations: [dest('inet6', '2001:db8:7::1', 5060, 'masq', 1)],
    },
    save: ['-A -u [2001:db8::7]:5060 -s rr -p 360 --pe sip', '-a -u [2001:db8::7]:5060 -r [2001:db8:7::1]:5060 -m -w 1'],
  },
  {
    service: {
      key: { kind: 'addr', family: 'inet', protocol: 'tcp', address: '10.10.0.8', port: 8443 },
      scheduler: 'fo',
      flags: { ...NO_SERVICE_FLAGS },
      persistenceTimeout: 0,
      netmask: V4,
      pe: '',
      destinations: [
        dest('inet', '10.10.8.1', 8443, 'masq', 65535, { upperThreshold: 2147483647, lowerThreshold: 1 }),
        dest('inet', '10.10.8.2', 8443, 'masq', 1),
      ],
    },
    save: [
      '-A -t 10.10.0.8:8443 -s fo',
      '-a -t 10.10.0.8:8443 -r 10.10.8.1:8443 -m -w 65535',
      '-a -t 10.10.0.8:8443 -r 10.10.8.2:8443 -m -w 1',
    ],
  },
];

/** Rules loaded with `ipvsadm -R`, then read with the client. */
export const IPVSADM_RULES = [
  '-A -t 10.30.0.1:80 -s wlc -p 120 -M 255.255.0.0',
  '-a -t 10.30.0.1:80 -r 10.30.1.1:80 -g -w 4 -x 50 -y 5',
  '-a -t 10.30.0.1:80 -r [2001:db8:30::9]:80 -i -w 2 --tun-type gue --tun-port 5555 --tun-remcsum',
  '-A -u [2001:db8::30]:53 -s sh -b sh-port -o',
  '-a -u [2001:db8::30]:53 -r [2001:db8::31]:5353 -m -w 1',
  '-A -f 30 -s rr -p 30 --pe sip',
  '-a -f 30 -r 10.30.2.1:0 -i -w 2 --tun-type gue --tun-port 6080 --tun-csum',
  '-a -f 30 -r 10.30.2.2:0 -i -w 7 --tun-type gre',
  '-A -f 31 -6 -s dh -p 100 -M 48',
  '',
].join('\n');

/** Serialised forms: bigints become decimal strings in JSON. */
export type Jsonish<T> = T extends bigint
  ? string
  : T extends (infer U)[]
    ? Jsonish<U>[]
    : T extends object
      ? { [K in keyof T]: Jsonish<T[K]> }
      : T;

export interface CommandRun {
  command: string;
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface ObservedError {
  errno: number;
  code: string;
  message: string;
}

export interface ErrorCheck {
  name: string;
  ours: ObservedError | null;
  ipvsadm: CommandRun;
}

export interface LargeTableFigures {
  services: number;
  destsPerService: number;
  ops: number;
  applyBatches: number;
  applyOk: boolean;
  listedServices: number;
  listedDests: number;
  /** The netlink addon was built and loaded (the default read is the bulk one). */
  bulkAddon: boolean;
  /** eachService (sorted as ipvsadm sorts) hands over the same services and real servers as services(). */
  streamedAgrees: boolean;
  /** The bulk read (the addon) and a pool of 64 dump sockets with 16 KiB reads list the same table. */
  poolVariantsAgree: boolean;
  /** Our -Sn text of the listing equals ipvsadm -Sn. */
  saveIdentical: boolean;
  ipvsadmSaveLines: number;
}

/** N services with M masq real servers each, as add ops (the large-table check and the list benchmark). */
export function largeTableOps(n: number, perService: number): IpvsOp[] {
  const ops: IpvsOp[] = [];
  for (let i = 0; i < n; i++) {
    const key: ServiceKey = { kind: 'addr', family: 'inet', protocol: 'tcp', address: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, port: 80 };
    ops.push({
      op: 'add-service',
      service: { key, scheduler: 'wrr', flags: { ...NO_SERVICE_FLAGS }, persistenceTimeout: 0, netmask: 0xffffffff, pe: '' },
    });
    for (let j = 0; j < perService; j++) ops.push({ op: 'add-dest', service: key, dest: dest('inet', `172.16.${j}.${(i % 250) + 1}`, 8080, 'masq', 1) });
  }
  return ops;
}

export interface LabReport {
  /** Steps that threw (name: message). */
  failures: string[];
  /** Whether ip_vs was loaded before and after IpvsClient.open() (the family lookup loads it on demand). */
  autoload?: { loadedBefore: boolean; loadedAfter: boolean };
  info?: IpvsInfo;
  create?: {
    applyStatuses: string[];
    save: CommandRun;
    thresholds: CommandRun;
    tunInfo: CommandRun;
    decoded: DesiredService[];
    one: DesiredService | null;
    missing: DesiredService | null;
  };
  fromIpvsadm?: { restore: CommandRun; decoded: DesiredService[] };
  errors?: ErrorCheck[];
  batch?: { sameBatch: string[]; stopOnError: string[]; stopOnErrorBatches: number; save: CommandRun };
  timeouts?: { initial: Timeouts; afterSet: Timeouts; ipvsadmList: CommandRun; afterIpvsadmSet: Timeouts };
  daemons?: {
    startStatuses: string[];
    ours: SyncDaemon[];
    ipvsadmList: CommandRun;
    ipvsadmStartBackup: CommandRun;
    withBackup: SyncDaemon[];
    afterStop: SyncDaemon[];
    stopAgain: ObservedError | null;
    ipvsadmStopAgain: CommandRun;
  };
  stats?: {
    afterTraffic: Jsonish<ServiceState>;
    ipvsadmStats: CommandRun;
    afterZero: Jsonish<ServiceState>;
    transferred: string;
  };
  flush?: { save: CommandRun; services: number };
  largeTable?: LargeTableFigures;
}

/** The desired shape of a listed service: its state without counters (the rules layer's own projection). */
export function withoutState(s: ServiceState): DesiredService {
  return toDesired([s])[0]!;
}
