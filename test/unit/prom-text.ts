/** A strict reader of the Prometheus text format (0.0.4) for tests: every line must parse. */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: string;
}

export interface PromText {
  samples: PromSample[];
  /** metric name (family) -> TYPE */
  types: Map<string, string>;
  helps: Map<string, string>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

export function parsePromText(text: string): PromText {
  const samples: PromSample[] = [];
  const types = new Map<string, string>();
  const helps = new Map<string, string>();
  text.split('\n').forEach((line, i) => {
    const where = `line ${i + 1}: ${JSON.stringify(line.slice(0, 120))}`;
    if (line === '') return;
    if (line.startsWith('# HELP ')) {
      const [, name, help] = /^# HELP (\S+) (.*)$/.exec(line) ?? [];
      if (!name || !NAME.test(name) || help === undefined) throw new Error(`bad HELP, ${where}`);
      helps.set(name, help);
      return;
    }
    if (line.startsWith('# TYPE ')) {
      const [, name, type] = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line) ?? [];
      if (!name || !type) throw new Error(`bad TYPE, ${where}`);
      if (types.has(name)) throw new Error(`second TYPE for ${name}, ${where}`);
      types.set(name, type);
      return;
    }
    if (line.startsWith('#')) return;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`bad sample, ${where}`);
    const labels: Record<string, string> = {};
    const body = m[3] ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
    let pos = 0;
    while (pos < body.length) {
      re.lastIndex = pos;
      const l = re.exec(body);
      if (!l) throw new Error(`bad labels, ${where}`);
      labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
      pos = re.lastIndex;
    }
    // Go's ParseFloat (Prometheus) takes NaN in any case; prom-client prints "Nan"
    if (!/^(-?\d+(\.\d+)?(e[+-]?\d+)?|nan|[+-]inf)$/i.test(m[4]!)) throw new Error(`bad value, ${where}`);
    samples.push({ name: m[1]!, labels, value: m[4]! });
  });
  return { samples, types, helps };
}

/** The family a sample belongs to (histogram _bucket/_sum/_count to their metric). */
export function familyOf(name: string, types: ReadonlyMap<string, string>): string {
  if (types.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return types.has(base) ? base : name;
}
