/**
 * The keepalived.conf reader: the fixture corpus translates to its *.expected `ipvsadm -Sn` (the same
 * corpus the lab test checks against real keepalived), and bad input is refused naming file, line
 * and keyword with nothing returned.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { HealthState, KeepalivedConfigError, lexConfig, parseKeepalivedConfig, splitCommand, type FileSource } from '../../src/keepalived';
import { formatSave } from '../../src/ipvs/rules';

const FIXTURES = path.join(__dirname, '../fixtures/keepalived');
const corpus = readdirSync(FIXTURES).filter((f) => f.endsWith('.conf'));

/** An in-memory file tree for the reader. */
function memory(files: Record<string, string>): FileSource {
  return {
    read(f) {
      if (!(f in files)) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      return files[f];
    },
    glob(pattern) {
      const re = new RegExp('^' + pattern.replace(/[.+^$()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]') + '$');
      return Object.keys(files).filter((f) => re.test(f)).sort();
    },
  };
}

function problemsOf(text: string, extra: Record<string, string> = {}): string[] {
  try {
    parseKeepalivedConfig('/etc/k/keepalived.conf', memory({ '/etc/k/keepalived.conf': text, ...extra }));
  } catch (e) {
    if (e instanceof KeepalivedConfigError) return e.problems.map((p) => `${p.file}:${p.line}: ${p.keyword}: ${p.message}`);
    throw e;
  }
  return [];
}

const tableOf = (text: string, extra: Record<string, string> = {}): string =>
  formatSave(new HealthState(parseKeepalivedConfig('/etc/k/keepalived.conf', memory({ '/etc/k/keepalived.conf': text, ...extra }))).desired(), { numeric: true });

describe('keepalived corpus', () => {
  it('has fixtures', () => expect(corpus.length).toBeGreaterThanOrEqual(4));
  it.each(corpus)('%s gives its .expected table', (f) => {
    const cfg = parseKeepalivedConfig(path.join(FIXTURES, f));
    const got = formatSave(new HealthState(cfg).desired(), { numeric: true });
    expect(got).toBe(readFileSync(path.join(FIXTURES, f.replace(/\.conf$/, '.expected')), 'utf8'));
  });
  it('says once that global_defs and VRRP are ignored, and logs keepalived\'s corrections', () => {
    const cfg = parseKeepalivedConfig(path.join(FIXTURES, 'basic.conf'));
    expect(cfg.ignored).toEqual([
      'global_defs ignored (VRRP, SMTP and process settings do not apply): router_id, notification_email, smtp_server',
      expect.stringMatching(/^VRRP configuration ignored .*: vrrp_instance VI_1 \(.*basic.conf:8\)$/),
    ]);
    const t = parseKeepalivedConfig(path.join(FIXTURES, 'tunnel-defaults.conf'));
    expect(t.warnings.map((w) => w.replace(/^.*?: /, ''))).toEqual([
      'virtual server 10.40.0.2:53: no protocol set - UDP (as keepalived does)',
      'virtual server 10.40.0.3:80: quorum 10 exceeds the total weight 4 - lowered to 4 (as keepalived does)',
      'virtual server 10.40.0.3:80: hysteresis 12 >= quorum 4 - set to 3 (as keepalived does)',
      'virtual server 10.40.0.4:80 has no real servers - ignored (as keepalived does)',
    ]);
  });
});

describe('keepalived lexer', () => {
  it.each([
    ['braces against words, quotes, ! and # comments', 'a b{c "d e" # x\n}\n! gone\nf "g#h"', [['a', ['b'], [['c', ['d e']]]], ['f', ['g#h']]]],
    ['a block opened on the next line', 'vs 1\n{\n  x 2\n}', [['vs', ['1'], [['x', ['2']]]]]],
    ['@id lines dropped, @^id lines kept', '@lb1 a 1\n@^lb1 b 2', [['b', ['2']]]],
  ])('%s', (_n, text, want) => {
    const simple = (sts: ReturnType<typeof lexConfig>['statements']): unknown[] =>
      sts.map((s) => (s.block ? [s.keyword, s.args, simple(s.block)] : [s.keyword, s.args]));
    expect(simple(lexConfig('/c', memory({ '/c': text })).statements)).toEqual(want);
  });

  it('reads includes relative to the including file, globs in name order, nested', () => {
    const src = memory({
      '/etc/k/main.conf': 'include sub/*.conf\ninclude /abs/x.conf',
      '/etc/k/sub/b.conf': 'b 1\ninclude ../c.conf',
      '/etc/k/sub/a.conf': 'a 1',
      '/etc/k/c.conf': 'c 1',
      '/abs/x.conf': 'x 1',
    });
    const r = lexConfig('/etc/k/main.conf', src);
    expect(r.statements.map((s) => `${s.file}:${s.line}:${s.keyword}`)).toEqual([
      '/etc/k/sub/a.conf:1:a',
      '/etc/k/sub/b.conf:1:b',
      '/etc/k/c.conf:1:c',
      '/abs/x.conf:1:x',
    ]);
    expect(r.files).toEqual(['/etc/k/main.conf', '/etc/k/sub/a.conf', '/etc/k/sub/b.conf', '/etc/k/c.conf', '/abs/x.conf']);
  });

  it('reads real files and globs (braces, character classes)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kacfg-'));
    mkdirSync(path.join(dir, 'd'));
    writeFileSync(path.join(dir, 'main.conf'), 'include d/[ab]*.{conf,inc}\n');
    writeFileSync(path.join(dir, 'd', 'a1.conf'), 'a 1\n');
    writeFileSync(path.join(dir, 'd', 'b1.inc'), 'b 1\n');
    writeFileSync(path.join(dir, 'd', 'c1.conf'), 'c 1\n');
    expect(lexConfig(path.join(dir, 'main.conf')).statements.map((s) => s.keyword)).toEqual(['a', 'b']);
  });

  it.each([
    ['an unclosed block', 'a {\n b 1\n', ['/c:1: a: block not closed ("}" missing)']],
    ['a stray }', 'a 1\n}', ['/c:2: }: unexpected "}" (no block is open)']],
    ['an unmatched quote', 'a "b', ['/c:1: a: unmatched quote']],
    ['a missing include', 'include nothere.conf', ['/c:1: include: /nothere.conf: no such file']],
    ['a parameter definition', '$X=1', ['/c:1: $X: parameter definitions ($NAME=...) are not supported']],
    ['~SEQ', '~SEQ(i,1,3) a $i', ['/c:1: ~SEQ: ~SEQ is not supported']],
  ])('refuses %s', (_n, text, want) => {
    let got: string[] = [];
    try {
      lexConfig('/c', memory({ '/c': text }));
    } catch (e) {
      got = (e as KeepalivedConfigError).problems.map((p) => `${p.file}:${p.line}: ${p.keyword}: ${p.message}`);
    }
    expect(got).toEqual(want);
  });

  it('lets a glob match nothing, and refuses include loops by depth', () => {
    expect(lexConfig('/c', memory({ '/c': 'include none/*.conf\na 1' })).statements).toHaveLength(1);
    expect(() => lexConfig('/c', memory({ '/c': 'include /c' }))).toThrow(/includes nested more than 16 deep/);
  });
});

describe('keepalived semantics', () => {
  const vs = (body: string, head = '10.0.0.1 80'): string => `virtual_server ${head} {\n${body}\n}\n`;
  it.each([
    ['defaults: wlc, NAT, weight 1', vs('protocol TCP\nreal_server 10.0.1.1 80 {\n}'), '-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1\n'],
    ['the virtual server weight is the real servers\' default', vs('protocol TCP\nweight 5\nreal_server 10.0.1.1 80 {\n}\nreal_server 10.0.1.2 80 {\nweight 2\n}'), '-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 5\n-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 2\n'],
    ['a real server keeps an lb_kind set before it', vs('protocol TCP\nlb_kind NAT\nreal_server 10.0.1.1 80 {\n}\nlb_kind DR\nreal_server 10.0.1.2 80 {\n}'), '-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1\n-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 1\n'],
    ['a real server read before any lb_kind takes the last one', vs('protocol TCP\nreal_server 10.0.1.1 80 {\n}\nlb_kind DR\nreal_server 10.0.1.2 80 {\n}'), '-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 1\n-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 1\n'],
    ['ops without UDP is cleared', vs('protocol TCP\nops\nreal_server 10.0.1.1 80 {\n}'), '-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1\n'],
    ['fwmark ignores protocol and takes the family from its real servers', vs('protocol TCP\nreal_server fd00::1 80 {\n}', 'fwmark 3'), '-A -f 3 -6 -s wlc\n-a -f 3 -6 -r [fd00::1]:80 -m -w 1\n'],
    ['a sorry server is out while the quorum is up', vs('protocol TCP\nsorry_server 10.0.9.9 80\nreal_server 10.0.1.1 80 {\n}'), '-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1\n'],
    ['alpha real servers start out of the pool, the sorry server in', vs('protocol TCP\nalpha\nsorry_server 10.0.9.9 80\nreal_server 10.0.1.1 80 {\nTCP_CHECK {\n}\n}'), '-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.9.9:80 -m -w 1\n'],
    ['alpha with inhibit_on_failure keeps them at weight 0', vs('protocol TCP\nalpha\ninhibit_on_failure\nreal_server 10.0.1.1 80 {\nweight 3\nTCP_CHECK {\n}\n}'), '-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 0\n'],
  ])('%s', (_n, text, want) => expect(tableOf(text)).toBe(want));

  it.each([
    ['an unknown root keyword', 'virtual_servr 1.2.3.4 80 {\n}', ['/etc/k/keepalived.conf:1: virtual_servr: unknown keyword']],
    ['an unknown scheduler', vs('lb_algo xx\nreal_server 10.0.1.1 80 {\n}'), [expect.stringMatching(/:2: lb_algo: unknown scheduler "xx"/)]],
    ['a bad address', vs('real_server 10.0.1 80 {\n}', '10.0.0.300 80'), [expect.stringMatching(/:1: virtual_server: "10.0.0.300" is not an IP address/)]],
    ['a bad weight', vs('real_server 10.0.1.1 80 {\nweight -1\n}'), [expect.stringMatching(/:3: weight: must be in \[0, 2147483647\]/)]],
    ['sh-port without sh', vs('lb_algo rr\nsh-port\nreal_server 10.0.1.1 80 {\n}'), [expect.stringMatching(/:3: sh-port: only applies to the sh scheduler/)]],
    ['a gue tunnel without a port', vs('lb_kind TUN type gue\nreal_server 10.0.1.1 80 {\n}'), [expect.stringMatching(/:2: lb_kind: gue tunnels need a port/)]],
    ['mixed families', vs('real_server fd00::1 80 {\n}'), [expect.stringMatching(/:2: real_server: address family of real server fd00::1 does not match/)]],
    ['a duplicate real server', vs('protocol TCP\nreal_server 10.0.1.1 80 {\n}\nreal_server 10.0.1.1 80 {\n}'), [expect.stringMatching(/:5: real_server: real server 10.0.1.1:80 is already defined at .*:3/)]],
    ['a duplicate service', vs('protocol TCP\nreal_server 10.0.1.1 80 {\n}') + vs('protocol TCP\nreal_server 10.0.1.2 80 {\n}'), [expect.stringMatching(/:6: virtual_server: service tcp 10.0.0.1:80 is already defined at .*:1/)]],
    ['an unknown group', vs('real_server 10.0.1.1 80 {\n}', 'group nope'), [expect.stringMatching(/:1: virtual_server: no virtual_server_group named "nope"/)]],
    ['a group range over more than the last octet', 'virtual_server_group g {\n10.0.0.0/16 80\n}\n', [expect.stringMatching(/:2: 10.0.0.0\/16: a group range may only vary the last octet/)]],
    ['an unsupported checker', vs('real_server 10.0.1.1 80 {\nSMTP_CHECK {\n}\n}'), [expect.stringMatching(/:3: SMTP_CHECK: SMTP_CHECK is not supported/)]],
    ['ha_suspend', vs('ha_suspend\nreal_server 10.0.1.1 80 {\n}'), [expect.stringMatching(/:2: ha_suspend: ha_suspend is not supported/)]],
    ['regex in a url', vs('real_server 10.0.1.1 80 {\nHTTP_GET {\nurl {\npath /\nregex "x"\n}\n}\n}'), [expect.stringMatching(/:6: regex: regex checks are not supported/)]],
    ['HTTP_GET without url', vs('real_server 10.0.1.1 80 {\nHTTP_GET {\n}\n}'), [expect.stringMatching(/:3: HTTP_GET: HTTP_GET\/SSL_GET needs at least one url/)]],
    ['a bad digest', vs('real_server 10.0.1.1 80 {\nHTTP_GET {\nurl {\npath /\ndigest xyz\n}\n}\n}'), [expect.stringMatching(/:6: digest: "xyz" is not an md5 digest/)]],
    ['MISC_CHECK without misc_path', vs('real_server 10.0.1.1 80 {\nMISC_CHECK {\n}\n}'), [expect.stringMatching(/:3: MISC_CHECK: MISC_CHECK needs misc_path/)]],
    ['the SSL block', 'SSL {\n}', ['/etc/k/keepalived.conf:1: SSL: SSL (client certificates for SSL_GET) is not supported']],
  ])('refuses %s', (_n, text, want) => expect(problemsOf(text)).toEqual(want));

  it('reports every problem of every file together, with the included file\'s name', () => {
    const got = problemsOf('include more.conf\n' + vs('lb_algo nope\nreal_server 10.0.1.1 80 {\n}'), {
      '/etc/k/more.conf': 'virtual_server 10.0.0.2 80 {\n  delay_loop x\n  real_server 10.0.1.1 80 {\n  }\n}\n',
    });
    expect(got).toEqual([
      '/etc/k/more.conf:2: delay_loop: must be a number of seconds > 0',
      '/etc/k/keepalived.conf:3: lb_algo: unknown scheduler "xx"'.replace('xx', 'nope') + ' (rr, wrr, lc, wlc, lblc, sh, mh, dh, fo, ovf, lblcr, sed, nq, twos)',
    ]);
  });

  it('applies checker defaults and inheritance as keepalived does', () => {
    const cfg = parseKeepalivedConfig('/k', memory({
      '/k': vs(`protocol TCP
delay_loop 10
retry 4
real_server 10.0.1.1 80 {
  connect_timeout 2
  TCP_CHECK {
  }
  HTTP_GET {
    url {
      path /health
      status_code 200 301-302
    }
    virtualhost example.com
    connect_port 8080
    delay_before_retry 0.5
  }
  MISC_CHECK {
    misc_path "/bin/sh -c 'exit 0'"
    misc_dynamic
  }
  DNS_CHECK {
    type a
    name example.com
  }
}`),
    }));
    const [tcp, http, misc, dns] = cfg.virtualServers[0].realServers[0].checkers;
    expect(tcp).toMatchObject({ kind: 'TCP_CHECK', connectIp: '10.0.1.1', connectPort: 80, connectTimeout: 2, retry: 4, delayLoop: 10, warmup: 10, delayBeforeRetry: 1, alpha: false });
    expect(http).toMatchObject({ kind: 'HTTP_GET', connectPort: 8080, virtualhost: 'example.com', delayBeforeRetry: 0.5, urls: [{ path: '/health', statusCodes: [[200, 200], [301, 302]] }] });
    expect(misc).toMatchObject({ kind: 'MISC_CHECK', argv: ['/bin/sh', '-c', 'exit 0'], dynamic: true, timeout: 10, retry: 4 });
    expect(dns).toMatchObject({ kind: 'DNS_CHECK', type: 'A', name: 'example.com', retry: 4, delayBeforeRetry: 10 });
  });

  it('splits script command lines with quotes and escapes', () => {
    expect(splitCommand(`/bin/x "a b" 'c d' e\\ f`)).toEqual(['/bin/x', 'a b', 'c d', 'e f']);
    expect(splitCommand('"open')).toBeNull();
  });
});
