// Every metric the Grafana dashboard and the alert rules in deploy/observability/ read is really exported:
// a real sidecar (with a crl.pem, so the CRL gauge is there) and a real `meshward ca serve --admin` on
// SQLite run as child processes, both /metrics are scraped, and each name the PromQL expressions use
// (panels, variables, rules) must be a family one of them declares. `up` is the one exception: Prometheus
// adds it to every scrape. The agent exports no metrics (docs/metrics.md): its renewals are read from the
// sidecar's credential reloads and the CA's mtls Sign calls, which are checked here like any other name.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCrlSidecar, type CrlSidecar } from '../support/crl-sidecar.js';
import { exportedFamilies, familyOf, metricNames } from '../support/promql-names.js';
import { useCa } from '../support/ca-fixture.js';
import { observability } from './check-module.js';

/** Series Prometheus itself adds to every scraped target. */
const ADDED_BY_PROMETHEUS = new Set(['up']);

let crl: CrlSidecar;
after(async () => { // registered first, so the sidecar stops before the CA
  await crl?.close();
});
const ca = useCa({
  processes: { args: ['--admin', '127.0.0.1:0'] },
  serving: async () => {
    crl = await startCrlSidecar(({ pki }) => pki.crlFor(pki.root, []) + pki.crlFor(pki.intermediate, []));
  },
});

test('every metric name in the dashboard and the rules is exported by the sidecar or the CA', async () => {
  const sidecarText = await crl.sidecar.metrics();
  const caRes = await fetch(`http://127.0.0.1:${ca.serve.adminPort}/metrics`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(caRes.status, 200);
  const families = new Map([...exportedFamilies(sidecarText), ...exportedFamilies(await caRes.text())]);
  assert.ok(families.has('meshward_requests_total') && families.has('meshward_ca_sign_requests_total'), 'both scrapes declare their families');

  const expressions = observability.observabilityExpressions();
  const used = new Map<string, string[]>();
  for (const { where, expr } of expressions) {
    const names = metricNames(expr);
    assert.ok(names.length > 0, `${where} reads no metric: ${expr}`);
    for (const n of names) used.set(n, [...(used.get(n) ?? []), where]);
  }
  // Not vacuous: the expressions name the series the issue asks about.
  for (const n of ['meshward_requests_total', 'meshward_request_duration_seconds_bucket', 'meshward_handshake_failures_total', 'meshward_certificate_expiry_seconds',
    'meshward_crl_next_update_timestamp_seconds', 'meshward_ca_crl_next_update_seconds', 'meshward_ca_sign_requests_total', 'meshward_reloads_total', 'up']) {
    assert.ok(used.has(n), `the dashboard or the rules use ${n} (used: ${[...used.keys()].join(', ')})`);
  }
  const missing = [...used].filter(([n]) => !ADDED_BY_PROMETHEUS.has(n) && familyOf(n, families) === undefined).map(([n, where]) => `${n} (in ${where.join('; ')})`);
  assert.deepEqual(missing, [], `not exported by the sidecar or ca serve:\n  ${missing.join('\n  ')}`);
  // The CRL gauge has a sample, not only its declaration: the sidecar has a CRL in force.
  assert.match(sidecarText, /^meshward_crl_next_update_timestamp_seconds \d+/m);
  assert.match(sidecarText, /^meshward_certificate_expiry_seconds\{certificate="serving"\} \d+/m);
});

test('the name extraction sees through PromQL and would catch a name that is not exported', () => {
  const table: [string, string[]][] = [
    ['sum by (route, decision) (rate(meshward_requests_total{job=~"$job", decision="deny"}[$__rate_interval]))', ['meshward_requests_total']],
    ['histogram_quantile(0.99, sum by (le) (rate(meshward_request_duration_seconds_bucket[5m])))', ['meshward_request_duration_seconds_bucket']],
    ['up == 0 and on (job, instance) last_over_time(meshward_open_connections[1h])', ['up', 'meshward_open_connections']],
    ['a_total > 3 * rate(b_total[1h] offset 1h) unless ignoring(x) c', ['a_total', 'b_total', 'c']],
    ['meshward_ca_crl_next_update_seconds - time() < 2 * 86400', ['meshward_ca_crl_next_update_seconds']],
    ['label_values(meshward_open_connections{job=~"$job"}, instance)', ['meshward_open_connections']],
    ['sum without (instance) (x_count{reason="by (y)"}) / on() group_left(kind) y_sum', ['x_count', 'y_sum']],
  ];
  for (const [expr, names] of table) assert.deepEqual(metricNames(expr).sort(), [...names].sort(), expr);
  const families = new Map([['meshward_request_duration_seconds', 'histogram'], ['meshward_requests_total', 'counter']]);
  assert.equal(familyOf('meshward_request_duration_seconds_bucket', families), 'meshward_request_duration_seconds');
  assert.equal(familyOf('meshward_requests_total_count', families), undefined, 'a counter has no _count series');
  assert.equal(familyOf('meshward_made_up_total', families), undefined);
});
