/**
 * The rule-file fast paths give exactly what the general code gives: parseSavedRule() == parseCommand()
 * wherever it answers (every line of every fixture, the benchmark's lines, and generated variants around
 * the canonical shapes), and tokenizeRules() == the plain split/filter definition on awkward text.
 */
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { createTextResolver, parseCommand, RuleError, tokenizeRules } from '../../src/ipvs/rules';
import { parseSavedRule } from '../../src/ipvs/rules/parse';
import { benchRules } from '../bench/ipvs-rules';

const FIXTURES = path.join(__dirname, '../fixtures/rules');
const resolver = createTextResolver(
  readFileSync(path.join(FIXTURES, 'etc-hosts'), 'utf8'),
  readFileSync(path.join(FIXTURES, 'etc-services'), 'utf8'),
);

/** Checks one argv; returns whether the fast path answered. Throws on any difference. */
function same(argv: string[]): boolean {
  const fast = parseSavedRule(argv);
  let full: unknown;
  try {
    full = parseCommand(argv, { resolver });
  } catch (e) {
    if (!(e instanceof RuleError)) throw e;
    if (fast !== undefined) throw new Error(`fast path accepts ${JSON.stringify(argv)}, parseCommand refuses: ${e.message}`);
    return false;
  }
  if (fast === undefined) return false;
  if (!isDeepStrictEqual(fast, full) || JSON.stringify(fast) !== JSON.stringify(full)) {
    throw new Error(`${JSON.stringify(argv)}: fast ${JSON.stringify(fast)} != full ${JSON.stringify(full)}`);
  }
  return true;
}

describe('parseSavedRule', () => {
  it('equals parseCommand on every line of every fixture', () => {
    let answered = 0;
    for (const f of readdirSync(FIXTURES).filter((x) => x.endsWith('.rules') || x.endsWith('.expected'))) {
      for (const { argv } of tokenizeRules(readFileSync(path.join(FIXTURES, f), 'utf8'))) if (same(argv)) answered++;
    }
    expect(answered).toBeGreaterThan(20);
  });

  it('answers for every line of the benchmark table', () => {
    for (const { argv } of tokenizeRules(benchRules(50, 3))) {
      expect(parseSavedRule(argv)).toBeDefined();
      expect(same(argv)).toBe(true);
    }
  });

  it('equals parseCommand on variants around the canonical shapes', () => {
    const addrs = ['10.0.0.1', '0.0.0.0', '255.255.255.255', '1.2.3', '01.2.3.4', '1.2.3.04', '256.1.1.1', '1.2.3.4.5', '1..2.3',
      '0x7f.0.0.1', '1.2.3.4 ', '', 'web', 'localhost', '[::1]', '::1', '1.2.3.-4', '1.2.3.999', '100.200.250.255'];
    const ports = ['80', '0', '65535', '65536', '080', '+80', '-1', '', 'http', '8a', '4294967376', '00'];
    const scheds = ['wlc', 'rr', 'WLC', 'a-b', 'abcdefghijklmnop', 'abcdefghijklmno', '-m', 'sh', 'x1'];
    const weights = ['1', '0', '2147483647', '2147483648', '01', '-1', '+1', ' 1', '1x', '99999999999'];
    let answered = 0;
    let checked = 0;
    for (const proto of ['-t', '-u', '-f', '--tcp-service']) {
      for (const a of addrs) {
        for (const p of ports) {
          const vip = `${a}:${p}`;
          for (const s of scheds) {
            checked++;
            if (same(['-A', proto, vip, '-s', s])) answered++;
            same(['-E', proto, vip, '-s', s]);
            same(['-A', proto, vip, '-s', s, '-p']);
          }
          for (const fwd of ['-m', '-g', '-i', '-w']) {
            for (const w of weights) {
              checked++;
              if (same(['-a', proto, vip, '-r', `10.1.0.1:${p}`, fwd, '-w', w])) answered++;
              if (same(['-a', proto, '10.0.0.1:80', '-r', vip, fwd, '-w', w])) answered++;
              same(['-e', proto, '10.0.0.1:80', '-r', vip, fwd, '-w', w]);
              same(['-a', proto, '10.0.0.1:80', '-w', w, fwd, '-r', vip]);
            }
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(5000);
    expect(answered).toBeGreaterThan(300);
  });
});

/** The definition tokenizeRules() implements. */
function tokenizeReference(text: string): { line: number; argv: string[] }[] {
  const out: { line: number; argv: string[] }[] = [];
  text.split('\n').forEach((raw, k) => {
    const words = raw.split(/[ \t\r]+/).filter((w) => w !== '' && w !== 'ipvsadm');
    if (words.length === 0) return;
    if (raw.trimStart().startsWith('#')) return;
    out.push({ line: k + 1, argv: words });
  });
  return out;
}

describe('tokenizeRules', () => {
  it('equals the split/filter definition on every fixture and on awkward text', () => {
    const texts = readdirSync(FIXTURES)
      .filter((x) => x.endsWith('.rules') || x.endsWith('.expected'))
      .map((f) => readFileSync(path.join(FIXTURES, f), 'utf8'));
    const pieces = ['-A', ' ', '\t', '\r', '\n', '#', 'ipvsadm', 'ipvsadmx', '\v', '\f', '\u00a0', '\u2028', 'x', '-t', '', '\r\n'];
    let seed = 7;
    for (let k = 0; k < 3000; k++) {
      let t = '';
      const n = k % 23;
      for (let i = 0; i < n; i++) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        t += pieces[seed % pieces.length];
      }
      texts.push(t);
    }
    texts.push('', '\n', '\n\n', '# only\n', '  # x\n-C', '\v# x', '\u00a0#x', 'ipvsadm', 'ipvsadm -C\n');
    for (const t of texts) expect(tokenizeRules(t)).toEqual(tokenizeReference(t));
  });
});
