// src/metrics/: the Prometheus text a scrape gets (format 0.0.4: escaping, HELP/TYPE, histogram buckets),
// the JSON a cluster worker sends its primary and the primary's sum over workers, and the refusals that
// keep a metric from producing a series Prometheus would reject. Every line of a real sidecar's and CA's
// output is checked against the format's grammar, and the same text goes through promtool's parser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Counter, Gauge, Histogram } from '../../src/metrics/metric.js';
import { Registry } from '../../src/metrics/registry.js';
import { aggregate } from '../../src/metrics/aggregate.js';
import { exposition } from '../../src/metrics/exposition.js';
import type { MetricSnapshot } from '../../src/metrics/snapshot.js';
import { SidecarMetrics } from '../../src/sidecar/observe/metrics.js';
import { CaMetrics } from '../../src/ca/server/metrics.js';

/** One parsed sample line: name, labels (unescaped), value text. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: string;
}

const METRIC_NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const VALUE = '(?:[+-]?(?:\\d+\\.?\\d*(?:[eE][+-]?\\d+)?|\\.\\d+(?:[eE][+-]?\\d+)?)|NaN|[+-]Inf)';
const SAMPLE_LINE = new RegExp(`^(${METRIC_NAME})(?:\\{(${LABEL}(?:,${LABEL})*)?\\})? (${VALUE})$`);

function unescapeLabel(v: string): string {
  return v.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

/**
 * Parses the text strictly: every line is a HELP, a TYPE or a sample of the family whose TYPE came last
 * (histogram samples with _bucket/_sum/_count); each family's HELP and TYPE come once and before its
 * samples; the text ends with a line feed. Throws naming the first line that breaks a rule.
 */
function parseStrict(text: string): { types: Map<string, string>; help: Map<string, string>; samples: Sample[] } {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a line feed');
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  let family: string | undefined;
  for (const [i, line] of text.slice(0, -1).split('\n').entries()) {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`;
    const h = new RegExp(`^# HELP (${METRIC_NAME}) ((?:[^\\\\\\n]|\\\\[\\\\n])*)$`).exec(line);
    if (h) {
      assert.ok(!help.has(h[1]!) && !types.has(h[1]!), `${where}: HELP once, before TYPE`);
      help.set(h[1]!, h[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c)));
      continue;
    }
    const t = new RegExp(`^# TYPE (${METRIC_NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line);
    if (t) {
      assert.ok(!types.has(t[1]!), `${where}: TYPE once per family`);
      types.set(t[1]!, t[2]!);
      family = t[1]!;
      continue;
    }
    const s = SAMPLE_LINE.exec(line);
    assert.ok(s, `${where}: not a HELP, TYPE or sample line`);
    const name = s[1]!;
    const type = family === undefined ? undefined : types.get(family);
    const ok = name === family || (type === 'histogram' && [`${family}_bucket`, `${family}_sum`, `${family}_count`].includes(name));
    assert.ok(ok, `${where}: a sample of another family than ${family}`);
    const labels: Record<string, string> = {};
    for (const m of (s[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      assert.ok(!(m[1]! in labels), `${where}: label ${m[1]} twice`);
      labels[m[1]!] = unescapeLabel(m[2]!);
    }
    samples.push({ name, labels, value: s[3]! });
  }
  return { types, help, samples };
}

/** promtool's own parser (Debian's prometheus package, which .ci/run installs): `check metrics` reads stdin. */
function promtoolCheck(text: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 60_000 });
  assert.ok(r.error === undefined, 'promtool is not installed: apt-get install -y prometheus (Debian), as .ci/run does');
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

test('label values escape backslash, double quote and line feed, and nothing else; HELP escapes backslash and line feed', async () => {
  const r = new Registry();
  const c = r.register(new Counter<'identity'>({ name: 'x_total', help: 'a \\ backslash\nand a "quote"', labelNames: ['identity'] }));
  const hostile = 'CN=a\\b,OU="q"\nx\ty é';
  c.labels({ identity: hostile }).inc(2);
  const text = await r.metrics();
  assert.ok(text.includes('x_total{identity="CN=a\\\\b,OU=\\"q\\"\\nx\ty é"} 2\n'), text);
  assert.ok(text.includes('# HELP x_total a \\\\ backslash\\nand a "quote"\n'), text);
  const parsed = parseStrict(text);
  assert.equal(parsed.samples[0]!.labels.identity, hostile, 'unescaping gives the value back');
  assert.equal(parsed.help.get('x_total'), 'a \\ backslash\nand a "quote"');
});

test('a histogram exposes cumulative buckets with le, +Inf equal to _count, and _sum; a value on a bound falls in that bucket', async () => {
  const r = new Registry();
  const h = r.register(new Histogram<'decision'>({ name: 'd_seconds', help: 'd', labelNames: ['decision'], buckets: [0.1, 1, 2.5] }));
  const allow = h.labels({ decision: 'allow' });
  for (const v of [0.05, 0.1, 0.7, 3, 100]) allow.observe(v);
  const lines = (await r.metrics()).split('\n').filter((l) => l.startsWith('d_seconds'));
  assert.deepEqual(lines, [
    'd_seconds_bucket{decision="allow",le="0.1"} 2',
    'd_seconds_bucket{decision="allow",le="1"} 3',
    'd_seconds_bucket{decision="allow",le="2.5"} 3',
    'd_seconds_bucket{decision="allow",le="+Inf"} 5',
    'd_seconds_sum{decision="allow"} 103.85',
    'd_seconds_count{decision="allow"} 5',
  ]);
});

test('labelled metrics have no series until a child is used; unlabelled ones start at 0; a cleared gauge is absent', async () => {
  const r = new Registry();
  r.register(new Counter<'reason'>({ name: 'refused_total', help: 'r', labelNames: ['reason'] }));
  const up = r.register(new Counter({ name: 'up_total', help: 'u' }));
  const g = r.register(new Gauge({ name: 'next_update_seconds', help: 'n', aggregator: 'min' }));
  g.clear();
  let text = await r.metrics();
  assert.doesNotMatch(text, /^refused_total/m);
  assert.match(text, /^# TYPE refused_total counter$/m);
  assert.match(text, /^up_total 0$/m);
  assert.doesNotMatch(text, /^next_update_seconds /m, 'cleared: no sample at all');
  g.set(1700000000);
  up.inc();
  text = await r.metrics();
  assert.match(text, /^next_update_seconds 1700000000$/m);
  assert.match(text, /^up_total 1$/m);
});

test('remove() takes one series out; labels() brings it back from 0', async () => {
  const r = new Registry();
  const c = r.register(new Counter<'identity'>({ name: 'req_total', help: 'r', labelNames: ['identity'] }));
  c.labels({ identity: 'a' }).inc(3);
  c.labels({ identity: 'b' }).inc();
  c.remove({ identity: 'a' });
  assert.deepEqual((await c.snapshot()).series, [{ labels: { identity: 'b' }, value: 1 }]);
  c.labels({ identity: 'a' }).inc();
  assert.deepEqual((await c.snapshot()).series.find((s) => s.labels.identity === 'a')?.value, 1);
});

test('refused: negative counter increments, missing, unknown or non-string labels, bad names, unordered buckets, a name registered twice', () => {
  const c = new Counter<'kind'>({ name: 'c_total', help: 'c', labelNames: ['kind'] });
  assert.throws(() => c.labels({ kind: 'a' }).inc(-1), /cannot be increased by -1/);
  assert.throws(() => c.labels({ kind: 'a' }).inc(Number.NaN), /cannot be increased/);
  assert.throws(() => c.labels({} as { kind: string }), /label kind must be a string/);
  assert.throws(() => c.labels({ kind: 'a', extra: 'b' } as { kind: string }), /unknown label extra/);
  assert.throws(() => c.labels({ kind: 7 as unknown as string }), /must be a string, got number/);
  assert.throws(() => c.inc(), /has labels/);
  assert.throws(() => new Counter({ name: '1bad', help: 'x' }), /invalid metric name/);
  assert.throws(() => new Counter({ name: 'ok_total', help: 'x', labelNames: ['__reserved'] }), /invalid label name/);
  assert.throws(() => new Histogram({ name: 'h', help: 'x', labelNames: ['le'], buckets: [1] }), /invalid label name/);
  assert.throws(() => new Histogram({ name: 'h', help: 'x', buckets: [1, 1] }), /ascending/);
  assert.throws(() => new Histogram({ name: 'h', help: 'x', buckets: [1, Infinity] }), /finite/);
  const r = new Registry();
  r.register(new Counter({ name: 'twice_total', help: 'x' }));
  assert.throws(() => r.register(new Counter({ name: 'twice_total', help: 'x' })), /registered twice/);
});

/** A worker's registry: a labelled counter, a histogram and one gauge of each aggregator. */
function workerRegistry(n: number): Registry {
  const r = new Registry();
  const c = r.register(new Counter<'decision' | 'route'>({ name: 'req_total', help: 'r', labelNames: ['decision', 'route'] }));
  c.labels({ decision: 'allow', route: 'routes[0]' }).inc(n);
  if (n === 2) c.labels({ decision: 'deny', route: 'no-route' }).inc();
  r.register(new Histogram<'decision'>({ name: 'd_seconds', help: 'd', labelNames: ['decision'], buckets: [0.1, 1] })).labels({ decision: 'allow' }).observe(n === 1 ? 0.05 : 0.5);
  r.register(new Gauge({ name: 'open', help: 'o' })).set(10 * n);
  r.register(new Gauge({ name: 'not_after', help: 'n', aggregator: 'min' })).set(1000 * n);
  r.register(new Gauge({ name: 'lag_max', help: 'l', aggregator: 'max' })).set(n);
  r.register(new Gauge({ name: 'lag', help: 'l', aggregator: 'average' })).set(n);
  r.register(new Gauge<'version'>({ name: 'version_info', help: 'v', labelNames: ['version'], aggregator: 'first' })).labels({ version: 'v20' }).set(n);
  r.register(new Gauge({ name: 'start_time', help: 's', aggregator: 'omit' })).set(n);
  return r;
}

test('the primary sums workers series by series (through JSON, as over IPC); gauges combine by their aggregator; omit leaves the family out', async () => {
  const viaIpc = async (r: Registry) => JSON.parse(JSON.stringify(await r.snapshot())) as MetricSnapshot[];
  const combined = exposition(aggregate([await viaIpc(workerRegistry(1)), await viaIpc(workerRegistry(2))]));
  const { samples, types } = parseStrict(combined);
  const value = (name: string, labels: Record<string, string> = {}) =>
    samples.find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
  assert.equal(value('req_total', { decision: 'allow', route: 'routes[0]' }), '3');
  assert.equal(value('req_total', { decision: 'deny', route: 'no-route' }), '1', 'a series only one worker has');
  assert.equal(value('d_seconds_bucket', { decision: 'allow', le: '0.1' }), '1');
  assert.equal(value('d_seconds_bucket', { decision: 'allow', le: '1' }), '2');
  assert.equal(value('d_seconds_bucket', { decision: 'allow', le: '+Inf' }), '2');
  assert.equal(value('d_seconds_count', { decision: 'allow' }), '2');
  assert.equal(value('d_seconds_sum', { decision: 'allow' }), '0.55');
  assert.equal(value('open'), '30');
  assert.equal(value('not_after'), '1000');
  assert.equal(value('lag_max'), '2');
  assert.equal(value('lag'), '1.5');
  assert.equal(value('version_info', { version: 'v20' }), '1');
  assert.equal(types.has('start_time'), false);
  assert.equal(combined.includes('start_time'), false);
});

test('label sets match across workers whatever order their keys arrive in; a type or bucket mismatch is refused', () => {
  const a: MetricSnapshot = { name: 'x_total', help: 'x', type: 'counter', aggregator: 'sum', series: [{ labels: { a: '1', b: '2' }, value: 1 }] };
  const b: MetricSnapshot = { ...a, series: [{ labels: { b: '2', a: '1' }, value: 2 }] };
  assert.deepEqual(aggregate([[a], [b]])[0]!.series, [{ labels: { a: '1', b: '2' }, value: 3 }]);
  assert.throws(() => aggregate([[a], [{ ...a, type: 'gauge' }]]), /counter in one worker and a gauge/);
  const h: MetricSnapshot = { name: 'h', help: 'h', type: 'histogram', aggregator: 'sum', buckets: [1], series: [] };
  assert.throws(() => aggregate([[h], [{ ...h, buckets: [2] }]]), /different buckets/);
});

/** A sidecar's and a CA's whole output, with hostile label values, as a scrape returns it. */
async function realOutputs(): Promise<string[]> {
  const s = new SidecarMetrics({ identityLabels: 5 });
  s.requestCounter('allow', 'routes[0]', 'spiffe://example.org/ns/shop/sa/frontend').inc();
  s.requestCounter('deny', 'no-route', 'CN=legacy "batch"\\x\ny,OU=payments').inc();
  s.requestDuration.labels({ decision: 'allow' }).observe(0.002);
  s.outboundDuration.labels({ upstream: 'orders.shop:8443' }).observe(20);
  s.certificateNotAfter.set(Math.floor(Date.now() / 1000) + 3600);
  s.crlNextUpdate.set(Math.floor(Date.now() / 1000) + 600);
  const ca = new CaMetrics();
  ca.observeSign('token', 0, 0.01, true);
  ca.storeError('readiness');
  return [await s.registry.metrics(), await ca.registry.metrics()];
}

test('every line of a sidecar and a CA scrape follows the text format grammar', async () => {
  for (const text of await realOutputs()) {
    const { types, samples } = parseStrict(text);
    assert.equal(types.get('meshward_request_duration_seconds') ?? types.get('meshward_ca_sign_duration_seconds'), 'histogram');
    for (const name of ['process_cpu_seconds_total', 'process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'process_open_fds', 'nodejs_heap_size_used_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_eventloop_lag_seconds']) {
      const s = samples.find((x) => x.name === name);
      assert.ok(s !== undefined, `${name} has a sample`);
      assert.ok(Number(s.value) > 0 || name === 'nodejs_eventloop_lag_seconds', `${name} = ${s.value}`);
    }
    assert.equal(types.get('nodejs_gc_duration_seconds'), 'histogram');
  }
  const [sidecar] = await realOutputs();
  const denied = parseStrict(sidecar!).samples.find((s) => s.labels.route === 'no-route');
  assert.equal(denied?.labels.identity, 'CN=legacy "batch"\\x\ny,OU=payments');
});

test("Prometheus' own parser (promtool check metrics) reads a sidecar and a CA scrape without an error", async () => {
  for (const text of await realOutputs()) {
    const r = promtoolCheck(text);
    // Exit 0: parsed, nothing to say; exit 3: parsed, lint advice only (prom-client's process metrics
    // never followed every naming rule). A parse error is exit 1 with "error while linting".
    assert.ok(r.status === 0 || r.status === 3, `promtool exit ${r.status}: ${r.output}`);
    assert.doesNotMatch(r.output, /error while linting|parse/i, r.output);
  }
  const broken = promtoolCheck('# TYPE x counter\nx{a="unterminated} 1\n');
  assert.equal(broken.status, 1, `promtool does refuse a broken exposition: ${broken.output}`);
});

test('a sidecar without credentials yet: not_after reads 0, and neither the expiry nor the CRL nextUpdate has a sample', async () => {
  const s = new SidecarMetrics({ processMetrics: false });
  const text = await s.registry.metrics();
  assert.match(text, /^meshward_certificate_not_after_seconds 0$/m);
  assert.match(text, /^# TYPE meshward_crl_next_update_timestamp_seconds gauge$/m);
  assert.doesNotMatch(text, /^meshward_crl_next_update_timestamp_seconds /m, 'a 0 would read as a CRL stale since 1970');
  assert.doesNotMatch(text, /^meshward_certificate_expiry_seconds/m);
  assert.doesNotMatch(text, /^process_/m, 'processMetrics: false');
  s.certificateNotAfter.set(Math.floor(Date.now() / 1000) + 100);
  s.crlNextUpdate.set(1_900_000_000);
  const loaded = await s.registry.metrics();
  const expiry = Number(/^meshward_certificate_expiry_seconds\{certificate="serving"\} (\S+)$/m.exec(loaded)?.[1]);
  assert.ok(expiry > 0 && expiry <= 100, `expiry ${expiry}`);
  assert.match(loaded, /^meshward_crl_next_update_timestamp_seconds 1900000000$/m);
  s.crlNextUpdate.clear();
  assert.doesNotMatch(await s.registry.metrics(), /^meshward_crl_next_update_timestamp_seconds /m, 'a CRL that went away takes its sample with it');
});
