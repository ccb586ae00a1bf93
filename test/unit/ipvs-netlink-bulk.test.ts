/**
 * The netlink addon's bulk dumps (native/ipvs_netlink_addon.cc) against the host kernel's generic netlink
 * controller (the host has no IPVS; the transport does not care which family it dumps): each request is
 * answered to its end before the next is sent, everything comes back in order, a refusal stops the run.
 */
import { netlinkAddon, streamDumps, type BulkDumpOptions } from '../../src/ipvs/netlink/bulk';
import { CTRL_ATTRS } from '../../src/ipvs/netlink/attributes';
import {
  CTRL_CMD_GETFAMILY,
  CTRL_VERSION,
  GENL_ID_CTRL,
  NETLINK_GENERIC,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
} from '../../src/ipvs/netlink/constants';
import { encodeGenlMessage, genlAttrStart, parseMessages } from '../../src/ipvs/netlink/message';
import { decodeAttrs } from '../../src/ipvs/netlink/tlv';

const addon = netlinkAddon();

/** Every chunk of a run, in order. */
async function chunks(requests: Buffer, opts: BulkDumpOptions = {}): Promise<Buffer[]> {
  const out: Buffer[] = [];
  await streamDumps(addon!, NETLINK_GENERIC, requests, opts, (c) => void out.push(c));
  return out;
}
const dumpAll = async (requests: Buffer, opts: BulkDumpOptions = {}): Promise<Buffer> => Buffer.concat(await chunks(requests, opts));

function familyDump(seq: number): Buffer {
  return encodeGenlMessage(
    { family: GENL_ID_CTRL, flags: NLM_F_REQUEST | NLM_F_DUMP, seq, cmd: CTRL_CMD_GETFAMILY, version: CTRL_VERSION },
    CTRL_ATTRS,
    {},
  );
}

test('the addon is built', () => {
  expect(addon).not.toBeNull();
});

test('dumps answer every request in order, each to its NLMSG_DONE, on one socket', async () => {
  const out = await dumpAll(Buffer.concat([familyDump(7), familyDump(8), familyDump(9)]));
  const msgs = parseMessages(out);
  const seqs = msgs.map((m) => m.seq);
  // Sequential: all of 7, then all of 8, then all of 9, each ending with its DONE.
  expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
  for (const seq of [7, 8, 9]) {
    const mine = msgs.filter((m) => m.seq === seq);
    expect(mine[mine.length - 1].type).toBe(NLMSG_DONE);
    const names = mine.filter((m) => m.type === GENL_ID_CTRL).map((m) => decodeAttrs(CTRL_ATTRS, m.buf, genlAttrStart(m), m.end).familyName);
    expect(names).toContain('nlctrl');
  }
});

test('chunks hold whole answers: a small chunk size gives one chunk per answer, in order', async () => {
  const got = await chunks(Buffer.concat([familyDump(31), familyDump(32), familyDump(33)]), { chunkBytes: 1 });
  expect(got).toHaveLength(3);
  got.forEach((c, k) => {
    const msgs = parseMessages(c);
    expect(new Set(msgs.map((m) => m.seq))).toEqual(new Set([31 + k]));
    expect(msgs[msgs.length - 1].type).toBe(NLMSG_DONE);
  });
});

test('what the chunk handler throws rejects the run, after the rest is drained', async () => {
  const boom = new Error('handler failed');
  await expect(
    streamDumps(addon!, NETLINK_GENERIC, Buffer.concat([familyDump(41), familyDump(42)]), { chunkBytes: 1 }, () => {
      throw boom;
    }),
  ).rejects.toBe(boom);
});

test('a refused request ends the run with its NLMSG_ERROR; later requests are not sent', async () => {
  const refused = encodeGenlMessage(
    { family: GENL_ID_CTRL, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 20, cmd: CTRL_CMD_GETFAMILY, version: CTRL_VERSION },
    CTRL_ATTRS,
    { familyName: 'no-such-family' },
  );
  const msgs = parseMessages(await dumpAll(Buffer.concat([familyDump(19), refused, familyDump(21)])));
  const last = msgs[msgs.length - 1];
  expect(last.type).toBe(NLMSG_ERROR);
  expect(last.seq).toBe(20);
  expect(-last.buf.readInt32LE(last.payload)).toBe(2); // ENOENT
  expect(msgs.some((m) => m.seq === 21)).toBe(false);
});

test('bad request framing and a small read buffer are refused before anything is sent', async () => {
  const bad = Buffer.alloc(20);
  bad.writeUInt32LE(4096, 0);
  await expect(dumpAll(bad)).rejects.toMatchObject({ errno: 22, answered: 0 });
  await expect(dumpAll(familyDump(1), { readBufferSize: 4096 })).rejects.toThrow(/readBufferSize must be at least 8192/);
});
