/**
 * What the kernel (Linux 6.1 IPVS) does with each IpvsOp, over a plain list of services: the new
 * state, or the errno it answers with and the text ipvsadm prints for it (libipvs ipvs_strerror).
 * Pure: states are never mutated. Used to replay rule files and to undo applied ops.
 */
import {
  type Destination,
  type DestinationRef,
  type DesiredService,
  type IpvsOp,
  type Service,
  type ServiceKey,
  destinationId,
  serviceKeyId,
} from '../model';
import { EXIT, RuleError } from './errors';
import { inetPton4, inetPton6 } from './inet';
import { KNOWN_PERSISTENCE_ENGINES, KNOWN_SCHEDULERS } from './options';

export type KernelErrno = 'EEXIST' | 'ESRCH' | 'ENOENT' | 'EINVAL' | 'ERANGE';

/** A change the kernel refuses. message is what ipvsadm prints; ipvsadm then exits 255. */
export class KernelStateError extends RuleError {
  constructor(
    readonly errno: KernelErrno,
    message: string,
  ) {
    super(message, EXIT.POPT_OR_KERNEL);
    this.name = 'KernelStateError';
  }
}

export interface SimulateOptions {
  /** Scheduler names the kernel can load (default: Linux 6.1's, plus "none"). */
  schedulers?: readonly string[];
  /** Persistence engines the kernel can load (default: sip). */
  persistenceEngines?: readonly string[];
  /**
   * Check attributes as the kernel does (scheduler/engine known, thresholds, tunnel port,
   * address types). Default true; false checks only that services and servers exist or not.
   */
  validate?: boolean;
}

const EINVAL_TEXT = 'Invalid operation.  Possibly wrong module version, address not unicast, ...';
const ERANGE_TEXT = 'Numerical result out of range';
const NOT_FOUND_TEXT = 'Scheduler or persistence engine not found';

/** The Service part of anything service-like (drops destinations and counters). */
export function serviceOnly(s: Service): Service {
  return {
    key: { ...s.key },
    scheduler: s.scheduler,
    flags: { ...s.flags },
    persistenceTimeout: s.persistenceTimeout,
    netmask: s.netmask,
    pe: s.pe,
  };
}

/** The Destination part of anything destination-like (drops counters). */
export function destinationOnly(d: Destination): Destination {
  return {
    family: d.family,
    address: d.address,
    port: d.port,
    forward: d.forward,
    weight: d.weight,
    upperThreshold: d.upperThreshold,
    lowerThreshold: d.lowerThreshold,
    tunnelType: d.tunnelType,
    tunnelPort: d.tunnelPort,
    tunnelFlags: { ...d.tunnelFlags },
  };
}

/** A clean copy of a service list (e.g. kernel ServiceState[] → DesiredService[]). */
export function toDesired(services: readonly DesiredService[]): DesiredService[] {
  return services.map((s) => ({ ...serviceOnly(s), destinations: s.destinations.map(destinationOnly) }));
}

export function sameKey(a: ServiceKey, b: ServiceKey): boolean {
  return serviceKeyId(a) === serviceKeyId(b);
}

export function sameDest(a: DestinationRef, b: DestinationRef): boolean {
  return destinationId(a) === destinationId(b);
}

/** inet_addr_type()/ipv6_addr_type() refusals the kernel applies to real-server addresses. */
function destAddressUsable(d: DestinationRef): boolean {
  if (d.family === 'inet') {
    const v = inetPton4(d.address);
    if (v === null) return false;
    if (v === 0 || v === 0xffffffff) return false;
    if (v >>> 28 === 0xe) return false;
    return true;
  }
  const b = inetPton6(d.address);
  if (b === null) return false;
  if (b.every((x) => x === 0)) return false;
  if (b[0] === 0xff) return false;
  if (b[0] === 0xfe && (b[1] & 0xc0) === 0x80) return false;
  const mapped = b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  return !mapped;
}

function checkServiceAttrs(s: Service, opts: SimulateOptions): void {
  const schedulers = opts.schedulers ?? KNOWN_SCHEDULERS;
  const engines = opts.persistenceEngines ?? KNOWN_PERSISTENCE_ENGINES;
  if (!schedulers.includes(s.scheduler)) throw new KernelStateError('ENOENT', NOT_FOUND_TEXT);
  if (s.pe !== '' && !engines.includes(s.pe)) throw new KernelStateError('ENOENT', NOT_FOUND_TEXT);
  if (s.key.family === 'inet6' && (s.netmask < 1 || s.netmask > 128)) throw new KernelStateError('EINVAL', EINVAL_TEXT);
}

function checkDestAttrs(d: Destination): void {
  if (d.weight < 0) throw new KernelStateError('ERANGE', ERANGE_TEXT);
  if (d.lowerThreshold > d.upperThreshold) throw new KernelStateError('ERANGE', ERANGE_TEXT);
  if (d.upperThreshold > 2147483647) throw new KernelStateError('EINVAL', EINVAL_TEXT);
  if (d.tunnelType === 'gue' && d.tunnelPort === 0) throw new KernelStateError('EINVAL', EINVAL_TEXT);
}

/**
 * Apply one op as the kernel would; returns the new state or throws KernelStateError.
 * A new real server goes first in its service's list, as the kernel links it: that is the order
 * the kernel lists them in, and ipvsadm's (not always consistent) sort starts from it. New
 * services are appended; the kernel's own service order follows a hash seeded by a kernel
 * address and cannot be predicted.
 * zero, set-timeouts and the sync-daemon ops do not change the service list.
 */
export function applyOp(state: readonly DesiredService[], op: IpvsOp, opts: SimulateOptions = {}): DesiredService[] {
  const validate = opts.validate ?? true;
  const find = (key: ServiceKey): number => state.findIndex((s) => sameKey(s.key, key));
  const replaceAt = (k: number, svc: DesiredService): DesiredService[] => state.map((s, i) => (i === k ? svc : s));
  switch (op.op) {
    case 'add-service': {
      if (find(op.service.key) >= 0) throw new KernelStateError('EEXIST', 'Service already exists');
      if (validate) checkServiceAttrs(op.service, opts);
      return [...state, { ...serviceOnly(op.service), destinations: [] }];
    }
    case 'edit-service': {
      const k = find(op.service.key);
      if (k < 0) throw new KernelStateError('ESRCH', 'No such service');
      if (validate) checkServiceAttrs(op.service, opts);
      return replaceAt(k, { ...serviceOnly(op.service), destinations: state[k].destinations });
    }
    case 'delete-service': {
      const k = find(op.key);
      if (k < 0) throw new KernelStateError('ESRCH', 'No such service');
      return state.filter((_, i) => i !== k);
    }
    case 'add-dest':
    case 'edit-dest': {
      const k = find(op.service);
      if (k < 0) throw new KernelStateError('ESRCH', 'Service not defined');
      const svc = state[k];
      if (validate && op.dest.family !== svc.key.family && op.dest.forward !== 'tunnel') {
        throw new KernelStateError('EINVAL', EINVAL_TEXT);
      }
      if (validate) checkDestAttrs(op.dest);
      const j = svc.destinations.findIndex((d) => sameDest(d, op.dest));
      if (op.op === 'add-dest') {
        if (j >= 0) throw new KernelStateError('EEXIST', 'Destination already exists');
        if (validate && !destAddressUsable(op.dest)) throw new KernelStateError('EINVAL', EINVAL_TEXT);
        // The kernel links a new real server at the head of the service's list.
        return replaceAt(k, { ...svc, destinations: [destinationOnly(op.dest), ...svc.destinations] });
      }
      if (j < 0) throw new KernelStateError('ENOENT', 'No such destination');
      return replaceAt(k, {
        ...svc,
        destinations: svc.destinations.map((d, i) => (i === j ? destinationOnly(op.dest) : d)),
      });
    }
    case 'delete-dest': {
      const k = find(op.service);
      if (k < 0) throw new KernelStateError('ESRCH', 'Service not defined');
      const svc = state[k];
      const j = svc.destinations.findIndex((d) => sameDest(d, op.dest));
      if (j < 0) throw new KernelStateError('ENOENT', 'No such destination');
      return replaceAt(k, { ...svc, destinations: svc.destinations.filter((_, i) => i !== j) });
    }
    case 'flush':
      return [];
    case 'zero':
      if (op.service && find(op.service) < 0) throw new KernelStateError('ESRCH', 'No such service');
      return [...state];
    case 'set-timeouts':
    case 'start-daemon':
    case 'stop-daemon':
      return [...state];
  }
}

/**
 * The same kernel behaviour as applyOp(), over a table it owns and changes in place: O(1) per op
 * (services indexed by key, each service's real servers by address), where applyOp() copies the
 * whole list. For replaying long rule files and for undoing long op lists. Give it what applyOp()
 * accepts, except that keys are unique, as in any table the kernel or a replay produces.
 */
export class SimulatedTable {
  /**
   * Services by serviceKeyId in table order. Each service's real servers are kept by destinationId in
   * the reverse of the kernel's order (the kernel links a new one at the head; a Map appends).
   */
  private readonly table = new Map<string, { service: Service; dests: Map<string, Destination> }>();

  constructor(
    initial: readonly DesiredService[] = [],
    private readonly opts: SimulateOptions = {},
  ) {
    for (const s of initial) {
      const dests = new Map<string, Destination>();
      for (let i = s.destinations.length - 1; i >= 0; i--) {
        const d = s.destinations[i];
        dests.set(destinationId(d), destinationOnly(d));
      }
      this.table.set(serviceKeyId(s.key), { service: serviceOnly(s), dests });
    }
  }

  /** Apply one op as applyOp() would: the same checks in the same order, the same errors. */
  apply(op: IpvsOp): void {
    const validate = this.opts.validate ?? true;
    const table = this.table;
    switch (op.op) {
      case 'add-service': {
        const id = serviceKeyId(op.service.key);
        if (table.has(id)) throw new KernelStateError('EEXIST', 'Service already exists');
        if (validate) checkServiceAttrs(op.service, this.opts);
        table.set(id, { service: serviceOnly(op.service), dests: new Map() });
        return;
      }
      case 'edit-service': {
        const entry = table.get(serviceKeyId(op.service.key));
        if (entry === undefined) throw new KernelStateError('ESRCH', 'No such service');
        if (validate) checkServiceAttrs(op.service, this.opts);
        entry.service = serviceOnly(op.service);
        return;
      }
      case 'delete-service':
        if (!table.delete(serviceKeyId(op.key))) throw new KernelStateError('ESRCH', 'No such service');
        return;
      case 'add-dest':
      case 'edit-dest': {
        const entry = table.get(serviceKeyId(op.service));
        if (entry === undefined) throw new KernelStateError('ESRCH', 'Service not defined');
        if (validate && op.dest.family !== entry.service.key.family && op.dest.forward !== 'tunnel') {
          throw new KernelStateError('EINVAL', EINVAL_TEXT);
        }
        if (validate) checkDestAttrs(op.dest);
        const id = destinationId(op.dest);
        const exists = entry.dests.has(id);
        if (op.op === 'add-dest') {
          if (exists) throw new KernelStateError('EEXIST', 'Destination already exists');
          if (validate && !destAddressUsable(op.dest)) throw new KernelStateError('EINVAL', EINVAL_TEXT);
        } else if (!exists) throw new KernelStateError('ENOENT', 'No such destination');
        entry.dests.set(id, destinationOnly(op.dest));
        return;
      }
      case 'delete-dest': {
        const entry = table.get(serviceKeyId(op.service));
        if (entry === undefined) throw new KernelStateError('ESRCH', 'Service not defined');
        if (!entry.dests.delete(destinationId(op.dest))) throw new KernelStateError('ENOENT', 'No such destination');
        return;
      }
      case 'flush':
        table.clear();
        return;
      case 'zero':
        if (op.service && !table.has(serviceKeyId(op.service))) throw new KernelStateError('ESRCH', 'No such service');
        return;
      case 'set-timeouts':
      case 'start-daemon':
      case 'stop-daemon':
        return;
    }
  }

  /** A copy of one service with its real servers in the kernel's order, or undefined. */
  service(key: ServiceKey): DesiredService | undefined {
    const entry = this.table.get(serviceKeyId(key));
    return entry && SimulatedTable.materialize(entry);
  }

  /** A copy of one real server of a service, or undefined. */
  destination(key: ServiceKey, dest: DestinationRef): Destination | undefined {
    const d = this.table.get(serviceKeyId(key))?.dests.get(destinationId(dest));
    return d && destinationOnly(d);
  }

  /** A copy of the whole table, as applyOp() would have returned it. */
  services(): DesiredService[] {
    const out: DesiredService[] = [];
    for (const entry of this.table.values()) out.push(SimulatedTable.materialize(entry));
    return out;
  }

  private static materialize(entry: { service: Service; dests: Map<string, Destination> }): DesiredService {
    const destinations: Destination[] = [];
    for (const d of entry.dests.values()) destinations.push(destinationOnly(d));
    destinations.reverse();
    return { ...serviceOnly(entry.service), destinations };
  }
}
