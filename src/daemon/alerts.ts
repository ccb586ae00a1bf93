/**
 * Alerts from the patched IPVS's counters (/proc/net/ip_vs_bpf): connections that did not get the BPF
 * path (their entries could not be written) are counted there and nowhere else. Each refresh hands the
 * counters to `observe`; a counter that grew is logged at most once per interval (the growth since the
 * last line, and the total), and shown in the status (D-Bus Alerts) until the daemon stops.
 *
 * The first reading is the baseline (the counters outlive the daemon); a counter that goes down (the
 * module was reloaded) starts a new baseline.
 */
import type { AlertStatus } from './status';

/** The counters that mean "a connection missed the BPF path", with what that means for an operator. */
export const ALERT_COUNTERS: Readonly<Record<string, string>> = {
  fallbacks: 'connections created without BPF entries (snat.fallback nat: plain IPVS NAT, seen by conntrack)',
  no_snat_addr: 'fallbacks because no SNAT address was configured',
  ports_exhausted: 'fallbacks because no free SNAT address:port was found (more snat.addresses or a wider port range)',
  map_full: 'conntrack map inserts that failed because the map is full (mapEntries)',
  insert_errors: 'conntrack map inserts that failed otherwise',
};

/** Lines about the same counter are at least this far apart (or statusInterval, when longer). */
export const ALERT_LOG_INTERVAL_MS = 60_000;

interface Track {
  last: bigint;
  increase: bigint;
  lastUsec: bigint;
  /** The value the last line reported (the baseline before any line). */
  logged: bigint;
  /** When `logged` was read. */
  sinceMs: number;
  /** Whether a line was written yet: the first growth is logged at once. */
  everLogged: boolean;
}

export class CounterAlerts {
  private readonly tracks = new Map<string, Track>();

  constructor(private readonly intervalMs: number = ALERT_LOG_INTERVAL_MS) {}

  /** Takes one reading; returns the log lines it calls for (none, or one per counter that grew). */
  observe(counters: Readonly<Record<string, string>>, nowMs: number): string[] {
    const lines: string[] = [];
    for (const [name, meaning] of Object.entries(ALERT_COUNTERS)) {
      const text = counters[name];
      if (text === undefined || !/^\d+$/.test(text)) continue;
      const value = BigInt(text);
      const t = this.tracks.get(name);
      if (!t || value < t.last) {
        this.tracks.set(name, {
          last: value, increase: t?.increase ?? 0n, lastUsec: t?.lastUsec ?? 0n, logged: value, sinceMs: nowMs, everLogged: t?.everLogged ?? false,
        });
        continue;
      }
      if (value > t.last) {
        t.increase += value - t.last;
        t.lastUsec = BigInt(nowMs) * 1000n;
        t.last = value;
      }
      if (t.last > t.logged && (!t.everLogged || nowMs - t.sinceMs >= this.intervalMs)) {
        const secs = Math.max(1, Math.round((nowMs - t.sinceMs) / 1000));
        lines.push(`kernel counter ${name} grew by ${t.last - t.logged} to ${t.last} in the last ${secs} s: ${meaning}`);
        t.logged = t.last;
        t.sinceMs = nowMs;
        t.everLogged = true;
      }
    }
    return lines;
  }

  /** The counters that grew while the daemon ran. */
  status(): AlertStatus[] {
    return [...this.tracks.entries()]
      .filter(([, t]) => t.increase > 0n)
      .map(([counter, t]) => ({ counter, value: t.last, increase: t.increase, lastUsec: t.lastUsec, meaning: ALERT_COUNTERS[counter]! }));
  }
}
