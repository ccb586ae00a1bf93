/**
 * The specialised dest-dump decoder must read exactly what the generic, table-driven path reads
 * (decodeAttrs with CMD_ATTRS, then decodeDestination), for every attribute of the dest table.
 */
import { CMD_ATTRS, type DestRecord } from '../../src/ipvs/netlink/attributes';
import { decodeDestination } from '../../src/ipvs/netlink/codec';
import { decodeDestMessage } from '../../src/ipvs/netlink/dumpdecode';
import { MalformedAttributeError, decodeAttrs, encodeAttrs } from '../../src/ipvs/netlink/tlv';
import type { Family } from '../../src/ipvs/model';

const v4 = Buffer.from([10, 1, 2, 3]);
const v6 = Buffer.from('20010db8000000000000000000000001', 'hex');

const stats = { conns: 1, inPkts: 2, outPkts: 3, inBytes: 4n, outBytes: 5n, cps: 6, inPps: 7, outPps: 8, inBps: 9, outBps: 10 };
const stats64 = { conns: 11n, inPkts: 12n, outPkts: 13n, inBytes: 14n, outBytes: 2n ** 63n, cps: 16n, inPps: 17n, outPps: 18n, inBps: 19n, outBps: 20n };

const cases: { name: string; family: Family; dest: DestRecord }[] = [
  { name: 'minimal v4', family: 'inet', dest: { addr: v4, port: 80 } },
  {
    name: 'every attribute, v4, stats64',
    family: 'inet',
    dest: { addr: v4, port: 8080, fwdMethod: 0x10000 | 2, weight: 0x7fffffff, uThresh: 0xffffffff, lThresh: 5, activeConns: 6, inactConns: 7, persistConns: 8, stats, addrFamily: 2, stats64, tunType: 1, tunPort: 6081, tunFlags: 3 },
  },
  { name: 'v6 with only 32-bit stats', family: 'inet6', dest: { addr: v6, port: 443, fwdMethod: 3, weight: 0, stats, addrFamily: 10, tunType: 2 } },
  { name: 'v6 dest of a v4 service (tunnel)', family: 'inet', dest: { addr: v6, port: 0, fwdMethod: 2, addrFamily: 10, tunType: 0 } },
  {
    name: 'stats64 with zero and above-2^32 counters',
    family: 'inet',
    dest: { addr: v4, port: 80, stats, stats64: { ...stats64, conns: 0n, inPkts: 2n ** 32n + 5n, cps: 0n, outBps: 2n ** 64n - 1n } },
  },
  { name: 'all-zero stats64', family: 'inet', dest: { addr: v4, port: 81, stats64: { ...stats64, conns: 0n, inPkts: 0n, outPkts: 0n, inBytes: 0n, outBytes: 0n, cps: 0n, inPps: 0n, outPps: 0n, inBps: 0n, outBps: 0n } } },
  { name: 'short nfaddr is zero-padded', family: 'inet6', dest: { addr: Buffer.from([0x20, 0x01]), port: 1 } },
];

function message(dest: DestRecord): Buffer {
  // An unknown first-level attribute before the nest, which both decoders skip.
  const body = encodeAttrs(CMD_ATTRS, { timeoutTcp: 1, dest });
  return Buffer.concat([Buffer.alloc(4), body]); // attributes start at 4, as after a genl header
}

describe('decodeDestMessage', () => {
  for (const c of cases) {
    it(`matches the generic decoder: ${c.name}`, () => {
      const buf = message(c.dest);
      const generic = decodeDestination(decodeAttrs(CMD_ATTRS, buf, 4).dest!, c.family);
      expect(decodeDestMessage(buf, 4, buf.length, c.family, { counters: true })).toEqual(generic);
      const bare = decodeDestMessage(buf, 4, buf.length, c.family, { counters: false });
      expect(bare).toEqual({ ...generic, stats: { conns: 0n, inPkts: 0n, outPkts: 0n, inBytes: 0n, outBytes: 0n, cps: 0n, inPps: 0n, outPps: 0n, inBps: 0n, outBps: 0n } });
    });
  }

  it('shares one frozen object for all-zero counters (most of an idle table)', () => {
    const zero = { conns: 0n, inPkts: 0n, outPkts: 0n, inBytes: 0n, outBytes: 0n, cps: 0n, inPps: 0n, outPps: 0n, inBps: 0n, outBps: 0n };
    const a = message({ addr: v4, port: 1, stats64: zero });
    const b = message({ addr: v4, port: 2, stats64: zero });
    const da = decodeDestMessage(a, 4, a.length, 'inet', { counters: true })!;
    const db = decodeDestMessage(b, 4, b.length, 'inet', { counters: true })!;
    expect(da.stats).toBe(db.stats);
    expect(Object.isFrozen(da.stats)).toBe(true);
  });

  it('gives undefined for a message without a dest nest', () => {
    const buf = Buffer.concat([Buffer.alloc(4), encodeAttrs(CMD_ATTRS, { timeoutUdp: 3 })]);
    expect(decodeDestMessage(buf, 4, buf.length, 'inet', { counters: true })).toBeUndefined();
  });

  it('rejects a truncated attribute as the generic decoder does', () => {
    const buf = message({ addr: v4, port: 80, weight: 3 });
    buf.writeUInt16LE(200, 8); // the dest nest claims more bytes than the message has
    expect(() => decodeDestMessage(buf, 4, buf.length, 'inet', { counters: true })).toThrow(MalformedAttributeError);
    expect(() => decodeAttrs(CMD_ATTRS, buf, 4)).toThrow(MalformedAttributeError);
  });
});
