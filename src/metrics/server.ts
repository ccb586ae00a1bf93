/**
 * The HTTP listener for scrapes: GET (or HEAD) /metrics answers with the registry's text; anything else is
 * 404 (405 for other methods). The text is written in chunks with backpressure (the table's can be 100+ MB
 * at 10k services x 10 real servers). Any producer of exposition text can be served (kube mode's own
 * listener on metricsBindAddress can use this with another path set).
 */
import * as http from 'node:http';
import * as net from 'node:net';

export interface Listen {
  host: string;
  port: number;
}

/** "127.0.0.1:9478", "[::1]:9478", "0.0.0.0:9478": an IP address (IPv6 in brackets) and a port 1-65535. */
export function parseListen(text: string): Listen {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || !host) throw new Error('must be ADDRESS:PORT (IPv6 in brackets, e.g. 127.0.0.1:9478 or [::1]:9478)');
  if (m[1] !== undefined ? !net.isIPv6(host) : !net.isIPv4(host)) throw new Error(`${JSON.stringify(host)} is not an IP${m[1] !== undefined ? 'v6' : 'v4'} address`);
  if (!(port >= 1 && port <= 65535)) throw new Error(`port ${m[3]} is out of range (1-65535)`);
  return { host, port };
}

export interface Exposition {
  render(): Promise<string[]>;
}

export interface MetricsServer {
  /** Where it listens, as "ADDRESS:PORT" (the real port when 0 was asked for). */
  readonly address: string;
  close(): Promise<void>;
}

export interface ServeOptions {
  contentType: string;
  /** Paths answered with the text (default ['/metrics']). */
  paths?: readonly string[];
  /** Told when a scrape failed (its reply was 500). */
  onError?: (e: unknown) => void;
}

async function send(res: http.ServerResponse, chunks: readonly string[]): Promise<void> {
  for (const c of chunks) {
    if (res.destroyed) return;
    if (!res.write(c)) await new Promise<void>((resolve) => {
      const done = (): void => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  }
  res.end();
}

export function serveMetrics(exposition: Exposition, listen: Listen, opts: ServeOptions): Promise<MetricsServer> {
  const paths = new Set(opts.paths ?? ['/metrics']);
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (!paths.has(path)) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`not found; metrics are at ${[...paths].join(', ')}\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('only GET and HEAD\n');
      return;
    }
    exposition.render().then(
      (chunks) => {
        res.writeHead(200, { 'Content-Type': opts.contentType });
        if (req.method === 'HEAD') return void res.end();
        return send(res, chunks);
      },
      (e: unknown) => {
        opts.onError?.(e);
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${e instanceof Error ? e.message : String(e)}\n`);
      },
    ).catch((e: unknown) => {
      opts.onError?.(e);
      res.destroy();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      const a = server.address() as net.AddressInfo;
      resolve({
        address: a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`,
        close: () => new Promise<void>((done) => {
          server.close(() => done());
          server.closeAllConnections();
        }),
      });
    });
  });
}
