// A real multi-document file: a Service and a ConfigMap around a Deployment, then a List holding a Service,
// a StatefulSet and a Pod (as `kubectl get -o yaml` prints). Workloads are injected wherever they sit;
// every other resource comes out equal in content; a generated ConfigMap is printed just before the
// document whose workload needs it, so `kubectl apply -f -` creates it first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import YAML from 'yaml';
import { OTHERS, WORKLOADS, inject, parseAll, podTemplate, type K8s } from './workloads.js';

const LIST = {
  apiVersion: 'v1',
  kind: 'List',
  metadata: { resourceVersion: '' },
  items: [YAML.parse(OTHERS.split('---')[0]!), YAML.parse(WORKLOADS.StatefulSet!), YAML.parse(WORKLOADS.Pod!)],
};

const INPUT = `${OTHERS}---\n${WORKLOADS.Deployment}---\n${YAML.stringify(LIST)}`;

const injected = (o: K8s) => podTemplate(o).spec.initContainers?.[0]?.name === 'meshward';

test('inject: workloads in several documents and in a List are injected, other resources pass through', async () => {
  const result = await inject(INPUT);
  assert.equal(result.code, 0, result.stderr);
  const out = parseAll(result.stdout);
  const input = parseAll(INPUT);
  assert.deepEqual(
    out.map((o) => `${o.kind}/${o.metadata.name}`),
    ['Service/orders', 'ConfigMap/settings', 'ConfigMap/meshward-orders', 'Deployment/orders', 'ConfigMap/meshward-ledger', 'ConfigMap/meshward-debug', 'List/undefined'],
  );
  // Not workloads: equal in content (the quoted "3" and "true" stay strings).
  assert.deepEqual(out[0], input[0]);
  assert.deepEqual(out[1], input[1]);
  assert.equal(out[1]!.data.level, '3');
  assert.ok(injected(out[3]!));

  const list = out[6]!;
  assert.equal(list.items.length, 3);
  assert.deepEqual(list.items[0], LIST.items[0], 'the Service inside the List is untouched');
  assert.ok(injected(list.items[1]), 'the StatefulSet inside the List is injected');
  assert.ok(injected(list.items[2]), 'the Pod inside the List is injected');
  assert.equal(podTemplate(list.items[1]).spec.volumes.at(-1).configMap.name, 'meshward-ledger');
  assert.equal(podTemplate(list.items[2]).spec.volumes.at(-1).configMap.name, 'meshward-debug');
});

test('inject: comments and formatting of untouched documents survive', async () => {
  const result = await inject(INPUT);
  assert.equal(result.code, 0, result.stderr);
  assert.ok(result.stdout.includes('# a string that looks like a number'), result.stdout);
});
