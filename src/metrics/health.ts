/**
 * Health-check state as metrics. A health checker (keepalived's checkers, kube mode's endpoints) tells the
 * reporter each result that changes a real server's state; the first report of a real server sets its state
 * without counting a transition (the daemon just started checking it).
 *
 *   metrics.health.transition({ service, server, checker: 'TCP_CHECK', up: false });
 *   metrics.health.forget(service, server);   // the real server is no longer checked
 *   metrics.health.forget(service);           // nor any of the service's
 *
 * The same reporter without metrics (metrics.listen off) is NO_HEALTH_METRICS: callers need no `if`.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { DestinationRef, ServiceKey } from '../ipvs/model';
import { HEALTH } from './names';
import { backendLabels, type Labels } from './table';

export interface HealthTransition {
  service: ServiceKey;
  server: Pick<DestinationRef, 'address' | 'port'>;
  /** The checker's name as the configuration spells it: TCP_CHECK, HTTP_GET, MISC_CHECK, ... */
  checker: string;
  up: boolean;
}

export interface HealthReporter {
  /** A checker's verdict on one real server; repeating the current state changes nothing. */
  transition(t: HealthTransition): void;
  /** Drops the state of one real server (or of every real server of the service). */
  forget(service: ServiceKey, server?: Pick<DestinationRef, 'address' | 'port'>): void;
}

export const NO_HEALTH_METRICS: HealthReporter = { transition: () => undefined, forget: () => undefined };

const keyOf = (l: Labels): string => `${l.proto}|${l.family}|${l.local_address}|${l.local_port}|${l.local_mark}`;

export class HealthMetrics implements HealthReporter {
  private readonly up: Gauge<string>;
  private readonly transitions: Counter<string>;
  /** service key -> real server -> checker -> (labels, up) */
  private readonly state = new Map<string, Map<string, Map<string, { labels: Labels; up: boolean }>>>();

  constructor(registry: Registry) {
    this.up = new Gauge({ name: HEALTH.up.name, help: HEALTH.up.help, labelNames: [...HEALTH.up.labels], registers: [registry] });
    this.transitions = new Counter({
      name: HEALTH.transitions.name, help: HEALTH.transitions.help, labelNames: [...HEALTH.transitions.labels], registers: [registry],
    });
  }

  transition(t: HealthTransition): void {
    const labels = { ...backendLabels(t.service, t.server), checker: t.checker };
    const svc = keyOf(labels);
    const rs = `${t.server.address}|${t.server.port}`;
    const servers = this.state.get(svc) ?? new Map<string, Map<string, { labels: Labels; up: boolean }>>();
    this.state.set(svc, servers);
    const checkers = servers.get(rs) ?? new Map<string, { labels: Labels; up: boolean }>();
    servers.set(rs, checkers);
    const before = checkers.get(t.checker);
    if (before?.up === t.up) return;
    checkers.set(t.checker, { labels, up: t.up });
    this.up.set(labels, t.up ? 1 : 0);
    if (before) this.transitions.inc({ ...labels, to: t.up ? 'up' : 'down' });
  }

  forget(service: ServiceKey, server?: Pick<DestinationRef, 'address' | 'port'>): void {
    const svc = keyOf(backendLabels(service, { address: '', port: 0 }));
    const servers = this.state.get(svc);
    if (!servers) return;
    const drop = server ? [`${server.address}|${server.port}`] : [...servers.keys()];
    for (const rs of drop) {
      for (const { labels } of servers.get(rs)?.values() ?? []) {
        this.up.remove(labels);
        for (const to of ['up', 'down']) this.transitions.remove({ ...labels, to });
      }
      servers.delete(rs);
    }
    if (servers.size === 0) this.state.delete(svc);
  }
}
