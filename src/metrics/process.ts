// The process and Node.js metrics prom-client's collectDefaultMetrics() exported, under the same names,
// help, labels, buckets and cluster aggregation (dashboards built for any Node service read them), read
// once per scrape. On Linux the memory and descriptor figures come from /proc as prom-client read them;
// elsewhere the /proc-only gauges are left out.
import { readFileSync, readdirSync } from 'node:fs';
import { PerformanceObserver, constants as perfConstants, monitorEventLoopDelay } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import { Counter, Gauge, Histogram } from './metric.js';
import type { Aggregator } from './snapshot.js';
import type { Registry } from './registry.js';

const LINUX = process.platform === 'linux';

/** prom-client's nodejs_gc_duration_seconds buckets. */
const GC_BUCKETS = [0.001, 0.01, 0.1, 1, 2, 5];
const GC_KINDS: Record<number, string> = {
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** A `/proc/self/status` field in bytes (`VmRSS:   1234 kB`), or undefined. */
function statusBytes(status: string | undefined, field: string): number | undefined {
  const m = status === undefined ? null : new RegExp(`^${field}:\\s*(\\d+) kB$`, 'm').exec(status);
  return m === null ? undefined : Number(m[1]) * 1024;
}

/** Counts objects by constructor name (libuv handles and requests: their C++ class names). */
function byType(list: readonly unknown[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const o of list) {
    const t = (o as { constructor?: { name?: string } } | null)?.constructor?.name ?? 'unknown';
    out.set(t, (out.get(t) ?? 0) + 1);
  }
  return out;
}

/** Sets a labelled gauge to exactly these counts: types that went away leave the output. */
function setCounts(g: Gauge<'type'>, counts: Map<string, number>): void {
  g.clear();
  for (const [type, n] of counts) g.labels({ type }).set(n);
}

const sum = (counts: Map<string, number>) => [...counts.values()].reduce((a, b) => a + b, 0);

/** Node's internal handle and request lists (what prom-client read); absent in some runtimes. */
const internals = process as unknown as { _getActiveHandles?: () => unknown[]; _getActiveRequests?: () => unknown[] };

/**
 * Registers the process metrics in `registry`. The event-loop delay monitor and the GC observer stay on
 * for the life of the process, one of each per registry (a sidecar or a CA server has one registry).
 */
export function registerProcessMetrics(registry: Registry): void {
  const gauge = (name: string, help: string, aggregator: Aggregator = 'sum') => registry.register(new Gauge({ name, help, aggregator }));
  const typed = (name: string, help: string) => registry.register(new Gauge<'type'>({ name, help, labelNames: ['type'] }));

  const cpuUser = registry.register(new Counter({ name: 'process_cpu_user_seconds_total', help: 'Total user CPU time spent in seconds.' }));
  const cpuSystem = registry.register(new Counter({ name: 'process_cpu_system_seconds_total', help: 'Total system CPU time spent in seconds.' }));
  const cpu = registry.register(new Counter({ name: 'process_cpu_seconds_total', help: 'Total user and system CPU time spent in seconds.' }));
  gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', 'omit').set(Math.round(Date.now() / 1000 - process.uptime()));
  const rss = gauge('process_resident_memory_bytes', 'Resident memory size in bytes.');
  const linux = LINUX
    ? {
        virtual: gauge('process_virtual_memory_bytes', 'Virtual memory size in bytes.'),
        heap: gauge('process_heap_bytes', 'Process heap size in bytes.'),
        openFds: gauge('process_open_fds', 'Number of open file descriptors.'),
        maxFds: gauge('process_max_fds', 'Maximum number of open file descriptors.'),
      }
    : undefined;
  const lag = gauge('nodejs_eventloop_lag_seconds', 'Lag of event loop in seconds.', 'average');
  const delay = monitorEventLoopDelay({ resolution: 10 }); // prom-client's: a libuv timer in C++, no JavaScript runs
  delay.enable();
  const delayGauges = {
    min: gauge('nodejs_eventloop_lag_min_seconds', 'The minimum recorded event loop delay.', 'min'),
    max: gauge('nodejs_eventloop_lag_max_seconds', 'The maximum recorded event loop delay.', 'max'),
    mean: gauge('nodejs_eventloop_lag_mean_seconds', 'The mean of the recorded event loop delays.', 'average'),
    stddev: gauge('nodejs_eventloop_lag_stddev_seconds', 'The standard deviation of the recorded event loop delays.', 'average'),
    p50: gauge('nodejs_eventloop_lag_p50_seconds', 'The 50th percentile of the recorded event loop delays.', 'average'),
    p90: gauge('nodejs_eventloop_lag_p90_seconds', 'The 90th percentile of the recorded event loop delays.', 'average'),
    p99: gauge('nodejs_eventloop_lag_p99_seconds', 'The 99th percentile of the recorded event loop delays.', 'average'),
  };
  const resources = typed('nodejs_active_resources', 'Number of active resources that are currently keeping the event loop alive, grouped by async resource type.');
  const resourcesTotal = gauge('nodejs_active_resources_total', 'Total number of active resources.');
  const handles = typed('nodejs_active_handles', 'Number of active libuv handles grouped by handle type. Every handle type is C++ class name.');
  const handlesTotal = gauge('nodejs_active_handles_total', 'Total number of active handles.');
  const requests = typed('nodejs_active_requests', 'Number of active libuv requests grouped by request type. Every request type is C++ class name.');
  const requestsTotal = gauge('nodejs_active_requests_total', 'Total number of active requests.');
  const heapTotal = gauge('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.');
  const heapUsed = gauge('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.');
  const external = gauge('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.');
  const spaceLabel = ['space'] as const;
  const spaceTotal = registry.register(new Gauge({ name: 'nodejs_heap_space_size_total_bytes', help: 'Process heap space size total from Node.js in bytes.', labelNames: spaceLabel }));
  const spaceUsed = registry.register(new Gauge({ name: 'nodejs_heap_space_size_used_bytes', help: 'Process heap space size used from Node.js in bytes.', labelNames: spaceLabel }));
  const spaceAvailable = registry.register(new Gauge({ name: 'nodejs_heap_space_size_available_bytes', help: 'Process heap space size available from Node.js in bytes.', labelNames: spaceLabel }));
  const [major, minor, patch] = process.versions.node.split('.');
  registry
    .register(new Gauge({ name: 'nodejs_version_info', help: 'Node.js version info.', labelNames: ['version', 'major', 'minor', 'patch'], aggregator: 'first' }))
    .labels({ version: process.version, major: major!, minor: minor!, patch: patch! })
    .set(1);
  const gc = registry.register(new Histogram<'kind'>({ name: 'nodejs_gc_duration_seconds', help: 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.', labelNames: ['kind'], buckets: GC_BUCKETS }));
  const gcKinds = new Map<number, ReturnType<typeof gc.labels>>();
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      // `detail` is on every GC entry since Node 16; @types/node declares it only on some entry types.
      const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind ?? -1;
      let h = gcKinds.get(kind);
      if (h === undefined) {
        h = gc.labels({ kind: GC_KINDS[kind] ?? 'unknown' });
        gcKinds.set(kind, h);
      }
      h.observe(entry.duration / 1000);
    }
  });
  observer.observe({ entryTypes: ['gc'] });

  registry.onCollect(async () => {
    // Counters only go up: each takes what CPU time was added since the last scrape.
    const u = process.cpuUsage();
    cpuUser.inc(Math.max(0, u.user / 1e6 - cpuUser.value));
    cpuSystem.inc(Math.max(0, u.system / 1e6 - cpuSystem.value));
    cpu.inc(Math.max(0, (u.user + u.system) / 1e6 - cpu.value));

    const mem = process.memoryUsage();
    heapTotal.set(mem.heapTotal);
    heapUsed.set(mem.heapUsed);
    external.set(mem.external);
    if (linux !== undefined) {
      const status = readOrUndefined('/proc/self/status');
      rss.set(statusBytes(status, 'VmRSS') ?? mem.rss);
      const vm = statusBytes(status, 'VmSize');
      const data = statusBytes(status, 'VmData');
      if (vm !== undefined) linux.virtual.set(vm);
      if (data !== undefined) linux.heap.set(data);
      try {
        // readdir holds one descriptor on the directory while it reads it: not one of the process's own.
        linux.openFds.set(readdirSync('/proc/self/fd').length - 1);
      } catch {
        // /proc/self/fd unreadable: the last value stays.
      }
      const limit = /^Max open files\s+(\d+)/m.exec(readOrUndefined('/proc/self/limits') ?? '');
      if (limit !== null) linux.maxFds.set(Number(limit[1]));
    } else {
      rss.set(mem.rss);
    }
    for (const s of getHeapSpaceStatistics()) {
      const space = s.space_name.replace(/_space$/, '');
      spaceTotal.labels({ space }).set(s.space_size);
      spaceUsed.labels({ space }).set(s.space_used_size);
      spaceAvailable.labels({ space }).set(s.space_available_size);
    }

    const info = process.getActiveResourcesInfo();
    const resourceCounts = new Map<string, number>();
    for (const t of info) resourceCounts.set(t, (resourceCounts.get(t) ?? 0) + 1);
    setCounts(resources, resourceCounts);
    resourcesTotal.set(info.length);
    const handleCounts = byType(internals._getActiveHandles?.() ?? []);
    setCounts(handles, handleCounts);
    handlesTotal.set(sum(handleCounts));
    const requestCounts = byType(internals._getActiveRequests?.() ?? []);
    setCounts(requests, requestCounts);
    requestsTotal.set(sum(requestCounts));

    // Delay since the last scrape (the monitor starts a new interval after each read, as prom-client's did).
    const ns = (v: number) => (Number.isFinite(v) ? v / 1e9 : 0);
    delayGauges.min.set(ns(delay.min));
    delayGauges.max.set(ns(delay.max));
    delayGauges.mean.set(ns(delay.mean));
    delayGauges.stddev.set(ns(delay.stddev));
    delayGauges.p50.set(ns(delay.percentile(50)));
    delayGauges.p90.set(ns(delay.percentile(90)));
    delayGauges.p99.set(ns(delay.percentile(99)));
    delay.reset();
    // The loop's lag now: how long a setImmediate waits behind whatever is queued.
    const start = process.hrtime.bigint();
    await new Promise((resolve) => setImmediate(resolve));
    lag.set(Number(process.hrtime.bigint() - start) / 1e9);
  });
}
