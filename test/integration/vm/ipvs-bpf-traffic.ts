/**
 * Traffic for the lab-VM end-to-end test of the BPF mode (test/integration/ipvs-bpf-e2e.test.ts), run by
 * test/integration/vm/ipvs-bpf-e2e.sh in the VM's namespaces. One long-lived process per role, because each
 * process start costs seconds under TCG:
 *
 *   serve <name> <addr> <tcpPort> <udpPort>
 *       a real server that names itself: every TCP line and every UDP datagram is answered with
 *       "<name> <what came in>"; prints "listening" once both sockets are bound.
 *   flows <host> <tcpPort> <udpPort> <n> <dir> [<timeoutMs>]
 *       n TCP connections and n UDP flows (distinct source ports, all open at once), one round trip on
 *       each (UDP flows then send a keep-alive datagram every 2 s while held); writes <dir>/flows.json and <dir>/held, waits for <dir>/release, does a second round trip on
 *       every connection (now carried by the fast path), closes TCP with RST (IPVS state CLOSE, short timeout),
 *       closes UDP, and rewrites <dir>/flows.json. Never retries a TCP connection (every one is a new IPVS
 *       connection, so the scheduler's spread is exact).
 *   long <host> <tcpPort> <intervalMs> <dir>
 *       one TCP connection, one round trip every intervalMs until <dir>/stop exists (then one more);
 *       keeps <dir>/long.json current (local port, backend, round trips ok / failed, time of the last good
 *       one) and exits 0 when done.
 *   loop <fifo> <dir>
 *       runs flows and long commands read from the FIFO, one after the other (ipvs-bpf-rpc.ts).
 */
import * as dgram from 'dgram';
import { existsSync, renameSync, writeFileSync } from 'fs';
import * as net from 'net';
import * as path from 'path';
import { commandLoop } from './ipvs-bpf-rpc';

export interface FlowResult {
  proto: 'tcp' | 'udp';
  index: number;
  /** client source port (what IPVS and the map see as cport) */
  cport: number;
  /** the backend's name from its answer ('' if none) */
  backend: string;
  /** round trips that came back with the right payload (first, then after the release) */
  first: boolean;
  second: boolean;
  error: string;
  ms: number;
}

export interface LongResult {
  cport: number;
  backend: string;
  ok: number;
  failed: number;
  lastOkMs: number;
  startedMs: number;
  done: boolean;
  error: string;
}

function writeJson(file: string, v: unknown): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(v, null, 1));
  renameSync(`${file}.tmp`, file);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Per-flow patience (connect, answer; UDP retries within it): default 15 s, flows' optional last argument. */
const DEFAULT_TIMEOUT_MS = 15_000;
let TIMEOUT_MS = DEFAULT_TIMEOUT_MS;
/** A long-lived flow ends at <dir>/stop, or after this long at the latest. */
const LONG_MAX_MS = 300_000;

function serve(name: string, addr: string, tcpPort: number, udpPort: number): void {
  let ready = 0;
  const up = (): void => {
    if (++ready === 2) process.stdout.write('listening\n');
  };
  net.createServer((s) => {
    s.on('error', () => s.destroy());
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        s.write(`${name} ${buf.slice(0, nl)}\n`);
        buf = buf.slice(nl + 1);
      }
    });
  }).listen(tcpPort, addr, up);
  const u = dgram.createSocket('udp4');
  u.on('message', (m, r) => u.send(`${name} ${m.toString()}`, r.port, r.address));
  u.bind(udpPort, addr, up);
}

/** A TCP connection that answers one line per request. */
class LineConn {
  private buf = '';
  private waiting: ((line: string) => void) | null = null;
  private failure: Error | null = null;
  private constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf += d.toString();
      const nl = this.buf.indexOf('\n');
      if (nl >= 0 && this.waiting) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const w = this.waiting;
        this.waiting = null;
        w(line);
      }
    });
    sock.on('error', (e) => { this.failure = e; });
    sock.on('close', () => { this.failure ??= new Error('closed'); });
  }

  static open(host: string, port: number, timeoutMs: number): Promise<LineConn> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port });
      const t = setTimeout(() => { s.destroy(); reject(new Error(`connect timeout ${timeoutMs} ms`)); }, timeoutMs);
      s.once('connect', () => { clearTimeout(t); resolve(new LineConn(s)); });
      s.once('error', (e) => { clearTimeout(t); reject(e); });
    });
  }

  get localPort(): number {
    return this.sock.localPort ?? 0;
  }

  ask(line: string, timeoutMs: number): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.waiting = null; reject(new Error(`no answer in ${timeoutMs} ms`)); }, timeoutMs);
      this.waiting = (l) => { clearTimeout(t); resolve(l); };
      this.sock.write(`${line}\n`);
    });
  }

  reset(): void {
    this.sock.resetAndDestroy();
  }
}

/** Splits "<backend> <payload>" and checks the payload. */
function answerOf(reply: string, sent: string): string {
  const sp = reply.indexOf(' ');
  if (sp < 0 || reply.slice(sp + 1) !== sent) throw new Error(`bad answer ${JSON.stringify(reply)} to ${JSON.stringify(sent)}`);
  return reply.slice(0, sp);
}

async function tcpFlow(host: string, port: number, index: number, r: FlowResult): Promise<LineConn | null> {
  const t0 = Date.now();
  try {
    const c = await LineConn.open(host, port, TIMEOUT_MS);
    r.cport = c.localPort;
    r.backend = answerOf(await c.ask(`tcp ${index} first`, TIMEOUT_MS), `tcp ${index} first`);
    r.first = true;
    return c;
  } catch (e) {
    r.error = (e as Error).message;
    return null;
  } finally {
    r.ms = Date.now() - t0;
  }
}

function udpAsk(sock: dgram.Socket, host: string, port: number, msg: string): Promise<string> {
  // Lock-step with retries: a datagram lost in a slow VM is resent; the IPVS connection is the same one.
  return new Promise((resolve, reject) => {
    let tries = 0;
    let t: NodeJS.Timeout | undefined;
    const onMsg = (m: Buffer): void => {
      const s = m.toString();
      if (!s.endsWith(` ${msg}`)) return;
      clearTimeout(t);
      sock.off('message', onMsg);
      resolve(s);
    };
    const send = (): void => {
      if (++tries > 5) {
        sock.off('message', onMsg);
        reject(new Error(`no answer after ${tries - 1} tries`));
        return;
      }
      sock.send(msg, port, host);
      t = setTimeout(send, TIMEOUT_MS / 5);
    };
    sock.on('message', onMsg);
    send();
  });
}

/** Every UDP flow sends a datagram this often while it is held open, as a real UDP client would. */
const UDP_KEEPALIVE_MS = 2000;

async function udpFlow(host: string, port: number, index: number, r: FlowResult, pings: NodeJS.Timeout[]): Promise<dgram.Socket | null> {
  const t0 = Date.now();
  const sock = dgram.createSocket('udp4');
  try {
    await new Promise<void>((res) => sock.bind(0, () => res()));
    r.cport = sock.address().port;
    r.backend = answerOf(await udpAsk(sock, host, port, `udp ${index} first`), `udp ${index} first`);
    r.first = true;
    // Keeps the flow (and IPVS's connection, whose UDP timeout is short in the test) alive until the release.
    pings.push(setInterval(() => sock.send(`udp ${index} ping`, port, host), UDP_KEEPALIVE_MS));
    return sock;
  } catch (e) {
    r.error = (e as Error).message;
    return sock;
  } finally {
    r.ms = Date.now() - t0;
  }
}

/** Runs fn over items with at most `width` in flight. */
async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

async function flows(host: string, tcpPort: number, udpPort: number, n: number, dir: string): Promise<void> {
  const file = path.join(dir, 'flows.json');
  const results: FlowResult[] = [];
  const mk = (proto: 'tcp' | 'udp', index: number): FlowResult => {
    const r: FlowResult = { proto, index, cport: 0, backend: '', first: false, second: false, error: '', ms: 0 };
    results.push(r);
    return r;
  };
  const tcp: (LineConn | null)[] = [];
  const udp: (dgram.Socket | null)[] = [];
  const pings: NodeJS.Timeout[] = [];
  const idx = Array.from({ length: n }, (_, i) => i);
  await pool(idx, 8, async (i) => { tcp[i] = await tcpFlow(host, tcpPort, i, mk('tcp', i)); });
  await pool(idx, 8, async (i) => { udp[i] = await udpFlow(host, udpPort, i, mk('udp', i), pings); });
  results.sort((a, b) => (a.proto === b.proto ? a.index - b.index : a.proto.localeCompare(b.proto)));
  writeJson(file, results);
  writeFileSync(path.join(dir, 'held'), '');
  while (!existsSync(path.join(dir, 'release'))) await sleep(100);
  for (const t of pings) clearInterval(t);

  const byKey = new Map(results.map((r) => [`${r.proto}${r.index}`, r]));
  await pool(idx, 8, async (i) => {
    const r = byKey.get(`tcp${i}`) as FlowResult;
    const c = tcp[i];
    if (!c || !r.first) return;
    try {
      if (answerOf(await c.ask(`tcp ${i} second`, TIMEOUT_MS), `tcp ${i} second`) !== r.backend) throw new Error('second answer from another backend');
      r.second = true;
    } catch (e) {
      r.error = `second: ${(e as Error).message}`;
    }
  });
  await pool(idx, 8, async (i) => {
    const r = byKey.get(`udp${i}`) as FlowResult;
    const s = udp[i];
    if (!s || !r.first) return;
    try {
      if (answerOf(await udpAsk(s, host, udpPort, `udp ${i} second`), `udp ${i} second`) !== r.backend) throw new Error('second answer from another backend');
      r.second = true;
    } catch (e) {
      r.error = `second: ${(e as Error).message}`;
    }
  });
  for (const c of tcp) c?.reset();
  for (const s of udp) s?.close();
  writeJson(file, results);
}

async function long(host: string, port: number, intervalMs: number, dir: string): Promise<void> {
  const file = path.join(dir, 'long.json');
  const stop = path.join(dir, 'stop');
  const started = Date.now();
  const r: LongResult = { cport: 0, backend: '', ok: 0, failed: 0, lastOkMs: 0, startedMs: started, done: false, error: '' };
  let c: LineConn | null = null;
  try {
    c = await LineConn.open(host, port, TIMEOUT_MS);
    r.cport = c.localPort;
    // One more round trip after the stop file appears: the flow works at the very end too.
    for (let i = 0, last = false; !last && Date.now() - started < LONG_MAX_MS; i++) {
      last = existsSync(stop);
      const t = Date.now();
      try {
        const b = answerOf(await c.ask(`long ${i}`, 5000), `long ${i}`);
        if (r.backend && b !== r.backend) throw new Error(`answer ${i} from ${b}, not ${r.backend}`);
        r.backend = b;
        r.ok++;
        r.lastOkMs = Date.now() - started;
      } catch (e) {
        r.failed++;
        r.error = (e as Error).message;
      }
      writeJson(file, r);
      if (!last) await sleep(Math.max(0, intervalMs - (Date.now() - t)));
    }
  } catch (e) {
    r.error = (e as Error).message;
  }
  c?.reset();
  r.done = true;
  writeJson(file, r);
}

function num(s: string | undefined): number {
  const v = Number(s);
  if (s === undefined || s === '' || !Number.isFinite(v)) throw new Error(`not a number: ${s}`);
  return v;
}

/** One command (also what the command loop runs); returns what it prints. */
async function command(argv: string[]): Promise<string[]> {
  const [mode, ...a] = argv;
  switch (mode) {
    case 'flows':
      TIMEOUT_MS = a[5] ? num(a[5]) : DEFAULT_TIMEOUT_MS;
      await flows(a[0], num(a[1]), num(a[2]), num(a[3]), a[4]);
      return [];
    case 'long': await long(a[0], num(a[1]), num(a[2]), a[3]); return [];
    default: throw new Error(`usage: serve|flows|long|loop ... (got ${mode})`);
  }
}

async function main(argv: string[]): Promise<void> {
  const [mode, ...a] = argv;
  if (mode === 'serve') serve(a[0], a[1], num(a[2]), num(a[3]));
  else if (mode === 'loop') await commandLoop(a[0], a[1], command);
  else await command(argv);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e: Error) => {
    process.stderr.write(`ipvs-bpf-traffic: ${e.message}\n`);
    process.exit(1);
  });
}
