/**
 * What a node's Kubernetes proxy programmed, in a canonical text form two proxies can be compared in (and a
 * golden file kept in): the kube-ipvs0 addresses, the IPVS virtual servers with their destinations
 * (`ipvsadm -Sn` lines, sorted; the kernel lists them in hash order), and IPVS's timeouts.
 */

export interface IpvsService {
  /** The `-A ...` line as ipvsadm -Sn prints it. */
  line: string;
  /** Its `-t|-u|--sctp-service|-f ADDR` part, which its `-a` lines repeat. */
  key: string;
  /** The `-a ...` lines, sorted. */
  dests: string[];
}

export interface ProxyTable {
  /** kube-ipvs0's addresses with their prefix (10.96.0.1/32), sorted. */
  addrs: string[];
  services: IpvsService[];
  /** `tcp tcpfin udp` seconds, as ipvsadm -L --timeout prints them. */
  timeouts?: string;
}

const SERVICE_KEY = /^-[Aa] (-[tuf]|--sctp-service) (\S+)/;

/** Parses `ipvsadm -Sn` output; throws naming the line when it is not ipvsadm's save format. */
export function parseIpvsSave(text: string): IpvsService[] {
  const byKey = new Map<string, IpvsService>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim().replace(/\s+/g, ' ');
    if (!line) return;
    const m = SERVICE_KEY.exec(line);
    if (!m) throw new Error(`ipvsadm -Sn line ${i + 1}: not a -A/-a line: ${JSON.stringify(raw)}`);
    const key = `${m[1]} ${m[2]}`;
    if (line.startsWith('-A')) {
      if (byKey.has(key)) throw new Error(`ipvsadm -Sn line ${i + 1}: service ${key} listed twice`);
      byKey.set(key, { line, key, dests: [] });
    } else {
      const svc = byKey.get(key);
      if (!svc) throw new Error(`ipvsadm -Sn line ${i + 1}: destination of ${key} before its service`);
      svc.dests.push(line);
    }
  });
  const services = [...byKey.values()];
  for (const s of services) s.dests.sort();
  return services.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The `inet`/`inet6` addresses of `ip -o addr show dev kube-ipvs0`, sorted. */
export function parseAddrs(text: string): string[] {
  return [...text.matchAll(/\binet6? (\S+)/g)].map((m) => m[1]).sort();
}

/** The three numbers of `ipvsadm -L --timeout`'s "Timeout (tcp tcpfin udp): 900 120 300" line. */
export function parseTimeouts(text: string): string | undefined {
  return /Timeout \(tcp tcpfin udp\): (\d+) (\d+) (\d+)/.exec(text)?.slice(1).join(' ');
}

export function renderTable(t: ProxyTable): string {
  const lines = ['[kube-ipvs0]', ...t.addrs, '[ipvs]'];
  for (const s of t.services) lines.push(s.line, ...s.dests);
  if (t.timeouts !== undefined) lines.push('[timeouts tcp tcpfin udp]', t.timeouts);
  return lines.join('\n') + '\n';
}

/** renderTable's text without comment lines (a golden file's header), for comparing. */
export function stripComments(text: string): string {
  return text.split('\n').filter((l) => !l.startsWith('#')).join('\n');
}

/** What differs between two tables, one readable line per difference ("missing" = in want, not in got). */
export function diffTables(want: ProxyTable, got: ProxyTable): string[] {
  const out: string[] = [];
  const setDiff = (what: string, a: string[], b: string[]): void => {
    const sb = new Set(b);
    const sa = new Set(a);
    for (const x of a) if (!sb.has(x)) out.push(`${what}: missing ${x}`);
    for (const x of b) if (!sa.has(x)) out.push(`${what}: extra ${x}`);
  };
  setDiff('kube-ipvs0', want.addrs, got.addrs);
  const gotBy = new Map(got.services.map((s) => [s.key, s]));
  const wantKeys = new Set(want.services.map((s) => s.key));
  for (const w of want.services) {
    const g = gotBy.get(w.key);
    if (!g) {
      out.push(`ipvs: missing ${w.line} (${w.dests.length} destinations)`);
      continue;
    }
    if (g.line !== w.line) out.push(`ipvs ${w.key}: service ${JSON.stringify(w.line)}, got ${JSON.stringify(g.line)}`);
    setDiff(`ipvs ${w.key}`, w.dests, g.dests);
  }
  for (const g of got.services) if (!wantKeys.has(g.key)) out.push(`ipvs: extra ${g.line} (${g.dests.length} destinations)`);
  if (want.timeouts !== got.timeouts) out.push(`timeouts (tcp tcpfin udp): ${want.timeouts}, got ${got.timeouts}`);
  return out;
}
