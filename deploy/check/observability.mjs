// The shape of deploy/observability/: the Grafana dashboard JSON and the PrometheusRule. There are no pinned
// schemas for either (a Grafana dashboard is not a Kubernetes object; PrometheusRule is a CRD), so this
// checks what Grafana and the Prometheus Operator need and what a broken edit loses: required fields,
// every panel with targets that carry an expr, every rule with alert, expr, labels.severity and annotations,
// every PodMonitor with a selector and a named port to scrape.
// Which metric names the expressions use is proven elsewhere, against real processes
// (test/deploy/observability-names-exported-metrics.test.ts).
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

export const OBSERVABILITY_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'observability');
export const DASHBOARD = resolve(OBSERVABILITY_DIR, 'meshward-dashboard.json');
export const RULES = resolve(OBSERVABILITY_DIR, 'prometheus-rules.yaml');
export const POD_MONITORS = resolve(OBSERVABILITY_DIR, 'pod-monitors.yaml');
export const SEVERITIES = ['info', 'warning', 'critical'];

const isText = (v) => typeof v === 'string' && v.trim() !== '';

/** Problems with a parsed Grafana dashboard, one sentence each. */
export function checkDashboard(dash) {
  if (dash === null || typeof dash !== 'object' || Array.isArray(dash)) return ['the dashboard is not a JSON object'];
  const problems = [];
  for (const field of ['title', 'uid']) if (!isText(dash[field])) problems.push(`dashboard: ${field} is missing`);
  if (!Number.isInteger(dash.schemaVersion)) problems.push('dashboard: schemaVersion is missing');
  if (!Array.isArray(dash.panels) || dash.panels.length === 0) return [...problems, 'dashboard: panels is missing or empty'];
  const ids = new Set();
  dash.panels.forEach((panel, i) => {
    const where = `dashboard: panels[${i}]${isText(panel?.title) ? ` (${panel.title})` : ''}`;
    if (panel === null || typeof panel !== 'object') return problems.push(`${where}: not an object`);
    if (!Number.isInteger(panel.id)) problems.push(`${where}: id is missing`);
    else if (ids.has(panel.id)) problems.push(`${where}: id ${panel.id} is used twice`);
    ids.add(panel.id);
    if (!isText(panel.title)) problems.push(`${where}: title is missing`);
    if (!isText(panel.type)) problems.push(`${where}: type is missing`);
    const g = panel.gridPos;
    if (!g || !['h', 'w', 'x', 'y'].every((k) => Number.isInteger(g[k]))) problems.push(`${where}: gridPos needs integer h, w, x and y`);
    if (panel.type === 'row') return;
    if (!Array.isArray(panel.targets) || panel.targets.length === 0) return problems.push(`${where}: has no targets`);
    panel.targets.forEach((t, j) => {
      if (!isText(t?.expr)) problems.push(`${where}: targets[${j}]: expr is missing`);
      if (!isText(t?.refId)) problems.push(`${where}: targets[${j}]: refId is missing`);
    });
  });
  return problems;
}

/** Problems with a parsed PrometheusRule object, one sentence each. */
export function checkPrometheusRule(obj) {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return ['the rules file is not a YAML mapping'];
  const problems = [];
  if (obj.apiVersion !== 'monitoring.coreos.com/v1') problems.push(`PrometheusRule: apiVersion must be monitoring.coreos.com/v1, not ${JSON.stringify(obj.apiVersion)}`);
  if (obj.kind !== 'PrometheusRule') problems.push(`PrometheusRule: kind must be PrometheusRule, not ${JSON.stringify(obj.kind)}`);
  if (!isText(obj.metadata?.name)) problems.push('PrometheusRule: metadata.name is missing');
  const groups = obj.spec?.groups;
  if (!Array.isArray(groups) || groups.length === 0) return [...problems, 'PrometheusRule: spec.groups is missing or empty'];
  const alerts = new Set();
  groups.forEach((group, i) => {
    const where = `PrometheusRule: spec.groups[${i}]`;
    if (!isText(group?.name)) problems.push(`${where}: name is missing`);
    if (!Array.isArray(group?.rules) || group.rules.length === 0) return problems.push(`${where}: rules is missing or empty`);
    group.rules.forEach((rule, j) => {
      const at = `${where}.rules[${j}]${isText(rule?.alert) ? ` (${rule.alert})` : ''}`;
      if (!isText(rule?.alert)) return problems.push(`${at}: alert is missing (only alerting rules belong here)`);
      if (alerts.has(rule.alert)) problems.push(`${at}: alert ${rule.alert} is defined twice`);
      alerts.add(rule.alert);
      if (!isText(rule.expr)) problems.push(`${at}: expr is missing`);
      if (!SEVERITIES.includes(rule.labels?.severity)) problems.push(`${at}: labels.severity must be one of ${SEVERITIES.join(', ')}`);
      if (!isText(rule.annotations?.summary)) problems.push(`${at}: annotations.summary is missing`);
      if (rule.for !== undefined && !/^(\d+(ms|s|m|h|d|w|y))+$/.test(String(rule.for))) problems.push(`${at}: for must be a duration like 5m, not ${JSON.stringify(rule.for)}`);
    });
  });
  return problems;
}

/** Problems with a parsed PodMonitor: what to select and which named port to scrape. */
export function checkPodMonitor(obj) {
  const name = obj?.metadata?.name;
  const where = `PodMonitor ${name ?? '(no name)'}`;
  const problems = [];
  if (obj?.apiVersion !== 'monitoring.coreos.com/v1' || obj?.kind !== 'PodMonitor') problems.push(`${where}: must be apiVersion monitoring.coreos.com/v1, kind PodMonitor`);
  if (!isText(name)) problems.push(`${where}: metadata.name is missing`);
  if (!obj?.spec?.selector?.matchLabels || Object.keys(obj.spec.selector.matchLabels).length === 0) problems.push(`${where}: spec.selector.matchLabels is missing`);
  const endpoints = obj?.spec?.podMetricsEndpoints;
  if (!Array.isArray(endpoints) || endpoints.length === 0) problems.push(`${where}: spec.podMetricsEndpoints is missing or empty`);
  else endpoints.forEach((e, i) => { if (!isText(e?.port) || e?.path !== '/metrics') problems.push(`${where}: podMetricsEndpoints[${i}] needs a named port and path /metrics`); });
  return problems;
}

/** Reads and checks the files; a file that does not parse is one problem naming it. */
export function checkObservabilityFiles({ dashboard = DASHBOARD, rules = RULES, podMonitors = POD_MONITORS } = {}) {
  const problems = [];
  try {
    problems.push(...checkDashboard(JSON.parse(readFileSync(dashboard, 'utf8'))).map((p) => `${dashboard}: ${p}`));
  } catch (err) {
    problems.push(`${dashboard}: ${err.message}`);
  }
  try {
    const docs = YAML.parseAllDocuments(readFileSync(rules, 'utf8'));
    const bad = docs.find((d) => d.errors.length > 0);
    if (bad) throw new Error(bad.errors[0].message.split('\n')[0]);
    for (const doc of docs) problems.push(...checkPrometheusRule(doc.toJS()).map((p) => `${rules}: ${p}`));
  } catch (err) {
    problems.push(`${rules}: ${err.message}`);
  }
  try {
    const docs = YAML.parseAllDocuments(readFileSync(podMonitors, 'utf8'));
    const bad = docs.find((d) => d.errors.length > 0);
    if (bad) throw new Error(bad.errors[0].message.split('\n')[0]);
    for (const doc of docs) problems.push(...checkPodMonitor(doc.toJS()).map((p) => `${podMonitors}: ${p}`));
  } catch (err) {
    problems.push(`${podMonitors}: ${err.message}`);
  }
  return problems;
}

/** Every PromQL expression of the dashboard's targets and the rules, with where it comes from. */
export function observabilityExpressions({ dashboard = DASHBOARD, rules = RULES } = {}) {
  const out = [];
  const dash = JSON.parse(readFileSync(dashboard, 'utf8'));
  for (const v of dash.templating?.list ?? []) if (typeof v.definition === 'string' && v.type === 'query') out.push({ where: `dashboard variable ${v.name}`, expr: v.definition });
  for (const p of dash.panels ?? []) for (const t of p.targets ?? []) out.push({ where: `dashboard panel "${p.title}" ${t.refId}`, expr: t.expr });
  for (const doc of YAML.parseAllDocuments(readFileSync(rules, 'utf8'))) {
    for (const g of doc.toJS()?.spec?.groups ?? []) for (const r of g.rules ?? []) out.push({ where: `rule ${r.alert}`, expr: r.expr });
  }
  return out;
}
