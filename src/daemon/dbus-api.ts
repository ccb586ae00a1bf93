/**
 * The D-Bus API, defined once as data: names, paths, the Manager interface's properties (with their
 * signatures and how each maps to and from the status snapshot) and methods. The daemon serves it
 * (dbus.ts) and `ipvs-bpfctl status` reads it with the same table.
 *
 * In the style of systemd's own services (org.freedesktop.login1 …): a well-known name with the API
 * version in it, the object path spelled the same, a Manager interface, errors under <name>.Error, and
 * org.freedesktop.LogControl1 for the log level (`systemctl service-log-level ipvs-bpf debug`).
 */
import type { AlertStatus, DaemonStatus, FlowRecord, RealServerStatus, ServiceStatus } from './status';

export const BUS_NAME = 'org.ipvsbpf1';
export const OBJECT_PATH = '/org/ipvsbpf1';
export const MANAGER_INTERFACE = 'org.ipvsbpf1.Manager';
export const ERROR_PREFIX = 'org.ipvsbpf1.Error';
export const LOG_CONTROL_PATH = '/org/freedesktop/LogControl1';
export const LOG_CONTROL_INTERFACE = 'org.freedesktop.LogControl1';
export const ACCESS_DENIED = 'org.freedesktop.DBus.Error.AccessDenied';

/** A property of the Manager interface: its D-Bus signature and its value in the status snapshot. */
export interface PropertySpec<V = unknown> {
  name: string;
  signature: string;
  doc: string;
  toDbus(s: DaemonStatus): V;
  fromDbus(v: V, into: DaemonStatus): void;
}

type CounterTuple = [bigint, bigint, bigint, bigint, bigint];
type DestTuple = [string, string, number, number, number, ...CounterTuple];
type ServiceTuple = [string, string, number, ...CounterTuple, DestTuple[]];

const counterTuple = (c: { conns: bigint; inPkts: bigint; outPkts: bigint; inBytes: bigint; outBytes: bigint }): CounterTuple =>
  [c.conns, c.inPkts, c.outPkts, c.inBytes, c.outBytes];
const counterObject = (t: readonly bigint[]): Pick<ServiceStatus, 'conns' | 'inPkts' | 'outPkts' | 'inBytes' | 'outBytes'> =>
  ({ conns: BigInt(t[0]!), inPkts: BigInt(t[1]!), outPkts: BigInt(t[2]!), inBytes: BigInt(t[3]!), outBytes: BigInt(t[4]!) });

function prop<V>(spec: PropertySpec<V>): PropertySpec {
  return spec as unknown as PropertySpec;
}

export const MANAGER_PROPERTIES: readonly PropertySpec[] = [
  prop<string>({
    name: 'Version', signature: 's', doc: 'ipvs-bpf version',
    toDbus: (s) => s.version, fromDbus: (v, o) => void (o.version = v),
  }),
  prop<string>({
    name: 'Mode', signature: 's', doc: 'what runs: bpf or ipvs',
    toDbus: (s) => s.mode, fromDbus: (v, o) => void (o.mode = v),
  }),
  prop<string>({
    name: 'ConfiguredMode', signature: 's', doc: 'the mode setting: auto, bpf or ipvs',
    toDbus: (s) => s.configuredMode, fromDbus: (v, o) => void (o.configuredMode = v),
  }),
  prop<string>({
    name: 'ModeReason', signature: 's', doc: 'why Mode is what it is, when it is not simply as configured',
    toDbus: (s) => s.modeReason, fromDbus: (v, o) => void (o.modeReason = v),
  }),
  prop<[string, string][]>({
    name: 'Interfaces', signature: 'a(ss)', doc: 'interfaces with the data path: (name, XDP mode or "none")',
    toDbus: (s) => s.interfaces.map((i) => [i.name, i.xdp]),
    fromDbus: (v, o) => void (o.interfaces = v.map(([name, xdp]) => ({ name, xdp }))),
  }),
  prop<string[]>({
    name: 'RuleFiles', signature: 'as', doc: 'the configured rule files',
    toDbus: (s) => s.ruleFiles, fromDbus: (v, o) => void (o.ruleFiles = v),
  }),
  prop<[bigint, boolean, string]>({
    name: 'LastReload', signature: '(tbs)', doc: '(microseconds since the epoch, succeeded, summary or error)',
    toDbus: (s) => [s.lastReload.usec, s.lastReload.ok, s.lastReload.message],
    fromDbus: ([usec, ok, message], o) => void (o.lastReload = { usec: BigInt(usec), ok, message }),
  }),
  prop<ServiceTuple[]>({
    name: 'Services', signature: 'a(ssuttttta(ssiuuttttt))',
    doc: 'virtual services: (id, scheduler, persistence s, conns, in pkts, out pkts, in bytes, out bytes, real servers: '
      + '(id, forward, weight, active conns, inactive conns, conns, in pkts, out pkts, in bytes, out bytes))',
    toDbus: (s) => s.services.map((v): ServiceTuple => [
      v.id, v.scheduler, v.persistenceTimeout, ...counterTuple(v),
      v.realServers.map((d): DestTuple => [d.id, d.forward, d.weight, d.activeConns, d.inactiveConns, ...counterTuple(d)]),
    ]),
    fromDbus: (v, o) => void (o.services = v.map((t): ServiceStatus => ({
      id: t[0], scheduler: t[1], persistenceTimeout: t[2], ...counterObject(t.slice(3, 8) as bigint[]),
      realServers: (t[8] as DestTuple[]).map((d): RealServerStatus => ({
        id: d[0], forward: d[1], weight: d[2], activeConns: d[3], inactiveConns: d[4], ...counterObject(d.slice(5) as bigint[]),
      })),
    }))),
  }),
  prop<bigint>({
    name: 'FlowCount', signature: 't', doc: 'entries in the BPF conntrack map (three per connection)',
    toDbus: (s) => s.flowCount, fromDbus: (v, o) => void (o.flowCount = BigInt(v)),
  }),
  prop<Record<string, bigint>>({
    name: 'DataPathCounters', signature: 'a{st}', doc: 'the BPF programs\' counters, summed over CPUs',
    toDbus: (s) => s.dataPathCounters,
    fromDbus: (v, o) => void (o.dataPathCounters = Object.fromEntries(Object.entries(v).map(([k, n]) => [k, BigInt(n)]))),
  }),
  prop<Record<string, string>>({
    name: 'KernelCounters', signature: 'a{ss}', doc: 'the patched IPVS\'s state and counters (/proc/net/ip_vs_bpf)',
    toDbus: (s) => s.kernelCounters, fromDbus: (v, o) => void (o.kernelCounters = v),
  }),
  prop<[string, bigint, bigint, bigint, string][]>({
    name: 'Alerts', signature: 'a(sttts)',
    doc: 'kernel counters that grew while this daemon ran (connections that did not get the BPF path): '
      + '(counter, value, increase since the daemon started, microseconds since the epoch of the last increase, meaning)',
    toDbus: (s) => s.alerts.map((a) => [a.counter, a.value, a.increase, a.lastUsec, a.meaning]),
    fromDbus: (v, o) => void (o.alerts = v.map(([counter, value, increase, lastUsec, meaning]): AlertStatus => ({
      counter, value: BigInt(value), increase: BigInt(increase), lastUsec: BigInt(lastUsec), meaning,
    }))),
  }),
];

/**
 * Who may call a method (the bus policy, systemd/org.ipvsbpf1.conf, is generated from this, and the daemon
 * checks the caller again itself): `read` any local user; `flows` root or a member of FLOWS_GROUP (flow
 * tuples are client addresses); `root` root only (changes state).
 */
export type Access = 'read' | 'flows' | 'root';
export const ACCESS_LEVELS: readonly Access[] = ['read', 'flows', 'root'];

/** The group whose members may call the `flows` methods (created by install-service). */
export const FLOWS_GROUP = 'ipvs-bpf';

export interface MethodSpec {
  name: string;
  inSignature: string;
  outSignature: string;
  access: Access;
  doc: string;
}

/**
 * ListFlows pages: a reply holds at most FLOWS_PAGE_MAX entries (a larger limit is lowered to it; 0 means
 * FLOWS_PAGE_DEFAULT), and the daemon reads only that page from the map (never a whole-map copy), so a
 * page stays far below dbus-daemon's max_message_size (32 MiB on Debian's system bus, its compiled-in
 * default; its reply_timeout is unlimited, clients' own are not approached by one page of map reads); a unit
 * test marshals a page of the longest possible entries and checks the bound.
 */
export const FLOWS_PAGE_MAX = 4096;
export const FLOWS_PAGE_DEFAULT = 1024;
export const DBUS_MAX_MESSAGE_SIZE = 32 * 1024 * 1024;

export const MANAGER_METHODS: readonly MethodSpec[] = [
  { name: 'Reload', inSignature: '', outSignature: 's', access: 'root', doc: 're-read configuration and rule files, apply only the differences; returns the summary' },
  { name: 'ApplyRules', inSignature: 's', outSignature: 's', access: 'root', doc: 'apply ipvsadm -R text over the current table, all or nothing; returns the summary' },
  {
    name: 'ListFlows', inSignature: 'tu', outSignature: 'a(sssssstt)t', access: 'flows',
    doc: `one page of the conntrack map: (cursor: 0 = start, limit: 0 = ${FLOWS_PAGE_DEFAULT}, at most ${FLOWS_PAGE_MAX}) -> `
      + '((kind, proto, src, dst, NAT src, NAT dst, packets, bytes)..., next cursor: 0 = no more)',
  },
  { name: 'SetWeight', inSignature: 'ssu', outSignature: '', access: 'root', doc: 'set the weight of real server (2nd, e.g. "10.0.0.2:80") of service (1st, e.g. "tcp 10.0.0.1:80")' },
  {
    name: 'Drain', inSignature: 'ssu', outSignature: 's', access: 'root',
    doc: 'drain real server (2nd) of service (1st): weight 0 now, removed when its connections end or after the 3rd argument '
      + '(seconds); it stays out, whatever the sources say, until no source names it; returns what was done',
  },
];

/** Setting a property (LogControl1.LogLevel) changes the daemon: root only. */
export const PROPERTY_SET_ACCESS: Access = 'root';

export function methodSpec(name: string): MethodSpec {
  const m = MANAGER_METHODS.find((x) => x.name === name);
  if (!m) throw new Error(`no method ${name} in MANAGER_METHODS`);
  return m;
}

export type FlowTuple = [string, string, string, string, string, string, bigint, bigint];

export function flowToDbus(f: FlowRecord): FlowTuple {
  return [f.kind, f.proto, f.src, f.dst, f.natSrc, f.natDst, f.packets, f.bytes];
}

export function flowFromDbus(t: FlowTuple): FlowRecord {
  return { kind: t[0], proto: t[1], src: t[2], dst: t[3], natSrc: t[4], natDst: t[5], packets: BigInt(t[6]), bytes: BigInt(t[7]) };
}

/** An empty snapshot for fromDbus to fill. */
export function emptyStatus(): DaemonStatus {
  return {
    version: '', mode: '', configuredMode: '', modeReason: '', interfaces: [], ruleFiles: [],
    lastReload: { usec: 0n, ok: true, message: '' }, services: [], flowCount: 0n, dataPathCounters: {}, kernelCounters: {}, alerts: [],
  };
}

/** Error names the daemon returns, by ChangeRefused kind. */
export function errorName(kind: string): string {
  return `${ERROR_PREFIX}.${kind}`;
}
