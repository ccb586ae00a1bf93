/**
 * Logging with winston at syslog priorities. Under systemd (JOURNAL_STREAM set: stderr is a journal
 * stream) each line is `<N>message`, N the syslog priority, no timestamp and no colour, so journald keeps
 * the level (`journalctl -p warning` works). Elsewhere lines are human-readable with a timestamp, coloured
 * on a terminal. The level can be changed while running (setLevel; D-Bus LogControl1.LogLevel).
 */
import { Writable } from 'stream';
import * as winston from 'winston';
import { LOG_LEVELS, type LogLevel } from './config';

/** Syslog priority of each level name (emerg 0 .. debug 7). */
export const PRIORITY: Readonly<Record<LogLevel, number>> = Object.freeze(
  Object.fromEntries(LOG_LEVELS.map((l, i) => [l, i])) as Record<LogLevel, number>,
);

export interface Logger {
  emerg(msg: string): void;
  alert(msg: string): void;
  crit(msg: string): void;
  error(msg: string): void;
  warning(msg: string): void;
  notice(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  readonly level: LogLevel;
  setLevel(level: LogLevel): void;
}

export interface LoggerOptions {
  level: LogLevel;
  /** Journal format (default: JOURNAL_STREAM is set). */
  journal?: boolean;
  /** Colours in the human format (default: stderr is a terminal). */
  colors?: boolean;
  /** Where lines go (default: stderr). */
  write?: (line: string) => void;
}

/** One line in the journal format: the priority prefix on every line of a multi-line message. */
export function journalLine(level: LogLevel, message: string): string {
  const p = `<${PRIORITY[level]}>`;
  return message.split('\n').map((l) => p + l).join('\n');
}

/** One line in the human format. */
export function humanLine(level: LogLevel, message: string, time: Date, colors = false): string {
  const tag = level.toUpperCase().padEnd(7);
  const painted = colors ? `${COLOR[level]}${tag}\u001b[0m` : tag;
  return `${time.toISOString()} ${painted} ${message}`;
}

const COLOR: Record<LogLevel, string> = {
  emerg: '\u001b[1;31m', alert: '\u001b[1;31m', crit: '\u001b[1;31m', error: '\u001b[31m',
  warning: '\u001b[33m', notice: '\u001b[36m', info: '', debug: '\u001b[90m',
};

class LineTransport extends winston.transports.Stream {
  constructor(write: (line: string) => void) {
    const stream = new Writable({
      write(chunk: Buffer | string, _encoding, done): void {
        write(String(chunk));
        done();
      },
    });
    super({ stream, eol: '\n' });
  }
}

export function createLogger(opts: LoggerOptions): Logger {
  const journal = opts.journal ?? process.env.JOURNAL_STREAM !== undefined;
  const colors = !journal && (opts.colors ?? process.stderr.isTTY === true);
  const format = winston.format.printf((info) => {
    const level = info.level as LogLevel;
    const message = String(info.message);
    return journal ? journalLine(level, message) : humanLine(level, message, new Date(), colors);
  });
  const transport = opts.write
    ? new LineTransport(opts.write)
    : new winston.transports.Console({ stderrLevels: [...LOG_LEVELS] });
  const w = winston.createLogger({ levels: { ...PRIORITY }, level: opts.level, format, transports: [transport] });
  let level = opts.level;
  const at = (l: LogLevel) => (msg: string): void => void w.log(l, msg);
  return {
    emerg: at('emerg'), alert: at('alert'), crit: at('crit'), error: at('error'),
    warning: at('warning'), notice: at('notice'), info: at('info'), debug: at('debug'),
    get level() {
      return level;
    },
    setLevel(l: LogLevel): void {
      level = l;
      w.level = l;
    },
  };
}
