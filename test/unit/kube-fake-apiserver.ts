/**
 * A stand-in apiserver for the list-and-watch client's unit tests: objects under a few collection paths,
 * one resourceVersion counter, an event history watches replay from, compaction (a watch from before it
 * gets a 410 ERROR event, as kube-apiserver sends), bookmarks, and injected refusals and dropped
 * connections. The real kube-apiserver checks the same client in the lab tests.
 */
import * as http from 'http';
import type { AddressInfo } from 'net';

interface Obj {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
}

interface Ev {
  rv: number;
  path: string;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  obj: Obj;
}

export class FakeApiserver {
  private server = http.createServer((req, res) => this.handle(req, res));
  private rv = 100;
  private readonly objects = new Map<string, Map<string, Obj>>();
  private readonly history: Ev[] = [];
  private compactedBelow = 0;
  private readonly watchers = new Set<{ path: string; res: http.ServerResponse }>();
  /** Requests seen: method path?query. */
  readonly requests: string[] = [];
  /** Refuse the next N requests with this status. */
  private refusals: { status: number; n: number } | undefined;
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const w of this.watchers) w.res.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private coll(path: string): Map<string, Obj> {
    let m = this.objects.get(path);
    if (!m) this.objects.set(path, (m = new Map()));
    return m;
  }

  /** Adds or replaces an object; live watches see it. */
  put<T extends Obj>(path: string, obj: T): void {
    const key = `${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
    const c = this.coll(path);
    const type = c.has(key) ? 'MODIFIED' : 'ADDED';
    const stored = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } };
    c.set(key, stored);
    this.publish({ rv: this.rv, path, type, obj: stored });
  }

  delete(path: string, name: string, namespace?: string): void {
    const key = `${namespace ?? ''}/${name}`;
    const c = this.coll(path);
    const old = c.get(key);
    if (!old) return;
    c.delete(key);
    const obj = { ...old, metadata: { ...old.metadata, resourceVersion: String(++this.rv) } };
    this.publish({ rv: this.rv, path, type: 'DELETED', obj });
  }

  /** Forget history up to now: watches from older versions get 410. */
  compact(): void {
    this.compactedBelow = this.rv;
  }

  /** A bookmark to every watch of `path`. */
  bookmark(path: string): void {
    for (const w of this.watchers) {
      if (w.path === path) w.res.write(`${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: String(this.rv) } } })}\n`);
    }
  }

  /** Drops every open watch connection (as a restarting apiserver or a broken network does). */
  dropWatches(): void {
    for (const w of this.watchers) w.res.destroy();
    this.watchers.clear();
  }

  /** Ends every open watch cleanly (as the server's timeoutSeconds does). */
  endWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  refuseNext(status: number, n: number): void {
    this.refusals = { status, n };
  }

  get openWatches(): number {
    return this.watchers.size;
  }

  private publish(ev: Ev): void {
    this.history.push(ev);
    for (const w of this.watchers) if (w.path === ev.path) w.res.write(`${JSON.stringify({ type: ev.type, object: ev.obj })}\n`);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    this.requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (this.refusals && this.refusals.n > 0) {
      this.refusals.n--;
      res.writeHead(this.refusals.status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', code: this.refusals.status, reason: 'InternalError', message: 'injected' }));
      return;
    }
    const path = url.pathname;
    if (url.searchParams.get('watch') !== '1') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ items: [...this.coll(path).values()], metadata: { resourceVersion: String(this.rv) } }));
      return;
    }
    const from = Number(url.searchParams.get('resourceVersion') ?? '0');
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders(); // as kube-apiserver does: the watch is established before any event
    if (from < this.compactedBelow) {
      res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: `too old resource version: ${from}` } })}\n`);
      return;
    }
    for (const ev of this.history) if (ev.path === path && ev.rv > from) res.write(`${JSON.stringify({ type: ev.type, object: ev.obj })}\n`);
    const w = { path, res };
    this.watchers.add(w);
    res.on('close', () => this.watchers.delete(w));
  }
}
