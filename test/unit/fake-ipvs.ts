/** The simulated IPVS kernel for the daemon's unit tests (the same checks as the kernel's), counting table dumps and single reads. */
import { serviceKeyId, ZERO_STATS, type DesiredService, type IpvsOp, type ServiceKey, type ServiceState } from '../../src/ipvs/model';
import { SimulatedTable } from '../../src/ipvs/rules/simulate';

const withCounters = (s: DesiredService): ServiceState => ({
  ...s, stats: { ...ZERO_STATS },
  destinations: s.destinations.map((d) => ({ ...d, activeConns: 0, inactiveConns: 0, persistConns: 0, stats: { ...ZERO_STATS } })),
});

/** The simulated kernel, counting reads: the daemon's incremental path must not dump the table. */
export class FakeIpvs {
  readonly table = new SimulatedTable();
  dumps = 0;
  reads: string[] = [];
  applied: IpvsOp[] = [];
  refuse?: (op: IpvsOp) => boolean;

  async services(): Promise<ServiceState[]> {
    this.dumps++;
    return this.table.services().map(withCounters);
  }
  async service(k: ServiceKey): Promise<DesiredService | null> {
    this.reads.push(serviceKeyId(k));
    const s = this.table.service(k);
    return s ? withCounters(s) : null;
  }
  async timeouts() {
    return { tcp: 900, tcpFin: 120, udp: 300 };
  }
  async daemons() {
    return [];
  }
  async apply(ops: readonly IpvsOp[], opts: { stopOnError?: boolean } = {}) {
    const results = [];
    let failed = 0;
    let firstError;
    for (const op of ops) {
      if (failed && opts.stopOnError) {
        results.push({ op, status: 'skipped' as const });
        continue;
      }
      try {
        if (this.refuse?.(op)) throw Object.assign(new Error('Invalid argument'), { errno: 22 });
        this.table.apply(op);
        this.applied.push(op);
        results.push({ op, status: 'ok' as const });
      } catch (e) {
        failed++;
        firstError ??= e;
        results.push({ op, status: 'failed' as const, error: e });
      }
    }
    return { ok: failed === 0, results, applied: results.filter((r) => r.status === 'ok').length, failed, unknown: 0, skipped: 0, firstError, batches: 1 };
  }
  close(): void {}
}


/** A service with no flags, round robin, no destinations. */
export function plainService(address: string, port = 80): DesiredService {
  return {
    key: { kind: 'addr', family: 'inet', protocol: 'tcp', address, port }, scheduler: 'rr', flags: { persistent: false, onePacket: false, sched1: false, sched2: false, sched3: false },
    persistenceTimeout: 0, netmask: 0xffffffff, pe: '', destinations: [],
  };
}
