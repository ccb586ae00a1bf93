/** HealthState: keepalived's reactions to checker verdicts (remove/inhibit, quorum, sorry server, misc_dynamic). */
import { HealthState, parseKeepalivedConfig, type FileSource } from '../../src/keepalived';
import { formatSave } from '../../src/ipvs/rules';

const one = (text: string): FileSource => ({
  read: () => text,
  glob: () => [],
});

function machine(body: string, events: string[] = []): { h: HealthState; table: () => string[] } {
  const cfg = parseKeepalivedConfig('/k', one(`virtual_server 10.0.0.1 80 {\nprotocol TCP\nlb_algo rr\n${body}\n}\n`));
  const h = new HealthState(cfg, {
    realServer: (e) => events.push(`rs ${e.rs.dest.address} ${e.alive ? 'up' : 'down'}`),
    quorum: (e) => events.push(`quorum ${e.up ? 'up' : 'down'}${e.sorryServerIn ? ' sorry in' : ''}`),
    notify: (e) => events.push(['run', e.why, e.script].join(' ')),
    checker: (e) => events.push(`checker ${e.rs.dest.address}#${e.checker} ${e.up ? 'up' : 'down'}`),
  });
  const table = (): string[] =>
    formatSave(h.desired(), { numeric: true })
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('-a'))
      .map((l) => l.replace('-a -t 10.0.0.1:80 -r ', ''));
  return { h, table };
}

const rs = (last: number, extra = ''): string => `real_server 10.0.1.${last} 80 {\n${extra}\nTCP_CHECK {\n}\n}`;

describe('HealthState', () => {
  it('removes a failed real server and puts it back, running its notify scripts', () => {
    const ev: string[] = [];
    const { h, table } = machine(rs(1, 'notify_up "/x up"\nnotify_down /x') + rs(2), ev);
    expect(table()).toEqual(['10.0.1.1:80 -m -w 1', '10.0.1.2:80 -m -w 1']);
    h.checkerResult(0, 0, 0, false);
    expect(table()).toEqual(['10.0.1.2:80 -m -w 1']);
    h.checkerResult(0, 0, 0, true);
    expect(table()).toEqual(['10.0.1.1:80 -m -w 1', '10.0.1.2:80 -m -w 1']);
    expect(ev).toEqual(['quorum up', 'rs 10.0.1.1 down', 'run down /x', 'checker 10.0.1.1#0 down', 'rs 10.0.1.1 up', 'run up /x up', 'checker 10.0.1.1#0 up']);
  });

  it('inhibit_on_failure sets weight 0 instead of removing', () => {
    const { h, table } = machine(rs(1, 'weight 5\ninhibit_on_failure'));
    h.checkerResult(0, 0, 0, false);
    expect(table()).toEqual(['10.0.1.1:80 -m -w 0']);
    h.checkerResult(0, 0, 0, true);
    expect(table()).toEqual(['10.0.1.1:80 -m -w 5']);
  });

  it('a real server with two checkers comes back only when both pass', () => {
    const { h, table } = machine('real_server 10.0.1.1 80 {\nTCP_CHECK {\n}\nTCP_CHECK {\nconnect_port 81\n}\n}');
    h.checkerResult(0, 0, 0, false);
    h.checkerResult(0, 0, 1, false);
    expect(table()).toEqual([]);
    h.checkerResult(0, 0, 0, true);
    expect(table()).toEqual([]);
    h.checkerResult(0, 0, 1, true);
    expect(table()).toEqual(['10.0.1.1:80 -m -w 1']);
  });

  it('alpha: out until the first pass; the first failure only notifies', () => {
    const ev: string[] = [];
    const { h, table } = machine('alpha\n' + rs(1, 'notify_down /down'), ev);
    expect(table()).toEqual([]);
    h.checkerResult(0, 0, 0, false);
    expect(ev).toEqual(['rs 10.0.1.1 down', 'run down /down', 'checker 10.0.1.1#0 down']);
    h.checkerResult(0, 0, 0, true);
    expect(table()).toEqual(['10.0.1.1:80 -m -w 1']);
    expect(ev.slice(3)).toEqual(['rs 10.0.1.1 up', 'quorum up', 'checker 10.0.1.1#0 up']);
  });

  it('quorum with hysteresis swaps in the sorry server and back', () => {
    const ev: string[] = [];
    const { h, table } = machine(
      'quorum 3\nhysteresis 1\nsorry_server 10.0.9.9 8080\nquorum_up /qup\nquorum_down /qdown\n' + rs(1, 'weight 2') + rs(2, 'weight 2'),
      ev,
    );
    expect(table()).toEqual(['10.0.1.1:80 -m -w 2', '10.0.1.2:80 -m -w 2']);
    ev.length = 0;
    h.checkerResult(0, 0, 0, false); // live 2 >= 3 - 1: still up
    expect(table()).toEqual(['10.0.1.2:80 -m -w 2']);
    expect(ev).toEqual(['rs 10.0.1.1 down', 'checker 10.0.1.1#0 down']);
    h.checkerResult(0, 1, 0, false); // live 0: lost
    expect(table()).toEqual(['10.0.9.9:8080 -m -w 1']);
    h.checkerResult(0, 1, 0, true); // live 2 < 3 + 1: still down, the real server waits outside
    expect(table()).toEqual(['10.0.9.9:8080 -m -w 1']);
    h.checkerResult(0, 0, 0, true); // live 4 >= 4: gained
    expect(table()).toEqual(['10.0.1.1:80 -m -w 2', '10.0.1.2:80 -m -w 2']);
    expect(ev.filter((e) => e.startsWith('quorum') || e.startsWith('run'))).toEqual([
      'quorum down sorry in',
      'run quorum_down /qdown',
      'quorum up',
      'run quorum_up /qup',
    ]);
  });

  it('sorry_server_inhibit keeps the sorry server at weight 0 while the quorum is up', () => {
    const { h, table } = machine('sorry_server 10.0.9.9 8080\nsorry_server_inhibit\n' + rs(1));
    expect(table()).toEqual(['10.0.1.1:80 -m -w 1', '10.0.9.9:8080 -m -w 0']);
    h.checkerResult(0, 0, 0, false);
    expect(table()).toEqual(['10.0.9.9:8080 -m -w 1']);
    h.checkerResult(0, 0, 0, true);
    expect(table()).toEqual(['10.0.1.1:80 -m -w 1', '10.0.9.9:8080 -m -w 0']);
  });

  it('misc_dynamic sets the weight to status - 2, 0 keeps the configured weight', () => {
    const { h, table } = machine('real_server 10.0.1.1 80 {\nweight 7\nMISC_CHECK {\nmisc_path /bin/true\nmisc_dynamic\n}\n}');
    h.dynamicWeight(0, 0, 0, 12);
    expect(table()).toEqual(['10.0.1.1:80 -m -w 10']);
    h.dynamicWeight(0, 0, 0, 0);
    expect(table()).toEqual(['10.0.1.1:80 -m -w 7']);
    h.dynamicWeight(0, 0, 0, 2);
    expect(table()).toEqual(['10.0.1.1:80 -m -w 0']);
  });

  it('reports health for status and metrics', () => {
    const { h } = machine(rs(1) + 'real_server 10.0.1.2 80 {\n}');
    h.checkerResult(0, 0, 0, false);
    expect(h.snapshot()).toEqual([
      { vs: '10.0.0.1:80', rs: '10.0.1.1:80', alive: false, inTable: false, weight: 0, checkers: [{ kind: 'TCP_CHECK', up: false, hasRun: true }] },
      { vs: '10.0.0.1:80', rs: '10.0.1.2:80', alive: true, inTable: true, weight: 1, checkers: [] },
    ]);
    expect(h.quorums()).toEqual([{ vs: '10.0.0.1:80', up: true }]);
  });
});
