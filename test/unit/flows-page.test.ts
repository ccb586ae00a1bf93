/**
 * Paging the conntrack map on the host kernel (a real pinned map): bounded pages, a complete walk, and a
 * walk that survives the deletion of the entries it has already returned (flows end all the time).
 */
import { openDatapath, removePins, type Datapath } from '../../src/bpf/loader';
import { FlowTable, ipvsConnEntries, type Flow } from '../../src/bpf/flows';
import { native } from '../../src/bpf/native';

const PIN = `/sys/fs/bpf/ipvs-bpf-page-${process.pid}`;
let dp: Datapath;
let table: FlowTable;

const conn = (i: number): ReturnType<typeof ipvsConnEntries> => ipvsConnEntries({
  proto: i % 2 ? 'tcp' : 'udp',
  client: { addr: `10.1.${(i >> 8) & 255}.${i & 255}`, port: 1024 + (i % 50000) },
  vip: { addr: '10.0.0.100', port: 80 },
  real: { addr: `10.2.${i % 2}.2`, port: 8080 },
  local: { addr: '10.9.0.1', port: 2000 + i },
});
const id = (f: Pick<Flow, 'key'>): string => JSON.stringify(f.key);

beforeAll(() => {
  dp = openDatapath({ pinDir: PIN, maxEntries: 16384 });
  table = new FlowTable(dp.ctMap);
});

afterAll(() => {
  dp?.close();
  removePins(PIN);
});

beforeEach(() => {
  for (const f of table.list()) table.delete(f.key);
});

test('pages of at most N entries cover the map exactly once, then say it is complete', () => {
  const want = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    for (const e of conn(i)) {
      table.put(e.key, e.value);
      want.add(id(e));
    }
  }
  const seen: string[] = [];
  let from: number | null = null;
  let pages = 0;
  do {
    const p = table.page(from, 128);
    expect(p.flows.length).toBeLessThanOrEqual(128);
    seen.push(...p.flows.map(id));
    from = p.next;
    pages++;
    expect(pages).toBeLessThan(100);
  } while (from !== null);
  expect(seen.length).toBe(3000);
  expect(new Set(seen)).toEqual(want);
  expect(pages).toBeGreaterThanOrEqual(Math.ceil(3000 / 128));
});

test('entries deleted while paging (those already returned and others) neither restart nor repeat the walk', () => {
  const all: string[] = [];
  for (let i = 0; i < 600; i++) {
    for (const e of conn(i)) {
      table.put(e.key, e.value);
      all.push(id(e));
    }
  }
  const deletedUnseen = new Set<string>();
  const seen = new Set<string>();
  let from: number | null = null;
  let round = 0;
  do {
    const p = table.page(from, 50);
    for (const f of p.flows) {
      expect(seen.has(id(f))).toBe(false);
      seen.add(id(f));
    }
    // the flows just returned end (a key cursor would now point at a deleted key) ...
    for (const f of p.flows) table.delete(f.key);
    // ... and so do a few not returned yet
    for (let k = 0; k < 5; k++) {
      const victim = all[(round * 37 + k * 101) % all.length]!;
      if (!seen.has(victim) && table.delete(JSON.parse(victim) as Flow['key'])) deletedUnseen.add(victim);
    }
    from = p.next;
    round++;
    expect(round).toBeLessThan(200);
  } while (from !== null);
  const expected = all.filter((k) => !deletedUnseen.has(k));
  expect([...seen].sort()).toEqual(expected.sort());
  expect(table.list()).toEqual([]);
});

test('an empty map is one empty, complete page; a bad fd is an error', () => {
  expect(table.page(null, 10)).toEqual({ flows: [], next: null });
  expect(() => native.mapBatch(dp.ctMap, null, 0)).toThrow(/max must be positive/);
  expect(() => native.mapBatch(99999, null, 10)).toThrow(/^map info: /);
});
