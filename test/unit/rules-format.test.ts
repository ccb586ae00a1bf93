/** The printers: -S/-Sn, -L in each format, --timeout, --daemon, -c; and ipvsadm's sort order. */
import {
  compareServices,
  createTextResolver,
  formatConnections,
  formatDaemons,
  formatLargeNumber,
  formatList,
  formatSave,
  formatTimeouts,
  sortServices,
  usageText,
  versionText,
} from '../../src/ipvs/rules';
import { glibcQsort } from '../../src/ipvs/rules/sort';
import { formatIpv6, inetAton, inetPton6 } from '../../src/ipvs/rules/inet';
import {
  type DestinationState,
  type ServiceState,
  type Stats,
  NO_SERVICE_FLAGS,
  NO_TUNNEL_FLAGS,
  ZERO_STATS,
} from '../../src/ipvs/model';

const resolver = createTextResolver('127.0.0.1 localhost\n::1 localhost ip6-localhost\n10.0.0.2 web-backend-with-a-rather-long-host-name\n', 'http 80/tcp www\nhttps 443/tcp\ndomain 53/udp\n');

function stats(n: number): Stats {
  const b = BigInt(n);
  return { conns: b, inPkts: b * 2n, outPkts: b * 3n, inBytes: b * 1000n, outBytes: b * 123456n, cps: b, inPps: b + 1n, outPps: b + 2n, inBps: b * 100n, outBps: b * 200n };
}

function dst(address: string, port: number, extra: Partial<DestinationState> = {}): DestinationState {
  return {
    family: address.includes(':') ? 'inet6' : 'inet',
    address,
    port,
    forward: 'masq',
    weight: 1,
    upperThreshold: 0,
    lowerThreshold: 0,
    tunnelType: 'ipip',
    tunnelPort: 0,
    tunnelFlags: { ...NO_TUNNEL_FLAGS },
    activeConns: 0,
    inactiveConns: 0,
    persistConns: 0,
    stats: { ...ZERO_STATS },
    ...extra,
  };
}

function tcp(address: string, port: number, extra: Partial<ServiceState> = {}): ServiceState {
  return {
    key: { kind: 'addr', family: address.includes(':') ? 'inet6' : 'inet', protocol: 'tcp', address, port },
    scheduler: 'wlc',
    flags: { ...NO_SERVICE_FLAGS },
    persistenceTimeout: 0,
    netmask: address.includes(':') ? 128 : 0xffffffff,
    pe: '',
    stats: { ...ZERO_STATS },
    destinations: [],
    ...extra,
  };
}

const INFO = { version: '1.2.1', connTableSize: 4096 };

describe('formatSave', () => {
  it('prints every service field in ipvsadm\'s order', () => {
    const s = tcp('10.0.0.1', 80, {
      scheduler: 'rr',
      flags: { persistent: true, onePacket: true, sched1: true, sched2: false, sched3: true },
      persistenceTimeout: 300,
      netmask: 0xffffff00,
      pe: 'sip',
    });
    expect(formatSave([s], { numeric: true })).toBe('-A -t 10.0.0.1:80 -s rr -p 300 -M 255.255.255.0 --pe sip -o -b flag-1,flag-3\n');
  });
  it('omits -M at /32 and /128, prints the prefix for IPv6, and no mask without persistence', () => {
    expect(formatSave([tcp('10.0.0.1', 80, { netmask: 0xff000000 })], { numeric: true })).toBe('-A -t 10.0.0.1:80 -s wlc\n');
    expect(formatSave([tcp('2001:db8::1', 80, { flags: { ...NO_SERVICE_FLAGS, persistent: true }, persistenceTimeout: 5, netmask: 96 })], { numeric: true })).toBe(
      '-A -t [2001:db8::1]:80 -s wlc -p 5 -M 96\n',
    );
  });
  it('real servers: switch, weight, tunnel options; bypass prints as C prints NULL', () => {
    const s = tcp('10.0.0.1', 80, {
      destinations: [
        dst('10.0.0.2', 80, { forward: 'route', weight: 0 }),
        dst('10.0.0.3', 80, { forward: 'tunnel', tunnelType: 'gue', tunnelPort: 6080, tunnelFlags: { noCsum: false, csum: false, remCsum: true } }),
        dst('10.0.0.4', 80, { forward: 'tunnel', tunnelType: 'gre', tunnelFlags: { noCsum: false, csum: true, remCsum: false } }),
        dst('10.0.0.5', 80, { forward: 'local' }),
        dst('10.0.0.6', 80, { forward: 'bypass' }),
        dst('2001:db8::9', 80, { forward: 'tunnel' }),
      ],
    });
    expect(formatSave([s], { numeric: true })).toBe(
      [
        '-A -t 10.0.0.1:80 -s wlc',
        '-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g -w 0',
        '-a -t 10.0.0.1:80 -r 10.0.0.3:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-remcsum',
        '-a -t 10.0.0.1:80 -r 10.0.0.4:80 -i -w 1 --tun-type gre --tun-csum',
        '-a -t 10.0.0.1:80 -r 10.0.0.5:80 -g -w 1',
        '-a -t 10.0.0.1:80 -r 10.0.0.6:80 (null) -w 1',
        '-a -t 10.0.0.1:80 -r [2001:db8::9]:80 -i -w 1 --tun-type ipip',
        '',
      ].join('\n'),
    );
  });
  it('fwmark services print -f (signed, as ipvsadm\'s %d) and -6', () => {
    const fw = (fwmark: number, family: 'inet' | 'inet6'): ServiceState => ({ ...tcp('0.0.0.0', 0), key: { kind: 'fwmark', family, fwmark } });
    // 2147483648 - 9 wraps to a positive int: the large mark sorts after 9.
    expect(formatSave([fw(2147483648, 'inet'), fw(9, 'inet6')], { numeric: true })).toBe('-A -f 9 -6 -s wlc\n-A -f -2147483648 -s wlc\n');
  });
  it('-S without -n resolves names (hosts, services per protocol)', () => {
    const s = tcp('127.0.0.1', 443, { destinations: [dst('127.0.0.1', 80), dst('10.9.9.9', 8080)] });
    expect(formatSave([s], { resolver })).toBe(
      '-A -t localhost:https -s wlc\n-a -t localhost:https -r 10.9.9.9:8080 -m -w 1\n-a -t localhost:https -r localhost:http -m -w 1\n',
    );
    expect(formatSave([tcp('::1', 80)], { resolver })).toBe('-A -t [localhost]:http -s wlc\n');
  });
});

describe('sort order (ipvs_cmp_services / ipvs_cmp_dests through glibc qsort)', () => {
  it('fwmark, family, protocol, then wrapping address and port comparison', () => {
    const services = [
      tcp('10.0.0.1', 80),
      { ...tcp('10.0.0.1', 80), key: { kind: 'addr' as const, family: 'inet' as const, protocol: 'udp' as const, address: '10.0.0.1', port: 80 } },
      tcp('2001:db8::1', 80),
      tcp('10.0.0.1', 8),
      { ...tcp('0.0.0.0', 0), key: { kind: 'fwmark' as const, family: 'inet' as const, fwmark: 2 } },
      { ...tcp('0.0.0.0', 0), key: { kind: 'fwmark' as const, family: 'inet6' as const, fwmark: 1 } },
    ];
    expect(sortServices(services).map((s) => formatSave([s], { numeric: true }).split(' -s')[0])).toEqual([
      '-A -t 10.0.0.1:8',
      '-A -t 10.0.0.1:80',
      '-A -u 10.0.0.1:80',
      '-A -t [2001:db8::1]:80',
      '-A -f 1 -6',
      '-A -f 2',
    ]);
  });
  it('wraps like the C subtraction: 200.0.0.1 before 10.0.0.1', () => {
    expect(compareServices(tcp('10.0.0.1', 80), tcp('200.0.0.1', 80))).toBeGreaterThan(0);
    expect(compareServices(tcp('10.0.0.1', 80), tcp('100.0.0.1', 80))).toBeLessThan(0);
  });
  it('merges like glibc msort (left half first, ties stay)', () => {
    const seen: string[] = [];
    const out = glibcQsort(['d', 'c', 'b', 'a', 'b2'], (x, y) => {
      seen.push(`${x}${y}`);
      return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0;
    });
    expect(out).toEqual(['a', 'b', 'b2', 'c', 'd']);
    expect(seen).toEqual(['dc', 'ab2', 'ba', 'bb2', 'ca', 'cb', 'cb2']);
  });
  it('--nosort keeps the given order', () => {
    const s = [tcp('10.0.0.2', 80), tcp('10.0.0.1', 80)];
    expect(formatList(s, { numeric: true, noSort: true }).split('\n').slice(2, 4)).toEqual(['TCP  10.0.0.2:80 wlc', 'TCP  10.0.0.1:80 wlc']);
  });
});

describe('formatList', () => {
  const svc = tcp('192.168.100.100', 8080, {
    scheduler: 'sh',
    flags: { persistent: true, onePacket: false, sched1: true, sched2: true, sched3: false },
    persistenceTimeout: 60,
    netmask: 0xffffff00,
    pe: 'sip',
    stats: stats(123456789),
    destinations: [
      dst('10.0.0.3', 8080, { weight: 5, activeConns: 7, inactiveConns: 8, persistConns: 2, upperThreshold: 100, lowerThreshold: 10, stats: stats(5) }),
      dst('10.0.0.2', 8080, { forward: 'tunnel', tunnelType: 'gue', tunnelPort: 6080, tunnelFlags: { noCsum: false, csum: true, remCsum: false }, stats: stats(1234567890123) }),
    ],
  });

  it('default format with header, flags, persistence, mask and pe', () => {
    expect(formatList([svc], { numeric: true, info: INFO })).toBe(
      'IP Virtual Server version 1.2.1 (size=4096)\n' +
        'Prot LocalAddress:Port Scheduler Flags\n' +
        '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n' +
        'TCP  192.168.100.100:8080 sh (sh-fallback,sh-port) persistent 60 mask 255.255.255.0 pe sip\n' +
        '  -> 10.0.0.2:8080                Tunnel  1      0          0         \n' +
        '  -> 10.0.0.3:8080                Masq    5      7          8         \n',
    );
  });
  it('one service without header; ops; IPv6 and fwmark names', () => {
    const u = { ...tcp('2001:db8::1', 53), key: { kind: 'addr' as const, family: 'inet6' as const, protocol: 'udp' as const, address: '2001:db8::1', port: 53 }, flags: { ...NO_SERVICE_FLAGS, onePacket: true } };
    const f = { ...tcp('0.0.0.0', 0), key: { kind: 'fwmark' as const, family: 'inet6' as const, fwmark: 3 }, destinations: [dst('2001:db8::7', 0, { forward: 'route' })] };
    expect(formatList([u, f], { numeric: true })).toBe(
      'Prot LocalAddress:Port Scheduler Flags\n' +
        '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n' +
        'UDP  [2001:db8::1]:53 wlc ops\n' +
        'FWM  3 IPv6 wlc\n' +
        '  -> [2001:db8::7]:0              Route   1      0          0         \n',
    );
  });
  it('--stats abbreviates, --exact expands', () => {
    const lines = formatList([svc], { numeric: true, stats: true }).split('\n');
    expect(lines[0]).toBe('Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes');
    expect(lines[1]).toBe('  -> RemoteAddress:Port');
    expect(lines[2]).toBe('TCP  192.168.100.100:8080          123456K  246913K  370370K     123G   15241G');
    expect(lines[3]).toBe('  -> 10.0.0.2:8080                   1234G    2469G    3703G    1234T  152414T');
    expect(lines[4]).toBe('  -> 10.0.0.3:8080                       5       10       15     5000   617280');
    const exact = formatList([svc], { numeric: true, stats: true, exact: true }).split('\n');
    expect(exact[2]).toBe('TCP  192.168.100.100:8080         123456789 246913578 370370367 123456789000 15241481342784');
  });
  it('--rate: service in large numbers, real server pps plain', () => {
    const lines = formatList([svc], { numeric: true, rate: true }).split('\n');
    expect(lines[0]).toBe('Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS');
    expect(lines[2]).toBe('TCP  192.168.100.100:8080          123456K  123456K  123456K   12345M   24691M');
    expect(lines[3]).toBe('  -> 10.0.0.2:8080                1234567890123 1234567890124 1234567890125     123T     246T');
  });
  it('--thresholds, --persistent-conn, --tun-info', () => {
    expect(formatList([svc], { numeric: true, thresholds: true }).split('\n').slice(0, 5)).toEqual([
      'Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn ',
      '  -> RemoteAddress:Port',
      'TCP  192.168.100.100:8080 sh (sh-fallback,sh-port) persistent 60 mask 255.255.255.0 pe sip',
      '  -> 10.0.0.2:8080                0          0          0          0         ',
      '  -> 10.0.0.3:8080                100        10         7          8         ',
    ]);
    expect(formatList([svc], { numeric: true, persistentConn: true }).split('\n').slice(0, 5)).toEqual([
      'Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn ',
      '  -> RemoteAddress:Port',
      'TCP  192.168.100.100:8080 sh (sh-fallback,sh-port) persistent 60 mask 255.255.255.0 pe sip',
      '  -> 10.0.0.2:8080                1         0           0          0         ',
      '  -> 10.0.0.3:8080                5         2           7          8         ',
    ]);
    expect(formatList([svc], { numeric: true, tunInfo: true }).split('\n').slice(0, 5)).toEqual([
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn',
      'TCP  192.168.100.100:8080 sh (sh-fallback,sh-port) persistent 60 mask 255.255.255.0 pe sip',
      '  -> 10.0.0.2:8080                Tunnel  gue:6080:+c   1      0          0         ',
      '  -> 10.0.0.3:8080                Masq    n/a           5      7          8         ',
    ]);
  });
  it('names: truncates IPv4 names to 33 (service) and 28 (real server) columns', () => {
    const s = tcp('10.0.0.2', 80, { destinations: [dst('10.0.0.2', 443)] });
    expect(formatList([s], { resolver }).split('\n').slice(2)).toEqual([
      'TCP  web-backend-with-a-rather-lo wlc',
      '  -> web-backend-with-a-rather-lo Masq    1      0          0         ',
      '',
    ]);
  });
});

describe('formatLargeNumber', () => {
  it('switches unit at 10^8, 10^9, 10^11, 10^14', () => {
    expect([99999999n, 100000000n, 999999999n, 1000000000n, 99999999999n, 100000000000n, 99999999999999n, 100000000000000n].map((v) => formatLargeNumber(v, false))).toEqual([
      ' 99999999', '  100000K', '  999999K', '    1000M', '   99999M', '     100G', '   99999G', '     100T',
    ]);
    expect(formatLargeNumber(12345678n, true)).toBe(' 12345678');
    expect(formatLargeNumber(123456789n, true)).toBe(' 123456789');
  });
});

describe('other listings', () => {
  it('--timeout', () => {
    expect(formatTimeouts({ tcp: 900, tcpFin: 120, udp: 300 })).toBe('Timeout (tcp tcpfin udp): 900 120 300\n');
  });
  it('--daemon', () => {
    expect(
      formatDaemons([
        { state: 'master', mcastIfn: 'eth0', syncId: 1, syncMaxLen: 1472, mcastGroup: '224.0.0.81', mcastPort: 8848, mcastTtl: 1 },
        { state: 'backup', mcastIfn: 'eth1', syncId: 0, syncMaxLen: 0, mcastGroup: '', mcastPort: 0, mcastTtl: 0 },
      ]),
    ).toBe('master sync daemon (mcast=eth0, syncid=1, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\nbackup sync daemon (mcast=eth1, syncid=0)\n');
  });
  it('-c from /proc/net/ip_vs_conn (IPv4 hex, IPv6, persistence engine data)', () => {
    const proc =
      'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n' +
      'TCP 0A000064 C350 0A000001 0050 0A000002 1F90 ESTABLISHED     899\n' +
      'UDP 2001:0db8:0000:0000:0000:0000:0000:0064 0035 2001:0db8:0000:0000:0000:0000:0000:0001 0035 2001:0db8:0000:0000:0000:0000:0000:0002 0035 UDP              65 sip abc@host\n';
    expect(formatConnections(proc, { numeric: true })).toBe(
      'IPVS connection entries\n' +
        'pro expire state       source             virtual            destination\n' +
        'TCP 14:59  ESTABLISHED 10.0.0.100:50000   10.0.0.1:80        10.0.0.2:8080\n' +
        'UDP 01:05  UDP         [2001:db8::64]:53  [2001:db8::1]:53   [2001:db8::2]:53\n',
    );
    expect(formatConnections(proc, { numeric: true, persistentConn: true }).split('\n').slice(1)).toEqual([
      'pro expire state       source             virtual            destination        pe name          pe_data',
      'TCP 14:59  ESTABLISHED 10.0.0.100:50000   10.0.0.1:80        10.0.0.2:8080',
      'UDP 01:05  UDP         [2001:db8::64]:53  [2001:db8::1]:53   [2001:db8::2]:53 sip                abc@host',
      '',
    ]);
    expect(formatConnections(proc, { resolver }).split('\n')[2]).toBe('TCP 14:59  ESTABLISHED 10.0.0.100:50000   10.0.0.1:http      web-backend-with-a-rather-long-host-name:8080');
  });
  it('-v and -h texts', () => {
    expect(versionText()).toBe('ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n');
    const h = usageText('ipvs-bpfctl');
    expect(h.startsWith(versionText() + 'Usage:\n  ipvs-bpfctl -A|E virtual-service')).toBe(true);
    expect(h).toContain('  --sched-flags  -b flags             scheduler flags (comma-separated)\nDaemon Options:\n');
    expect(h.endsWith('  --mcast-ttl ttl                     Multicast TTL (default=1)\n')).toBe(true);
  });
});

describe('address text', () => {
  it('inet_aton accepts C number forms and trailing blanks, refuses the rest', () => {
    expect(inetAton('1.2.3.4')).toBe(0x01020304);
    expect(inetAton('1.2.3')).toBe(0x01020003);
    expect(inetAton('0x7f.1')).toBe(0x7f000001);
    expect(inetAton('1.2.3.4 junk')).toBe(0x01020304);
    for (const bad of ['1.2.3.4.5', '256.1.1.1', '1.2.3.256', '08.1.1.1', 'a.b.c.d', '', '1..2', '1.2.3.4x']) expect(inetAton(bad)).toBeNull();
  });
  it('inet_pton/inet_ntop for IPv6 as glibc writes it', () => {
    const norm = (s: string): string | null => {
      const b = inetPton6(s);
      return b ? formatIpv6(b) : null;
    };
    expect(norm('2001:0DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(norm('::')).toBe('::');
    expect(norm('::1')).toBe('::1');
    expect(norm('::ffff:1.2.3.4')).toBe('::ffff:1.2.3.4');
    expect(norm('::1.2.3.4')).toBe('::1.2.3.4');
    expect(norm('1:0:0:2:0:0:0:3')).toBe('1:0:0:2::3');
    expect(norm('1:0:2:3:4:5:6:7')).toBe('1:0:2:3:4:5:6:7');
    for (const bad of [':1', '1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', '1:2:3:4:5:6:7::8', 'g::1', '1:']) expect(norm(bad)).toBeNull();
  });
});
