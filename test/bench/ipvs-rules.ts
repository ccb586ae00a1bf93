/**
 * The benchmark's rule set: N services with M real servers each, as `ipvsadm-save -n` writes it
 * (services and servers sorted as ipvsadm sorts them, so `ipvsadm -Sn` of the restored table is
 * byte-identical to the input).
 */
function ip(base: number, i: number): string {
  const n = (base + i) >>> 0;
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const VIP_BASE = (10 << 24) >>> 0; // 10.0.0.0
const RS_BASE = ((172 << 24) | (16 << 16)) >>> 0; // 172.16.0.0

export function benchRules(services: number, servers: number): string {
  const lines: string[] = [];
  for (let s = 0; s < services; s++) {
    const vip = ip(VIP_BASE, s + 1);
    lines.push(`-A -t ${vip}:80 -s wlc`);
    for (let r = 0; r < servers; r++) {
      lines.push(`-a -t ${vip}:80 -r ${ip(RS_BASE, s * servers + r + 1)}:8080 -m -w 1`);
    }
  }
  return lines.join('\n') + '\n';
}

/** The (service, server) whose weight the one-change measurement edits: the middle of the table. */
export function benchEditTarget(services: number, servers: number): { vip: string; rs: string } {
  const s = Math.floor(services / 2);
  return { vip: `${ip(VIP_BASE, s + 1)}:80`, rs: `${ip(RS_BASE, s * servers + 1)}:8080` };
}
