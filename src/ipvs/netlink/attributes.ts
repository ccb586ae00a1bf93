/**
 * The IPVS generic-netlink attribute layouts, written once, as data (include/uapi/linux/ip_vs.h and the
 * kernel's policies in net/netfilter/ipvs/ip_vs_ctl.c). tlv.ts encodes and decodes any of these tables;
 * codec.ts maps their records to the model. Each table also types its record: `AttrRecord<typeof T>`.
 */

/** How one attribute's payload is laid out on the wire. */
export type ScalarType =
  /** host-order integers (NLA_U8/U16/U32/U64) */
  | 'u8'
  | 'u16'
  | 'u32'
  | 'u64'
  /** network-order integers (nla_put_be16/be32) */
  | 'be16'
  | 'be32'
  /** NUL-terminated text (NLA_NUL_STRING) */
  | 'string'
  /** 4-byte IPv4 address, network order */
  | 'inaddr'
  /** 16-byte IPv6 address */
  | 'in6addr'
  /** union nf_inet_addr: 16 bytes, IPv4 in the first 4 */
  | 'nfaddr'
  /** struct ip_vs_flags { __u32 flags; __u32 mask; } in host order */
  | 'flags';

export interface IpvsFlagsStruct {
  flags: number;
  mask: number;
}

/** The decoded / to-be-encoded value of each scalar type. Addresses stay bytes here; codec.ts makes text. */
export interface ScalarValues {
  u8: number;
  u16: number;
  u32: number;
  u64: bigint;
  be16: number;
  be32: number;
  string: string;
  inaddr: Buffer;
  in6addr: Buffer;
  nfaddr: Buffer;
  flags: IpvsFlagsStruct;
}

export interface ScalarSpec {
  readonly id: number;
  readonly type: ScalarType;
}

export interface NestedSpec {
  readonly id: number;
  readonly type: 'nested';
  readonly table: AttrTable<TableShape>;
}

export type AttrSpec = ScalarSpec | NestedSpec;
export type TableShape = { readonly [name: string]: AttrSpec };

/** One attribute of a table with its name, for the decoder's id index. */
export interface IndexedAttr {
  readonly name: string;
  readonly spec: AttrSpec;
}

export interface AttrTable<S extends TableShape> {
  readonly name: string;
  readonly attrs: S;
  /** The highest attribute id of the table (the kernel's *_ATTR_MAX). */
  readonly maxId: number;
  /** attrs indexed by id; holes are unknown ids, which the decoder skips. */
  readonly byId: readonly (IndexedAttr | undefined)[];
  /** Encoding order: by id. */
  readonly ordered: readonly IndexedAttr[];
}

export type AttrValue<A> = A extends { readonly type: 'nested'; readonly table: AttrTable<infer S> }
  ? AttrRecord<S>
  : A extends { readonly type: infer T extends ScalarType }
    ? ScalarValues[T]
    : never;

/** A set of attributes of one table: every attribute optional, as on the wire. */
export type AttrRecord<S extends TableShape> = { -readonly [K in keyof S]?: AttrValue<S[K]> };

/** The record type of a table value: `RecordOf<typeof SERVICE_ATTRS>`. */
export type RecordOf<T> = T extends AttrTable<infer S> ? AttrRecord<S> : never;

export function defineTable<const S extends TableShape>(name: string, attrs: S): AttrTable<S> {
  const ordered: IndexedAttr[] = Object.entries(attrs)
    .map(([n, spec]) => ({ name: n, spec }))
    .sort((a, b) => a.spec.id - b.spec.id);
  const maxId = ordered.length ? ordered[ordered.length - 1].spec.id : 0;
  const byId: (IndexedAttr | undefined)[] = new Array<IndexedAttr | undefined>(maxId + 1).fill(undefined);
  for (const a of ordered) {
    if (!Number.isInteger(a.spec.id) || a.spec.id <= 0 || a.spec.id > 0x3fff)
      throw new Error(`attribute table ${name}: bad id ${a.spec.id} for ${a.name}`);
    if (byId[a.spec.id]) throw new Error(`attribute table ${name}: id ${a.spec.id} used twice`);
    byId[a.spec.id] = a;
  }
  return { name, attrs, maxId, byId, ordered };
}

/** The same layout without some attributes: the decoder skips those (used to skip work, never to change
 * meaning). */
export function omitAttrs<S extends TableShape, K extends keyof S & string>(
  table: AttrTable<S>,
  names: readonly K[],
): AttrTable<Omit<S, K>> {
  const kept = Object.fromEntries(Object.entries(table.attrs).filter(([n]) => !(names as readonly string[]).includes(n)));
  return defineTable(`${table.name}-${names.join('-')}`, kept as Omit<S, K>);
}

/** IPVS_STATS_ATTR_* inside IPVS_SVC_ATTR_STATS / IPVS_DEST_ATTR_STATS (32-bit counters, 64-bit bytes). */
export const STATS_ATTRS = defineTable('stats', {
  conns: { id: 1, type: 'u32' },
  inPkts: { id: 2, type: 'u32' },
  outPkts: { id: 3, type: 'u32' },
  inBytes: { id: 4, type: 'u64' },
  outBytes: { id: 5, type: 'u64' },
  cps: { id: 6, type: 'u32' },
  inPps: { id: 7, type: 'u32' },
  outPps: { id: 8, type: 'u32' },
  inBps: { id: 9, type: 'u32' },
  outBps: { id: 10, type: 'u32' },
  // 11 is IPVS_STATS_ATTR_PAD (alignment filler), skipped as unknown.
});

/** The same ids inside IPVS_*_ATTR_STATS64, every counter 64-bit. */
export const STATS64_ATTRS = defineTable('stats64', {
  conns: { id: 1, type: 'u64' },
  inPkts: { id: 2, type: 'u64' },
  outPkts: { id: 3, type: 'u64' },
  inBytes: { id: 4, type: 'u64' },
  outBytes: { id: 5, type: 'u64' },
  cps: { id: 6, type: 'u64' },
  inPps: { id: 7, type: 'u64' },
  outPps: { id: 8, type: 'u64' },
  inBps: { id: 9, type: 'u64' },
  outBps: { id: 10, type: 'u64' },
});

/** IPVS_SVC_ATTR_* inside IPVS_CMD_ATTR_SERVICE. */
export const SERVICE_ATTRS = defineTable('service', {
  af: { id: 1, type: 'u16' },
  protocol: { id: 2, type: 'u16' },
  addr: { id: 3, type: 'nfaddr' },
  port: { id: 4, type: 'be16' },
  fwmark: { id: 5, type: 'u32' },
  schedName: { id: 6, type: 'string' },
  flags: { id: 7, type: 'flags' },
  /** persistence timeout, seconds */
  timeout: { id: 8, type: 'u32' },
  /**
   * Persistence netmask, a __be32 in the kernel. For IPv4 it is the mask in network order; for IPv6 the
   * kernel stores the prefix length as a plain host-order number in that field (codec.ts converts).
   */
  netmask: { id: 9, type: 'be32' },
  stats: { id: 10, type: 'nested', table: STATS_ATTRS },
  peName: { id: 11, type: 'string' },
  stats64: { id: 12, type: 'nested', table: STATS64_ATTRS },
});

/** IPVS_DEST_ATTR_* inside IPVS_CMD_ATTR_DEST. */
export const DEST_ATTRS = defineTable('dest', {
  addr: { id: 1, type: 'nfaddr' },
  port: { id: 2, type: 'be16' },
  fwdMethod: { id: 3, type: 'u32' },
  weight: { id: 4, type: 'u32' },
  uThresh: { id: 5, type: 'u32' },
  lThresh: { id: 6, type: 'u32' },
  activeConns: { id: 7, type: 'u32' },
  inactConns: { id: 8, type: 'u32' },
  persistConns: { id: 9, type: 'u32' },
  stats: { id: 10, type: 'nested', table: STATS_ATTRS },
  addrFamily: { id: 11, type: 'u16' },
  stats64: { id: 12, type: 'nested', table: STATS64_ATTRS },
  tunType: { id: 13, type: 'u8' },
  tunPort: { id: 14, type: 'be16' },
  tunFlags: { id: 15, type: 'u16' },
});

/** IPVS_DAEMON_ATTR_* inside IPVS_CMD_ATTR_DAEMON; 4..8 exist since Linux 4.3. */
export const DAEMON_ATTRS = defineTable('daemon', {
  state: { id: 1, type: 'u32' },
  mcastIfn: { id: 2, type: 'string' },
  syncId: { id: 3, type: 'u32' },
  syncMaxLen: { id: 4, type: 'u16' },
  /** NLA_U32 in the policy but read with nla_get_in_addr: network order. */
  mcastGroup: { id: 5, type: 'inaddr' },
  mcastGroup6: { id: 6, type: 'in6addr' },
  /** host order (nla_get_u16), unlike service and destination ports */
  mcastPort: { id: 7, type: 'u16' },
  mcastTtl: { id: 8, type: 'u8' },
});

/** IPVS_CMD_ATTR_*: the first level of every IPVS command and reply. */
export const CMD_ATTRS = defineTable('cmd', {
  service: { id: 1, type: 'nested', table: SERVICE_ATTRS },
  dest: { id: 2, type: 'nested', table: DEST_ATTRS },
  daemon: { id: 3, type: 'nested', table: DAEMON_ATTRS },
  timeoutTcp: { id: 4, type: 'u32' },
  timeoutTcpFin: { id: 5, type: 'u32' },
  timeoutUdp: { id: 6, type: 'u32' },
});

/**
 * For reading dumps: the 32-bit IPVS_*_ATTR_STATS nests are skipped, since every kernel with
 * IPVS_*_ATTR_STATS64 (Linux 4.1+) sends both; readers fall back to CMD_ATTRS when STATS64 is missing.
 */
export const CMD_DUMP_ATTRS = defineTable('cmd-dump', {
  ...CMD_ATTRS.attrs,
  service: { id: 1, type: 'nested', table: omitAttrs(SERVICE_ATTRS, ['stats']) },
  dest: { id: 2, type: 'nested', table: omitAttrs(DEST_ATTRS, ['stats']) },
});

/** For reading without counters: both stats nests skipped (their values read as zero). */
export const CMD_NO_COUNTER_ATTRS = defineTable('cmd-no-counters', {
  ...CMD_ATTRS.attrs,
  service: { id: 1, type: 'nested', table: omitAttrs(SERVICE_ATTRS, ['stats', 'stats64']) },
  dest: { id: 2, type: 'nested', table: omitAttrs(DEST_ATTRS, ['stats', 'stats64']) },
});

/** IPVS_INFO_ATTR_*: the first level of the IPVS_CMD_GET_INFO reply (ids overlap CMD_ATTRS). */
export const INFO_ATTRS = defineTable('info', {
  /** IP_VS_VERSION_CODE, e.g. 0x010201 */
  version: { id: 1, type: 'u32' },
  connTabSize: { id: 2, type: 'u32' },
});

/** CTRL_ATTR_* of the generic netlink controller (family resolution). */
export const CTRL_ATTRS = defineTable('ctrl', {
  familyId: { id: 1, type: 'u16' },
  familyName: { id: 2, type: 'string' },
  version: { id: 3, type: 'u32' },
  hdrSize: { id: 4, type: 'u32' },
  maxAttr: { id: 5, type: 'u32' },
});

export type StatsRecord = RecordOf<typeof STATS_ATTRS>;
export type Stats64Record = RecordOf<typeof STATS64_ATTRS>;
export type ServiceRecord = RecordOf<typeof SERVICE_ATTRS>;
export type DestRecord = RecordOf<typeof DEST_ATTRS>;
export type DaemonRecord = RecordOf<typeof DAEMON_ATTRS>;
export type CmdRecord = RecordOf<typeof CMD_ATTRS>;
export type InfoRecord = RecordOf<typeof INFO_ATTRS>;
export type CtrlRecord = RecordOf<typeof CTRL_ATTRS>;
