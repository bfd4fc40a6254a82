// The `identity` label of /metrics, bounded (issue 14, item 4): a mesh with thousands of callers must not
// give every sidecar, and the Prometheus behind it, a series per caller. At most `limit` identities have
// their own value, the most active ones of this process; every other caller is counted under `other`.
//
// Identities are admitted on first sight until `limit` are; later ones count under `other` while their
// requests are tallied (at most MAX_CANDIDATES of them). Once per window the admitted and the candidates
// are ranked by requests in that window: the top `limit` keep or get their own value, an identity that
// drops out is evicted (its series removed through `onEvict`) and counts under `other` from then on.
// `generation` changes whenever a label may have changed, so callers caching labelled counters know
// when to look again.

export const OTHER_IDENTITY = 'other';

/** Caller identities with their own label value unless the config says otherwise (metrics.identities). */
export const DEFAULT_IDENTITY_LABELS = 100;

/** Callers tallied beyond the admitted ones, per window: bounds this table as the limit bounds the labels. */
const MAX_CANDIDATES = 1000;

export class IdentityLabels {
  /** Changes whenever the label of some identity changed (a re-ranking admitted or evicted one). */
  generation = 0;
  private readonly admitted = new Map<string, number>();
  private readonly candidates = new Map<string, number>();
  private windowStart: number;

  constructor(
    readonly limit: number,
    private readonly onEvict: (identity: string) => void,
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {
    this.windowStart = now();
  }

  /** The label value for one request of `identity`; the request counts toward the ranking. */
  label(identity: string): string {
    if (this.now() - this.windowStart >= this.windowMs) this.rerank();
    const n = this.admitted.get(identity);
    if (n !== undefined) {
      this.admitted.set(identity, n + 1);
      return identity;
    }
    if (this.admitted.size < this.limit) {
      this.admitted.set(identity, 1);
      return identity;
    }
    const c = this.candidates.get(identity);
    if (c !== undefined) this.candidates.set(identity, c + 1);
    else if (this.candidates.size < MAX_CANDIDATES) this.candidates.set(identity, 1);
    return OTHER_IDENTITY;
  }

  /** The identities that have their own label value now. */
  labelled(): string[] {
    return [...this.admitted.keys()];
  }

  /** Ranks the window's admitted identities and candidates; the top `limit` have their own value next. */
  rerank(): void {
    this.windowStart = this.now();
    if (this.candidates.size > 0) {
      // Ties keep the admitted identity (it comes first and the sort is stable): no churn for equal traffic.
      const ranked = [...this.admitted, ...this.candidates].sort((a, b) => b[1] - a[1]);
      const keep = new Set(ranked.slice(0, this.limit).map(([id]) => id));
      let changed = false;
      for (const id of [...this.admitted.keys()]) {
        if (keep.has(id)) continue;
        this.admitted.delete(id);
        this.onEvict(id);
        changed = true;
      }
      for (const id of keep) {
        if (!this.admitted.has(id)) {
          this.admitted.set(id, 0);
          changed = true;
        }
      }
      if (changed) this.generation++;
    }
    for (const id of this.admitted.keys()) this.admitted.set(id, 0);
    this.candidates.clear();
  }
}
