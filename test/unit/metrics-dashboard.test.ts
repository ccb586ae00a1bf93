/**
 * examples/grafana-dashboard.json: valid JSON Grafana can import, and every metric name its queries use is one
 * the daemon's registry exports (so a renamed metric breaks this test, not a dashboard in production); it shows
 * every metric of ours.
 */
import { readFileSync } from 'fs';
import * as path from 'path';
import { ALL_METRICS } from '../../src/metrics/names';
import { DaemonMetrics } from '../../src/metrics/registry';

interface Target { expr?: string; refId?: string }
interface Panel { id: number; type: string; title: string; targets?: Target[]; panels?: Panel[]; gridPos: { x: number; y: number; w: number; h: number }; datasource?: { uid?: string } }
interface Dashboard { title: string; uid: string; schemaVersion: number; panels: Panel[]; templating: { list: { name: string; type: string; query?: unknown }[] } }

const FILE = path.join(__dirname, '..', '..', 'examples', 'grafana-dashboard.json');
const dash = JSON.parse(readFileSync(FILE, 'utf8')) as Dashboard;
const panels = dash.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr ?? '' })));
const varQueries = dash.templating.list.flatMap((v) => (v.type === 'query' ? [(v.query as { query: string }).query] : []));

const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'inf', 'nan']);

/** The metric names a PromQL expression selects (strings, label matchers, ranges, groupings and calls left out). */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
    .replace(/\$\w+/g, '');
  const out: string[] = [];
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = bare.slice(m.index! + m[0].length).trimStart();
    if (after.startsWith('(') || KEYWORDS.has(m[0].toLowerCase())) continue;
    if (m.index! > 0 && /[\d.]/.test(bare[m.index! - 1]!)) continue; // 1e3, 0.5
    out.push(m[0]);
  }
  return out;
}

const balanced = (s: string): boolean => {
  const stack: string[] = [];
  const pairs: Record<string, string> = { ')': '(', '}': '{', ']': '[' };
  for (const c of s.replace(/"(?:[^"\\]|\\.)*"/g, '""')) {
    if ('({['.includes(c)) stack.push(c);
    else if (c in pairs && stack.pop() !== pairs[c]) return false;
  }
  return stack.length === 0;
};

describe('the Grafana dashboard', () => {
  const metrics = new DaemonMetrics({
    source: { services: async () => [], dataPath: () => { throw new Error('not scraped'); } },
    cacheMs: 1000,
  });
  const types = new Map(metrics.registry.getMetricsAsArray().map((m) => [m.name, String(m.type)]));
  /** Series names a scrape can carry: each metric's name, and a histogram's _bucket, _sum and _count. */
  const series = new Set([...types].flatMap(([n, t]) => (t === 'histogram' ? [`${n}_bucket`, `${n}_sum`, `${n}_count`] : [n])));

  test('is a dashboard Grafana imports: title, uid, panels with queries on the data source variable, no overlaps', () => {
    expect(dash.title).toBe('ipvs-bpf');
    expect(dash.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(dash.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dash.templating.list.map((v) => v.name)).toEqual(expect.arrayContaining(['datasource', 'instance']));
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    for (const p of panels.filter((x) => x.type !== 'row')) {
      expect(p.datasource?.uid).toBe('${datasource}');
      expect(p.targets?.length).toBeGreaterThan(0);
      expect(new Set(p.targets!.map((t) => t.refId)).size).toBe(p.targets!.length);
    }
    const cells = new Map<string, string>();
    for (const p of panels) {
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          const k = `${x},${y}`;
          if (cells.has(k)) throw new Error(`panels "${cells.get(k)}" and "${p.title}" overlap at ${k}`);
          cells.set(k, p.title);
        }
      }
    }
  });

  test('every query is balanced and names only metrics the registry exports', () => {
    expect(exprs.length).toBeGreaterThan(20);
    for (const { panel, expr } of exprs) {
      if (!balanced(expr)) throw new Error(`panel "${panel}": unbalanced ${expr}`);
      const names = metricNames(expr);
      if (names.length === 0) throw new Error(`panel "${panel}": no metric in ${expr}`);
      for (const n of names) if (!series.has(n)) throw new Error(`panel "${panel}": ${n} is not a metric of the registry (${expr})`);
    }
    for (const q of varQueries) {
      const m = /^label_values\((\w+)(\{[^}]*\})?, *(\w+)\)$/.exec(q);
      if (!m) throw new Error(`variable query ${q} is not label_values(metric, label)`);
      expect(series.has(m[1]!)).toBe(true);
    }
  });

  test('shows every metric of ours', () => {
    const used = new Set([...exprs.flatMap(({ expr }) => metricNames(expr))].map((n) => n.replace(/_(bucket|sum|count)$/, (s) => (types.has(n) ? s : ''))));
    expect(ALL_METRICS.map((d) => d.name).filter((n) => !used.has(n))).toEqual([]);
  });

  test('the name extraction itself', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (le, trigger) (rate(a_bucket{x="b(c)"}[5m])))')).toEqual(['a_bucket']);
    expect(metricNames('count(up{job="x"} == 0) or vector(0)')).toEqual(['up']);
    expect(metricNames('a / on (instance) group_left (mode) b * 1e3')).toEqual(['a', 'b']);
  });
});
