/**
 * A thin Kubernetes API client for list and watch, over Node's http/https (no dependency): lists page with
 * `limit`/`continue`; watches ask for bookmarks (`allowWatchBookmarks`) and end on the server's
 * `timeoutSeconds`; a watch that receives nothing (not even a bookmark) for `idleMs` is aborted, and TCP
 * keepalive finds dead peers, so a half-open connection cannot stall it (the failure @kubernetes/client-node
 * 1.x has). Non-2xx replies and watch ERROR events become ApiStatusError with the apiserver's code and
 * reason (410 Gone: the resource version is too old, relist).
 */
import * as http from 'http';
import * as https from 'https';
import { bearerToken, type Connection } from './kubeconfig';

export class ApiStatusError extends Error {
  override name = 'ApiStatusError';
  constructor(readonly code: number, readonly reason: string, message: string) {
    super(message);
  }
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';
  object: T;
}

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export interface WatchOptions {
  resourceVersion: string;
  timeoutSeconds: number;
  /** Abort when nothing arrives for this long (default: timeoutSeconds + 30 s). */
  idleMs?: number;
  signal?: AbortSignal;
}

export type Query = Record<string, string | undefined>;

const LIST_PAGE = 500;
const REQUEST_TIMEOUT_MS = 60_000;

export class ApiClient {
  private readonly agent: http.Agent;
  private readonly mod: typeof http | typeof https;

  constructor(readonly conn: Connection) {
    const tls = conn.server.startsWith('https:');
    this.mod = tls ? https : http;
    this.agent = tls
      ? new https.Agent({
        keepAlive: true,
        ...(conn.ca ? { ca: conn.ca } : {}),
        ...(conn.cert ? { cert: conn.cert, key: conn.key } : {}),
        rejectUnauthorized: !conn.insecureSkipTlsVerify,
        ...(conn.serverName ? { servername: conn.serverName } : {}),
      })
      : new http.Agent({ keepAlive: true });
  }

  close(): void {
    this.agent.destroy();
  }

  /** Every item at `path`, paged; the list's resourceVersion (where a watch continues). */
  async list<T>(apiPath: string, query: Query = {}): Promise<ListResult<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let rv = '';
    do {
      const body = await this.getJson(apiPath, { ...query, limit: String(LIST_PAGE), continue: cont });
      const list = body as { items?: T[] | null; metadata?: { resourceVersion?: string; continue?: string } };
      for (const i of list.items ?? []) items.push(i);
      rv = list.metadata?.resourceVersion ?? rv;
      cont = list.metadata?.continue || undefined;
    } while (cont);
    return { items, resourceVersion: rv };
  }

  /** One GET, parsed as JSON. */
  async getJson(apiPath: string, query: Query = {}): Promise<unknown> {
    const res = await this.request(apiPath, query, REQUEST_TIMEOUT_MS);
    const text = await readAll(res, REQUEST_TIMEOUT_MS);
    if (res.statusCode !== 200) throw statusError(res.statusCode ?? 0, text, apiPath);
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Error(`GET ${apiPath}: reply is not JSON: ${(e as Error).message}`);
    }
  }

  /**
   * Watches `path` from `resourceVersion`, calling `onEvent` for each event; resolves when the server ends
   * the watch (its timeout), rejects with ApiStatusError for a refusal or an ERROR event, or with an Error
   * when the connection fails or stays silent.
   */
  async watch<T>(apiPath: string, query: Query, opts: WatchOptions, onEvent: (e: WatchEvent<T>) => void): Promise<void> {
    const idleMs = opts.idleMs ?? (opts.timeoutSeconds + 30) * 1000;
    const res = await this.request(apiPath, {
      ...query, watch: '1', resourceVersion: opts.resourceVersion, allowWatchBookmarks: 'true', timeoutSeconds: String(opts.timeoutSeconds),
    }, idleMs, opts.signal);
    if (res.statusCode !== 200) throw statusError(res.statusCode ?? 0, await readAll(res, REQUEST_TIMEOUT_MS), apiPath);
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      let done = false;
      const finish = (err?: Error): void => {
        if (done) return;
        done = true;
        clearTimeout(idle);
        opts.signal?.removeEventListener('abort', onAbort);
        if (err) {
          res.destroy();
          reject(err);
        } else resolve();
      };
      const arm = (): NodeJS.Timeout => setTimeout(() => finish(new Error(`watch ${apiPath}: nothing received for ${secs(idleMs)}`)), idleMs);
      let idle = arm();
      const onAbort = (): void => finish(new Error(`watch ${apiPath}: stopped`));
      opts.signal?.addEventListener('abort', onAbort);
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        clearTimeout(idle);
        idle = arm();
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line === '') continue;
          let ev: { type?: string; object?: unknown };
          try {
            ev = JSON.parse(line) as { type?: string; object?: unknown };
          } catch (e) {
            finish(new Error(`watch ${apiPath}: bad event: ${(e as Error).message}`));
            return;
          }
          if (ev.type === 'ERROR') {
            const s = (ev.object ?? {}) as { code?: number; reason?: string; message?: string };
            finish(new ApiStatusError(s.code ?? 0, s.reason ?? '', `watch ${apiPath}: ${s.code ?? ''} ${s.reason ?? ''}: ${s.message ?? ''}`));
            return;
          }
          try {
            onEvent(ev as WatchEvent<T>);
          } catch (e) {
            finish(e as Error);
            return;
          }
        }
      });
      res.on('end', () => finish());
      res.on('error', (e) => finish(e));
      res.on('close', () => finish(done ? undefined : new Error(`watch ${apiPath}: connection closed`)));
    });
  }

  private request(apiPath: string, query: Query, timeoutMs: number, signal?: AbortSignal): Promise<http.IncomingMessage> {
    const url = new URL(apiPath, `${this.conn.server}/`);
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') url.searchParams.set(k, v);
    const token = bearerToken(this.conn);
    return new Promise((resolve, reject) => {
      const req = this.mod.request(url, {
        method: 'GET',
        agent: this.agent,
        headers: { Accept: 'application/json', 'User-Agent': 'ipvs-bpf', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
        signal,
      }, (res) => {
        req.setTimeout(0);
        resolve(res);
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no reply in ${secs(timeoutMs)}`)));
      req.on('socket', (s) => s.setKeepAlive(true, 15_000));
      req.on('error', (e) => reject(new Error(`GET ${url.pathname} at ${this.conn.server}: ${e.message}`)));
      req.end();
    });
  }
}

function secs(ms: number): string {
  return `${ms < 10_000 ? (ms / 1000).toFixed(1) : Math.round(ms / 1000)} s`;
}

function readAll(res: http.IncomingMessage, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const t = setTimeout(() => res.destroy(new Error(`reply not complete in ${secs(timeoutMs)}`)), timeoutMs);
    res.setEncoding('utf8');
    res.on('data', (c: string) => (text += c));
    res.on('end', () => {
      clearTimeout(t);
      resolve(text);
    });
    res.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

function statusError(code: number, text: string, apiPath: string): ApiStatusError {
  let reason = '';
  let message = text.slice(0, 300);
  try {
    const s = JSON.parse(text) as { reason?: string; message?: string };
    reason = s.reason ?? '';
    message = s.message ?? message;
  } catch {
    // not a Status object
  }
  return new ApiStatusError(code, reason, `GET ${apiPath}: HTTP ${code}${reason ? ` ${reason}` : ''}: ${message}`);
}
