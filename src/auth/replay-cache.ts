// The memory of HMAC signatures already accepted, so a captured request cannot be sent again. A signature is
// accepted only while `created` is within ±maxSkew of the clock, so it needs remembering for 2·maxSkew after
// it is first seen and never longer. Two generations of that length each: a key is found if it is in either;
// when the current one is a generation old it becomes the previous one and the old previous is dropped whole.
// O(1) per request, no per-entry timers, bounded. Time is passed in. The sidecar keeps one of these where every
// worker reaches it (a replay must not pass by landing on another worker).

export type ReplayOutcome = 'fresh' | 'replay' | 'full';

/** About 100 bytes each: a million signatures is ~100 MB at most. */
export const DEFAULT_MAX_REPLAY_ENTRIES = 1_000_000;

export class ReplayCache {
  private current = new Set<string>();
  private previous = new Set<string>();
  private generationStart: number | undefined;
  readonly generationMs: number;

  /** `maxSkewMs` as in the HMAC policy; `maxEntries` bounds both generations together. */
  constructor(maxSkewMs: number, readonly maxEntries = DEFAULT_MAX_REPLAY_ENTRIES) {
    this.generationMs = 2 * maxSkewMs;
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }

  /**
   * 'fresh' (now remembered), 'replay' (seen inside the window) or 'full' (cannot remember more: refuse the
   * request rather than accept one that could be replayed). Only verified signatures reach the cache, so
   * only key holders can fill it.
   */
  remember(key: string, now: number): ReplayOutcome {
    this.age(now);
    if (this.current.has(key) || this.previous.has(key)) return 'replay';
    if (this.size >= this.maxEntries) return 'full';
    this.current.add(key);
    return 'fresh';
  }

  private age(now: number): void {
    if (this.generationStart === undefined) {
      this.generationStart = now;
      return;
    }
    // A clock that goes backwards ages nothing.
    const elapsed = now - this.generationStart;
    if (elapsed < this.generationMs) return;
    // Every entry of `current` was added before generationStart + generationMs; after two generations
    // without a call, all of them are older than the window.
    this.previous = elapsed >= 2 * this.generationMs ? new Set() : this.current;
    this.current = new Set();
    this.generationStart = now;
  }
}
