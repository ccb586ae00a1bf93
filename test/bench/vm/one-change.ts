/**
 * In the lab VM, after the benchmark table is loaded: how long the reconciler takes to bring the kernel
 * to a desired state that differs from the current one by one real server's weight (the daemon's
 * reload path: diff in memory against the last known table, then apply), cold and warm. Prints one JSON object.
 */
import { IpvsClient } from '../../../src/ipvs/netlink';
import { reconcile } from '../../../src/ipvs/reconcile';
import { toDesired } from '../../../src/ipvs/rules/simulate';
import { serviceKeyId, type DesiredService } from '../../../src/ipvs/model';

async function main(): Promise<void> {
  const [vip, rs] = process.argv.slice(2);
  if (!vip || !rs) throw new Error('usage: one-change VIP:PORT RS:PORT');
  const client = await IpvsClient.open();
  try {
    let current = toDesired(await client.services());
    const bump = (table: DesiredService[]): DesiredService[] =>
      table.map((s) =>
        serviceKeyId(s.key) === `tcp ${vip}`
          ? { ...s, destinations: s.destinations.map((d) => (`${d.address}:${d.port}` === rs ? { ...d, weight: d.weight + 1 } : d)) }
          : s,
      );
    // Twice: the first change runs in a fresh process (code not yet optimised by V8), the second as in a
    // running daemon, which keeps the table it last applied and diffs the new desired state against it.
    const runs: { ops: number; reconcile_ms: number; apply_ms: number; total_ms: number }[] = [];
    for (let i = 0; i < 2; i++) {
      const desired = bump(current);
      const t0 = process.hrtime.bigint();
      const ops = reconcile(current, desired);
      const t1 = process.hrtime.bigint();
      const r = await client.apply(ops);
      const t2 = process.hrtime.bigint();
      if (!r.ok) throw r.firstError ?? new Error('apply failed');
      runs.push({ ops: ops.length, reconcile_ms: Number(t1 - t0) / 1e6, apply_ms: Number(t2 - t1) / 1e6, total_ms: Number(t2 - t0) / 1e6 });
      current = desired;
    }
    const after = await client.service({ kind: 'addr', family: 'inet', protocol: 'tcp', address: vip.split(':')[0]!, port: 80 });
    const w = after?.destinations.find((d) => `${d.address}:${d.port}` === rs)?.weight;
    const [cold, warm] = runs as [(typeof runs)[0], (typeof runs)[0]];
    process.stdout.write(
      JSON.stringify({
        ops: warm.ops,
        reconcile_ms: warm.reconcile_ms,
        apply_ms: warm.apply_ms,
        total_ms: warm.total_ms,
        cold_total_ms: cold.total_ms,
        cold_ops: cold.ops,
        weight_after: w,
      }) + '\n',
    );
  } finally {
    client.close();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`one-change: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
