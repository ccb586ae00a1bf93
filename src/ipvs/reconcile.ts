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
    if (!sameServiceAttrs(have, want)) ops.push({ op: 'edit-service', service: serviceOnly(want) });
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
  ops.push(...added);
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
