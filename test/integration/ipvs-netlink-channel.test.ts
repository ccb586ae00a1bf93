/**
 * The netlink transport of the IPVS client against the host kernel's real netlink (no IPVS needed):
 * pipelined batches with small receive buffers, per-request errors, and the answer to a missing family.
 */
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { IpvsClient } from '../../src/ipvs/netlink';
import { IpvsUnavailableError } from '../../src/ipvs/errors';
import { NetlinkChannel } from '../../src/ipvs/netlink/channel';
import { encodeControlMessage } from '../../src/ipvs/netlink/message';
import { pipelineRequests, type RequestResult } from '../../src/ipvs/netlink/pipeline';
import { NLM_F_ACK, NLM_F_REQUEST, NLMSG_NOOP } from '../../src/ipvs/netlink/constants';

const E = constants.errno;

/** A request to a generic netlink family id nobody has: the kernel answers ENOENT, echoing the request. */
function unknownFamilyRequest(payload: number): Buffer {
  const b = Buffer.alloc(16 + payload);
  const head = encodeControlMessage(0x3ff, NLM_F_REQUEST | NLM_F_ACK, 0);
  head.copy(b);
  b.writeUInt32LE(16 + payload, 0);
  if (payload) b[16] = 1; // genl cmd
  return b;
}

describe('pipelined requests over one netlink socket', () => {
  test.each([4096, 65536, 1 << 20])(
    'receive buffer %i: every ACK and error arrives, in as few sendmsg as fit',
    async (rcvbuf) => {
      const ch = new NetlinkChannel({ recvBufferSize: rcvbuf, sendBufferSize: 1 << 20, timeoutMs: 10_000 });
      try {
        const msgs: Buffer[] = [];
        for (let i = 0; i < 6000; i++)
          msgs.push(i % 3 === 0 ? unknownFamilyRequest(1000) : encodeControlMessage(NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, 0));
        const results = new Array<RequestResult | undefined>(msgs.length).fill(undefined);
        const report = await ch.exclusive(() => pipelineRequests(ch, msgs, {}, (i, r) => (results[i] = r)));
        expect(report.sent).toBe(msgs.length);
        results.forEach((r, i) => expect(r).toBe(i % 3 === 0 ? E.ENOENT : 0));
        // Batch size follows the receive buffer: many small batches for a small one, few for a large one.
        if (ch.recvBufferSize >= 1 << 20) expect(report.batches).toBeLessThan(100);
        else expect(report.batches).toBeGreaterThan(20);
      } finally {
        ch.close();
      }
    },
  );

  test('stopOnError stops after the first batch with a failure', async () => {
    const ch = new NetlinkChannel({ recvBufferSize: 1 << 20 });
    try {
      const ok = encodeControlMessage(NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, 0);
      const msgs = [ok, unknownFamilyRequest(4), ok, ok];
      const got: [number, RequestResult][] = [];
      const report = await ch.exclusive(() =>
        pipelineRequests(ch, msgs, { maxBatchOps: 2, stopOnError: true }, (i, r) => got.push([i, r])),
      );
      expect(got).toEqual([
        [0, 0],
        [1, E.ENOENT],
      ]);
      expect(report).toEqual({ batches: 1, sent: 2 });
    } finally {
      ch.close();
    }
  });
});

test('a kernel without IPVS: open() says so plainly', async () => {
  // Precondition of this host (see the project notes): no IPVS, no module loading.
  expect(existsSync('/proc/net/ip_vs')).toBe(false);
  const err = await IpvsClient.open().then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(IpvsUnavailableError);
  expect((err as IpvsUnavailableError).errno).toBe(E.ENOENT);
  expect((err as Error).message).toMatch(/modprobe ip_vs/);
});
