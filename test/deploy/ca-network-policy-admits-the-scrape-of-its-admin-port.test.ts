// Prometheus can scrape the CA: deploy/observability's PodMonitor meshward-ca scrapes the pods' `admin`
// port (9090: /metrics), and the CA's NetworkPolicy admits it. `make deploy-check` proves this for the
// rendered manifests (deploy/check/scrape-reach.mjs) and fails, naming the PodMonitor, the workload and
// the policy, when the rule is gone, narrowed to another port, or the PodMonitor names a port the pod lacks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CHECK_SCRIPT, REPO_ROOT, deployCheck, kustomize, type K8sObject } from './check-module.js';

interface ScrapeReach {
  checkScrapeReach(objects: K8sObject[], podMonitors: K8sObject[]): string[];
  loadPodMonitors(file?: string): K8sObject[];
}
const reach = (await import(pathToFileURL(join(REPO_ROOT, 'deploy', 'check', 'scrape-reach.mjs')).href)) as ScrapeReach;

const rendered = () => kustomize.renderKustomization(deployCheck.MANIFEST_DIR);
const caPolicy = (objects: K8sObject[]) => objects.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'meshward-ca')!;
const monitors = reach.loadPodMonitors();

test('the rendered manifests and the SQLite overlay let every PodMonitor scrape through, and deploy-check says so', () => {
  assert.ok(monitors.some((m) => m.metadata.name === 'meshward-ca'), 'the CA PodMonitor is read');
  assert.deepEqual(reach.checkScrapeReach(rendered(), monitors), []);
  assert.deepEqual(reach.checkScrapeReach(kustomize.renderKustomization(deployCheck.SQLITE_OVERLAY_DIR), monitors), []);
  const r = spawnSync(process.execPath, [CHECK_SCRIPT, '--renderer', 'builtin'], { encoding: 'utf8', cwd: REPO_ROOT });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /every port deploy\/observability's PodMonitors scrape here is admitted by the NetworkPolicies/);
});

const breakages: [string, (objects: K8sObject[]) => void, RegExp][] = [
  ['the admin rule removed', (o) => { caPolicy(o).spec.ingress = caPolicy(o).spec.ingress.filter((r: K8sObject) => !r.ports.some((p: K8sObject) => p.port === 9090)); },
    /^PodMonitor meshward-ca scrapes port admin of Deployment meshward-system\/meshward-ca \(9090\), but NetworkPolicy meshward-ca admits no ingress to that port/],
  ['the admin rule on another port', (o) => { caPolicy(o).spec.ingress[1].ports = [{ port: 9091, protocol: 'TCP' }]; }, /\(9090\), but NetworkPolicy meshward-ca admits no ingress/],
  ['the admin rule for UDP only', (o) => { caPolicy(o).spec.ingress[1].ports = [{ port: 9090, protocol: 'UDP' }]; }, /\(9090\), but NetworkPolicy meshward-ca admits no ingress/],
  ['the admin container port renamed', (o) => {
    const ca = o.find((x) => x.kind === 'Deployment' && x.metadata.name === 'meshward-ca')!;
    ca.spec.template.spec.containers[0].ports.find((p: K8sObject) => p.containerPort === 9090).name = 'metrics';
  }, /^PodMonitor meshward-ca scrapes port admin of Deployment meshward-system\/meshward-ca, which has no container port of that name/],
];

for (const [what, breakIt, expected] of breakages) {
  test(`refused: ${what}`, () => {
    const objects = rendered();
    breakIt(objects);
    const problems = reach.checkScrapeReach(objects, monitors);
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0]!, expected);
  });
}

test('admitted: a rule without ports, a rule naming the port by name, no NetworkPolicy at all', () => {
  const cases: ((objects: K8sObject[]) => K8sObject[])[] = [
    (o) => { delete caPolicy(o).spec.ingress[1].ports; return o; },
    (o) => { caPolicy(o).spec.ingress[1].ports = [{ port: 'admin' }]; return o; },
    (o) => o.filter((x) => x.kind !== 'NetworkPolicy'),
  ];
  for (const change of cases) assert.deepEqual(reach.checkScrapeReach(change(rendered()), monitors), []);
});
