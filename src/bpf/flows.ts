/** The conntrack map as typed flows, the per-CPU counters, and the entries IPVS writes per connection. */
import { decodeKey, decodeValue, encodeKey, encodeValue, FlowKey, FlowValue, FlowValueInit, keyFamily, L4Proto, layout, Endpoint } from './abi';
import { native } from './native';

const BPF_ANY = 0;
const BPF_NOEXIST = 1;
const BPF_EXIST = 2;

export interface Flow { key: FlowKey; value: FlowValue }

/** A page of the map: its flows and where the next page starts (null: the walk is complete). */
export interface FlowPage { flows: Flow[]; next: number | null }

export class FlowTable {
  constructor(private readonly fd: number) {}

  get(key: FlowKey): FlowValue | null {
    const b = native.mapLookup(this.fd, encodeKey(key));
    return b ? decodeValue(b, keyFamily(key)) : null;
  }

  put(key: FlowKey, value: FlowValueInit, mode: 'any' | 'create' | 'update' = 'any'): void {
    const flags = mode === 'create' ? BPF_NOEXIST : mode === 'update' ? BPF_EXIST : BPF_ANY;
    native.mapUpdate(this.fd, encodeKey(key), encodeValue(value), flags);
  }

  delete(key: FlowKey): boolean {
    return native.mapDelete(this.fd, encodeKey(key));
  }

  /** Every entry: a copy of the whole map (tests and tools; the daemon pages with `page`). */
  list(): Flow[] {
    return decodeFlows(native.mapDump(this.fd));
  }

  /**
   * At most `max` entries (a hash bucket is never split), from the position `from` a previous page returned
   * (null: the start). Entries inserted or deleted meanwhile may or may not appear; none appears twice
   * unless it was re-inserted.
   */
  page(from: number | null, max: number): FlowPage {
    const d = native.mapBatch(this.fd, from, max);
    return { flows: decodeFlows(d), next: d.next };
  }
}

function decodeFlows(d: { count: number; keys: Buffer; values: Buffer }): Flow[] {
  const ks = layout.key.size;
  const vs = layout.value.size;
  const out: Flow[] = [];
  for (let i = 0; i < d.count; i++) {
    const key = decodeKey(d.keys.subarray(i * ks, (i + 1) * ks));
    out.push({ key, value: decodeValue(d.values.subarray(i * vs, (i + 1) * vs), keyFamily(key)) });
  }
  return out;
}

export type DatapathStats = Record<string, bigint>;

/** Sums the per-CPU counters; names come from the ABI header (IPVS_BPF_STATS). */
export function readStats(statsFd: number): DatapathStats {
  const ncpu = native.numPossibleCpus();
  const out: DatapathStats = {};
  layout.stats.forEach((name, i) => {
    const k = Buffer.alloc(4);
    k.writeUInt32LE(i);
    const v = native.mapLookup(statsFd, k);
    let sum = 0n;
    for (let c = 0; v && c < ncpu; c++) sum += v.readBigUInt64LE(c * 8);
    out[name] = sum;
  });
  return out;
}

export interface IpvsConnection {
  proto: L4Proto;
  client: Endpoint;
  vip: Endpoint;
  real: Endpoint;
  /** local SNAT address and port chosen by IPVS */
  local: Endpoint;
  flags?: number;
}

/** The three entries the patched IPVS writes for one connection (see ipvs_bpf_abi.h). */
export function ipvsConnEntries(c: IpvsConnection): { key: FlowKey; value: FlowValueInit }[] {
  const flags = c.flags ?? 0;
  return [
    { key: { kind: 'SNAT', proto: c.proto, src: c.client, dst: c.real }, value: { src: c.local, dst: c.real, flags } },
    { key: { kind: 'REPLY', proto: c.proto, src: c.real, dst: c.local }, value: { src: c.vip, dst: c.client, flags } },
    { key: { kind: 'FWD', proto: c.proto, src: c.client, dst: c.vip }, value: { src: c.local, dst: c.real, flags } },
  ];
}
