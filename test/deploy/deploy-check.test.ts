// `make deploy-check` can pass and can fail: the real manifests pass (with the fallback renderer, and with
// kubectl when it is installed, which must render the very same objects), and broken fixtures fail with a
// message naming the object and the field: an unknown container field, a wrong type, a missing required field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { CHECK_SCRIPT, FIXTURES, HAVE_KUBECTL, deployCheck, kustomize, validate } from './check-module.js';

const renderers = HAVE_KUBECTL ? (['builtin', 'kubectl'] as const) : (['builtin'] as const);

test('the real manifests render and every object is valid (fallback renderer)', () => {
  const { objects, problems } = deployCheck.runCheck({ renderer: 'builtin' });
  assert.deepEqual(problems, []);
  const kinds = new Set(objects.map((o) => o.kind));
  for (const kind of ['Namespace', 'ServiceAccount', 'ConfigMap', 'Service', 'Deployment', 'PodDisruptionBudget', 'NetworkPolicy']) {
    assert.ok(kinds.has(kind), `no ${kind} rendered`);
  }
  // The SQLite overlay is checked too: its own volume claim on top of the CA's objects.
  const sqlite = deployCheck.runCheck({ dir: deployCheck.SQLITE_OVERLAY_DIR, renderer: 'builtin' });
  assert.deepEqual(sqlite.problems, []);
  assert.ok(sqlite.objects.some((o) => o.kind === 'PersistentVolumeClaim'), 'the SQLite overlay renders its volume claim');
});

test('kubectl kustomize and the fallback renderer produce the same objects, in the same order', { skip: !HAVE_KUBECTL && 'kubectl is not installed' }, () => {
  for (const dir of [...deployCheck.CHECKED_DIRS, join(FIXTURES, 'any-deployment')]) {
    const viaKubectl = deployCheck.renderWithKubectl(dir);
    assert.ok(viaKubectl, 'kubectl rendered nothing');
    const builtin = kustomize.renderKustomization(dir);
    assert.equal(deployCheck.compareRenderings(viaKubectl, builtin, 'kubectl', 'fallback'), undefined);
    assert.deepEqual(builtin, viaKubectl);
  }
  // The auto mode (what `make deploy-check` runs) renders both and compares them itself.
  const auto = deployCheck.runCheck({ renderer: 'auto' });
  assert.deepEqual(auto.problems, []);
  assert.ok(auto.notes.some((n) => n.includes('renders the same objects')), auto.notes.join('\n'));
});

test('a difference between the two renderings is reported, naming the object', () => {
  const objects = kustomize.renderKustomization(deployCheck.MANIFEST_DIR);
  const changed = structuredClone(objects);
  const ca = changed.find((o) => o.kind === 'Deployment' && o.metadata.name === 'meshward-ca')!;
  ca.spec.replicas = 3;
  const difference = deployCheck.compareRenderings(objects, changed, 'kubectl', 'fallback');
  assert.match(difference ?? '', /render apps\/v1\/Deployment meshward-system\/meshward-ca differently/);
  const missing = deployCheck.compareRenderings(objects, changed.slice(1), 'kubectl', 'fallback');
  assert.match(missing ?? '', /only in kubectl: v1\/Namespace meshward-example/);
});

const broken: { fixture: string; problems: RegExp[] }[] = [
  {
    fixture: 'unknown-field',
    problems: [/^Deployment broken\/typo: spec\.template\.spec\.containers\[0\]\.readynessProbe: unknown field "readynessProbe" \(allowed here: .*readinessProbe/],
  },
  {
    fixture: 'wrong-type',
    problems: [
      /^Deployment broken\/wrong-type: spec\.replicas: expected integer, got string "two"$/,
      /^Deployment broken\/wrong-type: spec\.template\.spec\.containers\[0\]\.ports\[0\]\.containerPort: expected integer, got string "http"$/,
    ],
  },
  {
    fixture: 'missing-required',
    problems: [
      /^Deployment broken\/missing-required: spec: missing required field "selector"$/,
      /^Deployment broken\/missing-required: spec\.template\.spec\.containers\[0\]: missing required field "name"$/,
    ],
  },
];

for (const { fixture, problems } of broken) {
  for (const renderer of renderers) {
    test(`the check fails on the ${fixture} fixture (${renderer} renderer)`, () => {
      const result = deployCheck.runCheck({ dir: join(FIXTURES, fixture), renderer });
      assert.equal(result.objects.length, 1);
      assert.equal(result.problems.length, problems.length, result.problems.join('\n'));
      problems.forEach((re, i) => assert.match(result.problems[i]!, re));
    });
  }
}

test('the validator refuses kinds it has no pinned schema for, and invalid names', () => {
  const [unknownKind] = validate.validateObject({ apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'x' } });
  assert.match(unknownKind ?? '', /HorizontalPodAutoscaler x: no pinned schema for apiVersion autoscaling\/v2 kind HorizontalPodAutoscaler/);
  const badName = validate.validateObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'Not_A_Name' } });
  assert.deepEqual(badName, ['ConfigMap Not_A_Name: metadata.name: "Not_A_Name" is not a valid name (lowercase letters, digits, "-" and ".", at most 253 characters)']);
  const wrongQuantity = validate.validateObject({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: { selector: {}, template: { spec: { containers: [{ name: 'a', resources: { limits: { cpu: true } } }] } } } });
  assert.deepEqual(wrongQuantity, ['Deployment x: spec.template.spec.containers[0].resources.limits.cpu: expected string or number, got boolean true']);
});

test('the fallback renderer refuses kustomize features outside its subset instead of ignoring them', () => {
  const result = deployCheck.runCheck({ dir: join(FIXTURES, 'unsupported-field'), renderer: 'builtin' });
  assert.equal(result.problems.length, 1);
  assert.match(result.problems[0]!, /kustomization\.yaml: "images" is outside the subset the fallback renderer implements/);
});

test('generated ConfigMap names carry the same hash suffix as kustomize', () => {
  // Known answers from `kubectl kustomize` (kustomize v5.5) for configMapGenerator literals owner=billing
  // and a=<b>&c (the second one covers Go's HTML-safe JSON escaping of < > &).
  assert.equal(kustomize.nameHash({ data: { owner: 'billing' } }), 'md8b756g59');
  assert.equal(kustomize.nameHash({ data: { a: '<b>&c' } }), '6tcbt66fg9');
  assert.notEqual(kustomize.nameHash({ data: { owner: 'billing' } }), kustomize.nameHash({ data: { owner: 'billing2' } }));
});

test('the deploy-check command exits 0 on the manifests, 1 on a broken fixture, 2 on a usage error', () => {
  const ok = spawnSync(process.execPath, [CHECK_SCRIPT, '--renderer', 'builtin'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  // As many objects as the manifests render (the count moves with every manifest added).
  const rendered = kustomize.renderKustomization(deployCheck.MANIFEST_DIR).length;
  assert.ok(rendered >= 12, `only ${rendered} objects rendered`);
  assert.match(ok.stdout, new RegExp(`deploy-check: OK: ${rendered} objects valid`));
  assert.match(ok.stdout, /deploy-check: OK: \d+ objects valid \(.*PodDisruptionBudget meshward-system\/meshward-ca/);
  assert.match(ok.stdout, /rendered \S+\/deploy\/kubernetes\/ca-sqlite with the fallback renderer/);
  assert.match(ok.stdout, /deploy-check: OK: 8 objects valid \(.*PersistentVolumeClaim meshward-system\/meshward-ca-data/);
  const bad = spawnSync(process.execPath, [CHECK_SCRIPT, '--renderer', 'builtin', join(FIXTURES, 'unknown-field')], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /readynessProbe: unknown field/);
  assert.match(bad.stderr, /deploy-check: FAILED: 1 problem\(s\) in 1 objects/);
  const usage = spawnSync(process.execPath, [CHECK_SCRIPT, '--renderer', 'helm'], { encoding: 'utf8' });
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /--renderer must be auto, kubectl or builtin/);
});

test('without kubectl on the machine, auto mode falls back to the built-in renderer', () => {
  const result = deployCheck.runCheck({ renderer: 'auto', kubectl: '/nonexistent/kubectl' });
  assert.deepEqual(result.problems, []);
  assert.match(result.notes[0]!, new RegExp(`with the fallback renderer \\(kubectl is not installed\\): ${result.objects.length} objects`));
  assert.ok(result.objects.length >= 12);
});
