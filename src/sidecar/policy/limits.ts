// Per-identity rate limits: one token bucket per principal id for each `limits` entry. Time is passed in
// (ms), so the buckets are deterministic to test. Memory is bounded: a bucket that has been idle long enough
// to be full again is the same as a fresh one and is dropped when the table needs room.

interface Bucket {
  tokens: number;
  lastMs: number;
}

/** How many identities one limits entry tracks at most (a mesh has far fewer authenticated peers). */
export const DEFAULT_MAX_BUCKETS = 10000;

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  /** Idle time after which any bucket is full again. */
  private readonly refillMs: number;

  constructor(
    readonly rps: number,
    readonly burst: number,
    private readonly maxBuckets = DEFAULT_MAX_BUCKETS,
  ) {
    this.perMs = rps / 1000;
    this.refillMs = burst / this.perMs;
  }

  /** Takes one token from `key`'s bucket at `nowMs`; false when the bucket is empty (rate limited). */
  take(key: string, nowMs: number): boolean {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxBuckets) this.makeRoom(nowMs);
      bucket = { tokens: this.burst, lastMs: nowMs };
      this.buckets.set(key, bucket);
    } else if (nowMs > bucket.lastMs) {
      // A clock that goes backwards adds nothing (and takes nothing away).
      bucket.tokens = Math.min(this.burst, bucket.tokens + (nowMs - bucket.lastMs) * this.perMs);
      bucket.lastMs = nowMs;
    }
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Number of identities currently tracked. */
  get size(): number {
    return this.buckets.size;
  }

  /**
   * Drops every bucket that is full again; if that frees less than a tenth of the table, also drops the
   * oldest-created ones (those identities get a fresh, full bucket: at most one extra burst each).
   */
  private makeRoom(nowMs: number): void {
    for (const [key, bucket] of this.buckets) {
      if (nowMs - bucket.lastMs >= this.refillMs) this.buckets.delete(key);
    }
    const target = Math.floor(this.maxBuckets * 0.9);
    if (this.buckets.size <= target) return;
    for (const key of this.buckets.keys()) {
      this.buckets.delete(key);
      if (this.buckets.size <= target) break;
    }
  }
}
