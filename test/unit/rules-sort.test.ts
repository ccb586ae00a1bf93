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

  // The fast path (IPv4 only, words within 2^31 of each other: a total order) must give the same permutation.
  const quad = (w: number): string => `${w >>> 24}.${(w >>> 16) & 255}.${(w >>> 8) & 255}.${w & 255}`;
  const v4Dest = (r: () => number, base: number, span: number): Destination => ({
    ...dest(r),
    family: 'inet',
    address: quad((base + (r() % span)) >>> 0),
    port: [80, 8080, 0][r() % 3],
  });

  it('sortDests on IPv4 lists within 2^31 (the keyed fast path), short and long, sorted or not', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const r = rng(seed * 31);
      const base = [0x0a000000, 0xac100000, 0, 0x7fffff00][seed % 4];
      const ds = Array.from({ length: [r() % 12, r() % 60, 10][seed % 3] }, () => v4Dest(r, base, [4, 300, 0x10000][seed % 3]));
      if (seed % 5 === 0) ds.sort((a, b) => compareDests(a, b));
      if (seed % 7 === 0) ds.sort((a, b) => compareDests(b, a)); // falling, as the kernel lists them (ties too)
      const got = sortDests(ds);
      const want = glibcQsort(ds, compareDests);
      got.forEach((d, i) => expect(d).toBe(want[i]));
      expect(got).not.toBe(ds);
    }
  });

  it('sortDests of a strictly falling list (the kernel lists real servers newest first) is its reverse', () => {
    const ds = [5, 4, 3, 2, 1].map((k) => ({ ...dest(rng(k)), family: 'inet' as const, address: quad(0x0a000000 + k), port: 80 }));
    expect(sortDests(ds)).toEqual([...ds].reverse());
    const ties = [...ds, { ...ds[4], weight: 99 }]; // 1 twice: not strictly falling, stable order for the tie
    const got = sortDests(ties);
    const want = glibcQsort(ties, compareDests);
    got.forEach((d, i) => expect(d).toBe(want[i]));
  });

  it('sortDests at the edge of the fast path: words 2^31 - 1 apart sort by value, 2^31 apart wrap as ipvsadm does', () => {
    const mk = (ws: number[]): Destination[] => ws.map((w) => ({ ...dest(rng(w + 1)), family: 'inet' as const, address: quad(w), port: 80 }));
    for (const ws of [
      [0x7fffffff, 0, 0x40000000],
      [0x80000000, 0, 0x40000000],
      [0xffffffff, 0x80000000, 0x7fffffff, 1],
      [0x80000001, 1, 0x80000000],
    ]) {
      const ds = mk(ws);
      const got = sortDests(ds);
      const want = glibcQsort(ds, compareDests);
      got.forEach((d, i) => expect(d).toBe(want[i]));
    }
  });

  it('sortServices on IPv4 address services within 2^31 (the keyed fast path), all protocols', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = rng(seed * 131);
      const ss: Service[] = Array.from({ length: [r() % 15, r() % 80][seed % 2] }, () => {
        const s = service(r);
        return {
          ...s,
          key: { kind: 'addr', family: 'inet', protocol: (['tcp', 'udp', 'sctp'] as const)[r() % 3], address: quad((0x0a000000 + (r() % 50)) >>> 0), port: [80, 443, 0][r() % 3] },
        };
      });
      const got = sortServices(ss);
      const want = glibcQsort(ss, compareServices);
      got.forEach((s, i) => expect(s).toBe(want[i]));
    }
  });

  it('non-canonical address text takes the general path', () => {
    const ds = ['010.0.0.1', '9.0.0.1', '10.0.0.1'].map((address, i) => ({ ...dest(rng(i + 9)), family: 'inet' as const, address, port: 80 }));
    const got = sortDests(ds);
    const want = glibcQsort(ds, compareDests);
    got.forEach((d, i) => expect(d).toBe(want[i]));
  });
});
