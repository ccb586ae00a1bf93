/**
 * `ipvs-bpfctl status [-o text|json]`: the running daemon's state, read over D-Bus (any local user may).
 * Exit 0 when the daemon answered, 3 when it is not running (as `systemctl status` for an inactive unit).
 */
import { sessionBus, systemBus, type Variant } from 'dbus-next';
import { BUS_NAME, emptyStatus, MANAGER_INTERFACE, MANAGER_PROPERTIES, OBJECT_PATH } from '../daemon/dbus-api';
import { toJson, type DaemonStatus } from '../daemon/status';

export interface StatusIo {
  out(text: string): void;
  err(text: string): void;
}

const USAGE = 'Usage: ipvs-bpfctl status [-o text|json]\n';

export async function statusMain(argv: readonly string[], io: StatusIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let output = 'text';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if ((a === '-o' || a === '--output') && argv[i + 1] !== undefined) output = argv[++i]!;
    else if (a.startsWith('--output=')) output = a.slice('--output='.length);
    else if (a === '-h' || a === '--help') {
      io.out(USAGE);
      return 0;
    } else {
      io.err(`ipvs-bpfctl status: unexpected argument ${a}\n${USAGE}`);
      return 2;
    }
  }
  if (output !== 'text' && output !== 'json') {
    io.err(`ipvs-bpfctl status: -o takes text or json, not ${output}\n`);
    return 2;
  }
  const bus = env.IPVS_BPF_DBUS === 'session' ? sessionBus() : systemBus();
  // No bus at all (socket missing, refused) arrives as an 'error' event, not as a rejected call.
  const busFailed = new Promise<never>((_, reject) => bus.on('error', reject));
  try {
    let all: Record<string, Variant>;
    try {
      const read = async (): Promise<Record<string, Variant>> => {
        const obj = await bus.getProxyObject(BUS_NAME, OBJECT_PATH);
        const props = obj.getInterface('org.freedesktop.DBus.Properties');
        return (await props.GetAll(MANAGER_INTERFACE)) as Record<string, Variant>;
      };
      all = await Promise.race([read(), busFailed]);
    } catch (e) {
      const text = e instanceof Error ? e.message : String(e);
      io.err(`ipvs-bpfctl status: the ipvs-bpf daemon does not answer on the ${env.IPVS_BPF_DBUS === 'session' ? 'session' : 'system'} bus (${BUS_NAME}): ${text}\n`);
      return 3;
    }
    const s = emptyStatus();
    for (const p of MANAGER_PROPERTIES) {
      const v = all[p.name];
      if (v !== undefined) p.fromDbus(v.value, s);
    }
    io.out(output === 'json' ? `${toJson(s, 2)}\n` : formatStatus(s));
    return 0;
  } finally {
    bus.disconnect();
  }
}

/** The human form. */
export function formatStatus(s: DaemonStatus): string {
  const lines: string[] = [];
  const mode = s.configuredMode === s.mode ? s.mode : `${s.mode} (configured ${s.configuredMode})`;
  lines.push(`ipvs-bpf ${s.version}, mode ${mode}${s.modeReason ? `: ${s.modeReason}` : ''}`);
  lines.push(`Interfaces: ${s.interfaces.map((i) => `${i.name} (xdp ${i.xdp})`).join(', ') || 'none'}`);
  lines.push(`Rule files: ${s.ruleFiles.join(', ') || 'none'}`);
  if (s.lastReload.usec > 0n) {
    const when = new Date(Number(s.lastReload.usec / 1000n)).toISOString();
    lines.push(`Last apply: ${when} ${s.lastReload.ok ? 'ok' : 'REFUSED'}: ${s.lastReload.message.split('\n').join('; ')}`);
  }
  for (const a of s.alerts) {
    const when = new Date(Number(a.lastUsec / 1000n)).toISOString();
    lines.push(`ALERT ${a.counter} ${a.value} (+${a.increase} since the daemon started, last ${when}): ${a.meaning}`);
  }
  lines.push(`Flows: ${s.flowCount}`);
  lines.push(`Services: ${s.services.length}`);
  for (const v of s.services) {
    const persist = v.persistenceTimeout ? ` persistent ${v.persistenceTimeout}` : '';
    lines.push(`  ${v.id} ${v.scheduler}${persist}  conns ${v.conns} in ${v.inPkts} pkts/${v.inBytes} B out ${v.outPkts} pkts/${v.outBytes} B`);
    for (const d of v.realServers) {
      lines.push(`    -> ${d.id} ${d.forward} weight ${d.weight} active ${d.activeConns} inactive ${d.inactiveConns} conns ${d.conns}`);
    }
  }
  const dp = Object.entries(s.dataPathCounters);
  if (dp.length) lines.push(`Data path: ${dp.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  const k = Object.entries(s.kernelCounters);
  if (k.length) lines.push(`Kernel: ${k.map(([n, v]) => `${n} ${v}`).join(', ')}`);
  return `${lines.join('\n')}\n`;
}
