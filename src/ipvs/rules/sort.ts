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

/**
 * glibc msort_with_tmp() over the indices 0..n-1: top-down merge sort, left half first, ties keep the left
 * element. Returns the sorted permutation.
 */
function glibcMergeOrder(n: number, cmp: (i: number, j: number) => number): number[] {
  // Plain arrays: most lists are a few real servers, where typed arrays' allocation costs more than it saves.
  const a: number[] = [];
  for (let i = 0; i < n; i++) a.push(i);
  const tmp: number[] = a.slice();
  const sortRange = (lo: number, len: number): void => {
    if (len <= 1) return;
    const n1 = len >>> 1;
    sortRange(lo, n1);
    sortRange(lo + n1, len - n1);
    let i = lo;
    let j = lo + n1;
    const iEnd = lo + n1;
    const jEnd = lo + len;
    let k = 0;
    while (i < iEnd && j < jEnd) {
      if (cmp(a[i], a[j]) <= 0) tmp[k++] = a[i++];
      else tmp[k++] = a[j++];
    }
    while (i < iEnd) tmp[k++] = a[i++];
    for (let m = 0; m < k; m++) a[lo + m] = tmp[m];
  };
  sortRange(0, n);
  return a;
}

/** glibc qsort() (a merge sort) of `items` with `cmp`: the order ipvsadm's qsort calls give. */
export function glibcQsort<T>(items: readonly T[], cmp: (a: T, b: T) => number): T[] {
  const order = glibcMergeOrder(items.length, (i, j) => cmp(items[i], items[j]));
  return order.map((i) => items[i]);
}

/** The comparators' inputs, computed once per entry rather than once per comparison (n log n times). */
interface SortKeys {
  inet6: boolean[];
  words: number[]; // 4 per entry, unsigned
  port: number[];
}

function keysOf(n: number): SortKeys {
  return { inet6: new Array<boolean>(n).fill(false), words: new Array<number>(n * 4).fill(0), port: new Array<number>(n).fill(0) };
}

function setWords(k: SortKeys, i: number, family: Family, address: string): void {
  const w = addressWords(family, address);
  k.inet6[i] = family === 'inet6';
  k.words[i * 4] = w[0];
  k.words[i * 4 + 1] = w[1];
  k.words[i * 4 + 2] = w[2];
  k.words[i * 4 + 3] = w[3];
}

/** compareWords() on keys: the first entry's family decides how many words count. */
function compareKeyWords(k: SortKeys, i: number, j: number): number {
  const w = k.words;
  let r = wrapSub(w[i * 4], w[j * 4]);
  if (r !== 0 || !k.inet6[i]) return r;
  for (let x = 1; r === 0 && x < 4; x++) r = wrapSub(w[i * 4 + x], w[j * 4 + x]);
  return r;
}

/**
 * The word of a canonical dotted quad (what the decoder and the rule parser produce), read without
 * allocating; -1 for anything else (the caller then takes the general path).
 */
function quadWord(s: string): number {
  let word = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return -1; // a leading zero: not canonical
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else if (c === 46 && digits > 0 && dots < 3) {
      word = word * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else return -1;
  }
  return dots === 3 && digits > 0 ? word * 256 + octet : -1;
}

/**
 * The fast path's condition and keys. When every entry is IPv4 and all their address words lie within
 * 2^31 of each other, the comparators' wrapping subtractions never wrap: they are then a total order on
 * (protocol rank, word, port), under which every stable sort, glibc's merge sort included, gives one
 * result. Keys are rank * 2^48 + word * 2^16 + port (below 2^53, exact in a double). null: take the
 * general path.
 */
const PROTO_RANK = { tcp: 0, udp: 1, sctp: 2 } as const;
const ORDERED_KEY_SPAN = 2 ** 31;
const KEY_RANK = 2 ** 48;

/** Keys of IPv4 address-port entries, or null when the fast path's condition does not hold. */
function destKeys(dests: readonly Destination[]): number[] | null {
  const n = dests.length;
  const keys: number[] = new Array<number>(n);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const d = dests[i];
    if (d.family !== 'inet') return null;
    const w = quadWord(d.address);
    if (w < 0) return null;
    if (w < lo) lo = w;
    if (w > hi) hi = w;
    keys[i] = w * 65536 + d.port;
  }
  return hi - lo < ORDERED_KEY_SPAN ? keys : null;
}

/** The same for services (all of them IPv4 address services; protocol rank first). */
function serviceKeys(services: readonly Service[]): number[] | null {
  const n = services.length;
  const keys: number[] = new Array<number>(n);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const k = services[i].key;
    if (k.kind !== 'addr' || k.family !== 'inet') return null;
    const w = quadWord(k.address);
    if (w < 0) return null;
    if (w < lo) lo = w;
    if (w > hi) hi = w;
    keys[i] = PROTO_RANK[k.protocol] * KEY_RANK + w * 65536 + k.port;
  }
  return hi - lo < ORDERED_KEY_SPAN ? keys : null;
}

/**
 * A stable sort of `items` by numeric `keys`. Already in order: a copy; in strictly falling order (the
 * kernel lists real servers newest first, so a list added in order comes back reversed): the reverse.
 */
function sortByKeys<T>(items: readonly T[], keys: number[]): T[] {
  const n = items.length;
  let rising = true;
  let falling = true;
  for (let i = 1; i < n && (rising || falling); i++) {
    if (keys[i - 1] > keys[i]) rising = false;
    if (keys[i - 1] <= keys[i]) falling = false;
  }
  if (rising) return items.slice();
  if (falling) return items.slice().reverse();
  if (n <= 16) {
    // insertion sort (stable) of small lists, carrying keys and items together
    const out = items.slice();
    const k = keys.slice();
    for (let i = 1; i < n; i++) {
      const kv = k[i];
      const v = out[i];
      let j = i - 1;
      while (j >= 0 && k[j] > kv) {
        k[j + 1] = k[j];
        out[j + 1] = out[j];
        j--;
      }
      k[j + 1] = kv;
      out[j + 1] = v;
    }
    return out;
  }
  const order: number[] = new Array<number>(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => keys[a] - keys[b] || a - b);
  return order.map((i) => items[i]);
}

export function sortServices<T extends Service>(services: readonly T[]): T[] {
  const fast = serviceKeys(services);
  if (fast) return sortByKeys(services, fast);
  return sortServicesGeneral(services);
}

function sortServicesGeneral<T extends Service>(services: readonly T[]): T[] {
  const n = services.length;
  const k = keysOf(n);
  const fw = new Array<number>(n).fill(0);
  const af = new Array<number>(n).fill(0);
  const proto = new Array<number>(n).fill(0);
  for (let i = 0; i < n; i++) {
    const key = services[i].key;
    af[i] = AF_NUMBER[key.family];
    if (key.kind === 'fwmark') {
      fw[i] = key.fwmark >>> 0;
      k.inet6[i] = key.family === 'inet6';
    } else {
      proto[i] = PROTO_NUMBER[key.protocol];
      setWords(k, i, key.family, key.address);
      k.port[i] = key.port;
    }
  }
  // ipvs_cmp_services(), as compareServices() computes it.
  const order = glibcMergeOrder(n, (i, j) => {
    let r = wrapSub(fw[i], fw[j]);
    if (r !== 0) return r;
    r = af[i] - af[j];
    if (r !== 0) return r;
    r = proto[i] - proto[j];
    if (r !== 0) return r;
    r = compareKeyWords(k, i, j);
    if (r !== 0) return r;
    return k.port[i] - k.port[j];
  });
  return order.map((i) => services[i]);
}

export function sortDests<T extends Destination>(dests: readonly T[]): T[] {
  const n = dests.length;
  if (n <= 1) return dests.slice();
  const fast = destKeys(dests);
  if (fast) return sortByKeys(dests, fast);
  const k = keysOf(n);
  for (let i = 0; i < n; i++) {
    const d = dests[i];
    setWords(k, i, d.family, d.address);
    k.port[i] = d.port;
  }
  // ipvs_cmp_dests(), as compareDests() computes it.
  const order = glibcMergeOrder(n, (i, j) => compareKeyWords(k, i, j) || k.port[i] - k.port[j]);
  return order.map((i) => dests[i]);
}
