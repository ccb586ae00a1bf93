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
import { parseCommand, type ParseOptions } from './parse';

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
  const lines = text.split('\n');
  lines.forEach((raw, k) => {
    const words = raw.split(/[ \t\r]+/).filter((w) => w !== '' && w !== 'ipvsadm');
    if (words.length === 0) return;
    if (raw.trimStart().startsWith('#')) return;
    out.push({ line: k + 1, argv: words });
  });
  return out;
}

const READ_ONLY = new Set<Command['kind']>(['list', 'save', 'help', 'version']);

/**
 * Parse a whole rule file. Throws RuleFileError naming every bad line as
 * `<source>:line N: message` when any line is bad; nothing is applied by this function.
 */
export function parseRules(text: string, source: string, opts: ParseOptions = {}): ParsedRules {
  const commands: RuleLine[] = [];
  const errors: RuleLineError[] = [];
  for (const { line, argv } of tokenizeRules(text)) {
    try {
      const command = parseCommand(argv, opts);
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
  }
  if (errors.length > 0) throw new RuleFileError(errors);
  return { commands };
}
