// The plain-data form of a registry's metrics: what a cluster worker sends the primary over IPC (it must
// survive JSON), what the primary sums (aggregate.ts), and what the text format is written from
// (exposition.ts). Kept free of classes so both ends of the IPC channel agree on it by construction.

export type MetricType = 'counter' | 'gauge' | 'histogram';

/**
 * How the cluster primary combines one metric's series across workers: counters and histograms always
 * add up; a gauge says which of these it needs (prom-client's names, so the process metrics combine as
 * they did before: `omit` leaves the metric out of the combined output, `first` keeps one worker's value).
 */
export type Aggregator = 'sum' | 'min' | 'max' | 'average' | 'first' | 'omit';

export type Labels = Record<string, string>;

/**
 * One series. Counters and gauges: `value`. Histograms: `value` is the sum of the observations and
 * `counts[i]` the number of observations <= the metric's `buckets[i]` (cumulative, as exposed), with one
 * more entry at the end for +Inf, which is the count.
 */
export interface Series {
  labels: Labels;
  value: number;
  counts?: number[];
}

export interface MetricSnapshot {
  name: string;
  help: string;
  type: MetricType;
  aggregator: Aggregator;
  /** Histograms only: the upper bounds, ascending, without +Inf. */
  buckets?: number[];
  series: Series[];
}
