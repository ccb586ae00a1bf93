/**
 * ipvs-bpfctl: a drop-in for ipvsadm over our generic-netlink client.
 *
 * Same arguments, same output, same messages and exit statuses as ipvsadm 1.31, with one deliberate
 * difference: `-R` is atomic. The whole input is parsed and checked against the kernel's current table
 * before anything changes; if the kernel still refuses a change part-way, what was applied is rolled back,
 * the error names the input line and the exit status is non-zero.
 */
import { readFileSync } from 'fs';
import { IpvsError, IpvsUnavailableError } from '../ipvs/errors';
import type { DesiredService, IpvsOp, ServiceState } from '../ipvs/model';
import { IpvsClient } from '../ipvs/netlink';
import {
  type Command,
  EXIT,
  RuleError,
  RuleFileError,
  type RuleLine,
  commandToOp,
  formatConnections,
  formatDaemons,
  formatList,
  formatTimeouts,
  listFormatter,
  parseCommand,
  parseRules,
  replayRules,
  saveFormatter,
  type TableFormatter,
  usageText,
  versionText,
} from '../ipvs/rules';
import { applyAtomically, TransactionError } from '../ipvs/transaction';

const PROGRAM = 'ipvs-bpfctl';

/** Where output goes; injectable so tests can run main() in-process. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Standard input as text (for -R). */
  stdin(): string;
}

const processIo: Io = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  stdin: () => readFileSync(0, 'utf8'),
};

const EXTRA_HELP = `
${PROGRAM} differences from ipvsadm:
  -R is atomic: the whole input is checked against the kernel's table first, and a change the kernel
     refuses part-way rolls back what was applied. Errors name the line ("line N: ..."), exit status 255.
  Lines starting with '#' in -R input are comments.
`;

/** Run one command line; resolves to the exit status. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  // Loaded only for `status`: it pulls in dbus-next, which every other command would pay for at start.
  if (argv[0] === 'status') return (await import('./status')).statusMain(argv.slice(1), io);
  if (argv[0] === 'drain') return (await import('./drain')).drainMain(argv.slice(1), io);
  let command: Command;
  try {
    command = parseCommand(argv, { program: PROGRAM });
  } catch (e) {
    if (e instanceof RuleError) {
      // RuleError's message is ipvsadm's stderr without its final newline.
      io.err(`${e.message}\n`);
      return e.exitStatus;
    }
    throw e;
  }
  if (command.kind === 'help') {
    io.out(usageText(PROGRAM) + EXTRA_HELP);
    return 0;
  }
  if (command.kind === 'version') {
    io.out(versionText());
    return 0;
  }
  if (command.kind === 'list' && command.target.what === 'connections') {
    return listConnections(command, io);
  }

  // -R input is parsed before the kernel is asked anything: bad input is reported on any machine.
  let restoreLines: RuleLine[] | undefined;
  if (command.kind === 'restore') {
    try {
      restoreLines = parseRules(io.stdin(), '', { program: PROGRAM }).commands;
    } catch (e) {
      if (e instanceof RuleFileError) return reportRuleErrors(e, io);
      throw e;
    }
  }

  let client: IpvsClient;
  try {
    client = await IpvsClient.open();
  } catch (e) {
    return reportOpenError(e, io);
  }
  try {
    return restoreLines ? await restore(client, restoreLines, io) : await run(client, command, io);
  } catch (e) {
    if (e instanceof IpvsError) {
      io.err(`${e.message}\n`);
      return EXIT.POPT_OR_KERNEL;
    }
    throw e;
  } finally {
    client.close();
  }
}

function reportOpenError(e: unknown, io: Io): number {
  if (e instanceof IpvsUnavailableError) {
    io.err(`${PROGRAM}: ${e.message}\n`);
    return EXIT.BAD_INPUT;
  }
  if (e instanceof IpvsError && (e.code === 'EPERM' || e.code === 'EACCES')) {
    io.err(`${PROGRAM}: permission denied talking to IPVS: run as root (CAP_NET_ADMIN is required)\n`);
    return EXIT.BAD_INPUT;
  }
  if (e instanceof IpvsError) {
    io.err(`${PROGRAM}: cannot talk to IPVS: ${e.message}\n`);
    return EXIT.BAD_INPUT;
  }
  throw e;
}

function listConnections(command: Extract<Command, { kind: 'list' }>, io: Io): number {
  let text: string;
  try {
    text = readFileSync('/proc/net/ip_vs_conn', 'utf8');
  } catch {
    io.err('Could not open the /proc/net/ip_vs_conn file\n');
    return EXIT.LIST;
  }
  io.out(formatConnections(text, { numeric: command.format.numeric, persistentConn: command.format.persistentConn }));
  return 0;
}

async function run(client: IpvsClient, command: Command, io: Io): Promise<number> {
  switch (command.kind) {
    case 'restore':
      throw new Error('restore is handled by main()');
    case 'save':
      await printTable(client, saveFormatter({ numeric: command.numeric }), { counters: false }, io);
      return 0;
    case 'list':
      return list(client, command, io);
    default: {
      const op = commandToOp(command);
      if (!op) throw new Error(`unhandled command ${command.kind}`);
      await applyOne(client, op);
      return 0;
    }
  }
}

async function applyOne(client: IpvsClient, op: IpvsOp): Promise<void> {
  const r = await client.apply([op]);
  const first = r.results[0];
  if (first && (first.status === 'failed' || first.status === 'unknown')) throw first.error;
}

async function list(client: IpvsClient, command: Extract<Command, { kind: 'list' }>, io: Io): Promise<number> {
  const { target, format } = command;
  // Only --stats and --rate print counters; decoding them is most of a listing's garbage.
  const read = { counters: format.stats || format.rate };
  switch (target.what) {
    case 'services': {
      const info = await client.info();
      await printTable(client, listFormatter({ ...format, info }), read, io);
      return 0;
    }
    case 'service': {
      const svc = await client.service(target.service, read);
      if (!svc) {
        io.err('No such service\n');
        return EXIT.LIST;
      }
      io.out(formatList([svc], format));
      return 0;
    }
    case 'timeout':
      io.out(formatTimeouts(await client.timeouts()));
      return 0;
    case 'daemon':
      io.out(formatDaemons(await client.daemons()));
      return 0;
    case 'connections':
      return listConnections(command, io);
  }
}

/** Output is handed to io.out in pieces of about this many characters. */
const OUT_CHUNK = 1 << 16;

/**
 * The whole table through `f`: each service's text is made as soon as its real servers are decoded, while
 * the kernel still answers for the next ones, and the real servers are then dropped (a 10k x 10 table is
 * never held as 100k objects). Printed once the read is complete, in 64 KiB pieces: a read that fails
 * part-way prints nothing.
 */
async function printTable(client: IpvsClient, f: TableFormatter<ServiceState>, read: { counters: boolean }, io: Io): Promise<void> {
  const texts: string[] = [f.header];
  await client.eachService({ ...read, order: (l) => f.order(l) }, (svc) => void texts.push(f.service(svc)));
  let pending: string[] = [];
  let size = 0;
  for (const t of texts) {
    pending.push(t);
    size += t.length;
    if (size >= OUT_CHUNK) {
      io.out(pending.join(''));
      pending = [];
      size = 0;
    }
  }
  if (size > 0) io.out(pending.join(''));
}

/** Atomic `-R`: parse all, check all against the kernel's table, apply, roll back on refusal. */
async function restore(client: IpvsClient, lines: readonly RuleLine[], io: Io): Promise<number> {
  const before: DesiredService[] = await client.services({ counters: false });
  try {
    replayRules(lines, { initial: before, source: '' });
  } catch (e) {
    if (e instanceof RuleFileError) return reportRuleErrors(e, io);
    throw e;
  }
  const ops = lines.flatMap(({ line, command }) => {
    const op = commandToOp(command);
    return op ? [{ op, line }] : [];
  });
  const needs = new Set(ops.map((o) => o.op.op));
  const ctx = {
    ...(needs.has('set-timeouts') ? { timeouts: await client.timeouts() } : {}),
    ...(needs.has('stop-daemon') ? { daemons: await client.daemons() } : {}),
  };
  try {
    await applyAtomically(client, ops, before, ctx);
  } catch (e) {
    if (e instanceof TransactionError) {
      io.err(`${e.message}\n`);
      return EXIT.POPT_OR_KERNEL;
    }
    throw e;
  }
  return 0;
}

function reportRuleErrors(e: RuleFileError, io: Io): number {
  for (const x of e.errors) io.err(`line ${x.line}: ${x.message.trimEnd()}\n`);
  io.err(`${PROGRAM}: -R input refused; nothing was changed\n`);
  return e.exitStatus;
}
