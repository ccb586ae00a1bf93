/**
 * Errors of the rule language. A RuleError carries the exact text ipvsadm prints on stderr
 * (without the final newline) and the exit status ipvsadm ends with.
 */

/** Exit statuses ipvsadm uses. */
export const EXIT = {
  /** fail(2, ...) for bad input */
  BAD_INPUT: 2,
  /** popt errors and kernel errors: ipvsadm returns -1 from main */
  POPT_OR_KERNEL: 255,
  /** listing failures (no such service for -L svc, /proc unreadable) */
  LIST: 1,
} as const;

export class RuleError extends Error {
  constructor(
    message: string,
    /** exit status ipvsadm ends with for this error */
    readonly exitStatus: number,
  ) {
    super(message);
    this.name = 'RuleError';
  }
}

/** One bad line of a rule file. */
export interface RuleLineError {
  source: string;
  line: number;
  message: string;
  exitStatus: number;
}

/** Every bad line of a rule file, reported together; message has one `<source>:line N: text` per line. */
export class RuleFileError extends Error {
  constructor(readonly errors: readonly RuleLineError[]) {
    super(errors.map((e) => `${e.source}:line ${e.line}: ${e.message.trimEnd()}`).join('\n'));
    this.name = 'RuleFileError';
  }

  /** The exit status of the first error (what ipvsadm would have stopped with). */
  get exitStatus(): number {
    return this.errors[0]?.exitStatus ?? EXIT.BAD_INPUT;
  }
}
