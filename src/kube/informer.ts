/**
 * List and watch one resource into a store, for ever: list (paged), then watch from the list's
 * resourceVersion with bookmarks, continuing from the last version seen when the server ends a watch (its
 * jittered timeout), relisting at once on 410 Gone, and retrying anything else (connection refused, 5xx,
 * 403, a silent connection) after a backoff of 1 s doubling to 30 s, jittered, reset once a list or watch
 * works again. A relist reports, as one batch, what changed since the store's state (deletions included),
 * so that a consumer sees a consistent change set. Object identity: namespace/name.
 */
import { ApiStatusError, type ApiClient, type Query, type WatchEvent } from './client';
import type { ObjectMeta } from './types';

export interface InformerEvent<T> {
  type: 'add' | 'update' | 'delete';
  key: string;
  obj: T;
  /** The previous object (update, delete). */
  old?: T;
}

export interface InformerOptions {
  /** For logs: "services". */
  name: string;
  /** e.g. /api/v1/services */
  path: string;
  query?: Query;
  /** Watch timeouts are drawn from this range (seconds), as client-go does (5-10 min). */
  timeoutSeconds?: [number, number];
  /** Abort a watch that receives nothing for this long (default: its timeout + 30 s). */
  idleMs?: number;
  /** Backoff bounds in ms. */
  backoff?: { initialMs: number; maxMs: number };
  /** Called with a one-line message for failures (rate-limited by the caller if it wants). */
  onError?: (message: string) => void;
  /** Random source (jitter) for tests. */
  random?: () => number;
}

export const keyOf = (m: ObjectMeta): string => (m.namespace ? `${m.namespace}/${m.name}` : m.name);

export class Informer<T extends { metadata: ObjectMeta }> {
  readonly store = new Map<string, T>();
  private rv = '';
  private stopped = false;
  private abort: AbortController | undefined;
  private listeners: ((events: InformerEvent<T>[]) => void)[] = [];
  private syncedWaiters: (() => void)[] = [];
  private loop: Promise<void> | undefined;
  private sleepTimer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  /** Set after the first complete list. */
  synced = false;
  /** Counters for status and tests. */
  readonly stats = { lists: 0, watches: 0, relists410: 0, errors: 0, events: 0 };
  lastError = '';

  constructor(private readonly client: ApiClient, private readonly opts: InformerOptions) {}

  /** Batches of changes (a relist's diff, or one watch event). */
  onEvents(cb: (events: InformerEvent<T>[]) => void): void {
    this.listeners.push(cb);
  }

  /** Resolves after the first complete list. */
  whenSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((r) => this.syncedWaiters.push(r));
  }

  start(): void {
    if (this.loop) return;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    if (this.sleepTimer) clearTimeout(this.sleepTimer);
    this.wake?.();
    await this.loop;
  }

  private emit(events: InformerEvent<T>[]): void {
    if (events.length === 0) return;
    this.stats.events += events.length;
    for (const l of this.listeners) l(events);
  }

  private async run(): Promise<void> {
    const { initialMs, maxMs } = this.opts.backoff ?? { initialMs: 1000, maxMs: 30_000 };
    const random = this.opts.random ?? Math.random;
    const [tMin, tMax] = this.opts.timeoutSeconds ?? [300, 600];
    let delay = initialMs;
    while (!this.stopped) {
      try {
        if (this.rv === '') {
          await this.relist();
          delay = initialMs;
        }
        this.abort = new AbortController();
        this.stats.watches++;
        let got = false;
        await this.client.watch<T>(this.opts.path, this.opts.query ?? {}, {
          resourceVersion: this.rv,
          timeoutSeconds: Math.round(tMin + (tMax - tMin) * random()),
          signal: this.abort.signal,
          ...(this.opts.idleMs ? { idleMs: this.opts.idleMs } : {}),
        }, (e) => {
          got = true;
          this.apply(e);
        });
        if (got) delay = initialMs;
      } catch (e) {
        if (this.stopped) break;
        if (e instanceof ApiStatusError && e.code === 410) {
          // Our version is older than the apiserver keeps: start again from a list.
          this.stats.relists410++;
          this.rv = '';
          continue;
        }
        this.stats.errors++;
        this.lastError = e instanceof Error ? e.message : String(e);
        const wait = Math.round(delay * (0.8 + 0.4 * random()));
        this.opts.onError?.(`${this.opts.name}: ${this.lastError}; retrying in ${(wait / 1000).toFixed(wait < 1000 ? 2 : 1)} s`);
        await this.sleep(wait);
        delay = Math.min(maxMs, delay * 2);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.sleepTimer = setTimeout(resolve, ms);
    });
  }

  private async relist(): Promise<void> {
    const list = await this.client.list<T>(this.opts.path, this.opts.query ?? {});
    if (this.stopped) return;
    this.stats.lists++;
    const seen = new Set<string>();
    const events: InformerEvent<T>[] = [];
    for (const obj of list.items) {
      const key = keyOf(obj.metadata);
      seen.add(key);
      const old = this.store.get(key);
      if (!old) events.push({ type: 'add', key, obj });
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) events.push({ type: 'update', key, obj, old });
      this.store.set(key, obj);
    }
    for (const [key, old] of this.store) {
      if (!seen.has(key)) {
        this.store.delete(key);
        events.push({ type: 'delete', key, obj: old, old });
      }
    }
    this.rv = list.resourceVersion;
    const first = !this.synced;
    this.synced = true;
    this.emit(events);
    if (first) for (const w of this.syncedWaiters.splice(0)) w();
  }

  private apply(e: WatchEvent<T>): void {
    const rv = e.object?.metadata?.resourceVersion;
    if (rv) this.rv = rv;
    if (e.type === 'BOOKMARK') return;
    const key = keyOf(e.object.metadata);
    const old = this.store.get(key);
    if (e.type === 'DELETED') {
      if (!old) return;
      this.store.delete(key);
      this.emit([{ type: 'delete', key, obj: e.object, old }]);
      return;
    }
    this.store.set(key, e.object);
    this.emit([old ? { type: 'update', key, obj: e.object, old } : { type: 'add', key, obj: e.object }]);
  }
}
