/**
 * The `ipvsadm -R` input: one ipvsadm command per line, words separated by blanks (space, tab,
 * CR), any word "ipvsadm" ignored (so `ipvsadm -A ...` lines work), blank lines skipped — as
 * ipvsadm's config_stream_read() reads it.
 *
 * Differences from ipvsadm, on purpose:
 * - Lines whose first non-blank character is '#' are comments. (ipvsadm -R passes them to the
 *   parser and stops with "Try `ipvsadm -h'..."; the ipvsadm-restore script drops lines starting
 *   with '#', which is what rule files are written for.) A '#' later in a line is an ordinary word,
 *   which ipvsadm rejects as "unexpected argument #", and so do we.
 * - The whole input is checked before anything is applied, and every bad line is reported.
 * - Commands that only read or print (-L, -S, -R, -h, -v) are refused in a rule file.
 */
import type { Command } from './command';
import { EXIT, RuleError, RuleFileError, type RuleLineError } from './errors';
import { parseCommand, parseSavedRule, type ParseOptions } from './parse';

export interface RuleLine {
  /** 1-based line number in the source text */
  line: number;
  command: Command;
}

export interface ParsedRules {
  commands: RuleLine[];
}

/** Split rule-file text into the argument vector of each line (without "ipvsadm"). */
export function tokenizeRules(text: string): { line: number; argv: string[] }[] {
  const out: { line: number; argv: string[] }[] = [];
  forEachRuleLine(text, (line, argv) => void out.push({ line, argv }));
  return out;
}

/**
 * Calls `each` with the argument vector of each line that has one (not blank, not a comment), in order.
 * One line at a time, so that a parser can drop each vector as soon as it is read.
 */
function forEachRuleLine(text: string, each: (line: number, argv: string[]) => void): void {
  const len = text.length;
  let line = 0;
  // Lines as text.split('\n') gives them (the text after a final newline is one more, empty, line).
  for (let start = 0; start <= len; ) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = len;
    line++;
    const argv = lineWords(text, start, end);
    // A comment line: its first non-blank character (as String.prototype.trimStart() sees blanks) is '#'.
    const comment = argv.length > 0 && text.charCodeAt(start) !== 45 && text.slice(start, end).trimStart().startsWith('#');
    if (argv.length > 0 && !comment) each(line, argv);
    start = end + 1;
  }
}

/** The words of text[start, end) separated by runs of space, tab and CR, without the words "ipvsadm". */
function lineWords(text: string, start: number, end: number): string[] {
  const words: string[] = [];
  let w = -1;
  for (let i = start; i <= end; i++) {
    const c = i < end ? text.charCodeAt(i) : 32;
    if (c === 32 || c === 9 || c === 13) {
      if (w >= 0) {
        const word = text.slice(w, i);
        if (word !== 'ipvsadm') words.push(word);
        w = -1;
      }
    } else if (w < 0) w = i;
  }
  return words;
}

const READ_ONLY = new Set<Command['kind']>(['list', 'save', 'help', 'version']);

/**
 * Parse a whole rule file. Throws RuleFileError naming every bad line as
 * `<source>:line N: message` when any line is bad; nothing is applied by this function.
 */
export function parseRules(text: string, source: string, opts: ParseOptions = {}): ParsedRules {
  const commands: RuleLine[] = [];
  const errors: RuleLineError[] = [];
  forEachRuleLine(text, (line, argv) => {
    try {
      const command = parseSavedRule(argv) ?? parseCommand(argv, opts);
      if (command.kind === 'restore') {
        // ipvsadm refuses -R while reading -R input ("avoid infinite loop").
        const program = opts.program ?? 'ipvsadm';
        throw new RuleError(`Try \`${program} -h' or '${program} --help' for more information.`, EXIT.POPT_OR_KERNEL);
      }
      if (READ_ONLY.has(command.kind)) {
        throw new RuleError(`the '${argv[0]}' command only prints and is not allowed in a rule file`, EXIT.BAD_INPUT);
      }
      commands.push({ line, command });
    } catch (e) {
      if (!(e instanceof RuleError)) throw e;
      errors.push({ source, line, message: e.message, exitStatus: e.exitStatus });
    }
  });
  if (errors.length > 0) throw new RuleFileError(errors);
  return { commands };
}
