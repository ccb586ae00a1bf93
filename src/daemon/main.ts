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
import { ConfigError, helpText, kubernetesEnabled, loadConfig, splitArgs, type DaemonConfig } from './config';
import { ChangeRefused, Daemon, VERSION } from './daemon';
import { startDataPath } from './datapath';
import { daemonOnBus, serveDbus, type DbusService } from './dbus';
import { createLogger, type Logger } from './log';
import { hasBpfMode } from './kernel-bpf';
import { chooseMode, readNetState, type NetState } from './preflight';
import { KubeProxyConfigError } from '../kube/proxy-config';
import type { KeepalivedConfig } from '../keepalived';
import { readKeepalivedConfigs } from '../sources/keepalived';
import { readRuleSet, RuleSourceError } from '../sources/rule-files';
import { SourceError } from '../sources/source';
import { configuredSources, kubeSettings, ruleFilePaths, type KubeSettings } from './sources';
import { teardown } from './teardown';
import { RuleFileError } from '../ipvs/rules';
import { CONTENT_TYPE, DaemonMetrics } from '../metrics/registry';
import { parseListen, serveMetrics, type MetricsServer } from '../metrics/server';

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

/**
 * --check-config: the configuration, every rule file, and (modes bpf and auto) whether this namespace has
 * the interfaces and SNAT addresses bpf mode needs; prints what it found. Reads, never changes, the kernel.
 */
export async function checkConfig(args: readonly string[], io: MainIo, net: () => Promise<NetState> = readNetState): Promise<number> {
  const cfg = configOrReport(args, io);
  if (cfg === EX_CONFIG) return EX_CONFIG;
  let rules;
  try {
    rules = readRuleSet(ruleFilePaths(cfg));
  } catch (e) {
    if (e instanceof RuleFileError || e instanceof RuleSourceError) {
      io.err(`${PROGRAM}: rules invalid:\n${e.message}\n`);
      return EX_CONFIG;
    }
    throw e;
  }
  let keepalived: KeepalivedConfig | undefined;
  if (cfg.keepalived.length > 0) {
    try {
      keepalived = readKeepalivedConfigs(cfg.keepalived);
    } catch (e) {
      if (e instanceof SourceError) {
        io.err(`${PROGRAM}: keepalived configuration invalid:\n${e.message}\n`);
        return EX_CONFIG;
      }
      throw e;
    }
  }
  let kube: KubeSettings | undefined;
  if (kubernetesEnabled(cfg)) {
    try {
      kube = kubeSettings(cfg, io.env);
    } catch (e) {
      if (e instanceof KubeProxyConfigError) {
        io.err(`${PROGRAM}: kube-proxy configuration invalid:\n${e.message}\n`);
        return EX_CONFIG;
      }
      if (e instanceof SourceError) {
        io.err(`${PROGRAM}: kubernetes configuration invalid:\n${e.message}\n`);
        return EX_CONFIG;
      }
      throw e;
    }
  }
  const choice = chooseMode(cfg, hasBpfMode(), cfg.mode === 'ipvs' ? { links: new Set(), addresses: new Map() } : await net());
  if (choice.problems.length) {
    io.err(`${PROGRAM}: configuration invalid (mode bpf):\n${choice.problems.join('\n')}\n`);
    return EX_CONFIG;
  }
  const dests = rules.services.reduce((n, s) => n + s.destinations.length, 0);
  io.out(`configuration ${cfg.config || '(defaults, no file)'}: valid; mode ${cfg.mode}\n`);
  if (cfg.mode === 'auto') io.out(`mode auto: a start here runs ${choice.mode === 'bpf' ? 'the BPF mode' : 'plain IPVS'}: ${choice.reason.replace(/^auto: /, '')}\n`);
  io.out(`rules ${rules.files.join(', ') || '(no files)'}: valid; ${rules.services.length} services, ${dests} real servers\n`);
  for (const i of rules.ignored) io.out(`${i.source}:line ${i.line}: will be ignored: ${i.why}\n`);
  if (keepalived) {
    const vss = keepalived.virtualServers;
    const count = (f: (vs: (typeof vss)[number]) => number): number => vss.reduce((n, vs) => n + f(vs), 0);
    io.out(
      `keepalived ${cfg.keepalived.join(', ')}: valid; ${vss.length} virtual servers, ${count((vs) => vs.services.length)} services, `
        + `${count((vs) => vs.realServers.length)} real servers, ${count((vs) => vs.realServers.reduce((n, r) => n + r.checkers.length, 0))} checkers\n`,
    );
    for (const line of [...keepalived.ignored, ...keepalived.warnings]) io.out(`keepalived: ${line}\n`);
  }
  if (kube) {
    const p = kube.proxy;
    if (p.file) io.out(`kube-proxy configuration ${p.file}: valid; scheduler ${p.ipvs.scheduler}\n`);
    for (const i of p.ignored) io.out(`${p.file}: ${i.field}: will be ignored: ${i.why}\n`);
    io.out(`kubernetes: node ${kube.nodeName}, ${kube.conn.origin} (${kube.conn.server}), families ${kube.families.join(' and ')}\n`);
  }
  return 0;
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
  // Signals first: a SIGTERM while the start applies the rules must not end the process under its
  // transaction (Node's default action), and neither may a SIGHUP.
  let stopping: ((sig: string) => void) | undefined;
  let stopAfterStart: string | undefined;
  const onStopSignal = (sig: string): void => {
    if (stopping) return stopping(sig);
    if (stopAfterStart) return void log.notice(`${sig}: still starting; stopping once the start's changes are applied (all or nothing)`);
    stopAfterStart = sig;
    log.notice(`${sig} while starting: stopping once the start's changes are applied (all or nothing)`);
  };
  const onTerm = (): void => onStopSignal('SIGTERM');
  const onInt = (): void => onStopSignal('SIGINT');
  let onHup = (): void => void log.notice('SIGHUP while starting: ignored (the start reads the files anyway)');
  const hup = (): void => onHup();
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  process.on('SIGHUP', hup);
  const unhook = (): void => {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    process.off('SIGHUP', hup);
  };

  let ipvs: IpvsClient;
  try {
    ipvs = await IpvsClient.open();
  } catch (e) {
    unhook();
    const hint = e instanceof IpvsUnavailableError ? ' (is the ip_vs module loaded? modprobe ip_vs)' : '';
    log.error(`cannot talk to IPVS, not starting: ${e instanceof Error ? e.message : String(e)}${hint}`);
    return 1;
  }

  let daemon: Daemon | undefined;
  // Made before the start so that the start's reconcile is measured; scraped only once the daemon runs.
  const metrics = cfg.metrics.listen === '' ? undefined : new DaemonMetrics({
    source: { services: () => ipvs.services(), dataPath: () => daemon!.dataPathReading() },
    cacheMs: cfg.metrics.cacheMs,
    onDumpError: (e) => log.warning(`metrics: cannot read the IPVS table for a scrape: ${e instanceof Error ? e.message : String(e)}`),
  });
  try {
    daemon = await Daemon.start(cfg, { log, loadConfig: load, ipvs, dataPath: startDataPath, observer: metrics, sources: configuredSources(log, ipvs, metrics?.health) });
  } catch (e) {
    unhook();
    ipvs.close();
    if (e instanceof ChangeRefused && e.kind === 'InvalidConfig') {
      log.error(`configuration invalid, not starting (IPVS left as it was):\n${e.message}`);
      return EX_CONFIG;
    }
    if (e instanceof ChangeRefused && e.kind === 'InvalidRules') {
      log.error(`rules invalid, not starting (IPVS left as it was):\n${e.message}`);
      return EX_CONFIG;
    }
    log.error(`start failed (IPVS left as it was): ${e instanceof IpvsError || e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
  if (stopAfterStart) {
    unhook();
    daemon.close();
    log.notice(`${stopAfterStart}: stopped after the start's changes; IPVS rules and the data path stay in place`);
    return 0;
  }

  let scrapes: MetricsServer | undefined;
  if (metrics) {
    try {
      scrapes = await serveMetrics(metrics, parseListen(cfg.metrics.listen), {
        contentType: CONTENT_TYPE,
        onError: (e) => log.warning(`metrics: scrape failed: ${e instanceof Error ? e.message : String(e)}`),
      });
      log.info(`metrics at http://${scrapes.address}/metrics`);
    } catch (e) {
      unhook();
      log.error(`metrics: cannot listen on ${cfg.metrics.listen}: ${e instanceof Error ? e.message : String(e)}`);
      daemon.close();
      return 1;
    }
  }

  let dbus: DbusService | undefined;
  if (cfg.dbus.bus !== 'none') {
    try {
      dbus = await serveDbus(daemon, log, cfg.dbus.bus);
    } catch (e) {
      unhook();
      log.error(`D-Bus: ${e instanceof Error ? e.message : String(e)}`);
      await scrapes?.close();
      daemon.close();
      return 1;
    }
  }
  log.info(`ready${dbus ? ' (D-Bus name taken)' : ''}`);

  let timer = setInterval(() => void daemon.refresh(), cfg.statusInterval * 1000);
  return new Promise<number>((resolve) => {
    let exiting = false;
    /** Stop: refuse new changes, let the running one finish (its rollback too), close, leave everything in place. */
    const shutdown = async (why: string, code: number): Promise<void> => {
      if (exiting) {
        const busy = daemon.busyWith;
        log.notice(`${why}: already stopping${busy ? `; waiting for the running ${busy}` : ''}`);
        return;
      }
      exiting = true;
      clearInterval(timer);
      const busy = daemon.busyWith;
      if (busy) log.notice(`${why}: waiting for the running ${busy} to finish (all or nothing) before stopping`);
      try {
        await daemon.stop();
      } catch (e) {
        log.error(`stopping: ${e instanceof Error ? e.message : String(e)}`);
      } finally {
        dbus?.close();
        await scrapes?.close();
        unhook();
        resolve(code);
      }
    };
    onHup = (): void => {
      if (exiting) return void log.notice('SIGHUP while stopping: ignored');
      log.info('SIGHUP: reloading');
      daemon.reload().then(
        () => {
          if (exiting) return;
          clearInterval(timer);
          timer = setInterval(() => void daemon.refresh(), daemon.config.statusInterval * 1000);
        },
        () => undefined, // logged by reload()
      );
    };
    stopping = (sig: string): void => {
      if (!exiting) log.notice(`${sig}: stopping; IPVS rules and the data path stay in place`);
      void shutdown(sig, 0);
    };
    dbus?.onLost((why) => {
      log.error(`D-Bus connection lost (${why}): exiting with status 1 so that systemd restarts the daemon; IPVS rules and the data path stay in place`);
      void shutdown('D-Bus connection lost', 1);
    });
  });
}
