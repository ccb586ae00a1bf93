/**
 * Every metric the daemon exports, defined once as data: name, type, help and label names. The table
 * metrics follow node_exporter's ipvs collector (connections_total, incoming_/outgoing_packets_total,
 * incoming_/outgoing_bytes_total, backend_connections_active/inactive, backend_weight and its labels
 * local_address, local_port, remote_address, remote_port, proto, local_mark), under our own prefix, per
 * virtual service instead of one node-wide sum, plus a `family` label (a fwmark service exists once per
 * family) and the real servers' own counters. The rest is the daemon's: changes, the data path, health.
 */
export const PREFIX = 'ipvs_bpf_';

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricDef {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly labels: readonly string[];
}

/** Labels of a virtual service (node_exporter's, minus the real server's, plus family). */
export const SERVICE_LABELS = ['local_address', 'local_port', 'proto', 'local_mark', 'family'] as const;
/** Labels of a real server within its service. */
export const BACKEND_LABELS = ['local_address', 'local_port', 'remote_address', 'remote_port', 'proto', 'local_mark', 'family'] as const;

const def = (name: string, type: MetricType, help: string, labels: readonly string[] = []): MetricDef =>
  Object.freeze({ name: PREFIX + name, type, help, labels });

/** From one IPVS dump (the kernel's counters, exactly as `ipvsadm -Ln --stats --exact` shows them). */
export const TABLE = {
  services: def('services', 'gauge', 'Virtual services in the IPVS table.'),
  backends: def('backends', 'gauge', 'Real servers in the IPVS table (all services).'),
  connections: def('connections_total', 'counter', 'Connections scheduled by the virtual service.', SERVICE_LABELS),
  inPackets: def('incoming_packets_total', 'counter', 'Packets the virtual service received.', SERVICE_LABELS),
  outPackets: def('outgoing_packets_total', 'counter', 'Packets the virtual service sent.', SERVICE_LABELS),
  inBytes: def('incoming_bytes_total', 'counter', 'Bytes the virtual service received.', SERVICE_LABELS),
  outBytes: def('outgoing_bytes_total', 'counter', 'Bytes the virtual service sent.', SERVICE_LABELS),
  active: def('backend_connections_active', 'gauge', 'Active connections (TCP ESTABLISHED) of the real server.', BACKEND_LABELS),
  inactive: def('backend_connections_inactive', 'gauge', 'Inactive connections (other states) of the real server.', BACKEND_LABELS),
  weight: def('backend_weight', 'gauge', 'Weight of the real server (0: no new connections).', BACKEND_LABELS),
  backendConnections: def('backend_connections_total', 'counter', 'Connections scheduled to the real server.', BACKEND_LABELS),
  backendInPackets: def('backend_incoming_packets_total', 'counter', 'Packets towards the real server.', BACKEND_LABELS),
  backendOutPackets: def('backend_outgoing_packets_total', 'counter', 'Packets from the real server.', BACKEND_LABELS),
  backendInBytes: def('backend_incoming_bytes_total', 'counter', 'Bytes towards the real server.', BACKEND_LABELS),
  backendOutBytes: def('backend_outgoing_bytes_total', 'counter', 'Bytes from the real server.', BACKEND_LABELS),
} as const;

export const CHANGES = {
  reconcileDuration: def('reconcile_duration_seconds', 'histogram',
    'Time to bring IPVS to the wanted table (read, diff, apply all or nothing), by trigger.', ['trigger']),
  reconcileFailures: def('reconcile_failures_total', 'counter', 'Changes refused or rolled back, by trigger; nothing was changed.', ['trigger']),
  reconcileOps: def('reconcile_operations_total', 'counter', 'IPVS operations applied, by kind (add-service, edit-dest, ...).', ['op']),
  reloadDuration: def('reload_duration_seconds', 'histogram', 'Time of a reload (configuration, rule files, reconcile), refused ones included.'),
  reloadFailures: def('reload_failures_total', 'counter', 'Reloads refused (nothing changed).'),
  lastReloadSuccess: def('last_reload_success', 'gauge', '1 when the last reload (or the start) applied, 0 when it was refused.'),
  lastReloadTimestamp: def('last_reload_timestamp_seconds', 'gauge', 'Wall clock of the last reload attempt (or the start).'),
} as const;

export const DATAPATH = {
  info: def('info', 'gauge', 'Always 1: the version and the data path mode that runs.', ['version', 'mode', 'configured_mode']),
  events: def('datapath_events_total', 'counter',
    'Packets the BPF programs counted, by counter (xdp_fwd_hit, xdp_reply_hit, xdp_miss, tc_snat_hit, ...; bpf mode).', ['counter']),
  kernelEvents: def('kernel_events_total', 'counter',
    'Counters of the patched IPVS (/proc/net/ip_vs_bpf: fallbacks, map_full, ports_exhausted, inserts, ...; bpf mode).', ['counter']),
  kernelConnections: def('kernel_connections', 'gauge', 'Connections that own conntrack map entries now (patched IPVS; bpf mode).'),
  mapEntries: def('conntrack_map_entries', 'gauge', 'Entries in the conntrack map (three per BPF-path connection; bpf mode).'),
  mapCapacity: def('conntrack_map_capacity', 'gauge', 'Capacity of the conntrack map in entries (mapEntries; bpf mode).'),
  dumpDuration: def('ipvs_dump_duration_seconds', 'gauge', 'Time of the last IPVS table dump a scrape made.'),
  dumpFailures: def('ipvs_dump_failures_total', 'counter', 'IPVS table dumps for a scrape that failed.'),
} as const;

export const HEALTH = {
  up: def('healthcheck_up', 'gauge', 'Health of the real server by its checker: 1 passing, 0 failing.', [...BACKEND_LABELS, 'checker']),
  transitions: def('healthcheck_transitions_total', 'counter',
    'Health changes of the real server, by the state it went to (up or down).', [...BACKEND_LABELS, 'checker', 'to']),
} as const;

/** Every metric of ours (prom-client's process_* and nodejs_* come on top). */
export const ALL_METRICS: readonly MetricDef[] = [TABLE, CHANGES, DATAPATH, HEALTH].flatMap((g) => Object.values(g));
