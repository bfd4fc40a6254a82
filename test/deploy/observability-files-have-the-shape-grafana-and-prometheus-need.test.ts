// `make deploy-check` checks the shape of deploy/observability/: the shipped dashboard, PrometheusRule and
// PodMonitors pass, and each thing a broken edit loses (a panel without queries, a target without expr, a rule without
// severity, expr or summary, a wrong apiVersion, a file that does not parse) is refused with a line that
// names the file, the panel or rule, and the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { observability } from './check-module.js';

const dashboard = (): any => JSON.parse(readFileSync(observability.DASHBOARD, 'utf8'));
const rules = (): any => YAML.parse(readFileSync(observability.RULES, 'utf8'));

/** One test a row: `breakIt` spoils a fresh copy of the shipped file, and `check` must report `expected`. */
function refusalTests(what: string, fresh: () => any, check: (doc: any) => string[], table: [string, (doc: any) => void, RegExp][]): void {
  for (const [name, breakIt, expected] of table) {
    test(`${what} refused: ${name}`, () => {
      const doc = fresh();
      breakIt(doc);
      const problems = check(doc);
      assert.ok(problems.some((p) => expected.test(p)), problems.join('\n') || 'no problem reported');
    });
  }
}

test('the shipped dashboard and rules pass, and cover what the issue asks for', () => {
  assert.deepEqual(observability.checkObservabilityFiles(), []);
  const titles = dashboard().panels.map((p: any) => p.title).join('\n');
  for (const t of ['Request rate by route and outcome', 'Latency', 'Denials', 'Handshake failures', 'certificate time left', 'CRL', 'CA issuance', 'CA refusals and errors', 'Renewals']) {
    assert.match(titles, new RegExp(t, 'i'), `a panel about ${t}`);
  }
  const alerts = rules().spec.groups.flatMap((g: any) => g.rules);
  const severity = new Map(alerts.map((r: any) => [r.alert, r.labels.severity]));
  for (const a of ['MeshwardCertificatePastTwoThirdsOfLife', 'MeshwardCrlStale', 'MeshwardDenialSpike', 'MeshwardCaSignErrors', 'MeshwardCredentialReloadFailed', 'MeshwardRenewalsRefusedByCa', 'MeshwardSidecarNotReady', 'MeshwardSidecarDown']) {
    assert.ok(severity.has(a), `alert ${a}`);
  }
  assert.ok(new Set(severity.values()).has('critical') && new Set(severity.values()).has('warning'), 'two severities at least');
});

const dashboardRefusals: [string, (d: any) => void, RegExp][] = [
  ['no title', (d) => delete d.title, /dashboard: title is missing/],
  ['no panels', (d) => (d.panels = []), /panels is missing or empty/],
  ['a panel without targets', (d) => delete d.panels[1].targets, /panels\[1\] \(.+\): has no targets/],
  ['a target without expr', (d) => (d.panels[1].targets[0].expr = ' '), /panels\[1\] \(.+\): targets\[0\]: expr is missing/],
  ['a target without refId', (d) => delete d.panels[1].targets[0].refId, /targets\[0\]: refId is missing/],
  ['two panels with one id', (d) => (d.panels[2].id = d.panels[1].id), /id \d+ is used twice/],
  ['a panel without gridPos', (d) => delete d.panels[1].gridPos, /gridPos needs integer h, w, x and y/],
  ['not an object', (d) => Object.keys(d).forEach((k) => delete d[k]), /title is missing/],
];
refusalTests('dashboard', dashboard, (d) => observability.checkDashboard(d), dashboardRefusals);
test('dashboard refused: an array instead of an object', () => {
  assert.deepEqual(observability.checkDashboard([]), ['the dashboard is not a JSON object']);
});

const ruleRefusals: [string, (r: any) => void, RegExp][] = [
  ['a wrong apiVersion', (r) => (r.apiVersion = 'monitoring.coreos.com/v1beta1'), /apiVersion must be monitoring.coreos.com\/v1/],
  ['a wrong kind', (r) => (r.kind = 'ConfigMap'), /kind must be PrometheusRule/],
  ['no groups', (r) => delete r.spec.groups, /spec.groups is missing or empty/],
  ['a group without rules', (r) => (r.spec.groups[0].rules = []), /spec.groups\[0\]: rules is missing or empty/],
  ['a recording rule', (r) => { delete r.spec.groups[0].rules[0].alert; r.spec.groups[0].rules[0].record = 'x'; }, /rules\[0\]: alert is missing/],
  ['no severity', (r) => delete r.spec.groups[0].rules[0].labels.severity, /\(MeshwardCertificatePastTwoThirdsOfLife\): labels.severity must be one of/],
  ['an unknown severity', (r) => (r.spec.groups[0].rules[0].labels.severity = 'page'), /labels.severity must be one of info, warning, critical/],
  ['no expr', (r) => delete r.spec.groups[0].rules[0].expr, /: expr is missing/],
  ['no annotations', (r) => delete r.spec.groups[0].rules[0].annotations, /annotations.summary is missing/],
  ['a bad for', (r) => (r.spec.groups[0].rules[0].for = 'five minutes'), /for must be a duration/],
  ['an alert twice', (r) => r.spec.groups[0].rules.push(r.spec.groups[0].rules[0]), /is defined twice/],
];
refusalTests('PrometheusRule', rules, (r) => observability.checkPrometheusRule(r), ruleRefusals);

test('PodMonitors: the shipped ones pass; one without a selector or a named port is refused', () => {
  const monitors = YAML.parseAllDocuments(readFileSync(join(observability.OBSERVABILITY_DIR, 'pod-monitors.yaml'), 'utf8')).map((d) => d.toJS());
  assert.deepEqual(monitors.map((m) => m.spec.podMetricsEndpoints[0].port), ['mesh-admin', 'admin']);
  for (const m of monitors) assert.deepEqual(observability.checkPodMonitor(m), []);
  const broken = structuredClone(monitors[0]);
  delete broken.spec.selector;
  broken.spec.podMetricsEndpoints[0].port = 15000;
  assert.deepEqual(observability.checkPodMonitor(broken), [
    'PodMonitor meshward-sidecars: spec.selector.matchLabels is missing',
    'PodMonitor meshward-sidecars: podMetricsEndpoints[0] needs a named port and path /metrics',
  ]);
});

test('files that do not parse are one line each, naming the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshward-observability-'));
  try {
    const dash = join(dir, 'dashboard.json');
    const rulesFile = join(dir, 'rules.yaml');
    writeFileSync(dash, '{"title": "meshward", ');
    writeFileSync(rulesFile, 'spec: [unclosed\n');
    const monitors = join(dir, 'pod-monitors.yaml');
    writeFileSync(monitors, 'kind: PodMonitor\n  bad: indent\n');
    const problems = observability.checkObservabilityFiles({ dashboard: dash, rules: rulesFile, podMonitors: monitors });
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.ok(problems[2]!.startsWith(`${monitors}: `) && !problems[2]!.includes('\n'), problems[2]);
    assert.ok(problems[0]!.startsWith(`${dash}: `) && !problems[0]!.includes('\n'), problems[0]);
    assert.ok(problems[1]!.startsWith(`${rulesFile}: `) && !problems[1]!.includes('\n'), problems[1]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
