// Counter, gauge and histogram. The design point is the request path: a caller resolves a labelled child
// once (`labels()`, which builds a key and looks it up) and keeps it, so counting a request is a plain
// number add on an object it already holds. prom-client hashed the label object on every inc().
import type { Aggregator, Labels, MetricSnapshot, MetricType, Series } from './snapshot.js';

export interface MetricOptions<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
  /**
   * Runs before every read of the metric (a scrape, or the JSON a worker sends): a gauge computed from
   * something else, or counts kept elsewhere to be added now. May be async (the CA reads its store).
   */
  collect?: () => void | Promise<void>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export abstract class Metric<L extends string, C> {
  abstract readonly type: MetricType;
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  readonly aggregator: Aggregator;
  private readonly collectHook?: () => void | Promise<void>;
  /** Children by the JSON of their label values (in labelNames order): unambiguous whatever the values hold. */
  protected readonly children = new Map<string, { labels: Labels; child: C }>();

  constructor(opts: MetricOptions<L>, aggregator: Aggregator) {
    if (!NAME.test(opts.name)) throw new Error(`invalid metric name ${JSON.stringify(opts.name)}`);
    for (const l of opts.labelNames ?? []) {
      if (!LABEL_NAME.test(l) || l.startsWith('__') || l === 'le') throw new Error(`${opts.name}: invalid label name ${JSON.stringify(l)}`);
    }
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = opts.labelNames ?? [];
    this.aggregator = aggregator;
    this.collectHook = opts.collect;
  }

  protected abstract newChild(): C;

  /** The child for these label values, created on first use (a labelled metric has no series until then). */
  labels(values: Record<L, string>): C {
    const key = this.key(values);
    let entry = this.children.get(key);
    if (entry === undefined) {
      const labels: Labels = {};
      for (const n of this.labelNames) labels[n] = values[n];
      entry = { labels, child: this.newChild() };
      this.children.set(key, entry);
    }
    return entry.child;
  }

  /** The series of these label values leaves the output (a later labels() starts it again at 0). */
  remove(values: Record<L, string>): void {
    this.children.delete(this.key(values));
  }

  private key(values: Record<L, string>): string {
    const parts: string[] = [];
    for (const n of this.labelNames) {
      const v = values[n];
      if (typeof v !== 'string') throw new Error(`${this.name}: label ${n} must be a string, got ${typeof v}`);
      parts.push(v);
    }
    for (const k of Object.keys(values)) {
      if (!this.labelNames.includes(k as L)) throw new Error(`${this.name}: unknown label ${k}`);
    }
    return JSON.stringify(parts);
  }

  /** The metric's current series, after its collect hook ran. */
  async snapshot(): Promise<MetricSnapshot> {
    if (this.collectHook !== undefined) await this.collectHook();
    const series: Series[] = [];
    for (const { labels, child } of this.children.values()) series.push(this.seriesOf(labels, child));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, series };
  }

  protected abstract seriesOf(labels: Labels, child: C): Series;
}

export class CounterChild {
  value = 0;
  inc(n = 1): void {
    // A counter only goes up: Prometheus reads a decrease as a restart of the process.
    if (!(n >= 0)) throw new Error(`a counter cannot be increased by ${n}`);
    this.value += n;
  }
}

export class GaugeChild {
  value = 0;
  set(v: number): void {
    this.value = v;
  }
  inc(n = 1): void {
    this.value += n;
  }
  dec(n = 1): void {
    this.value -= n;
  }
}

export class HistogramChild {
  sum = 0;
  /** Observations per bucket, not cumulative (one add per observation); the last slot is above every bound. */
  readonly counts: number[];
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
  }
  /** Starts a clock; the returned function observes the seconds elapsed (and returns them). */
  startTimer(): () => number {
    const start = performance.now();
    return () => {
      const seconds = (performance.now() - start) / 1000;
      this.observe(seconds);
      return seconds;
    };
  }
}

/** A metric without labels is its own single child, present (at 0) from the start, as Prometheus clients do. */
function unlabelledChild<L extends string, C>(m: Metric<L, C>): C | undefined {
  return m.labelNames.length === 0 ? m.labels({} as Record<L, string>) : undefined;
}

export class Counter<L extends string = never> extends Metric<L, CounterChild> {
  readonly type = 'counter';
  private readonly self?: CounterChild;
  constructor(opts: MetricOptions<L>) {
    super(opts, 'sum');
    this.self = unlabelledChild(this);
  }
  protected newChild(): CounterChild {
    return new CounterChild();
  }
  protected seriesOf(labels: Labels, c: CounterChild): Series {
    return { labels, value: c.value };
  }
  /** Unlabelled counters only; labelled ones: `labels(...).inc()`. */
  inc(n = 1): void {
    this.unlabelled().inc(n);
  }
  get value(): number {
    return this.unlabelled().value;
  }
  private unlabelled(): CounterChild {
    if (this.self === undefined) throw new Error(`${this.name} has labels: use labels(...)`);
    return this.self;
  }
}

export class Gauge<L extends string = never> extends Metric<L, GaugeChild> {
  readonly type = 'gauge';
  private self?: GaugeChild;
  constructor(opts: MetricOptions<L> & { aggregator?: Aggregator }) {
    super(opts, opts.aggregator ?? 'sum');
    this.self = unlabelledChild(this);
  }
  protected newChild(): GaugeChild {
    return new GaugeChild();
  }
  protected seriesOf(labels: Labels, c: GaugeChild): Series {
    return { labels, value: c.value };
  }
  set(v: number): void {
    this.unlabelled().set(v);
  }
  inc(n = 1): void {
    this.unlabelled().inc(n);
  }
  dec(n = 1): void {
    this.unlabelled().dec(n);
  }
  /** The value, or undefined while the unlabelled gauge is cleared. */
  get(): number | undefined {
    if (this.labelNames.length > 0) throw new Error(`${this.name} has labels`);
    return this.self?.value;
  }
  /**
   * Every series leaves the output, the unlabelled one too: a gauge that has nothing to say (no CRL in
   * force) is absent rather than 0, which an alert would read as a date in 1970. set() brings it back.
   */
  clear(): void {
    this.children.clear();
    this.self = undefined;
  }
  private unlabelled(): GaugeChild {
    if (this.labelNames.length > 0) throw new Error(`${this.name} has labels: use labels(...)`);
    return (this.self ??= this.labels({} as Record<L, string>));
  }
}

export class Histogram<L extends string = never> extends Metric<L, HistogramChild> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];
  constructor(opts: MetricOptions<L> & { buckets: readonly number[] }) {
    super(opts, 'sum');
    for (let i = 0; i < opts.buckets.length; i++) {
      const b = opts.buckets[i]!;
      if (!Number.isFinite(b) || (i > 0 && b <= opts.buckets[i - 1]!)) throw new Error(`${opts.name}: buckets must be finite and ascending`);
    }
    this.buckets = [...opts.buckets];
    unlabelledChild(this);
  }
  protected newChild(): HistogramChild {
    return new HistogramChild(this.buckets);
  }
  protected seriesOf(labels: Labels, c: HistogramChild): Series {
    const counts: number[] = [];
    let n = 0;
    for (const k of c.counts) counts.push((n += k));
    return { labels, value: c.sum, counts };
  }
  override async snapshot(): Promise<MetricSnapshot> {
    return { ...(await super.snapshot()), buckets: [...this.buckets] };
  }
}
