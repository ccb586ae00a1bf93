/**
 * Encode/decode of every IPVS attribute against byte buffers built by hand here, independently of the
 * attribute tables: each expected buffer spells out ids, lengths, byte orders and padding.
 */
import { endianness } from 'os';
import {
  CMD_ATTRS,
  CMD_DUMP_ATTRS,
  DAEMON_ATTRS,
  DEST_ATTRS,
  INFO_ATTRS,
  SERVICE_ATTRS,
  STATS64_ATTRS,
  STATS_ATTRS,
} from '../../src/ipvs/netlink/attributes';
import {
  decodeDaemon,
  decodeDestination,
  decodeInfo,
  decodeService,
  decodeTimeouts,
  opRequest,
  serviceRecord,
} from '../../src/ipvs/netlink/codec';
import {
  encodeGenlMessage,
  messageErrno,
  erroredRequestSeq,
  genlAttrStart,
  genlCommand,
  parseMessages,
} from '../../src/ipvs/netlink/message';
import { decodeAttrs, encodeAttrs, MalformedAttributeError } from '../../src/ipvs/netlink/tlv';
import { NO_SERVICE_FLAGS, NO_TUNNEL_FLAGS, type Service, type Destination, type IpvsOp } from '../../src/ipvs/model';

// ---- an independent little TLV writer (little-endian host, as x86_64 and arm64 Linux are) ----
const u8 = (n: number): Buffer => Buffer.from([n]);
const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};
const be16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const be32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const u64 = (n: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
};
const str = (s: string): Buffer => Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
const bytes = (...xs: number[]): Buffer => Buffer.from(xs);
const pad16 = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc(16 - b.length)]);
function tlv(type: number, ...payload: Buffer[]): Buffer {
  const p = Buffer.concat(payload);
  const len = 4 + p.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  p.copy(out, 4);
  return out;
}
const cat = (...b: Buffer[]): Buffer => Buffer.concat(b);

beforeAll(() => {
  expect(endianness()).toBe('LE');
});

describe('generic TLV encoder/decoder', () => {
  test('scalars: u8 u16 be16 u32 be32 u64 string, with padding', () => {
    const rec = {
      state: 2,
      mcastIfn: 'eth0',
      syncId: 0x01020304,
      syncMaxLen: 1472,
      mcastGroup: bytes(224, 0, 0, 81),
      mcastPort: 8848,
      mcastTtl: 7,
    };
    const expected = cat(
      tlv(1, u32(2)),
      tlv(2, str('eth0')), // 4 + 5 = 9, padded to 12
      tlv(3, u32(0x01020304)),
      tlv(4, u16(1472)),
      tlv(5, bytes(224, 0, 0, 81)),
      tlv(7, u16(8848)),
      tlv(8, u8(7)),
    );
    expect(encodeAttrs(DAEMON_ATTRS, rec)).toEqual(expected);
    expect(decodeAttrs(DAEMON_ATTRS, expected)).toEqual(rec);
  });

  test('nested attributes decode with or without NLA_F_NESTED, unknown ids are skipped', () => {
    const inner = cat(tlv(1, u32(5)), tlv(11, u64(0n)) /* IPVS_STATS_ATTR_PAD */, tlv(4, u64(1n << 40n)));
    const flagged = tlv(0x8000 | 10, inner);
    const buf = cat(tlv(1, u16(2)), flagged, tlv(99, u32(1)));
    expect(decodeAttrs(SERVICE_ATTRS, buf)).toEqual({ af: 2, stats: { conns: 5, inBytes: 1n << 40n } });
  });

  test('truncated and overlong attributes are rejected', () => {
    expect(() => decodeAttrs(SERVICE_ATTRS, tlv(1, u8(2)))).toThrow(MalformedAttributeError);
    const bad = tlv(1, u16(2));
    bad.writeUInt16LE(40, 0);
    expect(() => decodeAttrs(SERVICE_ATTRS, bad)).toThrow(MalformedAttributeError);
  });

  test('out-of-range values are refused by the encoder', () => {
    expect(() => encodeAttrs(SERVICE_ATTRS, { af: 70000 })).toThrow(RangeError);
    expect(() => encodeAttrs(SERVICE_ATTRS, { port: -1 })).toThrow(RangeError);
    expect(() => encodeAttrs(SERVICE_ATTRS, { schedName: 'a\0b' })).toThrow(RangeError);
    expect(() => encodeAttrs(STATS64_ATTRS, { conns: -1n })).toThrow(RangeError);
  });
});

// ---- a service as the kernel dumps it (ip_vs_genl_fill_service order) ----
function kernelStats32(base: number): Buffer {
  return cat(
    tlv(1, u32(base + 1)),
    tlv(2, u32(base + 2)),
    tlv(3, u32(base + 3)),
    tlv(4, u64(BigInt(base + 4))),
    tlv(5, u64(BigInt(base + 5))),
    tlv(6, u32(base + 6)),
    tlv(7, u32(base + 7)),
    tlv(8, u32(base + 8)),
    tlv(9, u32(base + 9)),
    tlv(10, u32(base + 10)),
  );
}
function kernelStats64(base: bigint): Buffer {
  const parts: Buffer[] = [];
  for (let id = 1; id <= 10; id++) parts.push(tlv(id, u64(base + BigInt(id))));
  return cat(...parts);
}
const statsOf = (base: bigint) => ({
  conns: base + 1n,
  inPkts: base + 2n,
  outPkts: base + 3n,
  inBytes: base + 4n,
  outBytes: base + 5n,
  cps: base + 6n,
  inPps: base + 7n,
  outPps: base + 8n,
  inBps: base + 9n,
  outBps: base + 10n,
});

describe('services', () => {
  const v4Service: Service = {
    key: { kind: 'addr', family: 'inet', protocol: 'tcp', address: '10.1.2.3', port: 8080 },
    scheduler: 'wrr',
    flags: { ...NO_SERVICE_FLAGS, persistent: true, sched2: true },
    persistenceTimeout: 300,
    netmask: 0xffffff00,
    pe: 'sip',
  };

  test('decodes a kernel dump of an IPv4 service with stats64 preferred over stats', () => {
    const nest = cat(
      tlv(1, u16(2)), // AF_INET
      tlv(2, u16(6)), // IPPROTO_TCP
      tlv(3, pad16(bytes(10, 1, 2, 3))),
      tlv(4, be16(8080)),
      tlv(6, str('wrr')),
      tlv(11, str('sip')),
      tlv(7, u32(0x1 | 0x2 | 0x10), u32(0xffffffff)), // persistent | hashed | sched2
      tlv(8, u32(300)),
      tlv(9, be32(0xffffff00)),
      tlv(10, kernelStats32(0)),
      tlv(12, kernelStats64(1n << 33n)),
    );
    const rec = decodeAttrs(CMD_ATTRS, tlv(1, nest));
    expect(decodeService(rec.service!)).toEqual({ ...v4Service, stats: statsOf(1n << 33n), destinations: [] });
  });

  test('the dump table skips only the 32-bit stats', () => {
    const nest = cat(tlv(1, u16(2)), tlv(5, u32(3)), tlv(6, str('rr')), tlv(10, kernelStats32(0)), tlv(12, kernelStats64(9n)));
    const full = decodeAttrs(CMD_ATTRS, tlv(1, nest));
    const lean = decodeAttrs(CMD_DUMP_ATTRS, tlv(1, nest));
    const { stats, ...rest } = full.service!;
    expect(stats).toBeDefined();
    expect(lean.service).toEqual(rest);
    expect(decodeService(lean.service!)).toEqual(decodeService(full.service!));
  });

  test('falls back to 32-bit stats when stats64 is absent', () => {
    const nest = cat(tlv(1, u16(2)), tlv(5, u32(7)), tlv(6, str('rr')), tlv(10, kernelStats32(100)));
    const s = decodeService(decodeAttrs(SERVICE_ATTRS, nest));
    expect(s.key).toEqual({ kind: 'fwmark', family: 'inet', fwmark: 7 });
    expect(s.stats).toEqual(statsOf(100n));
    expect(s.pe).toBe('');
  });

  test('encodes a full IPv4 service in id order, port and netmask in network order', () => {
    const expected = cat(
      tlv(1, u16(2)),
      tlv(2, u16(6)),
      tlv(3, pad16(bytes(10, 1, 2, 3))),
      tlv(4, be16(8080)),
      tlv(6, str('wrr')),
      tlv(7, u32(0x1 | 0x10), u32(0xffffffff)),
      tlv(8, u32(300)),
      tlv(9, bytes(255, 255, 255, 0)),
      tlv(11, str('sip')),
    );
    expect(encodeAttrs(SERVICE_ATTRS, serviceRecord(v4Service))).toEqual(expected);
  });

  test('IPv6 service: 16-byte address, prefix-length netmask in host order, every flag', () => {
    const svc: Service = {
      key: { kind: 'addr', family: 'inet6', protocol: 'sctp', address: '2001:db8::1', port: 443 },
      scheduler: 'sh',
      flags: { persistent: true, onePacket: true, sched1: true, sched2: true, sched3: true },
      persistenceTimeout: 60,
      netmask: 64,
      pe: '',
    };
    const addr = bytes(0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);
    const expected = cat(
      tlv(1, u16(10)),
      tlv(2, u16(132)),
      tlv(3, addr),
      tlv(4, be16(443)),
      tlv(6, str('sh')),
      tlv(7, u32(0x1 | 0x4 | 0x8 | 0x10 | 0x20), u32(0xffffffff)),
      tlv(8, u32(60)),
      tlv(9, u32(64)), // what ipvsadm sends: NLA_PUT_U32 of the prefix length
    );
    const encoded = encodeAttrs(SERVICE_ATTRS, serviceRecord(svc));
    expect(encoded).toEqual(expected);
    const back = decodeService(decodeAttrs(SERVICE_ATTRS, cat(expected, tlv(7, u32(0x3f), u32(0xffffffff)))));
    expect(back).toMatchObject(svc);
  });

  test('fwmark services carry AF and FWMARK only as a key', () => {
    const op: IpvsOp = { op: 'delete-service', key: { kind: 'fwmark', family: 'inet6', fwmark: 0xfffe } };
    const req = opRequest(op);
    expect(req.cmd).toBe(3);
    expect(encodeAttrs(CMD_ATTRS, req.attrs)).toEqual(tlv(1, cat(tlv(1, u16(10)), tlv(5, u32(0xfffe)))));
  });
});

describe('destinations', () => {
  const tunnelDest: Destination = {
    family: 'inet6',
    address: 'fd00::a',
    port: 80,
    forward: 'tunnel',
    weight: 5,
    upperThreshold: 1000,
    lowerThreshold: 10,
    tunnelType: 'gue',
    tunnelPort: 6080,
    tunnelFlags: { noCsum: false, csum: false, remCsum: true },
  };
  const fd00a = bytes(0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a);

  test('add-dest of an IPv6 GUE tunnel server to an IPv4 service: every attribute', () => {
    const op: IpvsOp = {
      op: 'add-dest',
      service: { kind: 'addr', family: 'inet', protocol: 'udp', address: '192.0.2.1', port: 53 },
      dest: tunnelDest,
    };
    const svcNest = cat(tlv(1, u16(2)), tlv(2, u16(17)), tlv(3, pad16(bytes(192, 0, 2, 1))), tlv(4, be16(53)));
    const destNest = cat(
      tlv(1, fd00a),
      tlv(2, be16(80)),
      tlv(3, u32(2)), // IP_VS_CONN_F_TUNNEL
      tlv(4, u32(5)),
      tlv(5, u32(1000)),
      tlv(6, u32(10)),
      tlv(11, u16(10)),
      tlv(13, u8(1)), // GUE
      tlv(14, be16(6080)),
      tlv(15, u16(2)), // REMCSUM
    );
    const req = opRequest(op);
    expect(req.cmd).toBe(5);
    expect(encodeAttrs(CMD_ATTRS, req.attrs)).toEqual(cat(tlv(1, svcNest), tlv(2, destNest)));
  });

  test('decodes a kernel dump of a destination (ip_vs_genl_fill_dest order), with counters and stats', () => {
    const nest = cat(
      tlv(1, fd00a),
      tlv(2, be16(80)),
      tlv(3, u32(2)),
      tlv(4, u32(5)),
      tlv(13, u8(1)),
      tlv(14, be16(6080)),
      tlv(15, u16(2)),
      tlv(5, u32(1000)),
      tlv(6, u32(10)),
      tlv(7, u32(11)),
      tlv(8, u32(12)),
      tlv(9, u32(13)),
      tlv(11, u16(10)),
      tlv(10, kernelStats32(0)),
      tlv(12, kernelStats64(500n)),
    );
    const rec = decodeAttrs(CMD_ATTRS, tlv(2, nest));
    expect(decodeDestination(rec.dest!, 'inet')).toEqual({
      ...tunnelDest,
      activeConns: 11,
      inactiveConns: 12,
      persistConns: 13,
      stats: statsOf(500n),
    });
  });

  test('every forwarding method and tunnel type maps to its number and back', () => {
    const methods = [
      ['masq', 0],
      ['local', 1],
      ['tunnel', 2],
      ['route', 3],
      ['bypass', 4],
    ] as const;
    const types = [
      ['ipip', 0],
      ['gue', 1],
      ['gre', 2],
    ] as const;
    for (const [forward, n] of methods) {
      for (const [tunnelType, t] of types) {
        const d: Destination = { ...tunnelDest, family: 'inet', address: '10.0.0.2', forward, tunnelType };
        const rec = opRequest({ op: 'edit-dest', service: { kind: 'fwmark', family: 'inet', fwmark: 1 }, dest: d });
        const bytesOut = encodeAttrs(CMD_ATTRS, rec.attrs);
        const back = decodeAttrs(CMD_ATTRS, bytesOut).dest!;
        expect(back.fwdMethod).toBe(n);
        expect(back.tunType).toBe(t);
        expect(decodeDestination(back, 'inet')).toMatchObject(d);
      }
    }
  });

  test('a destination without ADDR_FAMILY takes the service family; csum flag; nocsum has no bit', () => {
    const nest = cat(tlv(1, pad16(bytes(10, 0, 0, 9))), tlv(2, be16(0)), tlv(3, u32(3)), tlv(15, u16(1)));
    const d = decodeDestination(decodeAttrs(DEST_ATTRS, nest), 'inet');
    expect(d).toMatchObject({ family: 'inet', address: '10.0.0.9', port: 0, forward: 'route' });
    expect(d.tunnelFlags).toEqual({ noCsum: false, csum: true, remCsum: false });
    const enc = decodeAttrs(
      CMD_ATTRS,
      encodeAttrs(
        CMD_ATTRS,
        opRequest({
          op: 'add-dest',
          service: { kind: 'fwmark', family: 'inet', fwmark: 1 },
          dest: { ...tunnelDest, family: 'inet', address: '10.0.0.9', tunnelFlags: { ...NO_TUNNEL_FLAGS, noCsum: true } },
        }).attrs,
      ),
    );
    expect(enc.dest!.tunFlags).toBe(0);
  });

  test('delete-dest carries only the identifying attributes', () => {
    const req = opRequest({
      op: 'delete-dest',
      service: { kind: 'fwmark', family: 'inet', fwmark: 9 },
      dest: { family: 'inet', address: '10.0.0.7', port: 8080 },
    });
    expect(req.cmd).toBe(7);
    expect(encodeAttrs(CMD_ATTRS, req.attrs)).toEqual(
      cat(
        tlv(1, cat(tlv(1, u16(2)), tlv(5, u32(9)))),
        tlv(2, cat(tlv(1, pad16(bytes(10, 0, 0, 7))), tlv(2, be16(8080)), tlv(11, u16(2)))),
      ),
    );
  });
});

describe('daemons, timeouts, info, zero, flush', () => {
  test('start-daemon with every 4.3+ attribute (IPv6 group), stop-daemon with the state only', () => {
    const start = opRequest({
      op: 'start-daemon',
      daemon: {
        state: 'backup',
        mcastIfn: 'lo',
        syncId: 3,
        syncMaxLen: 1400,
        mcastGroup: 'ff02::1:3',
        mcastPort: 9000,
        mcastTtl: 2,
      },
    });
    expect(start.cmd).toBe(9);
    const group = bytes(0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 3);
    expect(encodeAttrs(CMD_ATTRS, start.attrs)).toEqual(
      tlv(
        3,
        cat(tlv(1, u32(2)), tlv(2, str('lo')), tlv(3, u32(3)), tlv(4, u16(1400)), tlv(6, group), tlv(7, u16(9000)), tlv(8, u8(2))),
      ),
    );
    const stop = opRequest({ op: 'stop-daemon', state: 'master' });
    expect(stop.cmd).toBe(10);
    expect(encodeAttrs(CMD_ATTRS, stop.attrs)).toEqual(tlv(3, tlv(1, u32(1))));
  });

  test('a minimal daemon leaves the optional attributes out; a kernel dump decodes', () => {
    const start = opRequest({
      op: 'start-daemon',
      daemon: { state: 'master', mcastIfn: 'eth1', syncId: 0, syncMaxLen: 0, mcastGroup: '', mcastPort: 0, mcastTtl: 0 },
    });
    expect(encodeAttrs(CMD_ATTRS, start.attrs)).toEqual(tlv(3, cat(tlv(1, u32(1)), tlv(2, str('eth1')), tlv(3, u32(0)))));
    const dumped = cat(
      tlv(1, u32(1)),
      tlv(2, str('lo')),
      tlv(3, u32(7)),
      tlv(4, u16(1472)),
      tlv(7, u16(8848)),
      tlv(8, u8(1)),
      tlv(5, bytes(224, 0, 0, 81)),
    );
    expect(decodeDaemon(decodeAttrs(DAEMON_ATTRS, dumped))).toEqual({
      state: 'master',
      mcastIfn: 'lo',
      syncId: 7,
      syncMaxLen: 1472,
      mcastGroup: '224.0.0.81',
      mcastPort: 8848,
      mcastTtl: 1,
    });
  });

  test('set-timeouts, zero (all and one), flush', () => {
    const t = opRequest({ op: 'set-timeouts', timeouts: { tcp: 900, tcpFin: 120, udp: 300 } });
    expect(t.cmd).toBe(12);
    const tb = cat(tlv(4, u32(900)), tlv(5, u32(120)), tlv(6, u32(300)));
    expect(encodeAttrs(CMD_ATTRS, t.attrs)).toEqual(tb);
    expect(decodeTimeouts(decodeAttrs(CMD_ATTRS, tb))).toEqual({ tcp: 900, tcpFin: 120, udp: 300 });
    expect(opRequest({ op: 'zero' })).toEqual({ cmd: 16, attrs: {} });
    const z = opRequest({ op: 'zero', service: { kind: 'fwmark', family: 'inet', fwmark: 2 } });
    expect(encodeAttrs(CMD_ATTRS, z.attrs)).toEqual(tlv(1, cat(tlv(1, u16(2)), tlv(5, u32(2)))));
    expect(opRequest({ op: 'flush' })).toEqual({ cmd: 17, attrs: {} });
  });

  test('info reply', () => {
    const b = cat(tlv(1, u32(0x010201)), tlv(2, u32(4096)));
    expect(decodeInfo(decodeAttrs(INFO_ATTRS, b))).toEqual({ version: '1.2.1', connTableSize: 4096 });
  });

  test('unknown wire values are reported, not guessed', () => {
    expect(() => decodeService(decodeAttrs(SERVICE_ATTRS, cat(tlv(1, u16(7)), tlv(5, u32(1)))))).toThrow(/address family 7/);
    expect(() => decodeDestination(decodeAttrs(DEST_ATTRS, cat(tlv(1, pad16(bytes(1, 2, 3, 4))), tlv(2, be16(1)), tlv(13, u8(9)))), 'inet')).toThrow(/tunnel type 9/);
  });
});

describe('netlink messages', () => {
  test('a generic netlink request: nlmsghdr, genlmsghdr, attributes', () => {
    const buf = encodeGenlMessage(
      { family: 0x23, flags: 0x5, seq: 77, cmd: 17, version: 1 },
      STATS_ATTRS,
      {},
    );
    expect(buf).toEqual(cat(u32(20), u16(0x23), u16(5), u32(77), u32(0), bytes(17, 1, 0, 0)));
  });

  test('one datagram holding a reply, an error echoing the request, and DONE', () => {
    const reply = cat(u32(28), u16(0x23), u16(2), u32(5), u32(0), bytes(1, 1, 0, 0), tlv(1, u32(0x010201)));
    const echoed = cat(u32(20), u16(0x23), u16(5), u32(6), u32(0), bytes(1, 1, 0, 0));
    const err = cat(u32(16 + 4 + 20), u16(2), u16(0), u32(6), u32(0), u32(-3 >>> 0), echoed);
    const done = cat(u32(20), u16(3), u16(2), u32(5), u32(0), u32(0));
    const msgs = parseMessages(cat(reply, err, done));
    expect(msgs.map((m) => [m.type, m.seq])).toEqual([
      [0x23, 5],
      [2, 6],
      [3, 5],
    ]);
    expect(genlCommand(msgs[0])).toBe(1);
    expect(decodeAttrs(INFO_ATTRS, msgs[0].buf, genlAttrStart(msgs[0]), msgs[0].end)).toEqual({ version: 0x010201 });
    expect(messageErrno(msgs[1])).toBe(3);
    expect(erroredRequestSeq(msgs[1])).toBe(6);
    expect(messageErrno(msgs[2])).toBe(0);
    expect(messageErrno(msgs[0])).toBeNull();
  });
});
