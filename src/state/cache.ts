/**
 * A bounded TTL cache of async results with single flight: concurrent misses for one key share
 * one call. Failures are not kept; with a zero TTL only the in-flight call is shared.
 * Map order gives least-recently-set eviction.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { expires: number; value: Promise<V> }>();

  constructor(private readonly maxEntries: number, private readonly now: () => number = Date.now) {}

  get size() {
    return this.entries.size;
  }

  get(key: string, ttlMs: number, load: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit && hit.expires > this.now()) return hit.value;
    const entry = { expires: ttlMs > 0 ? this.now() + ttlMs : Infinity, value: load() };
    this.entries.delete(key);
    this.entries.set(key, entry);
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    const forget = () => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    };
    entry.value.then(ttlMs > 0 ? undefined : forget, forget);
    return entry.value;
  }
}
