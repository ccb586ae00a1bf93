/** One-line summaries of IPVS changes for logs and D-Bus replies. */
import type { IpvsOp } from '../ipvs/model';

/** A one-line summary of a list of ops, e.g. "2 added services, 1 changed real server". */
export function summarizeOps(ops: readonly IpvsOp[]): string {
  const names: Record<IpvsOp['op'], string> = {
    'add-service': 'added service', 'edit-service': 'changed service', 'delete-service': 'removed service',
    'add-dest': 'added real server', 'edit-dest': 'changed real server', 'delete-dest': 'removed real server',
    flush: 'flush', zero: 'zeroing', 'set-timeouts': 'timeout change', 'start-daemon': 'started sync daemon',
    'stop-daemon': 'stopped sync daemon',
  };
  const counts = new Map<string, number>();
  for (const o of ops) counts.set(names[o.op], (counts.get(names[o.op]) ?? 0) + 1);
  if (counts.size === 0) return 'no changes';
  return [...counts].map(([n, c]) => `${c} ${n}${c === 1 ? '' : 's'}`).join(', ');
}
