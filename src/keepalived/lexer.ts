/**
 * keepalived.conf text -> a tree of statements. The rules are those of keepalived 2.2's reader:
 * words are separated by blanks, "..." is one word without its quotes, a word starting with `!` or
 * `#` starts a comment to the end of the line, `{` and `}` open and close a block (also when
 * written against a word), `include <glob>` reads the matching files in name order with relative
 * patterns taken from the directory of the including file, and `@id`/`@^id` lines are kept only
 * for the configuration id (we have none, so `@^id` lines are kept and `@id` lines dropped).
 * Parameter definitions (`$NAME=`) and `~SEQ`/`~LST` are refused: they are not supported.
 */
import { readdirSync, readFileSync, statSync } from 'fs';
import * as path from 'path';
import { KeepalivedConfigError, type ConfigProblem } from './errors';

export interface Statement {
  file: string;
  line: number;
  /** The first word. */
  keyword: string;
  /** The words after it on the same line (up to a `{`). */
  args: string[];
  /** The statements of its `{ ... }` block, undefined when it has none. */
  block?: Statement[];
}

/** How files are read (a seam for tests; the default reads the file system). */
export interface FileSource {
  read(file: string): string;
  /** Files matching a glob pattern (absolute), sorted; [] when none. */
  glob(pattern: string): string[];
}

interface Token {
  text: string;
  line: number;
  /** A quoted word: never a brace or a comment. */
  quoted: boolean;
}

/** Nested includes deeper than this are refused (keepalived has no limit; a loop would never end). */
export const MAX_INCLUDE_DEPTH = 16;

function tokenizeLine(text: string, lineNo: number, file: string, problems: ConfigProblem[]): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') {
      i++;
      continue;
    }
    if (c === '!' || c === '#') break;
    if (c === '{' || c === '}') {
      out.push({ text: c, line: lineNo, quoted: false });
      i++;
      continue;
    }
    if (c === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0) {
        problems.push({ file, line: lineNo, keyword: out[0]?.text ?? '"', message: 'unmatched quote' });
        return out;
      }
      out.push({ text: text.slice(i + 1, end), line: lineNo, quoted: true });
      i = end + 1;
      continue;
    }
    let j = i;
    while (j < n && !' \t\r\f\v"{}'.includes(text[j])) j++;
    out.push({ text: text.slice(i, j), line: lineNo, quoted: false });
    i = j;
  }
  return out;
}

/** Turns a glob segment into a regular expression (*, ?, [...], {a,b}). */
function segmentRegExp(seg: string): RegExp {
  let re = '';
  let braces = 0;
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = seg.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        let body = seg.slice(i + 1, end);
        if (body.startsWith('!')) body = '^' + body.slice(1);
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '{') {
      braces++;
      re += '(?:';
    } else if (c === '}' && braces > 0) {
      braces--;
      re += ')';
    } else if (c === ',' && braces > 0) re += '|';
    else re += c.replace(/[.+^$()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

const hasWildcard = (s: string): boolean => /[*?[{]/.test(s);

/** The file system as keepalived sees it: glob(3) over directories, hidden files only when named. */
export const fsSource: FileSource = {
  read: (file) => readFileSync(file, 'utf8'),
  glob(pattern) {
    const abs = path.resolve(pattern);
    const parts = abs.split('/').filter((p) => p !== '');
    let bases = ['/'];
    for (const part of parts) {
      const next: string[] = [];
      for (const b of bases) {
        if (!hasWildcard(part)) {
          next.push(path.join(b, part));
          continue;
        }
        let names: string[];
        try {
          names = readdirSync(b);
        } catch {
          continue;
        }
        const re = segmentRegExp(part);
        for (const name of names) if (re.test(name) && (!name.startsWith('.') || part.startsWith('.'))) next.push(path.join(b, name));
      }
      bases = next;
    }
    return bases
      .filter((f) => {
        try {
          return statSync(f).isFile();
        } catch {
          return false;
        }
      })
      .sort();
  },
};

export interface LexResult {
  statements: Statement[];
  /** Every file read, in reading order. */
  files: string[];
}

/**
 * Reads one keepalived.conf and its includes into statements. Collects every problem it finds and
 * throws KeepalivedConfigError with all of them.
 */
export function lexConfig(file: string, src: FileSource = fsSource): LexResult {
  const problems: ConfigProblem[] = [];
  const files: string[] = [];
  const tokensOf = (f: string, depth: number, from?: { file: string; line: number }): { file: string; tok: Token }[] => {
    let text: string;
    try {
      text = src.read(f);
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
      problems.push({ file: from?.file ?? f, line: from?.line ?? 0, keyword: from ? 'include' : '', message: `${f}: ${why}` });
      return [];
    }
    files.push(f);
    const out: { file: string; tok: Token }[] = [];
    const lines = text.split('\n');
    for (let k = 0; k < lines.length; k++) {
      let line = lines[k];
      const lineNo = k + 1;
      const trimmed = line.replace(/^[ \t]+/, '');
      if (trimmed.startsWith('@')) {
        // No config id is set: "@id ..." lines are dropped, "@^id ..." lines are kept.
        const m = /^@(\^?)\S+[ \t]+(.*)$/.exec(trimmed);
        if (!m || m[1] !== '^') continue;
        line = m[2];
      }
      const t = line.replace(/^[ \t]+/, '');
      if (t.startsWith('$') && /^\$[A-Za-z_]\w*\s*=/.test(t)) {
        problems.push({ file: f, line: lineNo, keyword: t.split('=')[0].trim(), message: 'parameter definitions ($NAME=...) are not supported' });
        continue;
      }
      if (t.startsWith('~SEQ') || t.startsWith('~LST')) {
        problems.push({ file: f, line: lineNo, keyword: t.slice(0, 4), message: `${t.slice(0, 4)} is not supported` });
        continue;
      }
      const m = /^include([rmwba]?)[ \t]+(.*?)[ \t\r]*$/.exec(t);
      if (m) {
        const pattern = m[2].replace(/^"(.*)"$/, '$1');
        if (depth >= MAX_INCLUDE_DEPTH) {
          problems.push({ file: f, line: lineNo, keyword: 'include', message: `includes nested more than ${MAX_INCLUDE_DEPTH} deep` });
          continue;
        }
        const abs = path.isAbsolute(pattern) ? pattern : path.join(path.dirname(path.resolve(f)), pattern);
        const matches = src.glob(abs);
        if (matches.length === 0 && !hasWildcard(pattern)) {
          problems.push({ file: f, line: lineNo, keyword: 'include', message: `${abs}: no such file` });
        }
        for (const inc of matches) out.push(...tokensOf(inc, depth + 1, { file: f, line: lineNo }));
        continue;
      }
      for (const tok of tokenizeLine(line, lineNo, f, problems)) out.push({ file: f, tok });
    }
    return out;
  };

  const toks = tokensOf(file, 0);
  // Build the tree: a statement is the words of one line up to `{` or the line's end.
  let pos = 0;
  const parseBlock = (depth: number, open?: { file: string; line: number; keyword: string }): Statement[] => {
    const out: Statement[] = [];
    while (pos < toks.length) {
      const { file: f, tok } = toks[pos];
      if (!tok.quoted && tok.text === '}') {
        pos++;
        if (depth === 0) problems.push({ file: f, line: tok.line, keyword: '}', message: 'unexpected "}" (no block is open)' });
        else return out;
        continue;
      }
      if (!tok.quoted && tok.text === '{') {
        // A block with no keyword: keepalived reads it as part of the statement before.
        const prev = out[out.length - 1];
        pos++;
        const body = parseBlock(depth + 1, { file: f, line: tok.line, keyword: prev?.keyword ?? '{' });
        if (prev && prev.block === undefined) prev.block = body;
        else problems.push({ file: f, line: tok.line, keyword: '{', message: 'a block without a keyword' });
        continue;
      }
      const st: Statement = { file: f, line: tok.line, keyword: tok.text, args: [] };
      pos++;
      while (pos < toks.length && toks[pos].file === f && toks[pos].tok.line === tok.line) {
        const t = toks[pos].tok;
        if (!t.quoted && (t.text === '{' || t.text === '}')) break;
        st.args.push(t.text);
        pos++;
      }
      if (pos < toks.length && !toks[pos].tok.quoted && toks[pos].tok.text === '{') {
        const b = toks[pos];
        pos++;
        st.block = parseBlock(depth + 1, { file: b.file, line: b.tok.line, keyword: st.keyword });
      }
      out.push(st);
    }
    if (open) problems.push({ file: open.file, line: open.line, keyword: open.keyword, message: 'block not closed ("}" missing)' });
    return out;
  };
  const statements = parseBlock(0);
  if (problems.length > 0) throw new KeepalivedConfigError(problems);
  return { statements, files };
}
