// A set of metrics served together on one /metrics. One per sidecar or CA server (tests and embedders
// run several in a process), so nothing here is global.
import { CONTENT_TYPE, exposition } from './exposition.js';
import type { MetricSnapshot } from './snapshot.js';

export interface Collectable {
  readonly name: string;
  snapshot(): Promise<MetricSnapshot>;
}

export class Registry {
  readonly contentType = CONTENT_TYPE;
  private readonly metricsByName = new Map<string, Collectable>();
  private readonly hooks: (() => void | Promise<void>)[] = [];

  /** Adds metrics, in the order they are exposed; a name registered twice is a programming error. */
  register<M extends Collectable>(...metrics: M[]): M {
    for (const m of metrics) {
      if (this.metricsByName.has(m.name)) throw new Error(`metric ${m.name} is registered twice`);
      this.metricsByName.set(m.name, m);
    }
    return metrics[0]!;
  }

  get(name: string): Collectable | undefined {
    return this.metricsByName.get(name);
  }

  /** Runs before every read of the registry: one read that sets several metrics (the process metrics). */
  onCollect(hook: () => void | Promise<void>): void {
    this.hooks.push(hook);
  }

  /** Every metric's series (the metrics' own collect hooks run concurrently: a scrape waits for the slowest, not the sum). */
  async snapshot(): Promise<MetricSnapshot[]> {
    await Promise.all(this.hooks.map((h) => h()));
    return Promise.all([...this.metricsByName.values()].map((m) => m.snapshot()));
  }

  /** The Prometheus text of every metric. */
  async metrics(): Promise<string> {
    return exposition(await this.snapshot());
  }
}
