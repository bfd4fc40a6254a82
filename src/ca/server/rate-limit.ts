// Per-identity token buckets for Sign: one identity (a looping agent, a leaked token's owner) cannot keep
// the CA busy for everyone. Time is passed in; buckets that refilled completely are forgotten, so memory
// stays proportional to the identities active in the last burst/rate seconds.

export interface RateLimit {
  /** Sustained signings per second per identity. */
  ratePerSecond: number;
  /** Signings an identity may make at once. */
  burst: number;
}

export const DEFAULT_SIGN_RATE_LIMIT: RateLimit = { ratePerSecond: 1, burst: 10 };

interface Bucket { tokens: number; updatedMs: number }

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweepMs = 0;

  constructor(readonly limit: RateLimit) {
    if (!(limit.ratePerSecond > 0) || !(limit.burst >= 1)) throw new RangeError('rate limit needs ratePerSecond > 0 and burst >= 1');
  }

  /** Takes one token for `key`; false when the bucket is empty. */
  take(key: string, nowMs: number): boolean {
    this.sweep(nowMs);
    const b = this.buckets.get(key) ?? { tokens: this.limit.burst, updatedMs: nowMs };
    const refilled = Math.min(this.limit.burst, b.tokens + (Math.max(0, nowMs - b.updatedMs) / 1000) * this.limit.ratePerSecond);
    if (refilled < 1) {
      this.buckets.set(key, { tokens: refilled, updatedMs: nowMs });
      return false;
    }
    this.buckets.set(key, { tokens: refilled - 1, updatedMs: nowMs });
    return true;
  }

  /** Seconds until `key` may sign again (for the refusal message). */
  retryAfterSeconds(key: string): number {
    const b = this.buckets.get(key);
    if (!b) return 0;
    return Math.max(0, Math.ceil((1 - b.tokens) / this.limit.ratePerSecond));
  }

  private sweep(nowMs: number): void {
    const fullAfterMs = (this.limit.burst / this.limit.ratePerSecond) * 1000;
    if (nowMs - this.lastSweepMs < fullAfterMs) return;
    this.lastSweepMs = nowMs;
    for (const [key, b] of this.buckets) if (nowMs - b.updatedMs >= fullAfterMs) this.buckets.delete(key);
  }
}
