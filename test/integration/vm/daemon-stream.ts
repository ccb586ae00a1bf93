/**
 * A long, checksummed TCP stream for the daemon's restart checks in the lab VM (daemon-bpf-systemd.sh):
 *
 *   daemon-stream server <port>
 *       echoes every byte of every connection back
 *   daemon-stream client <host> <port> <statusFile> [rateKiBps]
 *       sends a deterministic byte stream at rateKiBps (default 256) until it gets SIGUSR1, then one more
 *       MiB at full speed, half-closes and reads the echo to its end. statusFile is rewritten (atomically)
 *       every 200 ms with {sent, recv, stallMs} and at the end with the verdict:
 *       {done, localPort, sent, recv, sentSha, recvSha, maxStallMs, error}
 *       error is "" when the connection ended normally; a reset, a timeout or a stall of 60 s name it.
 *
 * The payload starts the client in the background, changes the daemon under it (restart, stop, start,
 * a failed start) and judges by the final line: same byte count and SHA-256 in both directions, no error.
 */
import { createHash } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';

const CHUNK = 16 * 1024;
const TAIL = 1024 * 1024;
const STALL_LIMIT_MS = 60_000;

/** xorshift32: the same bytes for the same seed, and no two chunks alike. */
function nextChunk(state: { x: number }): Buffer {
  const b = Buffer.allocUnsafe(CHUNK);
  let x = state.x;
  for (let i = 0; i < CHUNK; i += 4) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  state.x = x;
  return b;
}

function server(port: number): void {
  net.createServer((s) => {
    s.on('error', () => s.destroy());
    s.pipe(s);
  }).listen(port, '0.0.0.0');
}

function client(host: string, port: number, statusFile: string, rateKiBps: number): void {
  const writeStatus = (o: object): void => {
    writeFileSync(`${statusFile}.tmp`, `${JSON.stringify(o)}\n`);
    renameSync(`${statusFile}.tmp`, statusFile);
  };
  const sentHash = createHash('sha256');
  const recvHash = createHash('sha256');
  const state = { x: 0x2545f491 };
  let sent = 0;
  let recv = 0;
  let finishAt = Infinity; // byte count to stop at, set by SIGUSR1
  let lastData = Date.now();
  let maxStallMs = 0;
  let finished = false;
  const started = Date.now();

  const s = net.connect({ host, port });
  const finish = (error: string): void => {
    if (finished) return;
    finished = true;
    clearInterval(ticker);
    writeStatus({
      done: true, localPort: s.localPort ?? 0, sent, recv, sentSha: sentHash.digest('hex'), recvSha: recvHash.digest('hex'), maxStallMs, error,
      seconds: Math.round((Date.now() - started) / 100) / 10,
    });
    s.destroy();
    process.exit(0);
  };
  const ticker = setInterval(() => {
    const stall = Date.now() - lastData;
    if (stall > STALL_LIMIT_MS) finish(`stalled: nothing received for ${stall} ms`);
    else writeStatus({ localPort: s.localPort ?? 0, sent, recv, stallMs: stall });
  }, 200);

  // Paced: one chunk per CHUNK/rate seconds until SIGUSR1, then the tail as fast as the socket takes it.
  const interval = (CHUNK / 1024 / rateKiBps) * 1000;
  const pump = (): void => {
    if (finished) return;
    const paced = finishAt === Infinity;
    while (sent < finishAt) {
      const b = nextChunk(state);
      sentHash.update(b);
      sent += b.length;
      const more = s.write(b);
      if (paced) {
        setTimeout(pump, interval);
        return;
      }
      if (!more) {
        s.once('drain', pump);
        return;
      }
    }
    s.end();
  };
  process.on('SIGUSR1', () => {
    if (finishAt !== Infinity) return;
    finishAt = sent + TAIL;
  });
  s.on('connect', pump);
  s.on('data', (d: Buffer) => {
    const now = Date.now();
    maxStallMs = Math.max(maxStallMs, now - lastData);
    lastData = now;
    recv += d.length;
    recvHash.update(d);
  });
  s.on('error', (e: NodeJS.ErrnoException) => finish(`${e.code ?? ''} ${e.message}`.trim()));
  s.on('end', () => finish(recv === sent ? '' : `the echo ended after ${recv} of ${sent} bytes`));
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'server' && args.length === 1) server(Number(args[0]));
else if (cmd === 'client' && args.length >= 3) client(args[0]!, Number(args[1]), args[2]!, Number(args[3] ?? 256));
else {
  process.stderr.write('usage: daemon-stream server <port> | client <host> <port> <statusFile> [rateKiBps]\n');
  process.exit(2);
}
