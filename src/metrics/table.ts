/**
 * The IPVS table as metrics: pure functions from one dump (ServiceState[]) to the exposition text.
 * At 10k services x 10 real servers a scrape is 100k real servers x 8 series, so this writes the text
 * itself: each service's and real server's label text is built once per dump and shared by its series,
 * and counters are printed from the kernel's 64-bit values exactly (prom-client's generic path hashes every
 * label set and goes through float64; here it took 4-7 s for that table).
 */
import type { DestinationState, ServiceKey, ServiceState } from '../ipvs/model';
import { SERVICE_LABELS, TABLE, type MetricDef } from './names';

export type Labels = Record<string, string>;

/** node_exporter's (procfs's) values: proto TCP/UDP/SCTP, or FWM with the mark in local_mark and no address. */
export function serviceLabels(key: ServiceKey): Labels {
  if (key.kind === 'fwmark') return { local_address: '', local_port: '0', proto: 'FWM', local_mark: String(key.fwmark), family: key.family };
  return { local_address: key.address, local_port: String(key.port), proto: key.protocol.toUpperCase(), local_mark: '', family: key.family };
}

export function backendLabels(key: ServiceKey, d: Pick<DestinationState, 'address' | 'port'>): Labels {
  const s = serviceLabels(key);
  return { ...s, remote_address: d.address, remote_port: String(d.port) };
}

function escapeValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}

/** `{a="1",b="2"}` in the order of `names` ('' for no labels). */
export function labelText(labels: Labels, names: readonly string[]): string {
  if (names.length === 0) return '';
  return `{${names.map((n) => `${n}="${escapeValue(labels[n] ?? '')}"`).join(',')}}`;
}

export function header(m: MetricDef): string {
  return `# HELP ${m.name} ${m.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${m.name} ${m.type}`;
}

type Value = bigint | number;
type ServiceField = (s: ServiceState) => Value;
type BackendField = (d: DestinationState) => Value;

const SERVICE_SERIES: readonly [MetricDef, ServiceField][] = [
  [TABLE.connections, (s) => s.stats.conns],
  [TABLE.inPackets, (s) => s.stats.inPkts],
  [TABLE.outPackets, (s) => s.stats.outPkts],
  [TABLE.inBytes, (s) => s.stats.inBytes],
  [TABLE.outBytes, (s) => s.stats.outBytes],
];

const BACKEND_SERIES: readonly [MetricDef, BackendField][] = [
  [TABLE.active, (d) => d.activeConns],
  [TABLE.inactive, (d) => d.inactiveConns],
  [TABLE.weight, (d) => d.weight],
  [TABLE.backendConnections, (d) => d.stats.conns],
  [TABLE.backendInPackets, (d) => d.stats.inPkts],
  [TABLE.backendOutPackets, (d) => d.stats.outPkts],
  [TABLE.backendInBytes, (d) => d.stats.inBytes],
  [TABLE.backendOutBytes, (d) => d.stats.outBytes],
];

/** One dump with its label texts computed (once, however many series and scrapes use it). */
export interface PreparedTable {
  readonly table: readonly ServiceState[];
  readonly serviceText: readonly string[];
  /** Per service, per real server. */
  readonly backendText: readonly (readonly string[])[];
  readonly backendCount: number;
}

export function prepareTable(table: readonly ServiceState[]): PreparedTable {
  let backendCount = 0;
  const serviceText: string[] = [];
  const backendText: string[][] = [];
  // BACKEND_LABELS is SERVICE_LABELS with remote_address, remote_port after local_port: each real server's
  // text is its service's head and tail around its own two labels (a plain concatenation per real server).
  const [la, lp, proto, mark, fam] = SERVICE_LABELS;
  for (const s of table) {
    const l = serviceLabels(s.key);
    const head = `{${la}="${escapeValue(l[la]!)}",${lp}="${l[lp]}",`;
    const tail = `,${proto}="${l[proto]}",${mark}="${l[mark]}",${fam}="${l[fam]}"}`;
    serviceText.push(head + tail.slice(1));
    backendText.push(s.destinations.map((d) => `${head}remote_address="${escapeValue(d.address)}",remote_port="${d.port}"${tail}`));
    backendCount += s.destinations.length;
  }
  return { table, serviceText, backendText, backendCount };
}

/** The text of one table metric (header and samples, no trailing newline), or undefined for another name. */
export function renderTableMetric(p: PreparedTable, name: string): string | undefined {
  if (name === TABLE.services.name) return `${header(TABLE.services)}\n${TABLE.services.name} ${p.table.length}`;
  if (name === TABLE.backends.name) return `${header(TABLE.backends)}\n${TABLE.backends.name} ${p.backendCount}`;
  const sv = SERVICE_SERIES.find(([m]) => m.name === name);
  if (sv) {
    const [m, f] = sv;
    let out = header(m);
    p.table.forEach((s, i) => {
      out += `\n${m.name}${p.serviceText[i]} ${f(s)}`;
    });
    return out;
  }
  const bk = BACKEND_SERIES.find(([m]) => m.name === name);
  if (bk) {
    const [m, f] = bk;
    let out = header(m);
    p.table.forEach((s, i) => {
      const texts = p.backendText[i]!;
      s.destinations.forEach((d, j) => {
        out += `\n${m.name}${texts[j]} ${f(d)}`;
      });
    });
    return out;
  }
  return undefined;
}

export interface Sample {
  labels: Labels;
  value: number;
}

/** The samples of one table metric as structured values (prom-client's JSON form; tests, getMetricsAsJSON). */
export function tableSamples(table: readonly ServiceState[], name: string): Sample[] | undefined {
  if (name === TABLE.services.name) return [{ labels: {}, value: table.length }];
  if (name === TABLE.backends.name) return [{ labels: {}, value: table.reduce((n, s) => n + s.destinations.length, 0) }];
  const sv = SERVICE_SERIES.find(([m]) => m.name === name);
  if (sv) return table.map((s) => ({ labels: serviceLabels(s.key), value: Number(sv[1](s)) }));
  const bk = BACKEND_SERIES.find(([m]) => m.name === name);
  if (bk) return table.flatMap((s) => s.destinations.map((d) => ({ labels: backendLabels(s.key, d), value: Number(bk[1](d)) })));
  return undefined;
}
