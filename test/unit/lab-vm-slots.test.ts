/** The lab VM's slots (test/lab/vm.ts): at most N VMs at once on a machine, the next one waits for a free slot. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { acquireSlot, type Slot } from '../lab/vm';

let dir: string;
beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'vm-slots-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('two slots: two holders at once; a third waits until one is released, then holds it', async () => {
  const waits: number[] = [];
  const a = await acquireSlot(2, dir, () => waits.push(1));
  const b = await acquireSlot(2, dir, () => waits.push(2));
  expect(a).toBeDefined();
  expect(b).toBeDefined();
  expect(waits).toEqual([]);
  let third: Slot | undefined;
  const pending = acquireSlot(2, dir, () => waits.push(3)).then((s) => (third = s));
  await new Promise((r) => setTimeout(r, 300));
  expect(waits).toEqual([3]);
  expect(third).toBeUndefined();
  a!.release();
  b!.release();
  await pending;
  expect(third).toBeDefined();
  third!.release();
});

test('0 slots: no limit, nothing held', async () => {
  expect(await acquireSlot(0, dir, () => { throw new Error('no wait expected'); })).toBeUndefined();
});
