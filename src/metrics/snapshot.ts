/**
 * What bounds a scrape's cost: one IPVS dump serves every scrape (and every metric of a scrape) for
 * `maxAgeMs` after it completed, and scrapes that arrive while a dump runs wait for that one dump. A failed
 * dump is not kept: every waiter gets its error, the next scrape tries again.
 */
export class SnapshotCache<T> {
  private value: { data: T; atMs: number } | undefined;
  private inflight: Promise<T> | undefined;

  constructor(
    private readonly fetch: () => Promise<T>,
    private readonly maxAgeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(): Promise<T> {
    if (this.value && this.now() - this.value.atMs < this.maxAgeMs) return Promise.resolve(this.value.data);
    if (this.inflight) return this.inflight;
    const run = (async (): Promise<T> => {
      try {
        const data = await this.fetch();
        this.value = { data, atMs: this.now() };
        return data;
      } finally {
        this.inflight = undefined;
      }
    })();
    this.inflight = run;
    return run;
  }

  /** Forget the kept dump (the table changed: the next scrape dumps again). */
  invalidate(): void {
    this.value = undefined;
  }
}
