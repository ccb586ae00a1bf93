/**
 * The part of libpopt 1.19 that ipvsadm's argument handling depends on: short options (bundled,
 * with attached or `=` arguments), long options (`--name value`, `--name=value`, exact names
 * only), optional arguments (taken only when the next word does not start with '-'), `--`, and
 * non-option words kept as leftovers. popt aliases, exec entries and `!#:+` expansion are not
 * used by ipvsadm's table and are not reproduced.
 */
import type { OptionDef } from './options';

export type PoptErrorCode = 'NOARG' | 'BADOPT' | 'UNWANTEDARG';

/** poptStrerror() texts. */
export const POPT_ERROR_TEXT: Readonly<Record<PoptErrorCode, string>> = {
  NOARG: 'missing argument',
  BADOPT: 'unknown option',
  UNWANTEDARG: 'option does not take an argument',
};

export type PoptEvent =
  | { kind: 'option'; def: OptionDef; arg: string | null }
  | { kind: 'end' }
  | { kind: 'error'; code: PoptErrorCode };

export class PoptContext {
  private next = 0;
  private nextCharArg: string | null = null;
  private restLeftover = false;
  private readonly leftovers: string[] = [];
  private leftoverIndex = 0;

  /** argv without the program name. */
  constructor(
    private readonly argv: readonly string[],
    private readonly table: readonly OptionDef[],
  ) {}

  /** poptBadOption(): the last argv word popt consumed. */
  badOption(): string {
    return this.argv[this.next - 1] ?? '';
  }

  /** poptGetArg(): the next leftover (non-option) word. */
  getArg(): string | undefined {
    return this.leftovers[this.leftoverIndex++];
  }

  /** poptGetNextOpt(). */
  nextOption(): PoptEvent {
    for (;;) {
      let def: OptionDef | undefined;
      let longArg: string | null = null;
      if (this.nextCharArg === null) {
        if (this.next >= this.argv.length) return { kind: 'end' };
        const word = this.argv[this.next++];
        if (this.restLeftover || word[0] !== '-' || word === '-') {
          this.leftovers.push(word);
          continue;
        }
        if (word === '--') {
          this.restLeftover = true;
          continue;
        }
        let body = word.slice(1);
        const doubleDash = body[0] === '-';
        if (doubleDash) body = body.slice(1);
        const eq = body.indexOf('=');
        const name = eq >= 0 ? body.slice(0, eq) : body;
        if (eq >= 0) longArg = body.slice(eq + 1);
        if (doubleDash) {
          // No option of ipvsadm's table is ONEDASH, so long names need "--".
          def = this.table.find((o) => o.long === name);
          if (!def) return { kind: 'error', code: 'BADOPT' };
        } else {
          this.nextCharArg = word.slice(1);
          longArg = null;
        }
      }
      if (this.nextCharArg !== null) {
        const chars = this.nextCharArg;
        this.nextCharArg = null;
        def = this.table.find((o) => o.short === chars[0]);
        if (!def) return { kind: 'error', code: 'BADOPT' };
        if (chars.length > 1) this.nextCharArg = chars.slice(1);
      }
      if (!def) return { kind: 'error', code: 'BADOPT' };
      if (def.arg === 'none') {
        if (longArg !== null || (this.nextCharArg !== null && this.nextCharArg[0] === '=')) {
          return { kind: 'error', code: 'UNWANTEDARG' };
        }
        return { kind: 'option', def, arg: null };
      }
      let arg: string | null;
      if (longArg !== null) {
        arg = longArg;
      } else if (this.nextCharArg !== null) {
        arg = this.nextCharArg[0] === '=' ? this.nextCharArg.slice(1) : this.nextCharArg;
        this.nextCharArg = null;
      } else if (this.next >= this.argv.length) {
        if (def.arg !== 'optional') return { kind: 'error', code: 'NOARG' };
        arg = null;
      } else if (def.arg === 'optional' && this.argv[this.next][0] === '-') {
        arg = null;
      } else {
        arg = this.argv[this.next++];
      }
      return { kind: 'option', def, arg };
    }
  }
}
