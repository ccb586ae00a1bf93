/**
 * Serves the D-Bus API (dbus-api.ts) for a running Daemon: the Manager object with its properties
 * (PropertiesChanged on every change the daemon notices) and methods, and LogControl1.
 *
 * Who may do what: the bus policy (systemd/org.ipvsbpf1.conf) lets any local user read (Get, GetAll,
 * Introspect, ListFlows) and only root call the rest; the daemon checks again itself, asking the bus for
 * the caller's uid before any change, so a looser policy cannot open it up.
 */
import { DBusError, interface as dbusInterface, Message, MessageBus, NameFlag, RequestNameReply, Variant, sessionBus, systemBus } from 'dbus-next';
import { LOG_LEVELS, type LogLevel } from './config';
import { ChangeRefused, type Daemon } from './daemon';
import {
  ACCESS_DENIED, BUS_NAME, LOG_CONTROL_INTERFACE, LOG_CONTROL_PATH, MANAGER_INTERFACE, MANAGER_METHODS, MANAGER_PROPERTIES,
  OBJECT_PATH, errorName, flowToDbus, type FlowTuple,
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

class ManagerInterface extends Interface {
  constructor(
    private readonly daemon: Daemon,
    private readonly guard: (what: string) => Promise<void>,
  ) {
    super(MANAGER_INTERFACE);
  }

  async Reload(): Promise<string> {
    await this.guard('Reload');
    return call(() => this.daemon.reload());
  }

  async ApplyRules(text: string): Promise<string> {
    await this.guard('ApplyRules');
    return call(() => this.daemon.applyRules(text));
  }

  ListFlows(): FlowTuple[] {
    try {
      return this.daemon.listFlows().map(flowToDbus);
    } catch (e) {
      throw asDbusError(e);
    }
  }

  async SetWeight(service: string, server: string, weight: number): Promise<void> {
    await this.guard('SetWeight');
    await call(() => this.daemon.setWeight(service, server, weight));
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
  close(): void;
}

/**
 * Connects, exports the objects, then takes the well-known name: under Type=dbus, owning the name is
 * what tells systemd the service is ready, so it comes last.
 */
export async function serveDbus(daemon: Daemon, log: Logger, which: 'system' | 'session', busAddress?: string): Promise<DbusService> {
  const bus = which === 'system' ? systemBus() : sessionBus(busAddress ? { busAddress } : undefined);
  const tracker = new CallerTracker();
  const uidOf = async (sender: string): Promise<number> => {
    const reply = await bus.call(new Message({
      destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus',
      member: 'GetConnectionUnixUser', signature: 's', body: [sender],
    }));
    const uid: unknown = reply?.body[0];
    if (typeof uid !== 'number') throw new Error(`the bus did not tell the uid of ${sender}`);
    return uid;
  };
  // The sender is read synchronously when the method starts, before any await.
  const guard = async (what: string, msg: Message | undefined = tracker.current): Promise<void> => {
    const sender = msg?.sender;
    const uid = sender ? await uidOf(sender) : -1;
    if (uid !== 0) {
      log.warning(`${what} refused: caller ${sender ?? '?'} is uid ${uid}, not root`);
      throw new DBusError(ACCESS_DENIED, `${what} changes ipvs-bpf and needs root`);
    }
  };

  const manager = new ManagerInterface(daemon, (what) => guard(what));
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
      await guard(`setting ${prop}`, msg);
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
    bus.disconnect();
    throw new Error(`cannot own the D-Bus name ${BUS_NAME}: another ipvs-bpf runs, or the bus policy does not allow it (reply ${reply})`);
  }
  return { bus, close: () => bus.disconnect() };
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
