/**
 * One attempt of each keepalived checker, as keepalived 2.2.7 makes it, without blocking: a promise that
 * settles within the checker's timeout with pass/fail and why. The checks connect to the real server's
 * own address (or connect_ip), never to a virtual address, so they do not go through IPVS or the BPF
 * data path.
 */
import { spawn } from 'child_process';
import { createHash, randomBytes } from 'crypto';
import * as dgram from 'dgram';
import * as net from 'net';
import * as tls from 'tls';
import type { Checker, DnsCheck, HttpCheck, MiscCheck, TcpCheck, UdpCheck } from './config';

export interface ProbeResult {
  ok: boolean;
  /** Why it failed (or what passed), one line. */
  detail: string;
  /** MISC_CHECK: the script's exit status (undefined when killed or not started). */
  exitStatus?: number;
}

const ms = (s: number): number => Math.max(1, Math.round(s * 1000));
const errText = (e: unknown): string => ((e as NodeJS.ErrnoException).code ?? (e as Error).message);

function connectOptions(c: Checker): net.TcpNetConnectOpts {
  const o: net.TcpNetConnectOpts = { host: c.connectIp, port: c.connectPort };
  if (c.bindTo) o.localAddress = c.bindTo;
  if (c.bindPort) o.localPort = c.bindPort;
  return o;
}

/** TCP_CHECK: the connection is accepted within connect_timeout. */
export function tcpProbe(c: TcpCheck): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const sock = net.connect(connectOptions(c));
    const done = (r: ProbeResult): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, detail: 'connect timeout' }), ms(c.connectTimeout));
    sock.once('connect', () => done({ ok: true, detail: 'connected' }));
    sock.once('error', (e) => done({ ok: false, detail: errText(e) }));
  });
}

/** The request keepalived's HTTP checker sends. */
export function httpRequest(c: HttpCheck, path: string, vhost: string | undefined): string {
  const defaultPort = c.kind === 'SSL_GET' ? 443 : 80;
  const host = vhost ?? (c.connectIp.includes(':') ? `[${c.connectIp}]` : c.connectIp);
  const hostHeader = c.connectPort === defaultPort ? host : `${host}:${c.connectPort}`;
  const version = c.httpProtocol === '1.1' ? '1.1' : '1.0';
  return (
    `GET ${path} HTTP/${version}\r\nUser-Agent: KeepAliveClient\r\nHost: ${hostHeader}\r\n` +
    (c.httpProtocol === '1.0' ? '' : 'Connection: close\r\n') +
    '\r\n'
  );
}

/** Reads one HTTP response (until the peer closes or Content-Length is met); no timeout of its own. */
function fetchOnce(c: HttpCheck, path: string, vhost: string | undefined): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const opts = connectOptions(c);
    const sock: net.Socket =
      c.kind === 'SSL_GET'
        ? tls.connect({ ...opts, rejectUnauthorized: false, servername: c.enableSni && vhost && !net.isIP(vhost) ? vhost : undefined })
        : net.connect(opts);
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (e?: Error): void => {
      if (settled) return;
      settled = true;
      sock.destroy();
      if (e) return reject(e);
      const all = Buffer.concat(chunks, size);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error('no HTTP header in the reply'));
      const m = /^HTTP\/\d\.\d (\d{3})/.exec(all.subarray(0, Math.min(end, 64)).toString('latin1'));
      if (!m) return reject(new Error('not an HTTP reply'));
      resolve({ status: Number(m[1]), body: all.subarray(end + 4) });
    };
    sock.setTimeout(ms(c.connectTimeout), () => finish(new Error('timeout')));
    sock.once(c.kind === 'SSL_GET' ? 'secureConnect' : 'connect', () => sock.write(httpRequest(c, path, vhost)));
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      size += d.length;
      // Do not hold an unbounded body: keepalived reads at most what it digests; 4 MiB is plenty for a health page.
      if (size > 4 << 20) finish(new Error('reply larger than 4 MiB'));
    });
    sock.once('end', () => finish());
    sock.once('close', () => finish());
    // A server that answers and closes without reading the request may reset the connection: what it
    // sent before the reset is still its answer.
    sock.once('error', (e) => finish(size > 0 ? undefined : e));
  });
}

/** HTTP_GET / SSL_GET: every url answers with an accepted status (and the digest of its body, if set). */
export async function httpProbe(c: HttpCheck): Promise<ProbeResult> {
  for (const u of c.urls) {
    const vhost = u.virtualhost ?? c.virtualhost;
    let r;
    try {
      r = await fetchOnce(c, u.path, vhost);
    } catch (e) {
      return { ok: false, detail: `${u.path}: ${errText(e)}` };
    }
    if (!u.statusCodes.some(([lo, hi]) => r.status >= lo && r.status <= hi)) return { ok: false, detail: `${u.path}: status ${r.status}` };
    if (u.digest !== undefined) {
      const got = createHash('md5').update(r.body).digest('hex');
      if (got !== u.digest) return { ok: false, detail: `${u.path}: digest ${got}` };
    }
  }
  return { ok: true, detail: 'all urls answered' };
}

/** MISC_CHECK: runs the script; exit 0 passes (misc_dynamic: 2..255 pass too). Killed after misc_timeout. */
export function miscProbe(c: MiscCheck): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn(c.argv[0], c.argv.slice(1), { stdio: 'ignore', detached: true });
    } catch (e) {
      return resolve({ ok: false, detail: errText(e) });
    }
    let killed = false;
    const kill = (sig: NodeJS.Signals): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, sig);
      } catch {
        /* already gone */
      }
    };
    const t1 = setTimeout(() => {
      killed = true;
      kill('SIGTERM');
      t2 = setTimeout(() => kill('SIGKILL'), 2000);
    }, ms(c.timeout));
    let t2: NodeJS.Timeout | undefined;
    child.once('error', (e) => {
      clearTimeout(t1);
      resolve({ ok: false, detail: errText(e) });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(t1);
      if (t2) clearTimeout(t2);
      // keepalived also kills what the script left behind in its process group.
      if (signal === 'SIGTERM') kill('SIGKILL');
      if (killed) return resolve({ ok: false, detail: 'timed out' });
      if (code === null) return resolve({ ok: false, detail: `killed by ${signal}` });
      const ok = code === 0 || (c.dynamic && code >= 2);
      resolve({ ok, detail: `exit status ${code}`, exitStatus: code });
    });
  });
}

const DNS_TYPES: Record<string, number> = { A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28 };

/** The query keepalived's DNS checker sends (recursion desired, one question, class IN). */
export function dnsQuery(c: Pick<DnsCheck, 'type' | 'name'>, id: number): Buffer {
  const labels = c.name === '' || c.name === '.' ? [] : c.name.replace(/\.$/, '').split('.');
  const parts: Buffer[] = [Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0])];
  for (const l of labels) parts.push(Buffer.from([l.length]), Buffer.from(l, 'latin1'));
  const t = DNS_TYPES[c.type] ?? 6;
  parts.push(Buffer.from([0, t >> 8, t & 0xff, 0, 1]));
  return Buffer.concat(parts);
}

function udpSocket(c: Checker): dgram.Socket {
  return dgram.createSocket({ type: c.connectIp.includes(':') ? 'udp6' : 'udp4' });
}

/**
 * Binds (bindto/bind_port) and connects a UDP socket, then runs `go`; errors (ICMP unreachable arrives
 * as ECONNREFUSED on a connected socket) end the probe, and so does connect_timeout with `onTimeout`.
 */
function withUdp(c: Checker, onTimeout: ProbeResult, go: (s: dgram.Socket, done: (r: ProbeResult) => void) => void): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const s = udpSocket(c);
    let settled = false;
    const done = (r: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.close();
      resolve(r);
    };
    const timer = setTimeout(() => done(onTimeout), ms(c.connectTimeout));
    s.once('error', (e) => done({ ok: false, detail: errText(e) }));
    const connect = (): void => s.connect(c.connectPort, c.connectIp, () => go(s, done));
    if (c.bindTo || c.bindPort) s.bind({ address: c.bindTo || undefined, port: c.bindPort || 0 }, connect);
    else connect();
  });
}

/** DNS_CHECK: a reply with our id, QR set and rcode 0 within connect_timeout. */
export function dnsProbe(c: DnsCheck): Promise<ProbeResult> {
  const id = randomBytes(2).readUInt16BE(0);
  return withUdp(c, { ok: false, detail: 'timeout' }, (s, done) => {
    s.on('message', (m: Buffer) => {
      if (m.length < 12 || m.readUInt16BE(0) !== id || !(m[2] & 0x80)) return; // not ours: keep waiting
      const rcode = m[3] & 0x0f;
      done(rcode === 0 ? { ok: true, detail: 'answered' } : { ok: false, detail: `rcode ${rcode}` });
    });
    s.send(dnsQuery(c, id));
  });
}

/**
 * UDP_CHECK: sends the payload. Without require_reply, silence until connect_timeout passes and an ICMP
 * port unreachable (ECONNREFUSED) fails; with it, a reply of the right length starting with the given
 * bytes is needed.
 */
export function udpProbe(c: UdpCheck): Promise<ProbeResult> {
  const silence: ProbeResult = c.requireReply === undefined ? { ok: true, detail: 'no port unreachable' } : { ok: false, detail: 'no reply' };
  return withUdp(c, silence, (s, done) => {
    s.on('message', (m: Buffer) => {
      if (c.requireReply === undefined) return done({ ok: true, detail: 'replied' });
      const max = c.maxReplyLength || 65535;
      if (m.length < c.minReplyLength || m.length > max) return done({ ok: false, detail: `reply of ${m.length} bytes` });
      const n = Math.min(m.length, c.requireReply.length);
      if (!m.subarray(0, n).equals(c.requireReply.subarray(0, n))) return done({ ok: false, detail: 'reply data mismatch' });
      done({ ok: true, detail: 'reply matched' });
    });
    s.send(c.payload.length > 0 ? c.payload : Buffer.alloc(0));
  });
}

/** One attempt of any checker. */
export function probe(c: Checker): Promise<ProbeResult> {
  switch (c.kind) {
    case 'TCP_CHECK':
      return tcpProbe(c);
    case 'HTTP_GET':
    case 'SSL_GET':
      return httpProbe(c);
    case 'MISC_CHECK':
      return miscProbe(c);
    case 'DNS_CHECK':
      return dnsProbe(c);
    case 'UDP_CHECK':
      return udpProbe(c);
  }
}
