/**
 * A bounded set that forgets its least recently used keys: the dedupe memory of event consumers
 * (at-least-once delivery means every consumer remembers what it has already delivered).
 */
export class LruSet {
  private readonly map = new Map<string, true>();

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
  }

  get size(): number {
    return this.map.size;
  }

  has(key: string): boolean {
    if (!this.map.has(key)) return false;
    this.map.delete(key);
    this.map.set(key, true);
    return true;
  }

  /** Adds `key`; returns false when it was already present (and refreshes it). */
  add(key: string): boolean {
    if (this.has(key)) return false;
    this.map.set(key, true);
    if (this.map.size > this.capacity) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
    return true;
  }
}
