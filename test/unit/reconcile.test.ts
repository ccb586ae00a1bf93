/** reconcile(), invert() and rollbackOps(): minimal, ordered, in-place changes and their exact undo. */
import { applyOp, desiredState, formatSave, parseRules, toDesired } from '../../src/ipvs/rules';
import { invert, reconcile, rollbackOps } from '../../src/ipvs/reconcile';
import { type DesiredService, type IpvsOp, type ServiceState, ZERO_STATS } from '../../src/ipvs/model';

const state = (text: string): DesiredService[] => desiredState(parseRules(text, 't').commands);
const apply = (s: readonly DesiredService[], ops: readonly IpvsOp[]): DesiredService[] => ops.reduce((acc, op) => applyOp(acc, op), toDesired(s));
const save = (s: readonly DesiredService[]): string => formatSave(s, { numeric: true });
/** One line per op, for readable expectations. */
const show = (ops: readonly IpvsOp[]): string[] =>
  ops.map((o) => {
    switch (o.op) {
      case 'add-service':
      case 'edit-service':
        return `${o.op} ${save([{ ...o.service, destinations: [] }]).trim()}`;
      case 'delete-service':
        return `${o.op} ${o.key.kind === 'fwmark' ? `fwmark ${o.key.fwmark}` : `${o.key.address}:${o.key.port}`}`;
      case 'add-dest':
      case 'edit-dest':
        return `${o.op} ${o.dest.address}:${o.dest.port} ${o.dest.forward} w${o.dest.weight}`;
      case 'delete-dest':
        return `${o.op} ${o.dest.address}:${o.dest.port}`;
      default:
        return o.op;
    }
  });

const BASE = [
  '-A -t 10.0.0.1:80 -s rr',
  '-a -t 10.0.0.1:80 -r 10.0.1.1 -w 1',
  '-a -t 10.0.0.1:80 -r 10.0.1.2 -w 1',
  '-a -t 10.0.0.1:80 -r 10.0.1.3 -w 1',
  '-A -u 10.0.0.1:53 -s wlc',
  '-a -u 10.0.0.1:53 -r 10.0.2.1 -m',
  '-A -f 7 -s sh -p 60',
].join('\n');

describe('reconcile', () => {
  it('does nothing when the tables are equal, whatever their order', () => {
    const a = state(BASE);
    const b = [...state(BASE)].reverse().map((s) => ({ ...s, destinations: [...s.destinations].reverse() }));
    expect(reconcile(a, b)).toEqual([]);
  });

  it('accepts kernel state with counters and ignores them', () => {
    const kernel: ServiceState[] = state(BASE).map((s) => ({
      ...s,
      stats: { ...ZERO_STATS, conns: 99n },
      destinations: s.destinations.map((d) => ({ ...d, activeConns: 5, inactiveConns: 1, persistConns: 0, stats: { ...ZERO_STATS } })),
    }));
    expect(reconcile(kernel, state(BASE))).toEqual([]);
  });

  it('edits services and real servers in place, touches nothing equal, and orders the ops', () => {
    const want = state(
      [
        '-A -t 10.0.0.1:80 -s wrr -p 30', // scheduler + persistence: edit-service
        '-a -t 10.0.0.1:80 -r 10.0.1.1 -w 1', // equal: untouched
        '-a -t 10.0.0.1:80 -r 10.0.1.2 -w 5', // weight: edit-dest
        '-a -t 10.0.0.1:80 -r 10.0.1.3 -i --tun-type gue --tun-port 6080', // fwd + tunnel: edit-dest
        '-a -t 10.0.0.1:80 -r 10.0.1.4', // new: add-dest
        '-A -u 10.0.0.1:53 -s wlc', // its only real server goes: delete-dest
        '-A -t 10.0.0.9:443 -s rr', // new service: add-service then add-dest
        '-a -t 10.0.0.9:443 -r 10.0.9.1:8443 -m',
        // fwmark 7 goes: delete-service
      ].join('\n'),
    );
    const ops = reconcile(state(BASE), want);
    expect(show(ops)).toEqual([
      'delete-service fwmark 7',
      'edit-service -A -t 10.0.0.1:80 -s wrr -p 30',
      // in the desired list's order (a replayed file lists real servers newest first, as the kernel)
      'edit-dest 10.0.1.3:80 tunnel w1',
      'edit-dest 10.0.1.2:80 route w5',
      'add-dest 10.0.1.4:80 route w1',
      'delete-dest 10.0.2.1:53',
      'add-service -A -t 10.0.0.9:443 -s rr',
      'add-dest 10.0.9.1:8443 masq w1',
    ]);
    expect(save(apply(state(BASE), ops))).toBe(save(want));
  });

  it('deletes a kept service\'s real servers before adding new ones', () => {
    const ops = reconcile(state('-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1'), state('-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.2'));
    expect(show(ops)).toEqual(['delete-dest 10.0.1.1:80', 'add-dest 10.0.1.2:80 route w1']);
  });

  it('sees every attribute: thresholds, tunnel flags, netmask, pe, one-packet, scheduler flags', () => {
    const base = '-A -u 10.0.0.1:5060 -s sh -p 30\n-a -u 10.0.0.1:5060 -r 10.0.1.1 -i --tun-type gre';
    const variants: [string, string][] = [
      ['-A -u 10.0.0.1:5060 -s sh -p 30 -M 255.255.255.0\n-a -u 10.0.0.1:5060 -r 10.0.1.1 -i --tun-type gre', 'edit-service'],
      ['-A -u 10.0.0.1:5060 -s sh -p 30 --pe sip\n-a -u 10.0.0.1:5060 -r 10.0.1.1 -i --tun-type gre', 'edit-service'],
      ['-A -u 10.0.0.1:5060 -s sh -p 30 -o\n-a -u 10.0.0.1:5060 -r 10.0.1.1 -i --tun-type gre', 'edit-service'],
      ['-A -u 10.0.0.1:5060 -s sh -p 30 -b sh-port\n-a -u 10.0.0.1:5060 -r 10.0.1.1 -i --tun-type gre', 'edit-service'],
      ['-A -u 10.0.0.1:5060 -s sh -p 31\n-a -u 10.0.0.1:5060 -r 10.0.1.1 -i --tun-type gre', 'edit-service'],
      ['-A -u 10.0.0.1:5060 -s sh -p 30\n-a -u 10.0.0.1:5060 -r 10.0.1.1 -i --tun-type gre --tun-csum', 'edit-dest'],
      ['-A -u 10.0.0.1:5060 -s sh -p 30\n-a -u 10.0.0.1:5060 -r 10.0.1.1 -i --tun-type gre -x 10', 'edit-dest'],
      ['-A -u 10.0.0.1:5060 -s sh -p 30\n-a -u 10.0.0.1:5060 -r 10.0.1.1 -i --tun-type gre -x 10 -y 2', 'edit-dest'],
      ['-A -u 10.0.0.1:5060 -s sh -p 30\n-a -u 10.0.0.1:5060 -r 10.0.1.1 -i', 'edit-dest'],
    ];
    for (const [text, op] of variants) expect(reconcile(state(base), state(text)).map((o) => o.op)).toEqual([op]);
    // An explicit --tun-nocsum is what the kernel stores anyway: no change.
    expect(reconcile(state(base), state(base.replace('gre', 'gre --tun-nocsum')))).toEqual([]);
  });

  it('a real server moving to another port is a different server: delete + add', () => {
    const ops = reconcile(state('-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m'), state('-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1:8081 -m'));
    expect(show(ops)).toEqual(['delete-dest 10.0.1.1:8080', 'add-dest 10.0.1.1:8081 masq w1']);
  });

  it('from empty: services then their real servers; to empty: only service deletions', () => {
    expect(show(reconcile([], state(BASE))).filter((l) => l.startsWith('add-service')).length).toBe(3);
    expect(show(reconcile(state(BASE), []))).toEqual(['delete-service 10.0.0.1:80', 'delete-service 10.0.0.1:53', 'delete-service fwmark 7']);
    const ops = reconcile([], state(BASE));
    expect(save(apply([], ops))).toBe(save(state(BASE)));
  });

  it('refuses a desired table naming a service twice', () => {
    const s = state('-A -t 10.0.0.1:80');
    expect(() => reconcile([], [...s, ...s])).toThrow('desired state names service tcp 10.0.0.1:80 twice');
  });
});

describe('invert and rollbackOps', () => {
  const target = state(
    ['-A -t 10.0.0.1:80 -s wrr', '-a -t 10.0.0.1:80 -r 10.0.1.1 -w 9 -x 5', '-a -t 10.0.0.1:80 -r 10.0.1.7 -m', '-A -t 10.0.0.2:80 -s rr', '-a -t 10.0.0.2:80 -r 10.0.3.1'].join('\n'),
  );

  it('undoing every prefix of a reconcile restores the table exactly', () => {
    const before = state(BASE);
    const ops = reconcile(before, target);
    expect(ops.length).toBeGreaterThan(5);
    for (let k = 0; k <= ops.length; k++) {
      const applied = ops.slice(0, k);
      const after = apply(before, applied);
      const undo = rollbackOps(applied, before);
      const restored = apply(after, undo);
      expect(save(restored)).toBe(save(before));
      expect(reconcile(restored, before)).toEqual([]);
    }
  });

  it('flush and delete-service come back with all their real servers', () => {
    const before = state(BASE);
    for (const ops of [[{ op: 'flush' } as IpvsOp], [{ op: 'delete-service', key: before[0].key } as IpvsOp]]) {
      const undo = rollbackOps(ops, before);
      expect(reconcile(apply(apply(before, ops), undo), before)).toEqual([]);
    }
  });

  it('single ops', () => {
    const before = state(BASE);
    const svc = before[0];
    const key81 = { kind: 'addr' as const, family: 'inet' as const, protocol: 'tcp' as const, address: '10.0.0.1', port: 81 };
    expect(invert({ op: 'add-service', service: { ...svc, key: key81 } }, before)).toEqual([{ op: 'delete-service', key: key81 }]);
    expect(invert({ op: 'edit-service', service: { ...svc, scheduler: 'lc' } }, before)).toEqual([
      { op: 'edit-service', service: { key: svc.key, scheduler: 'rr', flags: svc.flags, persistenceTimeout: 0, netmask: 0xffffffff, pe: '' } },
    ]);
    const d = svc.destinations[0];
    expect(invert({ op: 'delete-dest', service: svc.key, dest: d }, before)).toEqual([{ op: 'add-dest', service: svc.key, dest: d }]);
    expect(invert({ op: 'edit-dest', service: svc.key, dest: { ...d, weight: 7 } }, before)).toEqual([{ op: 'edit-dest', service: svc.key, dest: d }]);
    expect(invert({ op: 'zero' }, before)).toEqual([]);
    expect(invert({ op: 'set-timeouts', timeouts: { tcp: 1, tcpFin: 2, udp: 3 } }, before, { timeouts: { tcp: 900, tcpFin: 120, udp: 300 } })).toEqual([
      { op: 'set-timeouts', timeouts: { tcp: 900, tcpFin: 120, udp: 300 } },
    ]);
    const daemon = { state: 'backup' as const, mcastIfn: 'eth0', syncId: 1, syncMaxLen: 0, mcastGroup: '', mcastPort: 0, mcastTtl: 0 };
    expect(invert({ op: 'start-daemon', daemon }, before)).toEqual([{ op: 'stop-daemon', state: 'backup' }]);
    expect(invert({ op: 'stop-daemon', state: 'backup' }, before, { daemons: [daemon] })).toEqual([{ op: 'start-daemon', daemon }]);
  });

  it('undo runs newest first', () => {
    const before: DesiredService[] = [];
    const ops = reconcile(before, state('-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1'));
    expect(show(rollbackOps(ops, before))).toEqual(['delete-dest 10.0.1.1:80', 'delete-service 10.0.0.1:80']);
  });
});
