/**
 * keepalived's health state machine for the LVS half (ipwrapper.c / ipvswrapper.c in 2.2.7), kept
 * as data: which real servers are alive, how many of their checkers fail, the quorum state of each
 * virtual server, and so which destinations (at which weight) keepalived would have in IPVS. Pure:
 * no timers, no sockets; checkers report results, the daemon turns desired() into kernel ops.
 *
 *  - A real server is in the pool while alive; a failed one is removed, or kept at weight 0 with
 *    inhibit_on_failure. It comes back when all its checkers pass again.
 *  - With alpha, a checker starts failed, so its real server starts out of the pool.
 *  - Quorum: while the live weight is below quorum (less hysteresis once up, plus it while down) and
 *    a sorry server is configured, the live real servers are taken out and the sorry server put in.
 *  - MISC_CHECK misc_dynamic sets the weight from the script's exit status.
 */
import type { DesiredService, Destination } from '../ipvs/model';
import type { KeepalivedConfig, RealServer, VirtualServer } from './config';

const IPVS_WEIGHT_MAX = 2147483647;
const realWeight = (w: number): number => Math.max(0, Math.min(IPVS_WEIGHT_MAX, w));

interface ServerState {
  /** In the checkers' view: in the pool (ISALIVE). */
  alive: boolean;
  /** In the kernel table (rs->set). */
  set: boolean;
  /** The weight the kernel has for it while set. */
  kernelWeight: number;
  /** The weight it should have when in the pool (configured weight, changed by misc_dynamic). */
  effectiveWeight: number;
  failedCheckers: number;
  inhibit: boolean;
  dest: Destination;
}

interface CheckerState {
  up: boolean;
  hasRun: boolean;
  alpha: boolean;
  /** misc_dynamic: the part of the weight this checker adds (cur_weight). */
  curWeight: number;
}

/** What the state machine tells the world about (logs, scripts, metrics). */
export interface HealthEvents {
  /** A real server went in or out of the pool (or was set to weight 0 with inhibit_on_failure). */
  realServer?(e: { vs: VirtualServer; rs: RealServer; alive: boolean; weight: number }): void;
  /** A checker's own state changed. */
  checker?(e: { vs: VirtualServer; rs: RealServer; checker: number; up: boolean }): void;
  /** A virtual server gained or lost its quorum (or started with one of them). */
  quorum?(e: { vs: VirtualServer; up: boolean; weight: number; sorryServerIn: boolean }): void;
  /** A notify script is due (notify_up/notify_down, quorum_up/quorum_down). */
  notify?(e: { vs: VirtualServer; rs?: RealServer; script: string; why: 'up' | 'down' | 'quorum_up' | 'quorum_down' }): void;
}

interface VsState {
  vs: VirtualServer;
  quorumUp: boolean;
  rs: ServerState[];
  checkers: CheckerState[][];
  sorry?: ServerState;
  /** The sorry server is one of the real servers (keepalived then never adds it separately). */
  sorryDuplicatesRs: boolean;
}

export interface RealServerHealth {
  vs: string;
  rs: string;
  alive: boolean;
  inTable: boolean;
  weight: number;
  checkers: { kind: string; up: boolean; hasRun: boolean }[];
}

export class HealthState {
  private readonly vss: VsState[];

  /**
   * `prior`: the state before a reload. As keepalived carries it over, a real server and checker that
   * are still configured (same virtual server, address, port, checker position and kind) keep their
   * verdicts (a failed real server is not put back by the reload), and a virtual server keeps its quorum.
   */
  constructor(
    readonly config: KeepalivedConfig,
    private readonly events: HealthEvents = {},
    prior?: HealthState,
  ) {
    const memory = prior?.memory();
    this.vss = config.virtualServers.map((vs) => this.initVs(vs, memory));
  }

  private static checkerKey(vs: VirtualServer, rs: RealServer, k: number): string {
    return `${vs.name}|${rs.dest.address}|${rs.dest.port}|${k}|${rs.checkers[k].kind}`;
  }

  /** What a reload carries over. */
  private memory(): { checkers: Map<string, { up: boolean; hasRun: boolean }>; quorum: Map<string, boolean> } {
    const checkers = new Map<string, { up: boolean; hasRun: boolean }>();
    const quorum = new Map<string, boolean>();
    for (const st of this.vss) {
      quorum.set(st.vs.name, st.quorumUp);
      st.vs.realServers.forEach((rs, i) =>
        rs.checkers.forEach((_, k) => checkers.set(HealthState.checkerKey(st.vs, rs, k), { up: st.checkers[i][k].up, hasRun: st.checkers[i][k].hasRun })),
      );
    }
    return { checkers, quorum };
  }

  /** A checker's current verdict and whether it has run (the scheduler starts from it). */
  checkerInfo(vs: number, rs: number, checker: number): { up: boolean; hasRun: boolean } {
    const c = this.vss[vs].checkers[rs][checker];
    return { up: c.up, hasRun: c.hasRun };
  }

  /** keepalived's start: validate_check_config, init_service_rs, update_quorum_state(init). */
  private initVs(vs: VirtualServer, memory?: ReturnType<HealthState['memory']>): VsState {
    const st: VsState = {
      vs,
      quorumUp: false,
      rs: vs.realServers.map((r) => ({
        alive: false,
        set: false,
        kernelWeight: 0,
        effectiveWeight: r.dest.weight,
        failedCheckers: 0,
        inhibit: r.inhibit,
        dest: r.dest,
      })),
      checkers: vs.realServers.map((r) =>
        r.checkers.map((c, k) => {
          const m = memory?.checkers.get(HealthState.checkerKey(vs, r, k));
          return { up: m ? m.up : !c.alpha, hasRun: m ? m.hasRun : false, alpha: c.alpha, curWeight: 0 };
        }),
      ),
      sorryDuplicatesRs: false,
    };
    if (vs.sorryServer) {
      const d = vs.sorryServer.dest;
      st.sorry = { alive: false, set: false, kernelWeight: 0, effectiveWeight: 1, failedCheckers: 0, inhibit: vs.sorryServer.inhibit, dest: d };
      st.sorryDuplicatesRs = vs.realServers.some((r) => r.dest.address === d.address && r.dest.port === d.port);
    }
    vs.realServers.forEach((_, i) => {
      st.rs[i].failedCheckers = st.checkers[i].filter((c) => !c.up).length;
    });
    // set_quorum_states() runs before any real server is alive; a reload keeps the old state.
    st.quorumUp = memory?.quorum.get(vs.name) ?? this.liveWeight(st) >= vs.quorum + vs.hysteresis;
    st.rs.forEach((r, i) => {
      if ((r.failedCheckers === 0 && !r.alive) || (r.inhibit && !r.set)) {
        this.cmd(st, r, 'add');
        if (r.failedCheckers === 0) r.alive = true;
      }
      void i;
    });
    this.updateQuorum(st, true);
    if (st.sorry && st.sorry.inhibit && !st.sorry.set && !st.sorryDuplicatesRs) {
      st.sorry.failedCheckers = 1;
      this.cmd(st, st.sorry, 'add');
      st.sorry.failedCheckers = 0;
    }
    return st;
  }

  private liveWeight(st: VsState): number {
    let sum = 0;
    for (const r of st.rs) if (r.alive) sum += realWeight(r.effectiveWeight);
    return sum;
  }

  /** ipvs_cmd() for a destination: inhibit turns a delete into weight 0 and an add into an edit. */
  private cmd(_st: VsState, r: ServerState, op: 'add' | 'del' | 'edit'): void {
    if (op === 'del') {
      if (r.inhibit) r.kernelWeight = 0;
      else r.set = false;
      return;
    }
    if (op === 'edit' || (r.inhibit && r.set)) {
      r.kernelWeight = realWeight(r.effectiveWeight);
      return;
    }
    if (!r.set) {
      r.set = true;
      r.kernelWeight = r.inhibit && r.failedCheckers > 0 ? 0 : realWeight(r.effectiveWeight);
    }
  }

  private quorumScript(st: VsState): void {
    const script = st.quorumUp ? st.vs.quorumUp : st.vs.quorumDown;
    if (script) this.events.notify?.({ vs: st.vs, script, why: st.quorumUp ? 'quorum_up' : 'quorum_down' });
  }

  /** update_quorum_state() */
  private updateQuorum(st: VsState, init: boolean): void {
    const weight = this.liveWeight(st);
    const threshold = st.vs.quorum + (st.quorumUp ? -1 : 1) * st.vs.hysteresis;
    if (!st.quorumUp && weight >= threshold) {
      st.quorumUp = true;
      if (st.sorry && st.sorry.alive) {
        this.cmd(st, st.sorry, 'del');
        st.sorry.alive = false;
        this.poolAll(st, true);
      }
      this.events.quorum?.({ vs: st.vs, up: true, weight, sorryServerIn: false });
      this.quorumScript(st);
    } else if ((st.quorumUp && (weight === 0 || weight < threshold)) || (init && !st.quorumUp && st.sorry && !st.sorry.alive)) {
      st.quorumUp = false;
      let sorryIn = false;
      if (st.sorry && !st.sorry.alive) {
        this.poolAll(st, false);
        if (!st.sorryDuplicatesRs) this.cmd(st, st.sorry, 'add');
        st.sorry.alive = true;
        sorryIn = true;
      }
      this.events.quorum?.({ vs: st.vs, up: false, weight, sorryServerIn: sorryIn });
      this.quorumScript(st);
    }
  }

  /** perform_quorum_state(): add or remove the live real servers. */
  private poolAll(st: VsState, add: boolean): void {
    for (const r of st.rs) if (r.alive) this.cmd(st, r, add ? 'add' : 'del');
  }

  /** perform_svr_state() */
  private performServer(st: VsState, i: number, alive: boolean): void {
    const r = st.rs[i];
    if (r.alive === alive) return;
    if (st.quorumUp || !st.sorry || !st.sorry.alive) this.cmd(st, r, alive ? 'add' : 'del');
    r.alive = alive;
    this.rsNotify(st, i);
    this.updateQuorum(st, false);
  }

  private rsNotify(st: VsState, i: number): void {
    const r = st.rs[i];
    const rs = st.vs.realServers[i];
    this.events.realServer?.({ vs: st.vs, rs, alive: r.alive, weight: r.set ? r.kernelWeight : 0 });
    const script = r.alive ? rs.notifyUp : rs.notifyDown;
    if (script) this.events.notify?.({ vs: st.vs, rs, script, why: r.alive ? 'up' : 'down' });
  }

  /**
   * A checker's verdict after its own retries (update_svr_checker_state). vs, rs and checker are
   * indexes into the configuration.
   */
  checkerResult(vs: number, rs: number, checker: number, up: boolean): void {
    const st = this.vss[vs];
    const c = st.checkers[rs][checker];
    if (c.up === up) {
      if (!c.hasRun) {
        if (c.alpha || !up) this.rsNotify(st, rs);
        c.hasRun = true;
        // The first verdict: no transition, but the state is now known (metrics start from it).
        this.events.checker?.({ vs: st.vs, rs: st.vs.realServers[rs], checker, up });
      }
      return;
    }
    c.hasRun = true;
    const r = st.rs[rs];
    if (up) {
      if (r.failedCheckers <= 1) this.performServer(st, rs, true);
    } else if (r.failedCheckers === 0) this.performServer(st, rs, false);
    c.up = up;
    if (!up) r.failedCheckers++;
    else if (r.failedCheckers > 0) r.failedCheckers--;
    this.events.checker?.({ vs: st.vs, rs: st.vs.realServers[rs], checker, up });
  }

  /**
   * misc_dynamic: a passing script's exit status. 0 keeps the configured weight, 2..255 sets it to
   * status - 2 (update_svr_wgt).
   */
  dynamicWeight(vs: number, rs: number, checker: number, status: number): void {
    const st = this.vss[vs];
    const c = st.checkers[rs][checker];
    const r = st.rs[rs];
    const base = r.effectiveWeight - c.curWeight;
    c.curWeight = status ? status - 2 - st.vs.realServers[rs].dest.weight : 0;
    this.setWeight(st, rs, base + c.curWeight);
  }

  /** A failing dynamic checker gives back its part of the weight. */
  dynamicReset(vs: number, rs: number, checker: number): void {
    const st = this.vss[vs];
    const c = st.checkers[rs][checker];
    st.rs[rs].effectiveWeight -= c.curWeight;
    c.curWeight = 0;
  }

  private setWeight(st: VsState, i: number, weight: number): void {
    const r = st.rs[i];
    const changed = realWeight(weight) !== realWeight(r.effectiveWeight);
    r.effectiveWeight = weight;
    if (!changed) return;
    if (r.set && r.alive && (st.quorumUp || !st.sorry || !st.sorry.alive)) this.cmd(st, r, 'edit');
    this.updateQuorum(st, false);
  }

  /** The IPVS table keepalived would have now. */
  desired(): DesiredService[] {
    const out: DesiredService[] = [];
    for (const st of this.vss) {
      const dests: Destination[] = [];
      for (const r of st.rs) if (r.set) dests.push({ ...r.dest, weight: r.kernelWeight, tunnelFlags: { ...r.dest.tunnelFlags } });
      if (st.sorry && st.sorry.set && !st.sorryDuplicatesRs) dests.push({ ...st.sorry.dest, weight: st.sorry.kernelWeight, tunnelFlags: { ...st.sorry.dest.tunnelFlags } });
      for (const s of st.vs.services) {
        out.push({ ...s, key: { ...s.key }, flags: { ...s.flags }, destinations: dests.map((d) => ({ ...d, port: portFor(s.key, d), tunnelFlags: { ...d.tunnelFlags } })) });
      }
    }
    return out;
  }

  /** Health of every real server, for status and metrics. */
  snapshot(): RealServerHealth[] {
    const out: RealServerHealth[] = [];
    for (const st of this.vss) {
      st.rs.forEach((r, i) => {
        const rs = st.vs.realServers[i];
        out.push({
          vs: st.vs.name,
          rs: `${rs.dest.family === 'inet6' ? `[${rs.dest.address}]` : rs.dest.address}:${rs.dest.port}`,
          alive: r.alive,
          inTable: r.set,
          weight: r.set ? r.kernelWeight : 0,
          checkers: rs.checkers.map((c, k) => ({ kind: c.kind, up: st.checkers[i][k].up, hasRun: st.checkers[i][k].hasRun })),
        });
      });
    }
    return out;
  }

  /** Quorum state of each virtual server, in configuration order. */
  quorums(): { vs: string; up: boolean }[] {
    return this.vss.map((st) => ({ vs: st.vs.name, up: st.quorumUp }));
  }
}

/** As ipvs_cmd() sends it: a non-NAT destination takes the service's port (fwmark: none). */
export function portFor(key: DesiredService['key'], d: Destination): number {
  if (d.forward === 'masq') return d.port;
  return key.kind === 'fwmark' ? 0 : key.port;
}
