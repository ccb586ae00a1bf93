/**
 * keepalived's checkers against real listeners on loopback (no mocks): TCP, HTTP, HTTPS (SSL_GET), a
 * script, DNS and UDP; then the scheduler with HealthState: a real server whose listener dies is taken
 * out within delay_loop + retry x delay_before_retry and put back when it listens again, and no more
 * than maxConcurrent checks run at once.
 */
import { createHash } from 'node:crypto';
import * as dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as path from 'node:path';
import { CheckScheduler, HealthState, parseKeepalivedConfig, probe, type Checker, type FileSource } from '../../src/keepalived';
import { formatSave } from '../../src/ipvs/rules';

jest.setTimeout(30000);

const TLS = path.join(__dirname, '../fixtures/keepalived-tls');
const one = (text: string): FileSource => ({ read: () => text, glob: () => [] });

/** The checkers of one real server, parsed from keepalived syntax. */
function checkersOf(port: number, body: string, rsExtra = ''): Checker[] {
  const cfg = parseKeepalivedConfig('/k', one(`virtual_server 10.0.0.1 80 {\nprotocol TCP\nreal_server 127.0.0.1 ${port} {\n${rsExtra}\n${body}\n}\n}\n`));
  return cfg.virtualServers[0].realServers[0].checkers;
}

function listen<T extends net.Server>(server: T, host = '127.0.0.1', port = 0): Promise<number> {
  return new Promise((resolve) => server.listen(port, host, () => resolve((server.address() as net.AddressInfo).port)));
}
const close = (s: net.Server): Promise<void> => new Promise((r) => s.close(() => r()));

/** A port nothing listens on (bound and released). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  const p = await listen(s);
  await close(s);
  return p;
}

describe('checkers against real listeners', () => {
  let web: http.Server;
  let webPort: number;
  let seen: { host?: string; url?: string; version: string }[];
  beforeAll(async () => {
    seen = [];
    web = http.createServer((req, res) => {
      seen.push({ host: req.headers.host, url: req.url, version: req.httpVersion });
      if (req.url === '/ok') res.end('hello');
      else if (req.url === '/moved') res.writeHead(301, { location: '/' }).end();
      else res.writeHead(503).end('down');
    });
    webPort = await listen(web);
  });
  afterAll(() => close(web));

  it('TCP_CHECK passes on a listener, fails on a closed port, binds to bindto', async () => {
    const got: string[] = [];
    const srv = net.createServer((s) => {
      got.push(s.remoteAddress ?? '');
      s.destroy();
    });
    const p = await listen(srv);
    expect(await probe(checkersOf(p, 'TCP_CHECK {\n}')[0])).toMatchObject({ ok: true });
    expect(await probe(checkersOf(p, 'TCP_CHECK {\nbindto 127.0.0.2\n}')[0])).toMatchObject({ ok: true });
    await close(srv);
    expect(got).toContain('127.0.0.2');
    expect(await probe(checkersOf(p, 'TCP_CHECK {\n}')[0])).toEqual({ ok: false, detail: 'ECONNREFUSED' });
    const other = await freePort();
    expect(await probe(checkersOf(other, `TCP_CHECK {\nconnect_port ${p}\n}`)[0])).toMatchObject({ ok: false });
  });

  it('HTTP_GET: status codes, digest, virtualhost and Host header, http_protocol', async () => {
    const md5 = createHash('md5').update('hello').digest('hex');
    const ok = checkersOf(webPort, `HTTP_GET {\nurl {\npath /ok\ndigest ${md5}\n}\nurl {\npath /moved\nstatus_code 301\n}\nvirtualhost www.example\n}`)[0];
    expect(await probe(ok)).toMatchObject({ ok: true });
    expect(seen.slice(-2)).toEqual([
      { host: `www.example:${webPort}`, url: '/ok', version: '1.0' },
      { host: `www.example:${webPort}`, url: '/moved', version: '1.0' },
    ]);
    expect(await probe(checkersOf(webPort, 'HTTP_GET {\nurl {\npath /moved\n}\n}')[0])).toEqual({ ok: false, detail: '/moved: status 301' });
    expect(await probe(checkersOf(webPort, 'HTTP_GET {\nurl {\npath /x\n}\n}')[0])).toEqual({ ok: false, detail: '/x: status 503' });
    expect(await probe(checkersOf(webPort, `HTTP_GET {\nurl {\npath /ok\ndigest ${'0'.repeat(32)}\n}\n}`)[0])).toEqual({ ok: false, detail: `/ok: digest ${md5}` });
    await probe(checkersOf(webPort, 'HTTP_GET {\nhttp_protocol 1.1\nurl {\npath /ok\nvirtualhost u.example\n}\n}', 'virtualhost rs.example')[0]);
    expect(seen[seen.length - 1]).toEqual({ host: `u.example:${webPort}`, url: '/ok', version: '1.1' });
    await probe(checkersOf(webPort, 'HTTP_GET {\nurl {\npath /ok\n}\n}', 'virtualhost rs.example')[0]);
    expect(seen[seen.length - 1].host).toBe(`rs.example:${webPort}`);
    const closed = await freePort();
    expect(await probe(checkersOf(closed, 'HTTP_GET {\nurl {\npath /\n}\n}')[0])).toEqual({ ok: false, detail: '/: ECONNREFUSED' });
  });

  it('HTTP_GET gives up on a server that does not answer within connect_timeout', async () => {
    const mute = net.createServer(() => undefined);
    const p = await listen(mute);
    const t0 = Date.now();
    expect(await probe(checkersOf(p, 'HTTP_GET {\nconnect_timeout 0.3\nurl {\npath /\n}\n}')[0])).toEqual({ ok: false, detail: '/: timeout' });
    expect(Date.now() - t0).toBeLessThan(1500);
    mute.close();
  });

  it('SSL_GET speaks TLS (self-signed accepted, as keepalived without a CA) and sends SNI with enable_sni', async () => {
    const names: (string | false)[] = [];
    const srv = https.createServer({ key: readFileSync(path.join(TLS, 'key.pem')), cert: readFileSync(path.join(TLS, 'cert.pem')) }, (req, res) => {
      res.end(req.url === '/ok' ? 'secure' : 'no');
    });
    srv.on('secureConnection', (s) => names.push((s as unknown as { servername: string | false }).servername));
    const p = await listen(srv);
    expect(await probe(checkersOf(p, 'SSL_GET {\nurl {\npath /ok\ndigest ' + createHash('md5').update('secure').digest('hex') + '\n}\n}')[0])).toMatchObject({ ok: true });
    expect(await probe(checkersOf(p, 'SSL_GET {\nenable_sni\nvirtualhost rs.example\nurl {\npath /ok\n}\n}')[0])).toMatchObject({ ok: true });
    expect(names).toEqual([false, 'rs.example']);
    // plain HTTP to a TLS port fails
    expect((await probe(checkersOf(p, 'HTTP_GET {\nconnect_timeout 1\nurl {\npath /ok\n}\n}')[0])).ok).toBe(false);
    await close(srv);
  });

  it('MISC_CHECK: exit 0 passes, 1 fails, misc_dynamic passes 2..255, misc_timeout kills', async () => {
    const m = (cmd: string, extra = ''): Checker => checkersOf(80, `MISC_CHECK {\nmisc_path "${cmd}"\n${extra}\n}`)[0];
    expect(await probe(m("/bin/bash -c 'exit 0'"))).toEqual({ ok: true, detail: 'exit status 0', exitStatus: 0 });
    expect(await probe(m("/bin/bash -c 'exit 1'"))).toEqual({ ok: false, detail: 'exit status 1', exitStatus: 1 });
    expect(await probe(m("/bin/bash -c 'exit 7'"))).toMatchObject({ ok: false });
    expect(await probe(m("/bin/bash -c 'exit 7'", 'misc_dynamic'))).toEqual({ ok: true, detail: 'exit status 7', exitStatus: 7 });
    const t0 = Date.now();
    expect(await probe(m("/bin/bash -c 'sleep 5'", 'misc_timeout 1'))).toEqual({ ok: false, detail: 'timed out' });
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(await probe(m('/nonexistent/script'))).toEqual({ ok: false, detail: 'ENOENT' });
  });

  it('DNS_CHECK: a reply with our id and rcode 0 passes; an error rcode fails; silence times out', async () => {
    const srv = dgram.createSocket('udp4');
    let rcode = 0;
    const questions: Buffer[] = [];
    srv.on('message', (m, from) => {
      questions.push(m);
      const wrong = Buffer.from(m);
      wrong.writeUInt16BE(m.readUInt16BE(0) ^ 1, 0);
      wrong[2] |= 0x80;
      srv.send(wrong, from.port, from.address); // another id first: must be ignored
      const r = Buffer.from(m);
      r[2] |= 0x80;
      r[3] = (r[3] & 0xf0) | rcode;
      srv.send(r, from.port, from.address);
    });
    await new Promise<void>((r) => srv.bind(0, '127.0.0.1', () => r()));
    const p = srv.address().port;
    const c = checkersOf(p, 'DNS_CHECK {\ntype A\nname www.example.com\nconnect_timeout 0.5\n}')[0];
    expect(await probe(c)).toEqual({ ok: true, detail: 'answered' });
    // the question is keepalived's: RD, one question www.example.com A IN
    expect(questions[0].subarray(2).toString('hex')).toBe('01000001000000000000' + '03777777076578616d706c6503636f6d00' + '00010001');
    rcode = 2;
    expect(await probe(c)).toEqual({ ok: false, detail: 'rcode 2' });
    srv.close();
    expect((await probe(c)).ok).toBe(false);
  });

  it('UDP_CHECK: silence passes, port unreachable fails, require_reply checks the reply', async () => {
    const srv = dgram.createSocket('udp4');
    let reply: Buffer | undefined = undefined;
    srv.on('message', (m, from) => {
      if (reply) srv.send(reply, from.port, from.address);
    });
    await new Promise<void>((r) => srv.bind(0, '127.0.0.1', () => r()));
    const p = srv.address().port;
    const u = (extra: string): Checker => checkersOf(p, `UDP_CHECK {\nconnect_timeout 0.3\npayload 68656c6c6f\n${extra}\n}`)[0];
    expect(await probe(u(''))).toEqual({ ok: true, detail: 'no port unreachable' });
    expect(await probe(u('require_reply 6f6b'))).toEqual({ ok: false, detail: 'no reply' });
    reply = Buffer.from('ok!');
    expect(await probe(u('require_reply 6f6b\nmax_reply_length 10'))).toEqual({ ok: true, detail: 'reply matched' });
    expect(await probe(u('require_reply 6e6f\nmax_reply_length 10'))).toEqual({ ok: false, detail: 'reply data mismatch' });
    expect(await probe(u('require_reply 6f6b\nmax_reply_length 2'))).toEqual({ ok: false, detail: 'reply of 3 bytes' });
    srv.close();
    expect(await probe(u(''))).toEqual({ ok: false, detail: 'ECONNREFUSED' });
  });
});

describe('CheckScheduler with HealthState', () => {
  it('takes a real server out when its listener dies and puts it back, within the keepalived time bound', async () => {
    const a = net.createServer((s) => s.destroy());
    const b = net.createServer((s) => s.destroy());
    const pa = await listen(a);
    const pb = await listen(b);
    const text = `virtual_server 10.0.0.1 80 {
  protocol TCP
  lb_algo rr
  delay_loop 0.3
  real_server 127.0.0.1 ${pa} {
    TCP_CHECK {
      connect_timeout 0.2
      retry 2
      delay_before_retry 0.1
      warmup 0
    }
  }
  real_server 127.0.0.1 ${pb} {
    TCP_CHECK {
      connect_timeout 0.2
      warmup 0
    }
  }
}
`;
    const state = new HealthState(parseKeepalivedConfig('/k', one(text)));
    const changes: { at: number; table: string }[] = [];
    const sched = new CheckScheduler(state, {
      onChange: () => changes.push({ at: Date.now(), table: formatSave(state.desired(), { numeric: true }) }),
    });
    const tableHas = (p: number): boolean => formatSave(state.desired(), { numeric: true }).includes(`127.0.0.1:${p} `);
    sched.start();
    const until = async (pred: () => boolean, maxMs: number): Promise<number> => {
      const t0 = Date.now();
      while (!pred()) {
        if (Date.now() - t0 > maxMs) throw new Error('timed out waiting');
        await new Promise((r) => setTimeout(r, 20));
      }
      return Date.now() - t0;
    };
    // First verdicts after the 1 s bootstrap delay: both pass, both stay in.
    await until(() => changes.length >= 2, 3000);
    expect(tableHas(pa) && tableHas(pb)).toBe(true);
    // Kill a's listener: out after at most delay_loop + retry x (connect + delay_before_retry) (+ slack).
    await close(a);
    const down = await until(() => !tableHas(pa), 3000);
    expect(down).toBeLessThanOrEqual(300 + 2 * (200 + 100) + 400);
    expect(down).toBeGreaterThanOrEqual(2 * 100); // not before its retries
    expect(tableHas(pb)).toBe(true);
    // Listen again on the same port: back within one delay_loop (+ slack).
    const a2 = net.createServer((s) => s.destroy());
    await listen(a2, '127.0.0.1', pa);
    const up = await until(() => tableHas(pa), 3000);
    expect(up).toBeLessThanOrEqual(300 + 400);
    await sched.stop();
    await close(a2);
    await close(b);
  });

  it('runs at most maxConcurrent attempts at once, and every one of 200 checkers gets its verdict', async () => {
    let open = 0;
    let peak = 0;
    const srv = net.createServer((s) => {
      open++;
      peak = Math.max(peak, open);
      setTimeout(() => {
        open--;
        s.destroy();
      }, 50);
    });
    const p = await listen(srv);
    const rss = Array.from({ length: 200 }, (_, i) => `real_server 127.0.${1 + (i >> 8)}.${1 + (i & 0xff)} 80 {\nHTTP_GET {\nconnect_ip 127.0.0.1\nconnect_port ${p}\nconnect_timeout 2\nwarmup 0\nurl {\npath /\n}\n}\n}`).join('\n');
    const state = new HealthState(parseKeepalivedConfig('/k', one(`virtual_server 10.0.0.1 80 {\nprotocol TCP\n${rss}\n}\n`)));
    let verdicts = 0;
    const sched = new CheckScheduler(state, { maxConcurrent: 8, onChange: () => verdicts++ });
    expect(sched.size).toBe(200);
    const t0 = Date.now();
    sched.start();
    while (verdicts < 200 && Date.now() - t0 < 15000) await new Promise((r) => setTimeout(r, 20));
    await sched.stop();
    await close(srv);
    expect(verdicts).toBe(200);
    expect(peak).toBeLessThanOrEqual(8);
    expect(peak).toBeGreaterThanOrEqual(4);
    // The server closes without an HTTP reply: every real server failed its check and is out.
    expect(state.desired()[0].destinations).toEqual([]);
  });
});
