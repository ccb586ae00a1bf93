/**
 * `ipvs-bpf`: the daemon's entry point. Reads the configuration, checks the rule files, brings IPVS to
 * them, starts the data path, serves D-Bus (owning the bus name last: that is readiness for Type=dbus),
 * then reloads on SIGHUP and stops on SIGTERM/SIGINT, leaving IPVS and the data path running.
 *
 * `--teardown` removes that data path (after `systemctl stop`); see teardown.ts.
 *
 * Exit statuses: 0 stopped, 1 failed at run time, 78 (EX_CONFIG) bad configuration or rule files (the unit
 * does not restart on it: RestartPreventExitStatus=78).
 */
import { IpvsError, IpvsUnavailableError } from '../ipvs/errors';
import { IpvsClient } from '../ipvs/netlink';
import { ConfigError, helpText, loadConfig, splitArgs, type DaemonConfig } from './config';
import { ChangeRefused, Daemon, VERSION } from './daemon';
import { startDataPath } from './datapath';
import { daemonOnBus, serveDbus, type DbusService } from './dbus';
import { createLogger, type Logger } from './log';
import { readRuleSet, RuleSourceError } from './rules';
import { teardown } from './teardown';
import { RuleFileError } from '../ipvs/rules';

const PROGRAM = 'ipvs-bpf';
export const EX_CONFIG = 78;

export interface MainIo {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
}

const processIo: MainIo = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  env: process.env,
};

/** --check-config: the configuration and every rule file; prints what it found. */
/** The configuration, or EX_CONFIG after saying on stderr why it is invalid (the one-shot actions' way). */
function configOrReport(args: readonly string[], io: MainIo): DaemonConfig | typeof EX_CONFIG {
  try {
    return loadConfig({ args, env: io.env });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    io.err(`${PROGRAM}: configuration invalid: ${e.message}\n`);
    return EX_CONFIG;
  }
}

export function checkConfig(args: readonly string[], io: MainIo): number {
  const cfg = configOrReport(args, io);
  if (cfg === EX_CONFIG) return EX_CONFIG;
  try {
    const rules = readRuleSet(cfg.rules);
    const dests = rules.services.reduce((n, s) => n + s.destinations.length, 0);
    io.out(`configuration ${cfg.config || '(defaults, no file)'}: valid; mode ${cfg.mode}\n`);
    io.out(`rules ${rules.files.join(', ') || '(no files)'}: valid; ${rules.services.length} services, ${dests} real servers\n`);
    for (const i of rules.ignored) io.out(`${i.source}:line ${i.line}: will be ignored: ${i.why}\n`);
    return 0;
  } catch (e) {
    if (e instanceof RuleFileError || e instanceof RuleSourceError) {
      io.err(`${PROGRAM}: rules invalid:\n${e.message}\n`);
      return EX_CONFIG;
    }
    throw e;
  }
}

/**
 * --teardown: removes the data path a stopped daemon leaves in place (see teardown.ts). Refused while a
 * daemon owns the bus name: it would attach everything again at its next reload or restart.
 */
export async function teardownMain(args: readonly string[], io: MainIo): Promise<number> {
  const cfg = configOrReport(args, io);
  if (cfg === EX_CONFIG) return EX_CONFIG;
  if (cfg.dbus.bus !== 'none' && (await daemonOnBus(cfg.dbus.bus))) {
    io.err(`${PROGRAM}: the daemon is running (it owns org.ipvsbpf1 on the ${cfg.dbus.bus} bus); stop it first: systemctl stop ipvs-bpf\n`);
    return 1;
  }
  const r = await teardown(cfg);
  for (const line of r.done) io.out(`${line}\n`);
  if (r.done.length === 0 && r.failed.length === 0) io.out('nothing to tear down\n');
  for (const line of r.failed) io.err(`${PROGRAM}: teardown: ${line}\n`);
  return r.failed.length ? 1 : 0;
}

export async function main(argv: readonly string[], io: MainIo = processIo): Promise<number> {
  let split;
  try {
    split = splitArgs(argv);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    io.err(`${PROGRAM}: ${e.message}\n`);
    return EX_CONFIG;
  }
  const { actions, configArgs } = split;
  if (actions.has('help')) {
    io.out(helpText(PROGRAM));
    return 0;
  }
  if (actions.has('version')) {
    io.out(`${PROGRAM} ${VERSION}\n`);
    return 0;
  }
  if (actions.has('check-config')) return checkConfig(configArgs, io);
  if (actions.has('teardown')) return teardownMain(configArgs, io);

  const load = (): DaemonConfig => loadConfig({ args: configArgs, env: io.env });
  let cfg: DaemonConfig;
  try {
    cfg = load();
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    createLogger({ level: 'info' }).error(`configuration invalid, not starting: ${e.message}`);
    return EX_CONFIG;
  }
  const log = createLogger({ level: cfg.log.level });
  return run(cfg, load, log);
}

async function run(cfg: DaemonConfig, load: () => DaemonConfig, log: Logger): Promise<number> {
  let ipvs: IpvsClient;
  try {
    ipvs = await IpvsClient.open();
  } catch (e) {
    const hint = e instanceof IpvsUnavailableError ? ' (is the ip_vs module loaded? modprobe ip_vs)' : '';
    log.error(`cannot talk to IPVS, not starting: ${e instanceof Error ? e.message : String(e)}${hint}`);
    return 1;
  }

  let daemon: Daemon;
  try {
    daemon = await Daemon.start(cfg, { log, loadConfig: load, ipvs, dataPath: startDataPath });
  } catch (e) {
    ipvs.close();
    if (e instanceof ChangeRefused && (e.kind === 'InvalidRules' || e.kind === 'InvalidConfig')) {
      log.error(`rules invalid, not starting (IPVS left as it was):\n${e.message}`);
      return EX_CONFIG;
    }
    log.error(`start failed (IPVS left as it was): ${e instanceof IpvsError || e instanceof Error ? e.message : String(e)}`);
    return 1;
  }

  let dbus: DbusService | undefined;
  if (cfg.dbus.bus !== 'none') {
    try {
      dbus = await serveDbus(daemon, log, cfg.dbus.bus);
    } catch (e) {
      log.error(`D-Bus: ${e instanceof Error ? e.message : String(e)}`);
      daemon.close();
      return 1;
    }
  }
  log.info(`ready${dbus ? ' (D-Bus name taken)' : ''}`);

  let timer = setInterval(() => void daemon.refresh(), cfg.statusInterval * 1000);
  return new Promise<number>((resolve) => {
    const onHup = (): void => {
      log.info('SIGHUP: reloading');
      daemon.reload().then(
        () => {
          clearInterval(timer);
          timer = setInterval(() => void daemon.refresh(), daemon.config.statusInterval * 1000);
        },
        () => undefined, // logged by reload()
      );
    };
    const stop = (sig: string): void => {
      log.notice(`${sig}: stopping; IPVS rules and the data path stay in place`);
      clearInterval(timer);
      process.off('SIGHUP', onHup);
      dbus?.close();
      daemon.close();
      resolve(0);
    };
    process.on('SIGHUP', onHup);
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
