/** Problems found in a keepalived configuration: each names the file, the line and the keyword. */

export interface ConfigProblem {
  file: string;
  line: number;
  keyword: string;
  message: string;
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}: ${p.keyword ? `${p.keyword}: ` : ''}${p.message}`;
}

/** Every problem of a keepalived configuration, reported together; nothing of it is applied. */
export class KeepalivedConfigError extends Error {
  override name = 'KeepalivedConfigError';
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
  }
}
