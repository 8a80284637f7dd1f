/**
 * An LRU of database reads that empties whenever its concern's revision moves, for the lookups a request makes
 * (roles, providers, signing keys, tenants, capability root keys): a warm read costs no round trip, and a read that
 * raced a change is never kept (each load carries the generation it started in).
 */
import { LRUCache } from 'lru-cache';
import type { ChangeSignal } from './signals.ts';

/** Cached reads of one concern, keyed by string. */
export class RevisionCache<V extends {} | null> {
  private readonly entries: LRUCache<string, { value: V }>;
  private generation = 0;

  constructor(private readonly signal: ChangeSignal, max = 10_000) {
    this.entries = new LRUCache({ max });
    signal.onChange(() => this.clear());
  }

  /** Drops every entry; loads in flight are not kept. */
  clear(): void {
    this.generation++;
    this.entries.clear();
  }

  /** The cached value of `key`, or what `load` reads (then cached while the revision holds). */
  async get(key: string, load: () => Promise<V>): Promise<V> {
    await this.signal.sync();
    const hit = this.entries.get(key);
    if (hit !== undefined) return hit.value;
    const generation = this.generation;
    const value = await load();
    if (generation === this.generation) this.entries.set(key, { value });
    return value;
  }
}
