// The cluster primary's sum over its workers' snapshots (workers/cluster.ts). Counters and histograms
// add up series by series; a gauge combines as its aggregator says (open connections add up, the
// certificate expiry is the earliest any worker serves). A metric's HELP, TYPE and buckets come from the
// first snapshot that has it; metrics keep the order they first appear in.
import type { MetricSnapshot, Series } from './snapshot.js';

interface Acc {
  first: Series;
  value: number;
  counts?: number[];
  n: number;
}

export function aggregate(snapshots: readonly (readonly MetricSnapshot[])[]): MetricSnapshot[] {
  const byName = new Map<string, { meta: MetricSnapshot; series: Map<string, Acc> }>();
  for (const snapshot of snapshots) {
    for (const m of snapshot) {
      let entry = byName.get(m.name);
      if (entry === undefined) {
        entry = { meta: m, series: new Map() };
        byName.set(m.name, entry);
      }
      const { meta } = entry;
      if (meta.type !== m.type) throw new Error(`${m.name} is a ${meta.type} in one worker and a ${m.type} in another`);
      if (meta.type === 'histogram' && JSON.stringify(meta.buckets) !== JSON.stringify(m.buckets)) throw new Error(`${m.name} has different buckets in two workers`);
      const how = meta.type === 'gauge' ? meta.aggregator : 'sum';
      if (how === 'omit') continue;
      for (const s of m.series) {
        const key = labelKey(s);
        const acc = entry.series.get(key);
        if (acc === undefined) {
          entry.series.set(key, { first: s, value: s.value, counts: s.counts && [...s.counts], n: 1 });
          continue;
        }
        acc.n++;
        if (how === 'sum' || how === 'average') acc.value += s.value;
        else if (how === 'min') acc.value = Math.min(acc.value, s.value);
        else if (how === 'max') acc.value = Math.max(acc.value, s.value);
        // 'first': the value stays the first worker's.
        if (acc.counts && s.counts) for (let i = 0; i < acc.counts.length; i++) acc.counts[i]! += s.counts[i] ?? 0;
      }
    }
  }
  const out: MetricSnapshot[] = [];
  for (const { meta, series } of byName.values()) {
    if (meta.type === 'gauge' && meta.aggregator === 'omit') continue;
    const combined: Series[] = [];
    for (const acc of series.values()) {
      const value = meta.type === 'gauge' && meta.aggregator === 'average' ? acc.value / acc.n : acc.value;
      combined.push(acc.counts ? { labels: acc.first.labels, value, counts: acc.counts } : { labels: acc.first.labels, value });
    }
    out.push({ ...meta, series: combined });
  }
  return out;
}

/** Label sets compare by content, whatever order the keys arrived in. */
function labelKey(s: Series): string {
  return JSON.stringify(Object.keys(s.labels).sort().map((k) => [k, s.labels[k]]));
}
