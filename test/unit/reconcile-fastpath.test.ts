/**
 * reconcile() takes a string-free path when both tables name the same services in the same order; it must
 * give exactly what the general comparison gives (reconcileByKey, the definition), also for tables with
 * a real server or a service named twice, shared objects, and every kind of small edit.
 */
import { reconcile, reconcileByKey } from '../../src/ipvs/reconcile';
import {
  type Destination,
  type DesiredService,
  type IpvsOp,
  NO_SERVICE_FLAGS,
  NO_TUNNEL_FLAGS,
  serviceKeyId,
} from '../../src/ipvs/model';

function outcome(f: () => IpvsOp[]): string {
  try {
    return JSON.stringify(f());
  } catch (e) {
    return `throws ${(e as Error).message}`;
  }
}

let seed = 99;
const rnd = (n: number): number => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
};

function dest(i: number): Destination {
  return {
    family: 'inet',
    address: `172.16.${rnd(3)}.${i % 7}`,
    port: 8080 + rnd(2),
    forward: 'masq',
    weight: rnd(3),
    upperThreshold: 0,
    lowerThreshold: 0,
    tunnelType: 'ipip',
    tunnelPort: 0,
    tunnelFlags: { ...NO_TUNNEL_FLAGS },
  };
}

function table(n: number): DesiredService[] {
  const withTwins = (ds: Destination[]): Destination[] =>
    ds.length > 0 && rnd(6) === 0 ? [...ds, { ...ds[0], weight: ds[0].weight + 1 + rnd(2) }] : ds;
  return Array.from({ length: n }, (_, i) => ({
    key: i % 9 === 8 ? { kind: 'fwmark' as const, family: 'inet' as const, fwmark: i } : { kind: 'addr' as const, family: 'inet' as const, protocol: 'tcp' as const, address: `10.0.${i >> 8}.${i & 255}`, port: 80 },
    scheduler: 'wlc',
    flags: { ...NO_SERVICE_FLAGS },
    persistenceTimeout: 0,
    netmask: 0xffffffff,
    pe: '',
    destinations: withTwins(Array.from({ length: rnd(5) }, (_, j) => dest(j))),
  }));
}

describe('reconcile on aligned tables equals the general comparison', () => {
  it('random tables and edits, duplicates included', () => {
    let fast = 0;
    let twinsWithEdits = 0; // a table with a real server twice, in different settings: not a no-op
    for (let round = 0; round < 400; round++) {
      const current = table(1 + rnd(12));
      const desired = current.map((s) => {
        switch (rnd(10)) {
          case 0:
            return { ...s, scheduler: 'rr' };
          case 1:
            return { ...s, destinations: s.destinations.map((d) => ({ ...d, weight: d.weight + rnd(2) })) };
          case 2:
            return { ...s, destinations: [...s.destinations].reverse() };
          case 3:
            return { ...s, destinations: s.destinations.slice(1) };
          case 4:
            return { ...s, destinations: [...s.destinations, dest(rnd(9))] };
          case 5:
            return { ...s, key: { ...s.key } };
          default:
            return s;
        }
      });
      if (rnd(15) === 0 && desired.length > 1) desired[desired.length - 1] = { ...desired[desired.length - 1], key: desired[0].key };
      if (rnd(15) === 0 && desired.length > 1) desired.reverse();
      const aligned = current.length === desired.length && current.every((s, i) => serviceKeyId(s.key) === serviceKeyId(desired[i].key));
      if (aligned) fast++;
      expect(outcome(() => reconcile(current, desired))).toBe(outcome(() => reconcileByKey(current, desired)));
      const self = outcome(() => reconcileByKey(current, current));
      if (self !== '[]') twinsWithEdits++;
      expect(outcome(() => reconcile(current, current))).toBe(self);
    }
    expect(fast).toBeGreaterThan(200);
    expect(twinsWithEdits).toBeGreaterThan(5);
  });
});
