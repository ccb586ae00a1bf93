/**
 * Finds the external commands a shell script, or a TypeScript/JavaScript file that starts processes, runs:
 * the names scripts/commands.tsv must declare. A small tokenizer, not a shell: it sees
 *   - the first word of every simple command (after assignments and redirections, behind `;` `&&` `||` `|`
 *     `&` `(` `{` newlines and the keywords if/then/else/while/until/do/!/time), in `$(...)`, backticks,
 *     `<(...)`, double-quoted substitutions, `bash -c '...'`, `trap '...'` and heredoc-free text;
 *   - the command behind the wrappers it knows (flock, timeout, ip netns exec, env, nice, nohup, setsid,
 *     stdbuf, exec, command -v, xargs, chroot, unshare, nsenter, systemd-run, find -exec, busybox);
 *   - in TS/JS: execFile/execFileSync/spawn/spawnSync('cmd', [args]) with a literal name (and the same
 *     wrappers among literal args), exec/execSync('shell string'), strings given to a local function that
 *     passes its parameter to `bash -c`, and `script:` payloads (a string, a template, an array of strings, or
 *     a local function's string literals, with the file's constants interpolated at their start).
 * It cannot see (reported as `unseen`, never guessed): a command word that is an expansion ("$tool",
 * $QEMU, ${cmd[@]}), eval'd text, heredoc bodies (treated as data: here they are configuration files and
 * rule sets), commands assembled at run time in TS from variables, and shell inside non-payload strings.
 */

export interface CommandUse {
  name: string;
  line: number;
}

export interface ScanResult {
  uses: CommandUse[];
  /** Command words it could not resolve to a name (expansions): what the check cannot see. */
  unseen: CommandUse[];
}

interface Word {
  text: string;
  /** No expansion anywhere in the word (quotes allowed). */
  literal: boolean;
}

interface SimpleCommand {
  words: Word[];
  line: number;
}

/** bash builtins and keywords; also what busybox sh runs itself. */
export const SHELL_BUILTINS = new Set([
  ':', '.', 'source', 'alias', 'bg', 'bind', 'break', 'builtin', 'caller', 'cd', 'command', 'compgen', 'complete',
  'continue', 'declare', 'dirs', 'disown', 'echo', 'enable', 'eval', 'exec', 'exit', 'export', 'false', 'fc', 'fg',
  'getopts', 'hash', 'help', 'history', 'jobs', 'kill', 'let', 'local', 'logout', 'mapfile', 'popd', 'printf',
  'pushd', 'pwd', 'read', 'readarray', 'readonly', 'return', 'set', 'shift', 'shopt', 'suspend', 'test', '[',
  'times', 'trap', 'true', 'type', 'typeset', 'ulimit', 'umask', 'unalias', 'unset', 'wait',
]);

const PREFIX_KEYWORDS = new Set(['if', 'then', 'else', 'elif', 'while', 'until', 'do', '!', 'time', '{', 'fi', 'done', 'esac', '}']);
const WHOLE_SKIP = new Set(['for', 'select', 'case', '[[', 'function', '((']);

interface Wrapper {
  /** Options that take a separate argument. */
  argOpts?: string[];
  /** Positional words before the wrapped command. */
  positional?: number;
  /** The wrapped command follows this word (find -exec), not the options. */
  after?: string[];
}

const WRAPPERS: Record<string, Wrapper> = {
  flock: { argOpts: ['-w', '--timeout', '-E', '--conflict-exit-code'], positional: 1 },
  timeout: { argOpts: ['-s', '--signal', '-k', '--kill-after'], positional: 1 },
  env: { argOpts: ['-u', '--unset', '-C', '--chdir'] },
  nice: { argOpts: ['-n', '--adjustment'] },
  nohup: {},
  setsid: {},
  stdbuf: { argOpts: ['-i', '-o', '-e'] },
  exec: { argOpts: ['-a'] },
  xargs: { argOpts: ['-n', '-I', '-P', '-d', '-L', '-s', '-E', '-a'] },
  chroot: { positional: 1 },
  unshare: {},
  nsenter: { argOpts: ['-t', '--target', '-S', '--setuid', '-G', '--setgid', '-w', '--wd', '-r', '--root'] },
  'systemd-run': { argOpts: ['-p', '--property', '-u', '--unit', '-E', '--setenv', '--uid', '--gid', '-M'] },
  busybox: {},
  find: { after: ['-exec', '-execdir'] },
  sudo: { argOpts: ['-u', '-g'] },
  runuser: { argOpts: ['-u', '-g', '-l'] },
};

function isAssignment(w: Word): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=/.test(w.text);
}

/** A redirection word; `alone` when its target is the next word. */
function redirection(w: Word): { alone: boolean } | undefined {
  const m = /^(\d*|&)(>>|>&|<&|<>|>\||>|<)(.*)$/.exec(w.text);
  if (!m) return undefined;
  return { alone: m[3] === '' };
}

/** Index of the `)` closing the `(` before `start`, skipping quotes and nested parens; -1 if none. */
function matchParen(s: string, start: number): number {
  let depth = 1;
  for (let i = start; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') { i++; continue; }
    if (c === "'") { const j = s.indexOf("'", i + 1); if (j < 0) return -1; i = j; continue; }
    if (c === '"') { i = skipDouble(s, i + 1); continue; }
    if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i;
  }
  return -1;
}

/** Index of the closing `"` of a double-quoted string whose content starts at i. */
function skipDouble(s: string, i: number): number {
  for (; i < s.length; i++) {
    if (s[i] === '\\') { i++; continue; }
    if (s[i] === '"') return i;
    if (s[i] === '$' && s[i + 1] === '(') { const j = matchParen(s, i + 2); if (j < 0) return s.length; i = j; }
  }
  return s.length;
}

function lineAt(s: string, i: number, base: number): number {
  let n = base;
  for (let k = 0; k < i && k < s.length; k++) if (s[k] === '\n') n++;
  return n;
}

const CASE_PATTERN = /^[ \t]*\(?[^\s()|;&<>]+([ \t]*\|[ \t]*[^\s()|;&<>]+)*[ \t]*\)/;

/** Splits shell text into simple commands; substitutions and `-c` strings are parsed recursively. */
function parse(text: string, baseLine: number, out: SimpleCommand[]): void {
  let words: Word[] = [];
  let cur: Word | undefined;
  let cmdLine = baseLine;
  let caseDepth = 0;
  const heredocs: { delim: string; strip: boolean }[] = [];
  let atStart = true;

  const endWord = (): void => {
    if (cur) words.push(cur);
    cur = undefined;
  };
  const endCommand = (): void => {
    endWord();
    if (words.length) {
      const first = words.find((w) => !isAssignment(w))?.text;
      if (first === 'case') caseDepth++;
      if (words.some((w) => w.text === 'esac') && caseDepth > 0) caseDepth--;
      out.push({ words, line: cmdLine });
    }
    words = [];
    atStart = true;
  };
  const add = (chars: string, literal: boolean): void => {
    if (!cur) {
      cur = { text: '', literal: true };
    }
    cur.text += chars;
    if (!literal) cur.literal = false;
  };
  const sub = (inner: string, at: number): void => parse(inner, lineAt(text, at, baseLine), out);

  for (let i = 0; i < text.length; i++) {
    if (atStart && !cur && words.length === 0) {
      const rest = text.slice(i);
      if (caseDepth > 0) {
        const m = CASE_PATTERN.exec(rest);
        if (m && !/^\s*esac\b/.test(rest)) { i += m[0].length - 1; continue; }
      }
      if (/^[ \t]/.test(rest)) continue;
      cmdLine = lineAt(text, i, baseLine);
      atStart = false;
    }
    const c = text[i];
    if (c === '\\') {
      if (text[i + 1] === '\n') { i++; continue; }
      add(text[i + 1] ?? '', true);
      i++;
      continue;
    }
    if (c === '#' && !cur) {
      while (i < text.length && text[i] !== '\n') i++;
      i--;
      continue;
    }
    if (c === "'") {
      const j = text.indexOf("'", i + 1);
      const end = j < 0 ? text.length : j;
      add(text.slice(i + 1, end), true);
      i = end;
      continue;
    }
    if (c === '"') {
      const end = skipDouble(text, i + 1);
      const body = text.slice(i + 1, end);
      let literal = !/[$`]/.test(body);
      for (let k = 0; k < body.length; k++) {
        if (body[k] === '\\') { k++; continue; }
        if (body[k] === '$' && body[k + 1] === '(' && body[k + 2] !== '(') {
          const j = matchParen(body, k + 2);
          if (j > 0) { sub(body.slice(k + 2, j), i + 1 + k); k = j; }
        } else if (body[k] === '`') {
          const j = body.indexOf('`', k + 1);
          if (j > 0) { sub(body.slice(k + 1, j), i + 1 + k); k = j; }
        }
      }
      if (!literal && !/\$/.test(body) && !/`/.test(body)) literal = true;
      add(body.replace(/\\(["\\$`])/g, '$1'), literal);
      i = end;
      continue;
    }
    if (c === '$') {
      if (text.startsWith('$((', i)) {
        const j = matchParen(text, i + 2);
        add('$', false);
        i = j < 0 ? text.length : j + (text[j + 1] === ')' ? 1 : 0);
        continue;
      }
      if (text[i + 1] === '(') {
        const j = matchParen(text, i + 2);
        const end = j < 0 ? text.length : j;
        sub(text.slice(i + 2, end), i + 2);
        add('$', false);
        i = end;
        continue;
      }
      if (text[i + 1] === '{') {
        const j = text.indexOf('}', i);
        add('$', false);
        i = j < 0 ? text.length : j;
        continue;
      }
      add('$', false);
      continue;
    }
    if (c === '`') {
      const j = text.indexOf('`', i + 1);
      const end = j < 0 ? text.length : j;
      sub(text.slice(i + 1, end), i + 1);
      add('$', false);
      i = end;
      continue;
    }
    if ((c === '<' || c === '>') && text[i + 1] === '(') {
      const j = matchParen(text, i + 2);
      const end = j < 0 ? text.length : j;
      sub(text.slice(i + 2, end), i + 2);
      add('$', false);
      i = end;
      continue;
    }
    if (c === '<' && text.startsWith('<<', i) && !text.startsWith('<<<', i)) {
      endWord();
      let k = i + 2;
      const strip = text[k] === '-';
      if (strip) k++;
      while (text[k] === ' ' || text[k] === '\t') k++;
      const m = /^(['"]?)([A-Za-z0-9_]+)\1/.exec(text.slice(k));
      if (m) {
        heredocs.push({ delim: m[2], strip });
        i = k + m[0].length - 1;
        continue;
      }
    }
    if (c === ' ' || c === '\t') { endWord(); continue; }
    if (c === '&' && (text[i + 1] === '>' || (cur && /[<>]$/.test(cur.text)))) { add(c, true); continue; }
    if (c === '(' && cur && /^[A-Za-z_][A-Za-z0-9_]*\+?=$/.test(cur.text) && words.every(isAssignment)) {
      // an array assignment, X=(a b c), possibly over several lines: data
      const j = matchParen(text, i + 1);
      add('(…)', true);
      i = j < 0 ? text.length : j;
      continue;
    }
    if (c === '(' && text[i + 1] === '(' && !cur) {
      const j = matchParen(text, i + 2);
      i = j < 0 ? text.length : j + (text[j + 1] === ')' ? 1 : 0);
      continue;
    }
    if (c === '\n' || c === ';' || c === '&' || c === '|' || c === '(' || c === ')') {
      endCommand();
      if (c === '\n' && heredocs.length) {
        let k = i + 1;
        for (const h of heredocs) {
          for (;;) {
            const nl = text.indexOf('\n', k);
            const line = text.slice(k, nl < 0 ? text.length : nl);
            k = nl < 0 ? text.length : nl + 1;
            if ((h.strip ? line.replace(/^\t+/, '') : line) === h.delim || nl < 0) break;
          }
        }
        heredocs.length = 0;
        i = k - 1;
      }
      continue;
    }
    add(c, true);
  }
  endCommand();
}

/** Names of functions the text defines (`name() {` or `function name`); a script may use those of a file it
 * sources, so the caller passes the functions of every scanned script. */
export function shellFunctions(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^[ \t]*(?:function[ \t]+)?([A-Za-z_][\w.:-]*)[ \t]*\(\)/gm)) names.add(m[1]);
  for (const m of text.matchAll(/^[ \t]*function[ \t]+([A-Za-z_][\w.:-]*)/gm)) names.add(m[1]);
  return names;
}

const NAME = /^[A-Za-z_][\w.+-]*$/;

/** Records the command of one simple command (and what its wrappers run) into result. */
function analyse(words: Word[], line: number, result: ScanResult, functions: Set<string>): void {
  let i = 0;
  for (;;) {
    while (i < words.length) {
      const w = words[i];
      if (isAssignment(w)) { i++; continue; }
      const r = redirection(w);
      if (r) { i += r.alone ? 2 : 1; continue; }
      if (PREFIX_KEYWORDS.has(w.text)) { i++; continue; }
      break;
    }
    if (i >= words.length) return;
    const w = words[i];
    if (WHOLE_SKIP.has(w.text) || w.text === 'in' || w.text === ']]') return;
    if (!w.literal) { result.unseen.push({ name: w.text, line }); return; }
    let name = w.text;
    if (name.includes('/')) {
      if (!name.startsWith('/')) return; // a project path: ./x, ../x, dir/x
      name = name.slice(name.lastIndexOf('/') + 1);
    }
    if (!NAME.test(name)) return;
    if (functions.has(name)) return;
    const rest = words.slice(i + 1);
    if (!SHELL_BUILTINS.has(name)) result.uses.push({ name, line });
    if ((name === 'bash' || name === 'sh') && rest.length) {
      const c = rest.findIndex((x) => x.text === '-c' || /^-[a-z]*c$/.test(x.text));
      if (c >= 0 && rest[c + 1]) {
        scanShellInto(rest[c + 1].text, line, result, functions);
      }
      return;
    }
    if (name === 'trap' && rest[0]?.literal) { scanShellInto(rest[0].text, line, result, functions); return; }
    if (name === 'command') {
      if (rest[0]?.text === '-v' || rest[0]?.text === '-V') {
        for (const x of rest.slice(1)) if (x.literal && NAME.test(x.text)) result.uses.push({ name: x.text, line });
        return;
      }
      i++;
      continue;
    }
    if (name === 'ip') {
      const e = rest.findIndex((x, k) => x.text === 'exec' && rest[k - 1]?.text === 'netns');
      if (e < 0) return;
      i = i + 1 + e + 2;
      continue;
    }
    if (name === 'su' || name === 'runuser') {
      const c = rest.findIndex((x) => x.text === '-c');
      if (c >= 0 && rest[c + 1]) { scanShellInto(rest[c + 1].text, line, result, functions); return; }
    }
    const wrap = WRAPPERS[name];
    if (!wrap) return;
    if (name === 'busybox' && rest[0]?.text.startsWith('-')) return; // busybox --install ...
    let k = i + 1;
    if (wrap.after) {
      const e = words.findIndex((x, n) => n > i && wrap.after?.includes(x.text));
      if (e < 0) return;
      k = e + 1;
    } else {
      let positional = wrap.positional ?? 0;
      while (k < words.length) {
        const x = words[k].text;
        if (x === '--') { k++; break; }
        if (x.startsWith('-') && x.length > 1) { k += wrap.argOpts?.includes(x) ? 2 : 1; continue; }
        if (name === 'env' && isAssignment(words[k])) { k++; continue; }
        if (positional > 0) { positional--; k++; continue; }
        break;
      }
      // flock 9 / flock -x 9: a descriptor, no command
      if (name === 'flock' && k >= words.length) return;
    }
    if (k >= words.length) return;
    if (name === 'flock' && (words[k].text === '-c' || words[k].text === '--command')) {
      if (words[k + 1]) scanShellInto(words[k + 1].text, line, result, functions);
      return;
    }
    i = k;
  }
}

function scanShellInto(text: string, baseLine: number, result: ScanResult, outer: Set<string>): void {
  const functions = new Set([...outer, ...shellFunctions(text)]);
  const cmds: SimpleCommand[] = [];
  parse(text, baseLine, cmds);
  for (const c of cmds) analyse(c.words, c.line, result, functions);
}

/** The external commands a shell script runs (line numbers 1-based). */
export function scanShell(text: string, functions: Set<string> = new Set(), baseLine = 1): ScanResult {
  const result: ScanResult = { uses: [], unseen: [] };
  scanShellInto(text, baseLine, result, functions);
  return result;
}

// --- TypeScript / JavaScript ---------------------------------------------------------------------------

interface Literal {
  /** The string's value; `${...}` interpolations become the placeholder $X (an expansion). */
  value: string;
  start: number;
  end: number;
  /** The interpolations' expressions, for templates. */
  parts: string[];
}

/** The string or template literal starting at s[i] (a quote char), or undefined. */
function readLiteral(s: string, i: number): Literal | undefined {
  const q = s[i];
  if (q !== "'" && q !== '"' && q !== '`') return undefined;
  let value = '';
  const parts: string[] = [];
  for (let k = i + 1; k < s.length; k++) {
    const c = s[k];
    if (c === '\\') {
      const n = s[k + 1];
      value += n === 'n' ? '\n' : n === 't' ? '\t' : n;
      k++;
      continue;
    }
    if (c === q) return { value, start: i, end: k + 1, parts };
    if (q === '`' && c === '$' && s[k + 1] === '{') {
      let depth = 1;
      let j = k + 2;
      for (; j < s.length && depth > 0; j++) {
        if (s[j] === '{') depth++;
        else if (s[j] === '}') depth--;
      }
      parts.push(s.slice(k + 2, j - 1));
      value += '$X';
      k = j - 1;
      continue;
    }
    if (q !== '`' && c === '\n') return undefined;
    value += c;
  }
  return undefined;
}

/** The literals from i up to the close of the enclosing bracket; for an expression (`expr`), also up to the
 * comma, semicolon or line end that ends it. */
function literalsIn(s: string, i: number, expr: boolean): { literals: Literal[]; end: number; idents: string[] } {
  const literals: Literal[] = [];
  const idents: string[] = [];
  let depth = 0;
  let k = i;
  for (; k < s.length; k++) {
    const c = s[k];
    if (c === "'" || c === '"' || c === '`') {
      const l = readLiteral(s, k);
      if (!l) break;
      literals.push(l);
      k = l.end - 1;
      continue;
    }
    if (c === '/' && s[k + 1] === '/') { k = s.indexOf('\n', k); if (k < 0) break; continue; }
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') { if (depth === 0) break; depth--; }
    else if ((c === ',' || c === ';') && depth === 0 && expr) break;
    else if (c === '\n' && depth === 0 && expr && !/[+?:=]\s*$/.test(s.slice(i, k)) && !/^\s*[.+?:]/.test(s.slice(k + 1))) break;
    else if (depth === 0 && /[A-Za-z_]/.test(c) && !/[\w.]/.test(s[k - 1] ?? '')) {
      const m = /^[A-Za-z_]\w*/.exec(s.slice(k));
      if (m) { if (s[k + m[0].length] === '(') idents.push(m[0]); k += m[0].length - 1; }
    }
  }
  return { literals, end: k, idents };
}

function lineOf(s: string, i: number): number {
  let n = 1;
  for (let k = 0; k < i; k++) if (s[k] === '\n') n++;
  return n;
}

/** Applies the wrapper rules to a literal argv (non-literal elements are undefined). */
function analyseArgv(argv: (string | undefined)[], line: number, result: ScanResult): void {
  const words: Word[] = argv.map((a) => (a === undefined ? { text: '$X', literal: false } : { text: a, literal: true }));
  // argv words are not shell words: a string with spaces after -c is shell, handled by analyse
  analyse(words, line, result, new Set());
}

/** Bodies of the file's functions, by name (top-level `function name(...) {...}` and `const name = (...) =>`). */
function tsFunctions(s: string): Map<string, { param?: string; body: string; bodyStart: number }> {
  const fns = new Map<string, { param?: string; body: string; bodyStart: number }>();
  for (const m of s.matchAll(/(?:function\s+([A-Za-z_]\w*)\s*\(\s*([A-Za-z_]\w*)?|const\s+([A-Za-z_]\w*)\s*=\s*\(\s*([A-Za-z_]\w*)?[^)]*\)[^=]*=>)/g)) {
    const name = m[1] ?? m[3];
    const param = m[2] ?? m[4];
    const open = s.indexOf('{', (m.index ?? 0) + m[0].length);
    if (open < 0) continue;
    let depth = 0;
    let k = open;
    for (; k < s.length; k++) {
      const c = s[k];
      if (c === "'" || c === '"' || c === '`') { const l = readLiteral(s, k); if (l) { k = l.end - 1; continue; } }
      if (c === '{') depth++;
      else if (c === '}' && --depth === 0) break;
    }
    fns.set(name, { param, body: s.slice(open, k + 1), bodyStart: open });
  }
  return fns;
}

/** Top-level `const NAME = <literal>` values, to expand `${NAME}` at the start of a payload. */
function tsConstants(s: string): Map<string, Literal> {
  const out = new Map<string, Literal>();
  for (const m of s.matchAll(/^(?:export\s+)?const\s+([A-Za-z_]\w*)\s*=\s*(?=['"`])/gm)) {
    const l = readLiteral(s, (m.index ?? 0) + m[0].length);
    if (l) out.set(m[1], l);
  }
  return out;
}

/** Blanks line and block comments (outside strings and templates), keeping offsets and line numbers. */
function stripComments(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "'" || c === '"' || c === '`') {
      const l = readLiteral(s, i);
      if (l) { out += s.slice(i, l.end); i = l.end - 1; continue; }
    }
    if (c === '/' && s[i + 1] === '/') {
      const j = s.indexOf('\n', i);
      const end = j < 0 ? s.length : j;
      out += ' '.repeat(end - i);
      i = end - 1;
      continue;
    }
    if (c === '/' && s[i + 1] === '*') {
      const j = s.indexOf('*/', i + 2);
      const end = j < 0 ? s.length : j + 2;
      out += s.slice(i, end).replace(/[^\n]/g, ' ');
      i = end - 1;
      continue;
    }
    out += c;
  }
  return out;
}

const EXEC_FILE = /\b(execFile|execFileSync|spawn|spawnSync)\(\s*/g;
const EXEC_SHELL = /\b(exec|execSync)\(\s*(?=['"`])/g;

/** The external commands a TS/JS file starts (see the header for what counts). */
export function scanScriptSource(source: string): ScanResult {
  const s = stripComments(source);
  const result: ScanResult = { uses: [], unseen: [] };
  const consts = tsConstants(s);
  const fns = tsFunctions(s);
  const shell = (l: Literal, text = l.value): void => {
    let t = text;
    const lead = /^\$X/.exec(t) && l.parts[0] && consts.get(l.parts[0].trim());
    if (lead) t = lead.value + t.slice(2);
    scanShellInto(t, lineOf(s, l.start), result, new Set());
  };

  for (const m of s.matchAll(EXEC_FILE)) {
    const at = (m.index ?? 0) + m[0].length;
    const name = readLiteral(s, at);
    if (!name) {
      result.unseen.push({ name: /^[^,)]*/.exec(s.slice(at))?.[0].slice(0, 40) ?? '?', line: lineOf(s, at) });
      continue;
    }
    const after = s.slice(name.end).match(/^\s*,\s*\[/);
    const argv: (string | undefined)[] = [name.value];
    if (after) {
      const { literals, end } = literalsIn(s, name.end + after[0].length, false);
      // literal elements in order; anything between them (a spread, a variable) is an unknown element
      let k = name.end + after[0].length;
      for (const l of literals) {
        if (s.slice(k, l.start).replace(/[\s,]/g, '') !== '') argv.push(undefined);
        argv.push(l.parts.length ? undefined : l.value);
        k = l.end;
      }
      if (s.slice(k, end).replace(/[\s,]/g, '') !== '') argv.push(undefined);
    }
    analyseArgv(argv, lineOf(s, name.start), result);
  }
  for (const m of s.matchAll(EXEC_SHELL)) {
    const l = readLiteral(s, (m.index ?? 0) + m[0].length);
    if (l) shell(l);
  }
  // local functions that hand their parameter to bash -c: their literal arguments are shell
  for (const [fname, f] of fns) {
    if (!f.param || !new RegExp(`['"]-c['"]\\s*,\\s*${f.param}\\b`).test(f.body)) continue;
    for (const m of s.matchAll(new RegExp(`(?<![\\w.])${fname}\\(\\s*(?=['"\`])`, 'g'))) {
      const l = readLiteral(s, (m.index ?? 0) + m[0].length);
      if (l) shell(l);
    }
  }
  // script: payloads
  for (const m of s.matchAll(/\bscript:\s*/g)) {
    const at = (m.index ?? 0) + m[0].length;
    const { literals, idents } = literalsIn(s, at, true);
    if (s[at] === '[') {
      const joined = literals.map((l) => l.value).join('\n');
      if (literals[0]) shell(literals[0], joined);
    } else {
      for (const l of literals) shell(l);
    }
    for (const id of idents) {
      const f = fns.get(id);
      if (!f) continue;
      const inner = literalsIn(f.body, 1, false).literals;
      for (const l of inner) shell({ ...l, start: l.start + f.bodyStart });
    }
  }
  return result;
}
