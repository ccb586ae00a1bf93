/**
 * Status refreshes when reading the table is slower than the refresh interval (a 16000-entry table under
 * qemu TCG): one read runs and at most one waits behind it, and a stop does not run the waiting one.
 * Before, every call queued one more read, and a stop waited for the whole queue (55 s in the lab VM).
 */
import { mkdtempSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { loadConfig } from '../../src/daemon/config';
import { Daemon, ruleFilesOnly } from '../../src/daemon/daemon';
import { plainIpvs } from '../../src/daemon/datapath';
import type { Logger } from '../../src/daemon/log';
import type { IpvsOp, ServiceState } from '../../src/ipvs/model';
import type { IpvsClient } from '../../src/ipvs/netlink';

/** An empty IPVS whose table reads finish only when the test says so (after the first, the start's). */
class SlowIpvs {
  dumps = 0;
  gate = false;
  private release: (() => void)[] = [];
  async services(): Promise<ServiceState[]> {
    this.dumps++;
    if (this.gate) await new Promise<void>((r) => this.release.push(r));
    return [];
  }
  async eachService(_opts: unknown, each: (s: ServiceState) => void): Promise<void> {
    for (const s of await this.services()) each(s);
  }
  /** Lets the reads waiting now finish; resolves after they did. */
  async finishReads(): Promise<void> {
    for (const r of this.release.splice(0)) r();
    await new Promise((r) => setImmediate(r));
  }
  async service(): Promise<null> {
    return null;
  }
  async timeouts() {
    return { tcp: 900, tcpFin: 120, udp: 300 };
  }
  async daemons() {
    return [];
  }
  async apply(ops: readonly IpvsOp[]) {
    return { ok: true, results: ops.map((op) => ({ op, status: 'ok' as const })), applied: ops.length, failed: 0, unknown: 0, skipped: 0, batches: 1 };
  }
  close(): void {}
}

const log = Object.fromEntries(
  [...['emerg', 'alert', 'crit', 'error', 'warning', 'notice', 'info', 'debug'].map((l) => [l, () => undefined]), ['setLevel', () => undefined]],
) as unknown as Logger;
const dir = mkdtempSync(path.join(tmpdir(), 'ipvs-bpf-refresh-'));
writeFileSync(path.join(dir, 'a.rules'), '');
writeFileSync(path.join(dir, 'none.json'), '{}');
const loadCfg = () => loadConfig({ args: [`--rules=${path.join(dir, 'a.rules')}`, '--mode=ipvs', '--dbus=none', `--config=${path.join(dir, 'none.json')}`], env: {} });
const start = (ipvs: SlowIpvs): Promise<Daemon> =>
  Daemon.start(loadCfg(), { log, loadConfig: loadCfg, ipvs: ipvs as unknown as IpvsClient, dataPath: async () => plainIpvs(''), sources: ruleFilesOnly });
const settle = () => new Promise((r) => setImmediate(r));

test('refreshes while a read runs share one waiting read; each caller sees a read that started after its call', async () => {
  const ipvs = new SlowIpvs();
  const d = await start(ipvs);
  const afterStart = ipvs.dumps;
  ipvs.gate = true;
  const first = d.refresh();
  await settle();
  expect(ipvs.dumps).toBe(afterStart + 1); // running
  const waiting = [d.refresh(), d.refresh(), d.refresh(), d.refresh()];
  await settle();
  expect(ipvs.dumps).toBe(afterStart + 1); // the others wait, as one
  await ipvs.finishReads();
  await first;
  await settle();
  expect(ipvs.dumps).toBe(afterStart + 2); // the one waiting read started after the first ended
  const later = d.refresh(); // queued behind the running second read: a new waiting one
  await ipvs.finishReads();
  await Promise.all(waiting);
  await settle();
  expect(ipvs.dumps).toBe(afterStart + 3);
  await ipvs.finishReads();
  await later;
  expect(ipvs.dumps).toBe(afterStart + 3);
  await d.stop();
});

test('a stop waits for the running read only, not for the one waiting behind it', async () => {
  const ipvs = new SlowIpvs();
  const d = await start(ipvs);
  const afterStart = ipvs.dumps;
  ipvs.gate = true;
  void d.refresh();
  void d.refresh();
  await settle();
  let stopped = false;
  const stop = d.stop().then(() => {
    stopped = true;
  });
  await settle();
  expect(stopped).toBe(false); // the running read holds the stop
  await ipvs.finishReads();
  await stop;
  expect(ipvs.dumps).toBe(afterStart + 1);
});
