/**
 * From the table the kernel has to the table we want, with the fewest changes, in an order the
 * kernel accepts, and without cutting live connections: a service or real server whose identity
 * stays is edited in place (delete + add would drop its connections), and what is equal is not
 * touched. Also the undo of a prefix of applied ops, for an all-or-nothing `-R`.
 *
 * Order of the ops reconcile() returns:
 *   1. delete-service for services that go (their real servers go with them);
 *   2. for each kept service, in desired order: edit-service if its attributes changed, then
 *      delete-dest for real servers that go, edit-dest for changed ones, add-dest for new ones;
 *   3. for each new service, in desired order: add-service, then its add-dest ops.
 */
import {
  type Destination,
  type DestinationRef,
  type DesiredService,
  type IpvsOp,
  type Service,
  type ServiceKey,
  type SyncDaemon,
  type Timeouts,
  destinationId,
  serviceKeyId,
} from './model';
import { tunnelFlagsValue } from './rules/format';
import { SimulatedTable, destinationOnly, serviceOnly } from './rules/simulate';

/** Whether two services have the same attributes (key aside). */
export function sameServiceAttrs(a: Service, b: Service): boolean {
  return (
    a.scheduler === b.scheduler &&
    a.flags.persistent === b.flags.persistent &&
    a.flags.onePacket === b.flags.onePacket &&
    a.flags.sched1 === b.flags.sched1 &&
    a.flags.sched2 === b.flags.sched2 &&
    a.flags.sched3 === b.flags.sched3 &&
    a.persistenceTimeout === b.persistenceTimeout &&
    a.netmask >>> 0 === b.netmask >>> 0 &&
    a.pe === b.pe
  );
}

/** Whether two real servers have the same settings (identity aside). Tunnel flags compare as the kernel stores them. */
export function sameDestAttrs(a: Destination, b: Destination): boolean {
  return (
    a.forward === b.forward &&
    a.weight === b.weight &&
    a.upperThreshold === b.upperThreshold &&
    a.lowerThreshold === b.lowerThreshold &&
    a.tunnelType === b.tunnelType &&
    a.tunnelPort === b.tunnelPort &&
    tunnelFlagsValue(a) === tunnelFlagsValue(b)
  );
}

/** The ops that turn `current` into `desired` (ServiceState[] is accepted for current; counters are ignored). */
export function reconcile(current: readonly DesiredService[], desired: readonly DesiredService[]): IpvsOp[] {
  return reconcileAligned(current, desired) ?? reconcileByKey(current, desired);
}

/** The general comparison, by key strings: the definition the aligned fast path must match exactly. */
export function reconcileByKey(current: readonly DesiredService[], desired: readonly DesiredService[]): IpvsOp[] {
  const ops: IpvsOp[] = [];
  const currentById = new Map(current.map((s) => [serviceKeyId(s.key), s]));
  const desiredIds = new Set<string>();
  for (const s of desired) {
    const id = serviceKeyId(s.key);
    if (desiredIds.has(id)) throw new Error(`desired state names service ${id} twice`);
    desiredIds.add(id);
  }

  for (const s of current) {
    if (!desiredIds.has(serviceKeyId(s.key))) ops.push({ op: 'delete-service', key: { ...s.key } });
  }

  const added: IpvsOp[] = [];
  for (const want of desired) {
    const have = currentById.get(serviceKeyId(want.key));
    if (have === undefined) {
      added.push({ op: 'add-service', service: serviceOnly(want) });
      for (const d of want.destinations) added.push({ op: 'add-dest', service: { ...want.key }, dest: destinationOnly(d) });
      continue;
    }
    keptServiceOps(have, want, ops);
  }
  ops.push(...added);
  return ops;
}

/** For a service in both tables: edit-service if needed, then delete-dest, edit-dest and add-dest ops. */
function keptServiceOps(have: DesiredService, want: DesiredService, ops: IpvsOp[]): void {
  if (!sameServiceAttrs(have, want)) ops.push({ op: 'edit-service', service: serviceOnly(want) });
  if (sameDestLists(have.destinations, want.destinations)) return;
  const haveDests = new Map(have.destinations.map((d) => [destinationId(d), d]));
  const wantIds = new Set(want.destinations.map((d) => destinationId(d)));
  for (const d of have.destinations) {
    if (!wantIds.has(destinationId(d))) {
      ops.push({ op: 'delete-dest', service: { ...want.key }, dest: { family: d.family, address: d.address, port: d.port } });
    }
  }
  const adds: IpvsOp[] = [];
  for (const d of want.destinations) {
    const old = haveDests.get(destinationId(d));
    if (old === undefined) adds.push({ op: 'add-dest', service: { ...want.key }, dest: destinationOnly(d) });
    else if (!sameDestAttrs(old, d)) ops.push({ op: 'edit-dest', service: { ...want.key }, dest: destinationOnly(d) });
  }
  ops.push(...adds);
}

/** Same key, compared field by field (equal fields give equal serviceKeyId()s). */
function sameKey(a: ServiceKey, b: ServiceKey): boolean {
  if (a === b) return true;
  if (a.kind === 'fwmark') return b.kind === 'fwmark' && a.fwmark === b.fwmark && a.family === b.family;
  return b.kind === 'addr' && a.address === b.address && a.port === b.port && a.protocol === b.protocol && a.family === b.family;
}

/**
 * Whether two real-server lists hold the same servers with the same settings at the same positions, and no
 * server twice: then the general comparison would find nothing to do. Compares fields, builds no strings.
 */
function sameDestLists(have: readonly Destination[], want: readonly Destination[]): boolean {
  if (have === want) return noDuplicateDests(have);
  const n = have.length;
  if (want.length !== n) return false;
  for (let j = 0; j < n; j++) {
    const a = have[j];
    const b = want[j];
    if (a !== b && !(a.address === b.address && a.port === b.port && a.family === b.family && sameDestAttrs(a, b))) {
      return false;
    }
  }
  return noDuplicateDests(have);
}

/** No two entries with the same destinationId() (a 64-bit filter on port and address first, exact check on a hit). */
function noDuplicateDests(ds: readonly Destination[]): boolean {
  let lo = 0;
  let hi = 0;
  let suspect = false;
  for (const d of ds) {
    const a = d.address;
    const h = (d.port + a.length * 7 + a.charCodeAt(a.length - 1) * 31 + a.charCodeAt(a.length - 2) * 131) & 63;
    const bit = 1 << (h & 31);
    if (h < 32) {
      if (lo & bit) suspect = true;
      lo |= bit;
    } else {
      if (hi & bit) suspect = true;
      hi |= bit;
    }
  }
  if (!suspect) return true;
  const ids = new Set<string>();
  for (const d of ds) {
    const id = destinationId(d);
    if (ids.has(id)) return false;
    ids.add(id);
  }
  return true;
}

/**
 * The common case of a reload or a single change, without key strings: `desired` names the same services
 * as `current`, in the same order. Then there is nothing to delete or add, and the kept services' ops in
 * desired order are exactly what the general path gives. Undefined when the tables are not so aligned, or
 * when a service is named twice (the general path reports that).
 */
function reconcileAligned(current: readonly DesiredService[], desired: readonly DesiredService[]): IpvsOp[] | undefined {
  const n = current.length;
  if (desired.length !== n) return undefined;
  for (let i = 0; i < n; i++) if (!sameKey(current[i].key, desired[i].key)) return undefined;
  // Unique keys in desired (and so in current, key by key the same).
  const seen = new Map<string | number, ServiceKey | ServiceKey[]>();
  for (const s of desired) {
    const k = s.key;
    const slot = k.kind === 'fwmark' ? k.fwmark : k.address;
    const prev = seen.get(slot);
    if (prev === undefined) seen.set(slot, k);
    else {
      const list = Array.isArray(prev) ? prev : [prev];
      if (list.some((p) => sameKey(p, k))) return undefined;
      list.push(k);
      if (list !== prev) seen.set(slot, list);
    }
  }
  const ops: IpvsOp[] = [];
  for (let i = 0; i < n; i++) keptServiceOps(current[i], desired[i], ops);
  return ops;
}

/** What else the undo of an op may need to know besides the service table. */
export interface InvertContext {
  /** Timeouts before a set-timeouts op (without them, set-timeouts is not undone). */
  timeouts?: Timeouts;
  /** Sync daemons running before a stop-daemon op (without them, stop-daemon is not undone). */
  daemons?: readonly SyncDaemon[];
}

/** Where invert() looks up what an op changed. */
interface TableView {
  service(key: ServiceKey): DesiredService | undefined;
  destination(key: ServiceKey, dest: DestinationRef): Destination | undefined;
  services(): readonly DesiredService[];
}

function listView(before: readonly DesiredService[]): TableView {
  const service = (key: ServiceKey): DesiredService | undefined => {
    const id = serviceKeyId(key);
    return before.find((s) => serviceKeyId(s.key) === id);
  };
  return {
    service,
    destination(key, dest) {
      const id = destinationId(dest);
      return service(key)?.destinations.find((d) => destinationId(d) === id);
    },
    services: () => before,
  };
}

/**
 * The ops that undo `op`, given the service table just before it was applied.
 * zero cannot be undone (counters are lost) and gives no ops.
 */
export function invert(op: IpvsOp, before: readonly DesiredService[], ctx: InvertContext = {}): IpvsOp[] {
  return invertIn(op, listView(before), ctx);
}

function invertIn(op: IpvsOp, before: TableView, ctx: InvertContext): IpvsOp[] {
  const recreate = (s: DesiredService): IpvsOp[] => [
    { op: 'add-service', service: serviceOnly(s) },
    ...s.destinations.map((d): IpvsOp => ({ op: 'add-dest', service: { ...s.key }, dest: destinationOnly(d) })),
  ];
  switch (op.op) {
    case 'add-service':
      return [{ op: 'delete-service', key: { ...op.service.key } }];
    case 'edit-service': {
      const old = before.service(op.service.key);
      return old ? [{ op: 'edit-service', service: serviceOnly(old) }] : [];
    }
    case 'delete-service': {
      const old = before.service(op.key);
      return old ? recreate(old) : [];
    }
    case 'add-dest':
      return [{ op: 'delete-dest', service: { ...op.service }, dest: { family: op.dest.family, address: op.dest.address, port: op.dest.port } }];
    case 'edit-dest':
    case 'delete-dest': {
      const old = before.destination(op.service, op.dest);
      if (!old) return [];
      return [{ op: op.op === 'edit-dest' ? 'edit-dest' : 'add-dest', service: { ...op.service }, dest: destinationOnly(old) }];
    }
    case 'flush':
      return before.services().flatMap(recreate);
    case 'zero':
      return [];
    case 'set-timeouts':
      return ctx.timeouts ? [{ op: 'set-timeouts', timeouts: { ...ctx.timeouts } }] : [];
    case 'start-daemon':
      return [{ op: 'stop-daemon', state: op.daemon.state }];
    case 'stop-daemon': {
      const d = ctx.daemons?.find((x) => x.state === op.state);
      return d ? [{ op: 'start-daemon', daemon: { ...d } }] : [];
    }
  }
}

/**
 * The ops that undo `applied` (ops 0..k-1, all of which the kernel accepted), newest first,
 * given the service table before the first of them. Applying the result restores `before`.
 */
export function rollbackOps(applied: readonly IpvsOp[], before: readonly DesiredService[], ctx: InvertContext = {}): IpvsOp[] {
  const table = new SimulatedTable(before, { validate: false });
  const undo: IpvsOp[][] = [];
  for (const op of applied) {
    undo.push(invertIn(op, table, ctx));
    // The kernel accepted op, so replaying it on our copy must succeed.
    table.apply(op);
  }
  const out: IpvsOp[] = [];
  for (let i = undo.length - 1; i >= 0; i--) for (const u of undo[i]) out.push(u);
  return out;
}
