/**
 * The order ipvsadm lists services and real servers in (unless --nosort): libipvs's
 * ipvs_cmp_services / ipvs_cmp_dests run by glibc's qsort, which is a merge sort. The comparators
 * subtract unsigned 32-bit values into an int, so they wrap (200.0.0.1 sorts before 10.0.0.1) and
 * are not even transitive; reproducing both the arithmetic and the merge order keeps our output
 * byte-identical with ipvsadm's.
 */
import type { Destination, Family, Service } from '../model';
import { addressWords } from './inet';

const AF_NUMBER: Record<Family, number> = { inet: 2, inet6: 10 };
const PROTO_NUMBER = { tcp: 6, udp: 17, sctp: 132 } as const;

/** (int)(a - b) for unsigned 32-bit a, b. */
function wrapSub(a: number, b: number): number {
  return ((a >>> 0) - (b >>> 0)) | 0;
}

function compareWords(firstFamily: Family, a: readonly number[], b: readonly number[]): number {
  if (firstFamily === 'inet6') {
    let r = 0;
    for (let i = 0; r === 0 && i < 4; i++) r = wrapSub(a[i], b[i]);
    return r;
  }
  return wrapSub(a[0], b[0]);
}

/** ipvs_cmp_services(). */
export function compareServices(s1: Service, s2: Service): number {
  const k1 = s1.key;
  const k2 = s2.key;
  const fw1 = k1.kind === 'fwmark' ? k1.fwmark : 0;
  const fw2 = k2.kind === 'fwmark' ? k2.fwmark : 0;
  let r = wrapSub(fw1, fw2);
  if (r !== 0) return r;
  r = AF_NUMBER[k1.family] - AF_NUMBER[k2.family];
  if (r !== 0) return r;
  // libipvs leaves protocol, address and port of fwmark services zero.
  const p1 = k1.kind === 'addr' ? PROTO_NUMBER[k1.protocol] : 0;
  const p2 = k2.kind === 'addr' ? PROTO_NUMBER[k2.protocol] : 0;
  r = p1 - p2;
  if (r !== 0) return r;
  const w1 = k1.kind === 'addr' ? addressWords(k1.family, k1.address) : [0, 0, 0, 0];
  const w2 = k2.kind === 'addr' ? addressWords(k2.family, k2.address) : [0, 0, 0, 0];
  r = compareWords(k1.family, w1, w2);
  if (r !== 0) return r;
  return (k1.kind === 'addr' ? k1.port : 0) - (k2.kind === 'addr' ? k2.port : 0);
}

/** ipvs_cmp_dests(): the first entry's family decides how many address words are compared. */
export function compareDests(d1: Destination, d2: Destination): number {
  const r = compareWords(d1.family, addressWords(d1.family, d1.address), addressWords(d2.family, d2.address));
  if (r !== 0) return r;
  return d1.port - d2.port;
}

/** glibc msort_with_tmp(): top-down merge sort, left half first, ties keep the left element. */
export function glibcQsort<T>(items: readonly T[], cmp: (a: T, b: T) => number): T[] {
  const a = items.slice();
  const sortRange = (lo: number, n: number): void => {
    if (n <= 1) return;
    const n1 = Math.floor(n / 2);
    const n2 = n - n1;
    sortRange(lo, n1);
    sortRange(lo + n1, n2);
    const merged: T[] = [];
    let i = lo;
    let j = lo + n1;
    const iEnd = lo + n1;
    const jEnd = lo + n;
    while (i < iEnd && j < jEnd) {
      if (cmp(a[i], a[j]) <= 0) merged.push(a[i++]);
      else merged.push(a[j++]);
    }
    while (i < iEnd) merged.push(a[i++]);
    for (let k = 0; k < merged.length; k++) a[lo + k] = merged[k];
  };
  sortRange(0, a.length);
  return a;
}

export function sortServices<T extends Service>(services: readonly T[]): T[] {
  return glibcQsort(services, compareServices);
}

export function sortDests<T extends Destination>(dests: readonly T[]): T[] {
  return glibcQsort(dests, compareDests);
}
