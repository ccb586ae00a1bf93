/**
 * Runs every checker of a keepalived configuration on its own timer, the way keepalived 2.2.7 paces
 * them, without blocking the daemon: at most `maxConcurrent` attempts are in flight (the rest wait
 * their turn in a queue), every attempt ends within its timeout, and verdicts go to HealthState.
 *
 * Pacing (tcp_epilog and friends): the first attempt runs 1 s + a random part of `warmup` after the
 * start. A pass, or a failure after `retry` further failed attempts `delay_before_retry` apart, is a
 * verdict and the next attempt follows `delay_loop` later. The very first failure is a verdict at once
 * (keepalived starts each checker with its retries used up).
 */
import { spawn } from 'child_process';
import type { Checker } from './config';
import { probe as realProbe, type ProbeResult } from './probes';
import { splitCommand } from './parse';
import type { HealthState } from './state';

/** keepalived's BOOTSTRAP_DELAY: checkers start one second after the daemon. */
export const BOOTSTRAP_DELAY_S = 1;
export const DEFAULT_MAX_CONCURRENT = 64;

export interface SchedulerOptions {
  maxConcurrent?: number;
  /** One attempt of a checker (default: the real probes). */
  probe?: (c: Checker) => Promise<ProbeResult>;
  /** [0, 1) for the warmup spread (default Math.random). */
  random?: () => number;
  /** Called after a verdict that may have changed the IPVS table: the index of its virtual server. */
  onChange?: (vs: number) => void;
  /** One line per verdict and per retry. */
  log?: (level: 'info' | 'notice' | 'warning', message: string) => void;
}

interface Slot {
  vs: number;
  rs: number;
  index: number;
  checker: Checker;
  retryIt: number;
  hasRun: boolean;
  up: boolean;
  lastExit: number | undefined;
  timer?: NodeJS.Timeout;
  queued: boolean;
  running: boolean;
  name: string;
}

export class CheckScheduler {
  private readonly slots: Slot[] = [];
  private readonly queue: Slot[] = [];
  private inFlight = 0;
  private stopped = true;
  private readonly max: number;
  private readonly probe: (c: Checker) => Promise<ProbeResult>;
  private readonly random: () => number;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly state: HealthState,
    private readonly opts: SchedulerOptions = {},
  ) {
    this.max = Math.max(1, opts.maxConcurrent ?? DEFAULT_MAX_CONCURRENT);
    this.probe = opts.probe ?? realProbe;
    this.random = opts.random ?? Math.random;
    state.config.virtualServers.forEach((vs, v) =>
      vs.realServers.forEach((rs, r) =>
        rs.checkers.forEach((c, k) => {
          const known = state.checkerInfo(v, r, k);
          this.slots.push({
            vs: v,
            rs: r,
            index: k,
            checker: c,
            retryIt: known.hasRun ? 0 : c.retry,
            hasRun: known.hasRun,
            up: known.up,
            lastExit: undefined,
            queued: false,
            running: false,
            name: `${c.kind} ${c.connectIp.includes(':') ? `[${c.connectIp}]` : c.connectIp}:${c.connectPort} (real server ${rs.dest.address}:${rs.dest.port} of ${vs.name})`,
          });
        }),
      ),
    );
  }

  /** How many checkers there are. */
  get size(): number {
    return this.slots.length;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    for (const s of this.slots) {
      const warm = s.checker.warmup > 0 ? s.checker.warmup * this.random() : 0;
      this.arm(s, BOOTSTRAP_DELAY_S + warm);
    }
  }

  /** Stops all timers; attempts in flight finish but their verdicts are dropped. Resolves when none is left. */
  stop(): Promise<void> {
    this.stopped = true;
    for (const s of this.slots) {
      if (s.timer) clearTimeout(s.timer);
      s.timer = undefined;
      s.queued = false;
    }
    this.queue.length = 0;
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private arm(s: Slot, seconds: number): void {
    if (this.stopped) return;
    s.timer = setTimeout(() => {
      s.timer = undefined;
      this.enqueue(s);
    }, Math.max(0, Math.round(seconds * 1000)));
    s.timer.unref?.();
  }

  private enqueue(s: Slot): void {
    if (this.stopped || s.queued || s.running) return;
    s.queued = true;
    this.queue.push(s);
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.inFlight < this.max && this.queue.length > 0) {
      const s = this.queue.shift()!;
      s.queued = false;
      s.running = true;
      this.inFlight++;
      this.probe(s.checker)
        .catch((e: unknown): ProbeResult => ({ ok: false, detail: e instanceof Error ? e.message : String(e) }))
        .then((r) => {
          s.running = false;
          this.inFlight--;
          if (!this.stopped) this.epilog(s, r);
          if (this.inFlight === 0 && this.stopped) {
            const w = this.idleWaiters;
            this.idleWaiters = [];
            for (const f of w) f();
          }
          this.pump();
        });
    }
  }

  private epilog(s: Slot, r: ProbeResult): void {
    const c = s.checker;
    const log = this.opts.log ?? ((): void => undefined);
    let changed = false;
    if (c.kind === 'MISC_CHECK' && c.dynamic && r.ok && r.exitStatus !== undefined && r.exitStatus !== s.lastExit) {
      this.state.dynamicWeight(s.vs, s.rs, s.index, r.exitStatus);
      s.lastExit = r.exitStatus;
      changed = true;
    }
    let delay: number;
    if (r.ok || s.retryIt >= c.retry) {
      delay = c.delayLoop;
      s.retryIt = 0;
      if (r.ok && (!s.up || !s.hasRun)) {
        if (!s.up) log('notice', `${s.name}: passed (${r.detail})`);
        s.up = true;
        this.state.checkerResult(s.vs, s.rs, s.index, true);
        changed = true;
      } else if (!r.ok && (s.up || !s.hasRun)) {
        log('notice', `${s.name}: failed${c.retry && s.hasRun ? ` after ${c.retry} retries` : ''} (${r.detail})`);
        if (c.kind === 'MISC_CHECK' && c.dynamic) {
          this.state.dynamicReset(s.vs, s.rs, s.index);
          s.lastExit = r.exitStatus;
        }
        s.up = false;
        this.state.checkerResult(s.vs, s.rs, s.index, false);
        changed = true;
      }
    } else {
      delay = c.delayBeforeRetry;
      s.retryIt++;
      log('info', `${s.name}: failed (${r.detail}), retry ${s.retryIt} of ${c.retry} in ${delay} s`);
    }
    s.hasRun = true;
    if (changed) this.opts.onChange?.(s.vs);
    this.arm(s, delay);
  }
}

/**
 * Starts a notify script (notify_up/down, quorum_up/down) without waiting for it, as keepalived does;
 * it is killed if still running after `timeoutS`. Returns false when the command line is empty or bad.
 */
export function runNotify(script: string, timeoutS = 30, onError?: (message: string) => void): boolean {
  const argv = splitCommand(script);
  if (!argv || argv.length === 0) return false;
  const child = spawn(argv[0], argv.slice(1), { stdio: 'ignore', detached: true });
  const timer = setTimeout(() => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, timeoutS * 1000);
  timer.unref();
  child.once('error', (e) => {
    clearTimeout(timer);
    onError?.(`${script}: ${e.message}`);
  });
  child.once('exit', () => clearTimeout(timer));
  child.unref();
  return true;
}
