/**
 * Host micro-benchmark of ipvs-bpfctl's listing path against a stand-in kernel (fake-ipvs-socket.ts):
 * everything in JavaScript that `-Sn` / `-Ln` / `-Ln --stats` do on a 10k x 10 table, without IPVS.
 * Checks that the -Sn text is the benchmark's rule file (what ipvsadm -Sn prints for it), then prints one
 * JSON line with the wall time of each run. LIST_PROFILE=file.cpuprofile profiles the first run only (not
 * the stand-in's set-up); with LIST_HEAP_PROFILE=1 too, it samples allocations instead (a .heapprofile).
 *
 *   [LIST_MODE=pool] node dist/test/bench/host/list-replay.js [services=10000] [servers=10] [runs=3] [args=-Sn]
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import Module from 'node:module';
import { setNetlinkAddonForTest } from '../../../src/ipvs/netlink/bulk';
import { FakeRawNetlinkSocket, fakeNetlinkAddon, setFakeTable } from './fake-ipvs-socket';
import { benchRules } from '../ipvs-rules';

type Loader = (request: string, parent: unknown, isMain: boolean) => unknown;
const mod = Module as unknown as { _load: Loader };
const load = mod._load;
mod._load = function (request, parent, isMain) {
  if (request === 'netlink/dist/raw') return { RawNetlinkSocket: FakeRawNetlinkSocket };
  return load.call(this, request, parent, isMain);
};

async function main(): Promise<void> {
  const services = Number(process.argv[2] ?? 10000);
  const servers = Number(process.argv[3] ?? 10);
  const runs = Number(process.argv[4] ?? 3);
  const args = (process.argv[5] ?? '-Sn').split(' ');
  // -R: restore the benchmark's rule file into an empty stand-in table (writes are acknowledged, not kept)
  const restore = args[0] === '-R';
  setFakeTable(restore ? { services: 0, servers } : { services, servers });
  const input = restore ? benchRules(services, servers) : '';
  // LIST_MODE=pool: the dump-socket pool; default: bulk reads through (a stand-in for) the addon.
  setNetlinkAddonForTest(process.env.LIST_MODE === 'pool' ? null : fakeNetlinkAddon);
  let t0 = process.hrtime.bigint();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const cli = require('../../../src/cli/ipvs-bpfctl') as typeof import('../../../src/cli/ipvs-bpfctl');
  const requireMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const expected = args.join(' ') === '-Sn' ? benchRules(services, servers) : undefined;
  const ms: number[] = [];
  const cpuMs: number[] = [];
  let bytes = 0;
  const profile = process.env.LIST_PROFILE;
  const session = profile ? new Session() : undefined;
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((resolve, reject) => session!.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res))));
  const heap = process.env.LIST_HEAP_PROFILE; // allocation sampling of the first run instead
  if (session) {
    session.connect();
    await post('Profiler.enable');
    await post('Profiler.setSamplingInterval', { interval: 100 });
    if (heap) await post('HeapProfiler.enable');
  }
  for (let i = 0; i < runs; i++) {
    const chunks: string[] = [];
    if (session && i === 0) await post(heap ? 'HeapProfiler.startSampling' : 'Profiler.start', heap ? { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } : {});
    const c0 = process.cpuUsage();
    t0 = process.hrtime.bigint();
    const code = await cli.main(args, {
      out: (t) => void chunks.push(t),
      err: (t) => void process.stderr.write(t),
      stdin: () => input,
    });
    ms.push(Math.round(Number(process.hrtime.bigint() - t0) / 1e5) / 10);
    const c = process.cpuUsage(c0);
    cpuMs.push(Math.round((c.user + c.system) / 100) / 10);
    if (session && i === 0) {
      const r = (await post(heap ? 'HeapProfiler.stopSampling' : 'Profiler.stop')) as { profile: unknown };
      writeFileSync(profile!, JSON.stringify(r.profile));
    }
    const text = chunks.join('');
    bytes = Buffer.byteLength(text);
    if (code !== 0) throw new Error(`exit ${code}`);
    if (expected !== undefined && text !== expected) throw new Error('-Sn output differs from the rule file');
    if (restore && text !== '') throw new Error(`-R printed ${JSON.stringify(text.slice(0, 200))}`);
  }
  process.stdout.write(JSON.stringify({ mode: process.env.LIST_MODE ?? 'bulk', services, servers, args: args.join(' '), requireMs, ms, cpuMs, bytes }) + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`list-replay: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exitCode = 1;
});
