/** parseCommand(): ipvsadm 1.31's options, defaults, popt behaviour and every error it prints. */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  type Command,
  createTextResolver,
  parseCommand,
  RuleError,
  NUMERIC_ONLY,
} from '../../src/ipvs/rules';
import { COMMAND_OPTIONS, OPTION_CLASSES, OPTION_TABLE } from '../../src/ipvs/rules/options';
import type { Service, Destination } from '../../src/ipvs/model';

const FIXTURES = path.join(__dirname, '../fixtures/rules');
const resolver = createTextResolver(
  readFileSync(path.join(FIXTURES, 'etc-hosts'), 'utf8'),
  readFileSync(path.join(FIXTURES, 'etc-services'), 'utf8'),
);
const parse = (...argv: string[]): Command => parseCommand(argv, { resolver });

function service(cmd: Command): Service {
  if (cmd.kind !== 'add-service' && cmd.kind !== 'edit-service') throw new Error(`not a service command: ${cmd.kind}`);
  return cmd.service;
}
function dest(cmd: Command): Destination {
  if (cmd.kind !== 'add-dest' && cmd.kind !== 'edit-dest') throw new Error(`not a dest command: ${cmd.kind}`);
  return cmd.dest;
}
function errorOf(argv: string[]): { message: string; status: number } {
  try {
    parseCommand(argv, { resolver });
  } catch (e) {
    if (e instanceof RuleError) return { message: e.message, status: e.exitStatus };
    throw e;
  }
  throw new Error(`no error for ${argv.join(' ')}`);
}

describe('option tables', () => {
  it('every command row has one column per option class', () => {
    for (const row of Object.values(COMMAND_OPTIONS)) expect(row).toHaveLength(OPTION_CLASSES.length);
    expect(OPTION_CLASSES).toHaveLength(34);
  });
  it('short and long names are unique except ipvsadm\'s two "list" entries', () => {
    const longs = OPTION_TABLE.map((o) => o.long).filter((l) => l !== 'list');
    expect(new Set(longs).size).toBe(longs.length);
    const shorts = OPTION_TABLE.flatMap((o) => (o.short ? [o.short] : []));
    expect(new Set(shorts).size).toBe(shorts.length);
  });
});

describe('add-service defaults and options', () => {
  it('applies wlc, no persistence, /32 mask', () => {
    expect(parse('-A', '-t', '10.0.0.1:80')).toEqual({
      kind: 'add-service',
      service: {
        key: { kind: 'addr', family: 'inet', protocol: 'tcp', address: '10.0.0.1', port: 80 },
        scheduler: 'wlc',
        flags: { persistent: false, onePacket: false, sched1: false, sched2: false, sched3: false },
        persistenceTimeout: 0,
        netmask: 0xffffffff,
        pe: '',
      },
    });
  });
  it('reads the short and long forms alike', () => {
    const short = parse('-A', '-u', '10.0.0.1:53', '-s', 'rr', '-p', '30', '-M', '255.255.0.0', '--pe', 'sip', '-o', '-b', 'flag-2');
    const long = parse(
      '--add-service', '--udp-service', '10.0.0.1:53', '--scheduler', 'rr', '--persistent', '30',
      '--netmask', '255.255.0.0', '--pe', 'sip', '--ops', '--sched-flags', 'flag-2',
    );
    expect(long).toEqual(short);
    const s = service(short);
    expect(s.scheduler).toBe('rr');
    expect(s.flags).toEqual({ persistent: true, onePacket: true, sched1: false, sched2: true, sched3: false });
    expect(s.persistenceTimeout).toBe(30);
    expect(s.netmask).toBe(0xffff0000);
    expect(s.pe).toBe('sip');
  });
  it('bare -p is 360 s, also before another option and at the end', () => {
    expect(service(parse('-A', '-t', '10.0.0.1:80', '-p')).persistenceTimeout).toBe(360);
    expect(service(parse('-A', '-t', '10.0.0.1:80', '-p', '-s', 'rr')).persistenceTimeout).toBe(360);
    expect(service(parse('-A', '-p', '-t', '10.0.0.1:80')).persistenceTimeout).toBe(360);
    expect(service(parse('-A', '-t', '10.0.0.1:80', '-p900')).persistenceTimeout).toBe(900);
    expect(service(parse('-A', '-t', '10.0.0.1:80', '--persistent=901')).persistenceTimeout).toBe(901);
  });
  it('takes attached and "=" arguments and bundled short options', () => {
    expect(service(parse('-A', '-t10.0.0.1:80', '-s=rr')).scheduler).toBe('rr');
    expect(service(parse('-At', '10.0.0.1:80', '-srr')).scheduler).toBe('rr');
    expect(service(parse('-A', '--tcp-service=10.0.0.1:80', '--scheduler=sh')).scheduler).toBe('sh');
  });
  it('--sctp-service and IPv6 services (/128 default mask, prefix-length -M)', () => {
    expect(service(parse('-A', '--sctp-service', '10.0.0.1:3868')).key).toEqual({
      kind: 'addr', family: 'inet', protocol: 'sctp', address: '10.0.0.1', port: 3868,
    });
    const v6 = service(parse('-A', '-t', '[2001:DB8:0::1]:443', '-p', '-M', '64'));
    expect(v6.key).toEqual({ kind: 'addr', family: 'inet6', protocol: 'tcp', address: '2001:db8::1', port: 443 });
    expect(v6.netmask).toBe(64);
    expect(service(parse('-A', '-t', '[::1]:80')).netmask).toBe(128);
    // An unbracketed IPv6 address is all address: no port.
    expect(errorOf(['-A', '-t', '2001:db8::1:80']).message).toBe('Zero port specified for non-persistent service');
  });
  it('-M given before an IPv6 service is read as an IPv4 mask, then reset to /128', () => {
    expect(service(parse('-A', '-M', '64', '-t', '[::1]:80', '-p')).netmask).toBe(128);
  });
  it('fwmark services: -f N, -6 after -f sets IPv6 and /128', () => {
    expect(service(parse('-A', '-f', '7')).key).toEqual({ kind: 'fwmark', family: 'inet', fwmark: 7 });
    const s = service(parse('--add-service', '--fwmark-service', '4294967295', '--ipv6', '-p', '10', '-M', '56'));
    expect(s.key).toEqual({ kind: 'fwmark', family: 'inet6', fwmark: 4294967295 });
    expect(s.netmask).toBe(56);
  });
  it('-o is allowed on UDP and fwmark services', () => {
    expect(service(parse('-A', '-u', '10.0.0.1:53', '-o')).flags.onePacket).toBe(true);
    expect(service(parse('-A', '-f', '3', '-o')).flags.onePacket).toBe(true);
  });
  it('scheduler flags by name, sh/mh aliases, later flags replace none of the others', () => {
    expect(service(parse('-A', '-t', '10.0.0.1:80', '-s', 'sh', '-b', 'sh-fallback,sh-port')).flags).toMatchObject({ sched1: true, sched2: true, sched3: false });
    expect(service(parse('-A', '-t', '10.0.0.1:80', '-s', 'mh', '-b', 'mh-port')).flags).toMatchObject({ sched1: false, sched2: true });
    expect(service(parse('-A', '-t', '10.0.0.1:80', '-b', ',flag-3,,flag-1')).flags).toMatchObject({ sched1: true, sched2: false, sched3: true });
    // An empty -b argument sets nothing.
    expect(service(parse('-A', '-t', '10.0.0.1:80', '-b', '')).flags.sched1).toBe(false);
  });
  it('scheduler names are cut to 15 characters as ipvsadm copies them', () => {
    expect(service(parse('-A', '-t', '10.0.0.1:80', '-s', 'abcdefghijklmnopq')).scheduler).toBe('abcdefghijklmno');
  });
  it('-E carries every attribute, with defaults for those not given', () => {
    expect(parse('-E', '-t', '10.0.0.1:80')).toEqual({ ...parse('-A', '-t', '10.0.0.1:80'), kind: 'edit-service' });
  });
});

describe('addresses and names', () => {
  it('inet_aton forms: short, hex, octal', () => {
    const key = (a: string): unknown => service(parse('-A', '-t', a)).key;
    expect(key('10.1:80')).toMatchObject({ address: '10.0.0.1' });
    expect(key('0x0a000001:80')).toMatchObject({ address: '10.0.0.1' });
    expect(key('012.0.0.1:80')).toMatchObject({ address: '10.0.0.1' });
    expect(key('167772161:80')).toMatchObject({ address: '10.0.0.1' });
  });
  it('host and service names from the hosts and services files, by protocol', () => {
    expect(service(parse('-A', '-t', 'localhost:http')).key).toMatchObject({ address: '127.0.0.1', port: 80 });
    expect(service(parse('-A', '-t', 'LOCALHOST:www')).key).toMatchObject({ address: '127.0.0.1', port: 80 });
    expect(service(parse('-A', '-u', '127.0.0.1:domain')).key).toMatchObject({ port: 53 });
    expect(errorOf(['-A', '-u', '127.0.0.1:http']).message).toBe('illegal virtual server address[:port] specified');
    expect(parseCommand(['-A', '-t', '10.0.0.1:80'], { resolver: NUMERIC_ONLY }).kind).toBe('add-service');
    expect(() => parseCommand(['-A', '-t', 'localhost:80'], { resolver: NUMERIC_ONLY })).toThrow('illegal virtual server address[:port] specified');
  });
  it('a bracketed IPv4 address loses its port, as in ipvsadm', () => {
    expect(errorOf(['-A', '-t', '[10.0.0.1]:80']).message).toBe('Zero port specified for non-persistent service');
  });
  it('"[v6]" without ":port" is refused', () => {
    expect(errorOf(['-a', '-t', '[::1]:80', '-r', '[::2]']).message).toBe('illegal real server address[:port] specified');
  });
});

describe('real servers', () => {
  it('defaults: -g, weight 1, port of the service, no thresholds, ipip', () => {
    expect(parse('-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2')).toEqual({
      kind: 'add-dest',
      service: { kind: 'addr', family: 'inet', protocol: 'tcp', address: '10.0.0.1', port: 80 },
      dest: {
        family: 'inet', address: '10.0.0.2', port: 80, forward: 'route', weight: 1, upperThreshold: 0, lowerThreshold: 0,
        tunnelType: 'ipip', tunnelPort: 0, tunnelFlags: { noCsum: true, csum: false, remCsum: false },
      },
    });
  });
  it('-g and -i force the service port; -m keeps its own', () => {
    expect(dest(parse('-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2:8080')).port).toBe(80);
    expect(dest(parse('-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2:8080', '-i')).port).toBe(80);
    expect(dest(parse('-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2:8080', '-m')).port).toBe(8080);
    expect(dest(parse('-a', '-f', '1', '-r', '10.0.0.2:8080', '-g')).port).toBe(8080);
  });
  it('long forms of every real-server option', () => {
    const d = dest(parse(
      '--edit-server', '--tcp-service', '10.0.0.1:80', '--real-server', '10.0.0.2', '--ipip', '--weight', '2147483647',
      '--u-threshold', '9', '--l-threshold', '3', '--tun-type', 'gue', '--tun-port', '6080', '--tun-remcsum',
    ));
    expect(d).toMatchObject({ forward: 'tunnel', weight: 2147483647, upperThreshold: 9, lowerThreshold: 3, tunnelType: 'gue', tunnelPort: 6080 });
    expect(d.tunnelFlags).toEqual({ noCsum: false, csum: false, remCsum: true });
    expect(dest(parse('-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '--gatewaying')).forward).toBe('route');
    expect(dest(parse('-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '--masquerading')).forward).toBe('masq');
    expect(dest(parse('-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-i', '--tun-type', 'gre', '--tun-csum')).tunnelFlags).toEqual({
      noCsum: false, csum: true, remCsum: false,
    });
  });
  it('IPv4 real server of an IPv6 service when tunnelling', () => {
    expect(dest(parse('-a', '-t', '[2001:db8::1]:80', '-r', '10.0.0.2', '-i'))).toMatchObject({ family: 'inet', address: '10.0.0.2', port: 80 });
  });
  it('delete keeps the given port (no forwarding method applies)', () => {
    expect(parse('-d', '-t', '10.0.0.1:80', '-r', '10.0.0.2:8080')).toEqual({
      kind: 'delete-dest',
      service: { kind: 'addr', family: 'inet', protocol: 'tcp', address: '10.0.0.1', port: 80 },
      dest: { family: 'inet', address: '10.0.0.2', port: 8080 },
    });
  });
});

describe('other commands', () => {
  it('plain ipvsadm lists; -L/-l with their formats and targets', () => {
    expect(parse()).toMatchObject({ kind: 'list', target: { what: 'services' }, format: { numeric: false } });
    expect(parse('-Ln', '--stats', '--exact', '--nosort', '--sort')).toMatchObject({
      kind: 'list', format: { numeric: true, stats: true, exact: true, noSort: true },
    });
    expect(parse('-l', '--rate', '-X')).toMatchObject({ format: { rate: true, exact: true } });
    expect(parse('--list', '--thresholds', '--persistent-conn', '--tun-info')).toMatchObject({
      format: { thresholds: true, persistentConn: true, tunInfo: true },
    });
    expect(parse('-L', '-t', '10.0.0.1:80')).toMatchObject({ target: { what: 'service', service: { address: '10.0.0.1' } } });
    expect(parse('-L', '-c', '-n')).toMatchObject({ target: { what: 'connections' } });
    expect(parse('-L', '--connection', '--persistent-conn')).toMatchObject({ target: { what: 'connections' } });
    expect(parse('-L', '--timeout')).toMatchObject({ target: { what: 'timeout' } });
    expect(parse('-L', '--daemon')).toMatchObject({ target: { what: 'daemon' } });
  });
  it('-S, -Sn, -R, -C, --clear, -Z, -D', () => {
    expect(parse('-S')).toEqual({ kind: 'save', numeric: false });
    expect(parse('-Sn')).toEqual({ kind: 'save', numeric: true });
    expect(parse('--save', '--numeric')).toEqual({ kind: 'save', numeric: true });
    expect(parse('-R')).toEqual({ kind: 'restore' });
    expect(parse('--restore')).toEqual({ kind: 'restore' });
    expect(parse('-C')).toEqual({ kind: 'clear' });
    expect(parse('--clear')).toEqual({ kind: 'clear' });
    expect(parse('-Z')).toEqual({ kind: 'zero' });
    expect(parse('--zero', '-f', '3')).toEqual({ kind: 'zero', service: { kind: 'fwmark', family: 'inet', fwmark: 3 } });
    expect(parse('--delete-service', '-u', '10.0.0.1:53')).toEqual({
      kind: 'delete-service', key: { kind: 'addr', family: 'inet', protocol: 'udp', address: '10.0.0.1', port: 53 },
    });
  });
  it('--set tcp tcpfin udp, with 0 meaning unchanged', () => {
    expect(parse('--set', '900', '0', '300')).toEqual({ kind: 'set', timeouts: { tcp: 900, tcpFin: 0, udp: 300 } });
  });
  it('--start-daemon with every daemon option, and its defaults', () => {
    expect(parse('--start-daemon', 'backup')).toEqual({
      kind: 'start-daemon',
      daemon: { state: 'backup', mcastIfn: 'eth0', syncId: 0, syncMaxLen: 0, mcastGroup: '', mcastPort: 0, mcastTtl: 0 },
    });
    expect(parse(
      '--start-daemon', 'master', '--mcast-interface', 'eth1', '--syncid', '7', '--sync-maxlen', '1400',
      '--mcast-group', 'FF02::0:81', '--mcast-port', '8849', '--mcast-ttl', '2',
    )).toEqual({
      kind: 'start-daemon',
      daemon: { state: 'master', mcastIfn: 'eth1', syncId: 7, syncMaxLen: 1400, mcastGroup: 'ff02::81', mcastPort: 8849, mcastTtl: 2 },
    });
    expect(parse('--start-daemon=master', '--mcast-group=239.1.2.3')).toMatchObject({ daemon: { mcastGroup: '239.1.2.3' } });
  });
  it('--stop-daemon', () => {
    expect(parse('--stop-daemon', 'master', '--syncid', '3')).toEqual({ kind: 'stop-daemon', state: 'master', syncId: 3 });
  });
  it('-h and -v first win over anything after them', () => {
    expect(parse('-h')).toEqual({ kind: 'help' });
    expect(parse('--help', '--bogus')).toEqual({ kind: 'help' });
    expect(parse('-v')).toEqual({ kind: 'version' });
    expect(parse('--version')).toEqual({ kind: 'version' });
  });
  it('"--" ends the options: later words are unexpected arguments', () => {
    expect(errorOf(['-C', '--', '-n'])).toEqual({ message: 'unexpected argument -n', status: 2 });
  });
  it('the program name in the "Try" line is the one given', () => {
    expect(() => parseCommand(['-x'], { program: 'ipvs-bpfctl' })).toThrow("Try `ipvs-bpfctl -h' or 'ipvs-bpfctl --help' for more information.");
  });
});

describe('every error of the corpus (test/fixtures/rules/bad-commands.json)', () => {
  const bad = JSON.parse(readFileSync(path.join(FIXTURES, 'bad-commands.json'), 'utf8')) as {
    parse: { args: string[]; stderr: string; status: number }[];
  };
  it.each(bad.parse.map((c) => [c.args.join(' '), c] as const))('%s', (_l, c) => {
    const e = errorOf(c.args);
    expect({ stderr: `${e.message}\n`, status: e.status }).toEqual({ stderr: c.stderr, status: c.status });
  });
});
