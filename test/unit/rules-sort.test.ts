/**
 * sortServices / sortDests compute each entry's comparator inputs once; their order must stay exactly the
 * one glibc's merge sort gives with libipvs's comparators (compareServices / compareDests), including the
 * wrap-around of the unsigned subtraction and mixed address families.
 */
import type { Destination, Family, Service, ServiceKey } from '../../src/ipvs/model';
import { NO_SERVICE_FLAGS, NO_TUNNEL_FLAGS } from '../../src/ipvs/model';
import { compareDests, compareServices, glibcQsort, sortDests, sortServices } from '../../src/ipvs/rules/sort';

/** A small deterministic PRNG (xorshift32), so failures reproduce. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function v4(r: () => number): string {
  const pick = r() % 4;
  // Few distinct values so that ties happen; high and low first octets so that the subtraction wraps.
  const first = [10, 200, 255, 1][pick];
  return `${first}.${r() % 3}.0.${r() % 4}`;
}

function v6(r: () => number): string {
  return ['::1', '2001:db8::1', 'fe80::2', 'ffff::', '2001:db8::1:0:0:1', '::ffff:10.0.0.1'][r() % 6];
}

function dest(r: () => number): Destination {
  const family: Family = r() % 3 === 0 ? 'inet6' : 'inet';
  return {
    family,
    address: family === 'inet' ? v4(r) : v6(r),
    port: [80, 8080, 0, 65535][r() % 4],
    forward: 'masq',
    weight: r() % 5,
    upperThreshold: 0,
    lowerThreshold: 0,
    tunnelType: 'ipip',
    tunnelPort: 0,
    tunnelFlags: { ...NO_TUNNEL_FLAGS },
  };
}

function service(r: () => number): Service {
  const family: Family = r() % 3 === 0 ? 'inet6' : 'inet';
  const key: ServiceKey =
    r() % 4 === 0
      ? { kind: 'fwmark', family, fwmark: [1, 2, 0x80000001, 0xffffffff][r() % 4] }
      : { kind: 'addr', family, protocol: (['tcp', 'udp', 'sctp'] as const)[r() % 3], address: family === 'inet' ? v4(r) : v6(r), port: [80, 443, 0][r() % 3] };
  return { key, scheduler: 'wlc', flags: { ...NO_SERVICE_FLAGS }, persistenceTimeout: r() % 7, netmask: 0xffffffff, pe: '' };
}

describe('sort order with precomputed keys', () => {
  it('sortDests gives the same permutation as glibcQsort(compareDests)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = rng(seed);
      const ds = Array.from({ length: r() % 40 }, () => dest(r));
      const got = sortDests(ds);
      const want = glibcQsort(ds, compareDests);
      expect(got.length).toBe(want.length);
      got.forEach((d, i) => expect(d).toBe(want[i]));
    }
  });

  it('sortServices gives the same permutation as glibcQsort(compareServices)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = rng(seed * 7919);
      const ss = Array.from({ length: r() % 40 }, () => service(r));
      const got = sortServices(ss);
      const want = glibcQsort(ss, compareServices);
      expect(got.length).toBe(want.length);
      got.forEach((s, i) => expect(s).toBe(want[i]));
    }
  });

  it('keeps the wrap-around order ipvsadm prints (200.0.0.1 before 10.0.0.1)', () => {
    const ds = [dest(rng(1)), dest(rng(2))].map((d, i) => ({ ...d, family: 'inet' as const, address: ['10.0.0.1', '200.0.0.1'][i], port: 80 }));
    expect(sortDests(ds).map((d) => d.address)).toEqual(['200.0.0.1', '10.0.0.1']);
  });
});
