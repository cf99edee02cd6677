// Brokers deliver at least once. A redelivered event within the window gets the stored
// reply instead of a second inference. The store is lru-cache, bounded three ways: entries
// expire after ttlMs, and the least recently used go first once it holds more than
// maxEntries or maxBytes.
import { LRUCache } from 'lru-cache';

export interface DedupeLimits {
  ttlMs: number;
  maxEntries: number;
  /** Estimated bytes of keys and replies together. */
  maxBytes: number;
}

/** What one entry costs beyond its key and reply: the cache's slot and bookkeeping. */
export const ENTRY_OVERHEAD_BYTES = 256;

export class EventDeduper<T extends {}> {
  /** Null when any limit is 0: de-duplication is off. */
  private readonly replies: LRUCache<string, T> | null;
  /**
   * Runs not yet settled, so that a concurrent duplicate waits for the first. They are not
   * in the cache (their size is not known yet); admission bounds how many there are.
   */
  private readonly running = new Map<string, Promise<T>>();

  /** `sizeOf` estimates a stored value's bytes; keys count at two bytes a character. */
  constructor(
    limits: DedupeLimits,
    sizeOf: (value: T) => number,
    private readonly onChange: (entries: number, bytes: number) => void = () => {},
    /** The clock the TTL is measured by; tests pass a fake one. */
    perf: { now(): number } = performance,
  ) {
    const { ttlMs, maxEntries, maxBytes } = limits;
    this.replies =
      ttlMs > 0 && maxEntries > 0 && maxBytes > 0
        ? new LRUCache<string, T>({
            max: maxEntries,
            ttl: ttlMs,
            maxSize: maxBytes,
            sizeCalculation: (value, key) => key.length * 2 + ENTRY_OVERHEAD_BYTES + sizeOf(value),
            perf,
            // Read the clock at each check rather than cache it for 1 ms: a fake clock (tests) is seen at once.
            ttlResolution: 0,
            // Fires for every entry that leaves (expired, evicted, replaced), so the metrics follow.
            disposeAfter: () => this.changed(),
          })
        : null;
  }

  /**
   * Returns the stored value for `key`, or runs `produce` once and stores what it resolves
   * to. A concurrent duplicate waits for the first run. A failure is never stored, so a
   * retry runs again. A value larger than maxBytes on its own is not stored.
   */
  async once(key: string, produce: () => Promise<T>): Promise<{ value: T; duplicate: boolean }> {
    const stored = this.replies?.get(key);
    if (stored !== undefined) return { value: stored, duplicate: true };
    const pending = this.running.get(key);
    if (pending) return { value: await pending, duplicate: true };
    const run = produce();
    this.running.set(key, run);
    try {
      const value = await run;
      this.replies?.set(key, value);
      this.changed();
      return { value, duplicate: false };
    } finally {
      this.running.delete(key);
    }
  }

  get size(): number {
    return this.replies?.size ?? 0;
  }

  /** The estimated bytes held, never above maxBytes. */
  get bytes(): number {
    return this.replies?.calculatedSize ?? 0;
  }

  private changed(): void {
    this.onChange(this.size, this.bytes);
  }
}
