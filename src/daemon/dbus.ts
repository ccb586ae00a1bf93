/**
 * Serves the D-Bus API (dbus-api.ts) for a running Daemon: the Manager object with its properties
 * (PropertiesChanged on every change the daemon notices) and methods, and LogControl1.
 *
 * Who may do what comes from the method table (dbus-api.ts, access read / flows / root): the bus policy
 * (systemd/org.ipvsbpf1.conf) is generated from it, and the daemon checks again itself, asking the bus for
 * the caller's credentials before every method that is not `read`, so a looser policy cannot open it up.
 *
 * A lost bus connection (dbus-daemon restarted or gone) is reported once through `onLost`; the caller
 * decides (main.ts exits non-zero so that systemd restarts it). Nothing here throws from an event.
 */
import type { EventEmitter } from 'events';
import { DBusError, interface as dbusInterface, Message, MessageBus, NameFlag, RequestNameReply, Variant, sessionBus, systemBus } from 'dbus-next';
import { mayCall, needs, type Caller } from './access';
import { LOG_LEVELS, type LogLevel } from './config';
import { ChangeRefused, type Daemon } from './daemon';
import {
  ACCESS_DENIED, BUS_NAME, LOG_CONTROL_INTERFACE, LOG_CONTROL_PATH, MANAGER_INTERFACE, MANAGER_METHODS, MANAGER_PROPERTIES,
  OBJECT_PATH, PROPERTY_SET_ACCESS, errorName, flowToDbus, methodSpec, type Access, type FlowTuple,
} from './dbus-api';
import type { Logger } from './log';
import { toJson } from './status';

const { Interface } = dbusInterface;
type IfaceInstance = InstanceType<typeof Interface>;

/** systemd's log level names (LogControl1) and ours differ in one place. */
export function toSystemdLevel(l: LogLevel): string {
  return l === 'error' ? 'err' : l;
}
export function fromSystemdLevel(s: string): LogLevel | undefined {
  const l = s === 'err' ? 'error' : s;
  return (LOG_LEVELS as readonly string[]).includes(l) ? (l as LogLevel) : undefined;
}

/** Tracks the message being dispatched, so a method can learn who called it. */
class CallerTracker {
  current: Message | undefined;
}

/** Each method runs behind the access check of its MANAGER_METHODS entry. */
class ManagerInterface extends Interface {
  constructor(
    private readonly daemon: Daemon,
    private readonly guard: (access: Access, what: string) => Promise<void>,
  ) {
    super(MANAGER_INTERFACE);
  }

  Reload(): Promise<string> {
    return this.run('Reload', () => this.daemon.reload());
  }

  ApplyRules(text: string): Promise<string> {
    return this.run('ApplyRules', () => this.daemon.applyRules(text));
  }

  ListFlows(cursor: bigint, limit: number): Promise<[FlowTuple[], bigint]> {
    return this.run('ListFlows', async () => {
      const page = this.daemon.listFlows(BigInt(cursor), limit);
      return [page.flows.map(flowToDbus), page.next];
    });
  }

  SetWeight(service: string, server: string, weight: number): Promise<void> {
    return this.run('SetWeight', () => this.daemon.setWeight(service, server, weight));
  }

  Drain(service: string, server: string, maxSeconds: number): Promise<string> {
    return this.run('Drain', () => this.daemon.drain(service, server, maxSeconds));
  }

  /** The check starts synchronously (it reads the message being dispatched), then the method runs. */
  private async run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const checked = this.guard(methodSpec(name).access, name);
    await checked;
    return call(fn);
  }
}

for (const p of MANAGER_PROPERTIES) {
  Object.defineProperty(ManagerInterface.prototype, p.name, {
    get(this: { daemon: Daemon }) {
      return p.toDbus(this.daemon.status());
    },
  });
}
ManagerInterface.configureMembers({
  properties: Object.fromEntries(MANAGER_PROPERTIES.map((p) => [p.name, { signature: p.signature, access: 'read' as const }])),
  methods: Object.fromEntries(MANAGER_METHODS.map((m) => [m.name, { inSignature: m.inSignature, outSignature: m.outSignature }])),
});

class LogControlInterface extends Interface {
  constructor(private readonly log: Logger) {
    super(LOG_CONTROL_INTERFACE);
  }

  get LogLevel(): string {
    return toSystemdLevel(this.log.level);
  }

  set LogLevel(v: string) {
    const l = fromSystemdLevel(v);
    if (!l) throw new DBusError('org.freedesktop.DBus.Error.InvalidArgs', `unknown log level ${JSON.stringify(v)} (one of emerg alert crit err warning notice info debug)`);
    this.log.setLevel(l);
    this.log.notice(`log level set to ${l} over D-Bus`);
  }

  get LogTarget(): string {
    return process.env.JOURNAL_STREAM ? 'journal' : 'console';
  }

  set LogTarget(v: string) {
    throw new DBusError('org.freedesktop.DBus.Error.NotSupported', `the log target is fixed (${this.LogTarget}); cannot set ${JSON.stringify(v)}`);
  }

  get SyslogIdentifier(): string {
    return 'ipvs-bpf';
  }
}
LogControlInterface.configureMembers({
  properties: {
    LogLevel: { signature: 's', access: 'readwrite' },
    LogTarget: { signature: 's', access: 'readwrite' },
    SyslogIdentifier: { signature: 's', access: 'read' },
  },
});

async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw asDbusError(e);
  }
}

function asDbusError(e: unknown): Error {
  if (e instanceof ChangeRefused) return new DBusError(errorName(e.kind), e.message);
  if (e instanceof DBusError) return e;
  return new DBusError(errorName('Failed'), e instanceof Error ? e.message : String(e));
}

export interface DbusService {
  bus: MessageBus;
  /** Called once if the connection to the bus is lost (not after close). */
  onLost(cb: (why: string) => void): void;
  close(): void;
}

/** The caller's credentials from the bus (GetConnectionCredentials: UnixUserID, UnixGroupIDs). */
export function callerFromCredentials(creds: Record<string, Variant>): Caller | undefined {
  const uid: unknown = creds.UnixUserID?.value;
  if (typeof uid !== 'number') return undefined;
  const gids: unknown = creds.UnixGroupIDs?.value;
  return Array.isArray(gids) && gids.every((g) => typeof g === 'number') ? { uid, gids: gids as number[] } : { uid };
}

/**
 * Connects, exports the objects, then takes the well-known name: under Type=dbus, owning the name is
 * what tells systemd the service is ready, so it comes last.
 */
export async function serveDbus(daemon: Daemon, log: Logger, which: 'system' | 'session', busAddress?: string): Promise<DbusService> {
  const bus = which === 'system' ? systemBus() : sessionBus(busAddress ? { busAddress } : undefined);
  const tracker = new CallerTracker();
  const lostCallbacks: ((why: string) => void)[] = [];
  let closing = false;
  let lost = false;
  const lose = (why: string): void => {
    if (closing || lost) return;
    lost = true;
    for (const cb of lostCallbacks) cb(why);
  };
  // An 'error' without a listener would be thrown from the event loop; a closed socket surfaces only as the
  // connection's 'end' (dbus-next does not forward it), and as 'error' on the next write.
  bus.on('error', (e: unknown) => lose(`bus error: ${e instanceof Error ? e.message : String(e)}`));
  (bus as unknown as { _connection?: EventEmitter })._connection?.on('end', () => lose('the bus closed the connection'));

  const callerOf = async (sender: string): Promise<Caller | undefined> => {
    const reply = await bus.call(new Message({
      destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus',
      member: 'GetConnectionCredentials', signature: 's', body: [sender],
    }));
    return callerFromCredentials((reply?.body[0] ?? {}) as Record<string, Variant>);
  };
  // The sender is read synchronously when the method starts, before any await.
  const guard = async (access: Access, what: string, msg: Message | undefined = tracker.current): Promise<void> => {
    if (access === 'read') return;
    const sender = msg?.sender;
    let caller: Caller | undefined;
    try {
      caller = sender ? await callerOf(sender) : undefined;
    } catch (e) {
      log.warning(`${what}: cannot ask the bus who ${sender ?? '?'} is: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (!caller || !mayCall(access, caller)) {
      log.warning(`${what} refused: caller ${sender ?? '?'} is uid ${caller?.uid ?? '?'}; needs ${needs(access)}`);
      throw new DBusError(ACCESS_DENIED, `access denied: ${what} needs ${needs(access)}`);
    }
  };

  const manager = new ManagerInterface(daemon, (access, what) => guard(access, what));
  const logControl = new LogControlInterface(log);
  const writable = new Map<string, IfaceInstance>([[`${LOG_CONTROL_PATH} ${LOG_CONTROL_INTERFACE}`, logControl]]);

  bus.addMethodHandler((msg: Message): boolean => {
    tracker.current = msg;
    if (msg.interface === 'org.freedesktop.DBus.Properties' && msg.member === 'Set' && msg.signature === 'ssv') {
      void setProperty(msg);
      return true;
    }
    return false;
  });
  const setProperty = async (msg: Message): Promise<void> => {
    const [ifaceName, prop, value] = msg.body as [string, string, Variant];
    try {
      await guard(PROPERTY_SET_ACCESS, `setting ${prop}`, msg);
      const target = writable.get(`${msg.path} ${ifaceName}`) as unknown as Record<string, unknown> | undefined;
      if (!target || !(prop in target) || prop === 'SyslogIdentifier') {
        throw new DBusError('org.freedesktop.DBus.Error.PropertyReadOnly', `${ifaceName}.${prop} cannot be set`);
      }
      if (value.signature !== 's') throw new DBusError('org.freedesktop.DBus.Error.InvalidArgs', `${prop} takes a string`);
      target[prop] = value.value;
      bus.send(Message.newMethodReturn(msg, '', []));
    } catch (e) {
      const err = e instanceof DBusError ? e : new DBusError(errorName('Failed'), String(e));
      bus.send(Message.newError(msg as unknown as string, err.type, err.text));
    }
  };

  bus.export(OBJECT_PATH, manager);
  bus.export(LOG_CONTROL_PATH, logControl);

  const last = new Map<string, string>();
  for (const p of MANAGER_PROPERTIES) last.set(p.name, toJson(p.toDbus(daemon.status())));
  daemon.onStatus((s) => {
    const changed: Record<string, unknown> = {};
    for (const p of MANAGER_PROPERTIES) {
      const v = p.toDbus(s);
      const j = toJson(v);
      if (last.get(p.name) !== j) {
        last.set(p.name, j);
        changed[p.name] = v;
      }
    }
    if (Object.keys(changed).length > 0) Interface.emitPropertiesChanged(manager, changed, []);
  });

  const reply = await bus.requestName(BUS_NAME, NameFlag.DO_NOT_QUEUE);
  if (reply !== RequestNameReply.PRIMARY_OWNER && reply !== RequestNameReply.ALREADY_OWNER) {
    closing = true;
    bus.disconnect();
    throw new Error(`cannot own the D-Bus name ${BUS_NAME}: another ipvs-bpf runs, or the bus policy does not allow it (reply ${reply})`);
  }
  return {
    bus,
    onLost: (cb) => void lostCallbacks.push(cb),
    close: () => {
      closing = true;
      bus.disconnect();
    },
  };
}

/**
 * Whether a daemon owns the well-known name on that bus (it is running). undefined when the bus does not
 * answer within two seconds (no bus: nothing can be asked, and nothing serves there either).
 */
export async function daemonOnBus(which: 'system' | 'session'): Promise<boolean | undefined> {
  const bus = which === 'system' ? systemBus() : sessionBus();
  const failed = new Promise<undefined>((resolve) => bus.on('error', () => resolve(undefined)));
  const timeout = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 2000).unref());
  const ask = bus.call(new Message({
    destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus',
    member: 'NameHasOwner', signature: 's', body: [BUS_NAME],
  })).then((reply) => reply?.body[0] === true, () => undefined);
  try {
    return await Promise.race([ask, failed, timeout]);
  } finally {
    bus.disconnect();
  }
}
