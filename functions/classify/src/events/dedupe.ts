// Brokers deliver at least once. A redelivered event within the window gets the stored
// reply instead of a second inference. The store is bounded three ways: entries expire
// after ttlMs, and the oldest go first once it holds more than maxEntries or maxBytes.

export interface DedupeLimits {
  ttlMs: number;
  maxEntries: number;
  /** Estimated bytes of keys and replies together. */
  maxBytes: number;
}

/** What one entry costs beyond its key and reply: the Map slot, the entry and its promise. */
export const ENTRY_OVERHEAD_BYTES = 256;

interface Entry<T> {
  at: number;
  value: Promise<T>;
  bytes: number;
}

export class EventDeduper<T> {
  private entries = new Map<string, Entry<T>>();
  private total = 0;

  /** `sizeOf` estimates a stored value's bytes; keys count at two bytes a character. */
  constructor(
    private limits: DedupeLimits,
    private sizeOf: (value: T) => number,
    private onChange: (entries: number, bytes: number) => void = () => {},
  ) {}

  /**
   * Returns the stored value for `key`, or runs `produce` once and stores what it resolves
   * to. A concurrent duplicate waits for the first run. A failure is never stored: the
   * entry goes, so a retry runs again.
   */
  async once(key: string, produce: () => Promise<T>): Promise<{ value: T; duplicate: boolean }> {
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && now - hit.at < this.limits.ttlMs) return { value: await hit.value, duplicate: true };
    if (hit) {
      this.remove(key, hit);
      this.onChange(this.entries.size, this.total);
    }
    const value = produce();
    if (this.limits.maxEntries > 0 && this.limits.ttlMs > 0 && this.limits.maxBytes > 0) this.store(key, value, now);
    return { value: await value, duplicate: false };
  }

  get size(): number {
    return this.entries.size;
  }

  /** The estimated bytes held, never above maxBytes once an insertion has settled. */
  get bytes(): number {
    return this.total;
  }

  private store(key: string, value: Promise<T>, now: number): void {
    const entry: Entry<T> = { at: now, value, bytes: key.length * 2 + ENTRY_OVERHEAD_BYTES };
    this.entries.set(key, entry);
    this.total += entry.bytes;
    this.evict(now);
    value.then(
      (v) => {
        if (this.entries.get(key) !== entry) return; // evicted while it ran
        const size = this.sizeOf(v);
        entry.bytes += size;
        this.total += size;
        this.evict(Date.now());
      },
      () => {
        if (this.entries.get(key) !== entry) return;
        this.remove(key, entry);
        this.onChange(this.entries.size, this.total);
      },
    );
  }

  private remove(key: string, entry: Entry<T>): void {
    this.entries.delete(key);
    this.total -= entry.bytes;
  }

  private evict(now: number): void {
    const { ttlMs, maxEntries, maxBytes } = this.limits;
    // Map iteration is insertion order, so the oldest entries come first.
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= maxEntries && this.total <= maxBytes && now - entry.at < ttlMs) break;
      this.remove(key, entry);
    }
    this.onChange(this.entries.size, this.total);
  }
}
