// `meshward.io/inject: disabled` opts a workload out, as an annotation or a label, on the workload or on
// its pod template: the document comes out equal in content, and no ConfigMap is generated for it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import YAML from 'yaml';
import { WORKLOADS, inject, parseAll, type K8s } from './workloads.js';

const PLACES: [string, (d: K8s) => void][] = [
  ['an annotation on the Deployment', (d) => { d.metadata.annotations = { 'meshward.io/inject': 'disabled' }; }],
  ['a label on the Deployment', (d) => { d.metadata.labels = { 'meshward.io/inject': 'disabled' }; }],
  ['an annotation on the pod template', (d) => { d.spec.template.metadata.annotations = { 'meshward.io/inject': 'disabled' }; }],
];

for (const [place, optOut] of PLACES) {
  test(`inject: ${place} saying disabled leaves the workload alone`, async () => {
    const deployment = YAML.parse(WORKLOADS.Deployment!);
    optOut(deployment);
    const input = `${YAML.stringify(deployment)}---\n${WORKLOADS.Job}`;
    const result = await inject(input);
    assert.equal(result.code, 0, result.stderr);
    const out = parseAll(result.stdout);
    assert.deepEqual(out.map((o) => o.kind), ['Deployment', 'ConfigMap', 'Job'], 'the opted-out Deployment gets no ConfigMap; the Job is injected');
    assert.deepEqual(out[0], deployment);
  });
}
