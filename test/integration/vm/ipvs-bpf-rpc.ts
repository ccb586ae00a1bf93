/**
 * A command loop for the lab-VM helpers: a node start costs seconds under TCG, so the payload starts each
 * helper once and sends it commands instead. The payload (ipvs-bpf-e2e.sh, function rpc) writes one line per
 * command into a FIFO: `<id> <word> <word> ...`; the helper runs it, writes what it prints to <dir>/<id>.out,
 * errors to <dir>/<id>.err, and then creates <dir>/<id>.done. Commands run one at a time, in order.
 */
import { createReadStream, writeFileSync } from 'fs';
import * as path from 'path';
import * as readline from 'readline';

export type Command = (args: string[]) => Promise<string[]> | string[];

export async function commandLoop(fifo: string, dir: string, run: Command): Promise<void> {
  const lines = readline.createInterface({ input: createReadStream(fifo) });
  for await (const line of lines) {
    const [id, ...args] = line.trim().split(/\s+/);
    if (!id) continue;
    let out: string[] = [];
    let err = '';
    try {
      out = await run(args);
    } catch (e) {
      err = `${(e as Error).message}\n`;
    }
    writeFileSync(path.join(dir, `${id}.out`), out.map((l) => `${l}\n`).join(''));
    writeFileSync(path.join(dir, `${id}.err`), err);
    writeFileSync(path.join(dir, `${id}.done`), '');
  }
}
