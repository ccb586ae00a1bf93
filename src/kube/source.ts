/**
 * The kubernetes rule source: kube-proxy's ipvs-mode table, kept current from the apiserver.
 *
 * Three informers (Services and EndpointSlices with kube-proxy's label selector, and this Node by name)
 * feed per-Service translation (translate.ts). Each Service's result is kept; a Service or EndpointSlice
 * change recomputes that Service only and reports to the daemon only the virtual services whose desired
 * state changed (so an endpoint change costs its destinations, not a resync). A Node change (zone label,
 * addresses) or a change of the local addresses (polled every ipvs.syncPeriod) recomputes every Service.
 *
 * Graceful termination as kube-proxy does it, bounded: a TCP destination that leaves a virtual service that
 * stays is kept at weight 0 (new connections go elsewhere, live ones go on) until the kernel shows it has no
 * connection left (checked every drain.checkMs) or drain.maxSeconds have passed (kube-proxy has no bound); an
 * endpoint that comes back is set to weight 1 again. UDP and SCTP destinations go at once, as do the
 * destinations of a virtual service that goes.
 *
 * Until all three have listed once, the source names no service and keeps every kernel service (nothing
 * is programmed from a partial view, and nothing is removed, as kube-proxy waits for its caches); then it
 * asks for one full reconcile. Afterwards kernel services nobody names are removed except those inside
 * ipvs.excludeCIDRs or of a family not proxied. Two Services claiming the same virtual service (say the
 * same externalIP and port): the one first in namespace/name order wins, the conflict is logged.
 */
import { destinationId, serviceKeyId, type DesiredService, type Destination, type Family, type ServiceKey, type Timeouts } from '../ipvs/model';
import type { DesiredTable, Source, SourceChanged, SourceLog } from '../sources/source';
import type { ApiClient } from './client';
import { Informer, type InformerEvent } from './informer';
import type { KubeProxyConfig } from './proxy-config';
import {
  DUMMY_DEVICE, keepsService, nodeAddressing, nodeZone, primaryNodeIps, sliceServiceName, translateService, type LocalAddress, type ServiceResult,
  type TranslateContext,
} from './translate';
import { LABEL_HEADLESS, LABEL_SERVICE_PROXY_NAME, type EndpointSlice, type Node, type Service } from './types';

export interface KubeSourceOptions {
  proxy: KubeProxyConfig;
  nodeName: string;
  serviceProxyName: string;
  /** The families this node proxies. */
  families: readonly Family[];
  client: ApiClient;
  /** The node's interface addresses (kube-ipvs0's included). */
  localAddresses: () => Promise<LocalAddress[]>;
  log: SourceLog;
  /** How long read() waits for the first complete list before answering "nothing yet" (default 10 s). */
  syncWaitMs?: number;
  /** Watch timeouts and backoff (tests shorten them). */
  timeoutSeconds?: [number, number];
  backoff?: { initialMs: number; maxMs: number };
  idleMs?: number;
  /** Graceful termination of TCP destinations (off when absent: removed destinations go at once). */
  drain?: {
    /** Connections (active + inactive) per destinationId of a virtual service, as the kernel counts them; null when it has none. */
    connections: (key: ServiceKey) => Promise<ReadonlyMap<string, number> | null>;
    maxSeconds: number;
    /** Default 5000. */
    checkMs?: number;
  };
  /** Makes kube-ipvs0 hold these addresses (called when the set changes, one call at a time; retried at each poll after a failure). */
  applyAddresses?: (want: readonly string[]) => Promise<{ added: string[]; removed: string[] }>;
}

/** kube-proxy's informer label selector. */
export function labelSelector(serviceProxyName: string): string {
  return `${serviceProxyName ? `${LABEL_SERVICE_PROXY_NAME}=${serviceProxyName}` : `!${LABEL_SERVICE_PROXY_NAME}`},!${LABEL_HEADLESS}`;
}

export class KubernetesSource implements Source {
  readonly name = 'kubernetes';
  private readonly services: Informer<Service>;
  private readonly slices: Informer<EndpointSlice>;
  private readonly node: Informer<Node>;
  /** namespace/name of a Service -> its EndpointSlices by slice key. */
  private readonly slicesOf = new Map<string, Map<string, EndpointSlice>>();
  private readonly results = new Map<string, ServiceResult>();
  /** serviceKeyId -> the Services naming it (namespace/name -> their version). */
  private readonly claims = new Map<string, Map<string, DesiredService>>();
  private readonly table = new Map<string, DesiredService>();
  /** serviceKeyId -> destinationId -> a TCP destination draining at weight 0, and since when (ms). */
  private readonly draining = new Map<string, Map<string, { dest: Destination; since: number }>>();
  /** serviceKeyId -> the service as last wanted (without draining destinations). */
  private readonly wanted = new Map<string, DesiredService>();
  private drainTimer: NodeJS.Timeout | undefined;
  private ctx: TranslateContext;
  private addressesText = '';
  private started = false;
  private ready = false;
  private changed: SourceChanged | undefined;
  private missedFull = false;
  private reading = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private readonly timeouts: Timeouts | undefined;
  private readonly keepsKernel: (key: ServiceKey) => boolean;
  private closed = false;

  constructor(private readonly opts: KubeSourceOptions) {
    const sel = labelSelector(opts.serviceProxyName);
    const common = {
      ...(opts.timeoutSeconds ? { timeoutSeconds: opts.timeoutSeconds } : {}),
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      ...(opts.idleMs ? { idleMs: opts.idleMs } : {}),
      onError: (m: string) => opts.log.warning(`kubernetes: ${m}`),
    };
    this.services = new Informer<Service>(opts.client, { name: 'services', path: '/api/v1/services', query: { labelSelector: sel }, ...common });
    this.slices = new Informer<EndpointSlice>(opts.client, {
      name: 'endpointslices', path: '/apis/discovery.k8s.io/v1/endpointslices', query: { labelSelector: sel }, ...common,
    });
    this.node = new Informer<Node>(opts.client, { name: 'node', path: '/api/v1/nodes', query: { fieldSelector: `metadata.name=${opts.nodeName}` }, ...common });
    const ip = opts.proxy.ipvs;
    this.timeouts = ip.tcpTimeout || ip.tcpFinTimeout || ip.udpTimeout ? { tcp: ip.tcpTimeout, tcpFin: ip.tcpFinTimeout, udp: ip.udpTimeout } : undefined;
    this.keepsKernel = keepsService(ip.excludeCIDRs, opts.families);
    this.ctx = this.context([], undefined);
    this.services.onEvents((evs) => this.onServices(evs));
    this.slices.onEvents((evs) => this.onSlices(evs));
    this.node.onEvents(() => this.onNodeOrAddresses());
  }

  /** Starts the watches; waits up to syncWaitMs for the first complete view. */
  async read(): Promise<DesiredTable> {
    this.reading = true;
    try {
      return await this.readNow();
    } finally {
      this.reading = false;
    }
  }

  private async readNow(): Promise<DesiredTable> {
    if (!this.started) {
      this.started = true;
      await this.refreshAddresses();
      this.services.start();
      this.slices.start();
      this.node.start();
      void this.whenSynced().then(() => this.becomeReady());
      this.schedulePoll();
    }
    if (!this.ready) {
      const wait = this.opts.syncWaitMs ?? 10_000;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.whenSynced(), new Promise<void>((r) => (timer = setTimeout(r, wait)))]);
      clearTimeout(timer);
      if (this.services.synced && this.slices.synced && this.node.synced) this.becomeReady();
      // Ready now: this read answers with the whole table, no separate full sync needed.
      if (this.ready) this.missedFull = false;
      else {
        this.opts.log.warning(`kubernetes: no complete view from ${this.opts.client.conn.origin} yet (${this.waitingFor()}); `
          + 'IPVS services are left as they are until it comes');
      }
    }
    return this.current();
  }

  current(): DesiredTable {
    return { services: this.table, daemons: [], ignored: [], ...(this.ready && this.timeouts ? { timeouts: this.timeouts } : {}) };
  }

  subscribe(changed: SourceChanged): void {
    this.changed = changed;
    if (this.missedFull) {
      this.missedFull = false;
      setImmediate(() => changed());
    }
  }

  keeps(key: ServiceKey): boolean {
    return !this.ready || this.keepsKernel(key);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.drainTimer) clearTimeout(this.drainTimer);
    void this.services.stop();
    void this.slices.stop();
    void this.node.stop();
    this.opts.client.close();
  }

  /** Whether the first complete view has been programmed from. */
  get synced(): boolean {
    return this.ready;
  }

  /** The addresses kube-ipvs0 is to have (canonical text; /32 or /128 each). */
  dummyAddresses(): string[] {
    const s = new Set<string>();
    for (const r of this.results.values()) for (const a of r.bind) s.add(a);
    return [...s].sort();
  }

  /** Health-check node ports of ETP Local LoadBalancers, with their local ready endpoint counts. */
  healthChecks(): { service: string; port: number; localEndpoints: number }[] {
    return [...this.results].flatMap(([service, r]) => (r.healthCheck ? [{ service, ...r.healthCheck }] : []));
  }

  private whenSynced(): Promise<void> {
    return Promise.all([this.services.whenSynced(), this.slices.whenSynced(), this.node.whenSynced()]).then(() => undefined);
  }

  private waitingFor(): string {
    const parts = [['Services', this.services], ['EndpointSlices', this.slices], ['Node', this.node]] as const;
    return parts.filter(([, i]) => !i.synced).map(([n, i]) => `${n}${i.lastError ? `: ${i.lastError}` : ''}`).join('; ');
  }

  private becomeReady(): void {
    if (this.ready || this.closed) return;
    this.ctx = this.contextNow();
    for (const key of this.services.store.keys()) this.recompute(key);
    this.ready = true;
    this.bindAddresses();
    this.opts.log.info(`kubernetes: in sync with ${this.opts.client.conn.origin}: ${this.services.store.size} Services, `
      + `${this.slices.store.size} EndpointSlices, ${this.table.size} virtual services`);
    if (this.reading) return; // read() returns the table
    if (this.changed) this.changed();
    else this.missedFull = true;
  }

  private report(ids: Map<string, ServiceKey>): void {
    if (!this.ready) return;
    this.bindAddresses();
    if (ids.size === 0) return;
    this.changed?.([...ids.values()]);
  }

  private appliedAddresses: string | undefined;
  private applying: Promise<void> = Promise.resolve();

  /** Brings kube-ipvs0 to the addresses the Services want, when they differ from what was applied. */
  private bindAddresses(): void {
    const apply = this.opts.applyAddresses;
    if (!apply || this.closed) return;
    this.applying = this.applying.then(async () => {
      const want = this.dummyAddresses();
      const text = want.join(',');
      if (text === this.appliedAddresses || this.closed) return;
      try {
        const r = await apply(want);
        this.appliedAddresses = text;
        if (r.added.length || r.removed.length) {
          this.opts.log.info(`kubernetes: ${DUMMY_DEVICE}: ${r.added.length} addresses added, ${r.removed.length} removed (${want.length} bound)`);
        }
      } catch (e) {
        this.appliedAddresses = undefined;
        this.opts.log.error(`kubernetes: ${DUMMY_DEVICE}: ${e instanceof Error ? e.message : String(e)} (retried in ${this.opts.proxy.ipvs.syncPeriod} s)`);
      }
    });
  }

  private onServices(events: InformerEvent<Service>[]): void {
    if (!this.ready) return; // the first full computation reads the stores
    const changed = new Map<string, ServiceKey>();
    for (const e of events) this.recompute(e.key, changed);
    this.report(changed);
  }

  private onSlices(events: InformerEvent<EndpointSlice>[]): void {
    const touched = new Set<string>();
    for (const e of events) {
      const before = e.old ? sliceServiceName(e.old) : undefined;
      const now = e.type === 'delete' ? undefined : sliceServiceName(e.obj);
      if (before && before !== now) {
        this.slicesOf.get(before)?.delete(e.key);
        touched.add(before);
      }
      if (now) {
        let m = this.slicesOf.get(now);
        if (!m) this.slicesOf.set(now, (m = new Map()));
        m.set(e.key, e.obj);
        touched.add(now);
      } else if (before) this.slicesOf.get(before)?.delete(e.key);
    }
    if (!this.ready) return;
    const changed = new Map<string, ServiceKey>();
    for (const svc of touched) this.recompute(svc, changed);
    this.report(changed);
  }

  private onNodeOrAddresses(): void {
    if (!this.ready) return;
    const next = this.contextNow();
    if (JSON.stringify(contextSignature(next)) === JSON.stringify(contextSignature(this.ctx))) return;
    this.ctx = next;
    const changed = new Map<string, ServiceKey>();
    for (const key of new Set([...this.services.store.keys(), ...this.results.keys()])) this.recompute(key, changed);
    this.opts.log.info(`kubernetes: node addresses or labels changed; ${changed.size} virtual services change`);
    this.report(changed);
  }

  private schedulePoll(): void {
    if (this.closed) return;
    this.pollTimer = setTimeout(() => {
      void this.refreshAddresses().then((changed) => {
        if (changed) this.onNodeOrAddresses();
        if (this.ready && this.appliedAddresses === undefined) this.bindAddresses();
        this.schedulePoll();
      });
    }, Math.max(1, this.opts.proxy.ipvs.syncPeriod) * 1000);
    this.pollTimer.unref();
  }

  private localAddresses: LocalAddress[] = [];

  /** Reads the local addresses; true when they changed. */
  private async refreshAddresses(): Promise<boolean> {
    try {
      const a = await this.opts.localAddresses();
      const text = JSON.stringify([...a].sort((x, y) => (x.address < y.address ? -1 : x.address > y.address ? 1 : 0)));
      if (text === this.addressesText) return false;
      this.addressesText = text;
      this.localAddresses = a;
      return true;
    } catch (e) {
      this.opts.log.warning(`kubernetes: cannot read the local addresses: ${e instanceof Error ? e.message : String(e)}`);
      return false;
    }
  }

  private contextNow(): TranslateContext {
    return this.context(this.localAddresses, this.node.store.get(this.opts.nodeName));
  }

  private context(local: readonly LocalAddress[], node: Node | undefined): TranslateContext {
    const p = this.opts.proxy;
    const { nodeAddresses, nodePortIPs } = nodeAddressing(local, p.nodePortAddresses, primaryNodeIps(node, p.bindAddress));
    return {
      nodeName: this.opts.nodeName,
      zone: nodeZone(node),
      families: this.opts.families,
      scheduler: p.ipvs.scheduler,
      nodeAddresses,
      nodePortIPs,
      preferSameNode: p.featureGates.PreferSameTrafficDistribution ?? true,
      serviceProxyName: this.opts.serviceProxyName,
    };
  }

  /** Translates one Service again and updates the merged table; adds the ids that changed to `changed`. */
  private recompute(svcKey: string, changed?: Map<string, ServiceKey>): void {
    const svc = this.services.store.get(svcKey);
    const slices = this.slicesOf.get(svcKey);
    const next = svc ? translateService(svc, slices ? [...slices.values()] : [], this.ctx) : undefined;
    const prev = this.results.get(svcKey);
    if (next && (next.services.length > 0 || next.healthCheck || next.bind.length > 0)) this.results.set(svcKey, next);
    else this.results.delete(svcKey);
    const nextIds = new Set((next?.services ?? []).map((s) => serviceKeyId(s.key)));
    for (const s of prev?.services ?? []) {
      const id = serviceKeyId(s.key);
      if (nextIds.has(id)) continue;
      const c = this.claims.get(id);
      c?.delete(svcKey);
      if (!c || c.size === 0) {
        this.claims.delete(id);
        this.table.delete(id);
        this.draining.delete(id);
        this.wanted.delete(id);
        changed?.set(id, s.key);
      } else this.settle(id, c, changed);
    }
    for (const s of next?.services ?? []) {
      const id = serviceKeyId(s.key);
      let c = this.claims.get(id);
      if (!c) this.claims.set(id, (c = new Map()));
      c.set(svcKey, s);
      this.settle(id, c, changed);
    }
  }

  /** The winner among a virtual service's claimants goes into the table. */
  private settle(id: string, claims: Map<string, DesiredService>, changed?: Map<string, ServiceKey>): void {
    const owner = [...claims.keys()].sort()[0]!;
    const want = claims.get(owner)!;
    if (claims.size > 1) {
      this.opts.log.warning(`kubernetes: virtual service ${id} is claimed by Services ${[...claims.keys()].sort().join(', ')}; ${owner} has it`);
    }
    this.publish(id, want, changed);
  }

  /** Puts the wanted service into the table, with the TCP destinations it dropped draining at weight 0. */
  private publish(id: string, want: DesiredService, changed?: Map<string, ServiceKey>): void {
    const have = this.table.get(id);
    const before = this.wanted.get(id);
    this.wanted.set(id, want);
    const wantIds = new Set(want.destinations.map((d) => destinationId(d)));
    let drain = this.draining.get(id);
    if (this.opts.drain && before && want.key.kind === 'addr' && want.key.protocol === 'tcp') {
      for (const d of before.destinations) {
        const did = destinationId(d);
        if (wantIds.has(did) || drain?.has(did)) continue;
        if (!drain) this.draining.set(id, (drain = new Map()));
        drain.set(did, { dest: { ...d, weight: 0 }, since: Date.now() });
      }
    }
    if (drain) {
      for (const did of [...drain.keys()]) if (wantIds.has(did)) drain.delete(did);
      if (drain.size === 0) this.draining.delete(id);
      else this.scheduleDrainCheck();
    }
    const published = drain?.size ? { ...want, destinations: [...want.destinations, ...[...drain.values()].map((x) => x.dest)] } : want;
    if (have && JSON.stringify(have) === JSON.stringify(published)) return;
    this.table.set(id, published);
    changed?.set(id, want.key);
  }

  private scheduleDrainCheck(): void {
    const drain = this.opts.drain;
    if (!drain || this.drainTimer || this.closed) return;
    this.drainTimer = setTimeout(() => {
      this.drainTimer = undefined;
      void this.checkDraining().finally(() => {
        if (this.draining.size > 0) this.scheduleDrainCheck();
      });
    }, drain.checkMs ?? 5000);
    this.drainTimer.unref();
  }

  /** Ends the drains whose destination has no connection left, or that took longer than allowed. */
  private async checkDraining(): Promise<void> {
    const drain = this.opts.drain!;
    const changed = new Map<string, ServiceKey>();
    for (const [id, dests] of [...this.draining]) {
      const svc = this.table.get(id);
      if (!svc) continue;
      let conns: ReadonlyMap<string, number> | null;
      try {
        conns = await drain.connections(svc.key);
      } catch (e) {
        this.opts.log.warning(`kubernetes: cannot read the connections of ${id}: ${e instanceof Error ? e.message : String(e)}`);
        continue;
      }
      const now = Date.now();
      let ended = 0;
      for (const [did, d] of [...dests]) {
        const n = conns?.get(did) ?? 0;
        const overdue = now - d.since > drain.maxSeconds * 1000;
        if (n > 0 && !overdue) continue;
        dests.delete(did);
        ended++;
        if (n > 0) this.opts.log.warning(`kubernetes: ${id}: ${did} still had ${n} connections after ${drain.maxSeconds} s of draining; removed`);
      }
      if (ended === 0) continue;
      if (dests.size === 0) this.draining.delete(id);
      const want = this.claims.get(id);
      const owner = want && [...want.keys()].sort()[0];
      if (owner) this.publish(id, want.get(owner)!, changed);
    }
    this.report(changed);
  }
}

function contextSignature(c: TranslateContext): unknown {
  return [c.zone, [...c.nodeAddresses].sort(), c.nodePortIPs];
}

