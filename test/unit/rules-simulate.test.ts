/**
 * SimulatedTable (O(1) per op, used by replayRules and rollbackOps) against applyOp (the pure, copying
 * definition): same table after every op, same refusals with the same texts, on every fixture and on
 * random op sequences full of refusals.
 */
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import {
  applyOp,
  commandToOp,
  createTextResolver,
  KernelStateError,
  parseRules,
  type SimulateOptions,
  toDesired,
} from '../../src/ipvs/rules';
import { SimulatedTable } from '../../src/ipvs/rules/simulate';
import type { Destination, DesiredService, IpvsOp, Service, ServiceKey } from '../../src/ipvs/model';
import { NO_SERVICE_FLAGS, NO_TUNNEL_FLAGS } from '../../src/ipvs/model';

const FIXTURES = path.join(__dirname, '../fixtures/rules');
const resolver = createTextResolver(
  readFileSync(path.join(FIXTURES, 'etc-hosts'), 'utf8'),
  readFileSync(path.join(FIXTURES, 'etc-services'), 'utf8'),
);

type Outcome = { ok: true } | { ok: false; errno: string; message: string };

/** Runs ops through both; expects the same outcome for each op and the same table after each. */
function compare(initial: readonly DesiredService[], ops: readonly IpvsOp[], opts: SimulateOptions = {}): number {
  let pure = toDesired(initial);
  const table = new SimulatedTable(initial, opts);
  let refused = 0;
  const run = (f: () => void): Outcome => {
    try {
      f();
      return { ok: true };
    } catch (e) {
      if (!(e instanceof KernelStateError)) throw e;
      return { ok: false, errno: e.errno, message: e.message };
    }
  };
  for (const op of ops) {
    const a = run(() => {
      pure = applyOp(pure, op, opts);
    });
    const b = run(() => table.apply(op));
    expect(b).toEqual(a);
    if (!a.ok) refused++;
    expect(JSON.stringify(table.services())).toEqual(JSON.stringify(pure));
  }
  return refused;
}

describe('SimulatedTable equals applyOp', () => {
  const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.rules'));
  it.each(files)('%s, op by op', (file) => {
    const text = readFileSync(path.join(FIXTURES, file), 'utf8');
    const ops = parseRules(text, file, { resolver }).commands.flatMap((l) => {
      const op = commandToOp(l.command);
      return op ? [op] : [];
    });
    expect(ops.length).toBeGreaterThan(0);
    compare([], ops);
    // Twice over the table the file makes: every add is refused, every edit and delete applies.
    let start: DesiredService[] = [];
    for (const op of ops) {
      try {
        start = applyOp(start, op);
      } catch {
        // refused by the kernel in the fixture as well
      }
    }
    compare(start, ops);
    compare(start, ops, { validate: false });
  });

  it('random op sequences with refusals of every kind', () => {
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const key = (): ServiceKey =>
      rnd(5) === 0
        ? { kind: 'fwmark', family: rnd(2) ? 'inet' : 'inet6', fwmark: 1 + rnd(3) }
        : rnd(4) === 0
          ? { kind: 'addr', family: 'inet6', protocol: 'tcp', address: `2001:db8::${1 + rnd(3)}`, port: 80 }
          : { kind: 'addr', family: 'inet', protocol: rnd(2) ? 'tcp' : 'udp', address: `10.0.0.${1 + rnd(4)}`, port: 80 + rnd(2) };
    const service = (): Service => ({
      key: key(),
      scheduler: ['wlc', 'rr', 'nope', 'sh'][rnd(4)],
      flags: { ...NO_SERVICE_FLAGS, persistent: rnd(3) === 0 },
      persistenceTimeout: 0,
      netmask: rnd(8) === 0 ? 0 : 128,
      pe: rnd(10) === 0 ? 'bogus' : '',
    });
    const dest = (): Destination => {
      const v6 = rnd(4) === 0;
      const odd = rnd(12);
      return {
        family: v6 ? 'inet6' : 'inet',
        address: v6 ? `2001:db8:1::${1 + rnd(4)}` : odd === 0 ? '224.0.0.1' : odd === 1 ? '0.0.0.0' : `172.16.0.${1 + rnd(5)}`,
        port: 8080 + rnd(2),
        forward: (['masq', 'route', 'tunnel'] as const)[rnd(3)],
        weight: rnd(10) === 0 ? -1 : rnd(5),
        upperThreshold: rnd(3) === 0 ? 5 : 0,
        lowerThreshold: rnd(4) === 0 ? 3 : 0,
        tunnelType: (['ipip', 'gue', 'gre'] as const)[rnd(3)],
        tunnelPort: rnd(2) ? 0 : 6080,
        tunnelFlags: { ...NO_TUNNEL_FLAGS },
      };
    };
    const op = (): IpvsOp => {
      switch (rnd(12)) {
        case 0:
        case 1:
          return { op: 'add-service', service: service() };
        case 2:
          return { op: 'edit-service', service: service() };
        case 3:
          return { op: 'delete-service', key: key() };
        case 4:
        case 5:
        case 6:
          return { op: 'add-dest', service: key(), dest: dest() };
        case 7:
          return { op: 'edit-dest', service: key(), dest: dest() };
        case 8: {
          const d = dest();
          return { op: 'delete-dest', service: key(), dest: { family: d.family, address: d.address, port: d.port } };
        }
        case 9:
          return rnd(20) === 0 ? { op: 'flush' } : { op: 'zero', service: key() };
        case 10:
          return { op: 'zero' };
        default:
          return { op: 'set-timeouts', timeouts: { tcp: 1, tcpFin: 2, udp: 3 } };
      }
    };
    let refused = 0;
    for (let round = 0; round < 20; round++) {
      const ops = Array.from({ length: 300 }, op);
      refused += compare([], ops);
      refused += compare([], ops, { validate: false });
    }
    expect(refused).toBeGreaterThan(1000);
  });
});
