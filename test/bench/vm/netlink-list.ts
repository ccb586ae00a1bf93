/**
 * In the lab VM: the netlink client's bulk paths on an N x M table, timed: one pipelined apply() of the
 * whole table, then the listing with several dump-pool set-ups (sockets, read buffer), each followed by an
 * `ipvsadm -Sn` so that both see the same (shared, noisy) machine; then `ipvsadm -R` of that save. Prints one
 * JSON object. A tuning study for the pool and batch sizes (formerly a step of the netlink lab test).
 *
 *   test/lab/labvm -- 'node dist/test/bench/vm/netlink-list.js 1000 10 p16r0,p16r16384,p64r0'
 *
 * Variants: pNrB = N dump sockets, read buffer B bytes (0 = peek at each datagram's size).
 */
import { spawnSync } from 'node:child_process';
import { IpvsClient } from '../../../src/ipvs/netlink';
import { largeTableOps } from '../../integration/vm/ipvs-netlink-cases';

function timed(command: string): { ms: number; status: number | null; stdout: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('bash', ['-c', command], { encoding: 'utf8', maxBuffer: 256 << 20 });
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, status: r.status, stdout: r.stdout ?? '' };
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 1000);
  const perService = Number(process.argv[3] ?? 10);
  const variants = (process.argv[4] ?? 'p16r0,p16r16384,p64r0').split(',');
  const c = await IpvsClient.open();
  try {
    await c.flush();
    const ops = largeTableOps(n, perService);
    let t0 = process.hrtime.bigint();
    const r = await c.apply(ops);
    const applyMs = Number(process.hrtime.bigint() - t0) / 1e6;
    if (!r.ok) throw r.firstError ?? new Error('apply failed');
    const listMs: Record<string, number> = {};
    const saveMs: number[] = [];
    for (const variant of variants) {
      const m = /^p(\d+)r(\d+)$/.exec(variant);
      if (!m) throw new Error(`bad variant ${variant}`);
      const lc = await IpvsClient.open({ dumpSockets: Number(m[1]), dumpReadBufferSize: Number(m[2]) });
      try {
        t0 = process.hrtime.bigint();
        const listed = await lc.services({ counters: false });
        listMs[variant] = Number(process.hrtime.bigint() - t0) / 1e6;
        if (listed.length !== n) throw new Error(`listed ${listed.length} services, want ${n}`);
      } finally {
        lc.close();
      }
      saveMs.push(timed('ipvsadm -Sn > /tmp/netlink-list.save').ms);
    }
    await c.flush();
    const restore = timed('ipvsadm -R < /tmp/netlink-list.save');
    await c.flush();
    process.stdout.write(
      JSON.stringify({
        services: n,
        destsPerService: perService,
        ops: ops.length,
        applyMs,
        applyBatches: r.batches,
        listMs,
        ipvsadmSaveMs: Math.min(...saveMs),
        ipvsadmRestoreMs: restore.ms,
        recvBufferSize: c.socketBuffers.recv,
        sendBufferSize: c.socketBuffers.send,
      }) + '\n',
    );
  } finally {
    c.close();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`netlink-list: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
