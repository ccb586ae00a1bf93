/**
 * `ipvs-bpfctl drain SERVICE SERVER [--max-time SECONDS]`: asks the running daemon (D-Bus Drain, root only)
 * to take one real server out gracefully: weight 0 now, removed when its connections end or after the
 * maximum time (default 300 s). SERVICE and SERVER are written as the status shows them:
 * `ipvs-bpfctl drain "tcp 10.0.0.1:80" 10.0.1.2:80`. Exit 0 when the daemon took it, 1 when it refused
 * (the reason on stderr), 2 for bad arguments, 3 when no daemon answers.
 */
import { DBusError, sessionBus, systemBus } from 'dbus-next';
import { BUS_NAME, MANAGER_INTERFACE, OBJECT_PATH } from '../daemon/dbus-api';

export interface DrainIo {
  out(text: string): void;
  err(text: string): void;
}

export const DRAIN_DEFAULT_MAX_S = 300;
const USAGE =
  'Usage: ipvs-bpfctl drain SERVICE SERVER [--max-time SECONDS]\n'
  + '  SERVICE as in `ipvs-bpfctl status` ("tcp 10.0.0.1:80", "fwmark 7 inet"), SERVER as "10.0.1.2:80" or "[fd00::2]:80".\n'
  + `  Weight 0 now; removed when its connections end or after SECONDS (default ${DRAIN_DEFAULT_MAX_S}).\n`;

export async function drainMain(argv: readonly string[], io: DrainIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const pos: string[] = [];
  let max = DRAIN_DEFAULT_MAX_S;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') {
      io.out(USAGE);
      return 0;
    }
    const m = /^--max-time(?:=(.*))?$/.exec(a);
    if (m) {
      const v = m[1] ?? argv[++i];
      if (v === undefined || !/^\d+$/.test(v) || Number(v) > 604800) {
        io.err(`ipvs-bpfctl drain: --max-time takes a number of seconds (0-604800), not ${v ?? 'nothing'}\n${USAGE}`);
        return 2;
      }
      max = Number(v);
    } else if (a.startsWith('-')) {
      io.err(`ipvs-bpfctl drain: unknown option ${a}\n${USAGE}`);
      return 2;
    } else pos.push(a);
  }
  if (pos.length !== 2) {
    io.err(`ipvs-bpfctl drain: needs SERVICE and SERVER\n${USAGE}`);
    return 2;
  }
  const kind = env.IPVS_BPF_DBUS === 'session' ? 'session' : 'system';
  const bus = kind === 'session' ? sessionBus() : systemBus();
  const busFailed = new Promise<never>((_, reject) => bus.on('error', reject));
  try {
    let manager;
    try {
      const obj = await Promise.race([bus.getProxyObject(BUS_NAME, OBJECT_PATH), busFailed]);
      manager = obj.getInterface(MANAGER_INTERFACE);
    } catch (e) {
      io.err(`ipvs-bpfctl drain: the ipvs-bpf daemon does not answer on the ${kind} bus (${BUS_NAME}): ${e instanceof Error ? e.message : String(e)}\n`);
      return 3;
    }
    try {
      const summary = (await Promise.race([manager.Drain(pos[0], pos[1], max), busFailed])) as string;
      io.out(`${summary}\n`);
      return 0;
    } catch (e) {
      const name = e instanceof DBusError ? e.type : '';
      io.err(`ipvs-bpfctl drain: refused${name ? ` (${name})` : ''}: ${e instanceof Error ? e.message : String(e)}\n`);
      return 1;
    }
  } finally {
    bus.disconnect();
  }
}
