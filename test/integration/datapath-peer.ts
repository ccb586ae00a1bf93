/**
 * Traffic endpoints for the netns data-path tests (child processes, one per namespace):
 *   tcp-echo <port>                 echo every TCP byte back
 *   udp-echo <port>                 echo every datagram back
 *   tcp-client <host> <port> <localPort> <bytes> [paced]
 *       sends <bytes> of deterministic pseudo-random data (paced: 2.5 MB/s until "stop" on
 *       stdin, then a last 1 MB; <bytes> is only a cap) and reads the echo; prints {"progress"} lines and a final {"done"} line
 *       with the SHA-256 of what was sent and of what came back
 *   udp-client <host> <port> <localPort> <count>
 *       lock-step request/echo with retries; prints {"done", sent, echoed, mismatched}
 */
import { createHash } from 'crypto';
import * as dgram from 'dgram';
import * as net from 'net';

const out = (o: object): void => { process.stdout.write(`${JSON.stringify(o)}\n`); };

/** xorshift32 stream: the same bytes for the same seed, cheap to produce. */
function fill(buf: Buffer, state: { x: number }): void {
  for (let i = 0; i + 4 <= buf.length; i += 4) {
    let x = state.x;
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    state.x = x;
    buf.writeUInt32LE(x, i);
  }
}

function tcpEcho(port: number): void {
  net.createServer((s) => { s.on('error', () => s.destroy()); s.pipe(s); }).listen(port, '0.0.0.0', () => out({ listening: port }));
}

function udpEcho(port: number): void {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(port, '0.0.0.0', () => out({ listening: port }));
}

function tcpClient(host: string, port: number, localPort: number, cap: number, paced: boolean): void {
  let total = cap;
  const CHUNK = 64 * 1024;
  const sentHash = createHash('sha256');
  const recvHash = createHash('sha256');
  const state = { x: 0x9e3779b9 };
  let sent = 0;
  let recv = 0;
  let stop = !paced;
  if (paced) {
    process.stdin.on('data', (d: Buffer) => {
      if (stop || !d.toString().includes('stop')) return;
      stop = true;
      total = Math.min(total, sent + 16 * CHUNK); // a last full-speed burst, then the end
      pump();
    });
  }
  const s = net.connect({ host, port, localPort, localAddress: '0.0.0.0' });
  const ticker = setInterval(() => out({ progress: true, sent, recv }), 200);
  function pump(): void {
    while (sent < total) {
      const n = Math.min(CHUNK, total - sent);
      const b = Buffer.alloc(n);
      fill(b, state);
      sentHash.update(b);
      sent += n;
      if (!s.write(b)) { s.once('drain', pump); return; }
      // paced: 256 KB per 100 ms until told to stop (total is then only a cap)
      if (!stop && sent % (4 * CHUNK) === 0) { setTimeout(pump, 100); return; }
    }
    s.end();
  }
  s.on('connect', pump);
  s.on('data', (d: Buffer) => { recv += d.length; recvHash.update(d); });
  s.on('error', (e) => { clearInterval(ticker); out({ error: e.message, sent, recv }); process.exit(1); });
  s.on('end', () => {
    clearInterval(ticker);
    out({ done: true, sent, recv, sentSha: sentHash.digest('hex'), recvSha: recvHash.digest('hex') });
    process.exit(0);
  });
}

function udpClient(host: string, port: number, localPort: number, count: number): void {
  const s = dgram.createSocket('udp4');
  let seq = 0;
  let echoed = 0;
  let mismatched = 0;
  let timer: NodeJS.Timeout | undefined;
  const payload = (i: number): Buffer => Buffer.from(`ipvs-bpf udp ${i} `.padEnd(200, String.fromCharCode(97 + (i % 26))));
  function send(tries: number): void {
    if (tries > 50) { out({ error: `no echo for datagram ${seq}`, echoed }); process.exit(1); }
    s.send(payload(seq), port, host);
    timer = setTimeout(() => send(tries + 1), 500);
  }
  s.on('message', (m) => {
    if (!m.equals(payload(seq))) { mismatched++; return; }
    clearTimeout(timer);
    echoed++;
    seq++;
    if (seq === count) { out({ done: true, sent: count, echoed, mismatched }); s.close(); return; }
    send(0);
  });
  s.bind(localPort, '0.0.0.0', () => send(0));
}

const [mode, ...a] = process.argv.slice(2);
switch (mode) {
  case 'tcp-echo': tcpEcho(Number(a[0])); break;
  case 'udp-echo': udpEcho(Number(a[0])); break;
  case 'tcp-client': tcpClient(a[0], Number(a[1]), Number(a[2]), Number(a[3]), a[4] === 'paced'); break;
  case 'udp-client': udpClient(a[0], Number(a[1]), Number(a[2]), Number(a[3])); break;
  default: throw new Error(`unknown mode ${mode}`);
}
