// The alert rules do what docs/kubernetes.md says, checked by Prometheus' own rule engine: `promtool test
// rules` replays made-up series through deploy/observability/prometheus-rules.yaml (its spec.groups, as a
// plain rule file) and compares the alerts that fire: a certificate that is not renewed past 2/3 of its
// life fires and a renewed one does not, a stale CRL, CA Sign errors and refused renewals, a denial spike
// (and steady denials that are not one), a sidecar that stops answering and one running without a
// certificate. The dashboard's queries go through `promtool check rules` too (Grafana's variables
// replaced), so each is valid PromQL. Never skipped: without promtool (Debian's prometheus package, which
// .ci/run installs) every test here fails saying what to install. Annotations are left out of the replayed copy (their templates are checked by check rules).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { observability } from './check-module.js';

const HAVE_PROMTOOL = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshward-promtool-'));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function promtool(args: string[]): { status: number | null; output: string } {
  assert.ok(HAVE_PROMTOOL, 'promtool is not installed: apt-get install -y prometheus (Debian), as .ci/run does');
  const r = spawnSync('promtool', args, { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const groups = (): any[] => YAML.parse(readFileSync(observability.RULES, 'utf8')).spec.groups;

test('the rules file and its annotation templates are valid for Prometheus', () => {
  writeFileSync(join(dir, 'rules.yml'), YAML.stringify({ groups: groups() }));
  const r = promtool(['check', 'rules', 'rules.yml']);
  assert.equal(r.status, 0, r.output);
  assert.match(r.output, /SUCCESS: \d+ rules found/);
});

test('every dashboard query is valid PromQL', () => {
  const exprs = observability.observabilityExpressions().filter((e) => e.where.startsWith('dashboard panel'));
  assert.ok(exprs.length >= 15, `${exprs.length} queries`);
  const rules = exprs.map((e, i) => ({
    record: `dashboard:query_${i}`,
    expr: e.expr.replaceAll('$__rate_interval', '5m').replace(/\$(job|instance|ca_job)\b/g, '.*'),
  }));
  writeFileSync(join(dir, 'dashboard.yml'), YAML.stringify({ groups: [{ name: 'dashboard', rules }] }));
  const r = promtool(['check', 'rules', 'dashboard.yml']);
  assert.equal(r.status, 0, r.output);
});

test('the alerts fire on the series that should fire them, and only those', () => {
  const plain = groups().map((g) => ({ ...g, rules: g.rules.map(({ annotations: _, ...r }: any) => r) }));
  writeFileSync(join(dir, 'rules.yml'), YAML.stringify({ groups: plain }));
  const s = 'job="sidecar", instance="a"';
  const alert = (alertname: string, at: string, labels: Record<string, string>[]) => ({ eval_time: at, alertname, exp_alerts: labels.map((exp_labels) => ({ exp_labels })) });
  const serving = { certificate: 'serving', job: 'sidecar', instance: 'a' };
  const tests = [
    {
      // A 1 h certificate counting down, never renewed: past 2/3 (20 min left) at 40 min, firing 5 min later.
      interval: '1m',
      input_series: [{ series: `meshward_certificate_expiry_seconds{certificate="serving", ${s}}`, values: '3600-60x60' }],
      alert_rule_test: [
        alert('MeshwardCertificatePastTwoThirdsOfLife', '30m', []),
        alert('MeshwardCertificatePastTwoThirdsOfLife', '50m', [{ ...serving, severity: 'warning' }]),
        alert('MeshwardCertificateExpiresSoon', '30m', []),
        alert('MeshwardCertificateExpiresSoon', '55m', [{ ...serving, severity: 'critical' }]),
      ],
    },
    {
      // Renewed at 2/3 every time (the agent's schedule): a sawtooth that never fires.
      interval: '1m',
      input_series: [{ series: `meshward_certificate_expiry_seconds{certificate="serving", ${s}}`, values: '3600-60x39 3600-60x39 3600-60x39' }],
      alert_rule_test: ['45m', '79m', '110m'].map((at) => alert('MeshwardCertificatePastTwoThirdsOfLife', at, [])),
    },
    {
      // A CRL whose nextUpdate is 10 min after the epoch promtool starts at; another far in the future.
      interval: '1m',
      input_series: [
        { series: `meshward_crl_next_update_timestamp_seconds{${s}}`, values: '600x30' },
        { series: 'meshward_crl_next_update_timestamp_seconds{job="sidecar", instance="fresh"}', values: '1000000000x30' },
      ],
      alert_rule_test: [
        alert('MeshwardCrlStale', '8m', []),
        alert('MeshwardCrlStale', '20m', [{ job: 'sidecar', instance: 'a', severity: 'critical' }]),
        alert('MeshwardCrlExpiresSoon', '20m', [{ job: 'sidecar', instance: 'a', severity: 'warning' }]),
      ],
    },
    {
      // The CA fails renewals (store down): Sign errors and refused renewals; refused tokens alone are neither.
      interval: '1m',
      input_series: [
        { series: 'meshward_ca_sign_requests_total{method="mtls", result="refused", code="UNAVAILABLE", job="ca", instance="ca-0"}', values: '0x5 1+1x15' },
        { series: 'meshward_ca_sign_requests_total{method="token", result="refused", code="UNAUTHENTICATED", job="ca", instance="ca-0"}', values: '0+1x20' },
      ],
      alert_rule_test: [
        alert('MeshwardCaSignErrors', '4m', []),
        alert('MeshwardCaSignErrors', '12m', [{ job: 'ca', instance: 'ca-0', code: 'UNAVAILABLE', severity: 'critical' }]),
        alert('MeshwardRenewalsRefusedByCa', '12m', [{ job: 'ca', code: 'UNAVAILABLE', severity: 'warning' }]),
      ],
    },
    {
      // Denials: instance a goes from 0.1/s to 5/s after 90 min (a spike); b is at 5/s all along (no spike).
      interval: '1m',
      input_series: [
        { series: `meshward_requests_total{decision="deny", route="no-route", identity="other", ${s}}`, values: '0+6x90 546+300x40' },
        { series: 'meshward_requests_total{decision="deny", route="no-route", identity="other", job="sidecar", instance="b"}', values: '0+300x130' },
      ],
      alert_rule_test: [
        alert('MeshwardDenialSpike', '85m', []),
        alert('MeshwardDenialSpike', '115m', [{ job: 'sidecar', instance: 'a', severity: 'warning' }]),
      ],
    },
    {
      // a: a sidecar whose scrapes fail after 10 min; b: a sidecar up without a certificate; c: up, with one;
      // d: some other target that is down (not a meshward sidecar: no alert).
      interval: '1m',
      input_series: [
        { series: `up{${s}}`, values: '1x10 0x20' },
        { series: `meshward_open_connections{${s}}`, values: '0x10' },
        { series: 'up{job="sidecar", instance="b"}', values: '1x30' },
        { series: 'meshward_open_connections{job="sidecar", instance="b"}', values: '0x30' },
        { series: 'up{job="sidecar", instance="c"}', values: '1x30' },
        { series: 'meshward_open_connections{job="sidecar", instance="c"}', values: '0x30' },
        { series: 'meshward_certificate_expiry_seconds{certificate="serving", job="sidecar", instance="c"}', values: '3000x30' },
        { series: 'up{job="other", instance="d"}', values: '0x30' },
      ],
      alert_rule_test: [
        alert('MeshwardSidecarDown', '25m', [{ job: 'sidecar', instance: 'a', severity: 'critical' }]),
        alert('MeshwardSidecarNotReady', '25m', [{ job: 'sidecar', instance: 'b', severity: 'critical' }]),
      ],
    },
  ];
  writeFileSync(join(dir, 'tests.yml'), YAML.stringify({ rule_files: ['rules.yml'], evaluation_interval: '1m', tests }));
  const r = promtool(['test', 'rules', 'tests.yml']);
  assert.equal(r.status, 0, r.output);
  assert.match(r.output, /SUCCESS/);
});
