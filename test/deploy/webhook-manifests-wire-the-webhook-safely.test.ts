// What deploy/kubernetes/webhook promises, asserted on the rendered objects (both renderers when kubectl is
// here): v1 reviews only, no side effects, an explicit failure policy, kube-system and meshward's own
// namespace never sent, each webhook pointing at a path the server really serves, and the Service, the
// container's port and its --listen flag agreeing; the TLS folder is the Secret the docs tell you to make.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REVIEW_PATHS } from '../../src/kubernetes/webhook-server.js';
import { HAVE_KUBECTL, deployCheck, kustomize, type K8sObject } from './check-module.js';

const renderings: [string, K8sObject[]][] = [['fallback renderer', kustomize.renderKustomization(deployCheck.MANIFEST_DIR)]];
if (HAVE_KUBECTL) renderings.push(['kubectl kustomize', deployCheck.renderWithKubectl(deployCheck.MANIFEST_DIR)!]);

/** The paths `meshward webhook serve` answers. */
const SERVED_PATHS = Object.keys(REVIEW_PATHS);

const one = (objects: K8sObject[], kind: string, name: string) => {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name);
  assert.equal(found.length, 1, `one ${kind} ${name}`);
  return found[0]!;
};

for (const [renderer, objects] of renderings) {
  test(`webhook manifests (${renderer}): v1, no side effects, Fail, system namespaces excluded, served paths`, () => {
    const config = one(objects, 'MutatingWebhookConfiguration', 'meshward-inject');
    assert.equal(config.webhooks.length, 2);
    for (const w of config.webhooks) {
      assert.deepEqual(w.admissionReviewVersions, ['v1']);
      assert.equal(w.sideEffects, 'None');
      assert.equal(w.failurePolicy, 'Fail');
      assert.ok(SERVED_PATHS.includes(w.clientConfig.service.path), `${w.name}: ${w.clientConfig.service.path} is served`);
      assert.deepEqual({ name: w.clientConfig.service.name, namespace: w.clientConfig.service.namespace }, { name: 'meshward-webhook', namespace: 'meshward-system' });
      assert.deepEqual(w.rules, [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' }]);
      const excluded = w.namespaceSelector.matchExpressions.find((e: { key: string }) => e.key === 'kubernetes.io/metadata.name');
      assert.equal(excluded.operator, 'NotIn');
      assert.deepEqual([...excluded.values].sort(), ['kube-system', 'meshward-system']);
    }
    // A namespace labelled enabled goes to /inject-namespace only, never to both.
    const byPath = Object.fromEntries(config.webhooks.map((w: K8sObject) => [w.clientConfig.service.path, w]));
    const nsSel = (path: string) => byPath[path].namespaceSelector.matchExpressions.find((e: { key: string }) => e.key === 'meshward.io/inject');
    assert.deepEqual([nsSel('/inject-namespace').operator, nsSel('/inject-namespace').values], ['In', ['enabled']]);
    assert.deepEqual([nsSel('/inject').operator, nsSel('/inject').values], ['NotIn', ['enabled']]);
    assert.deepEqual(byPath['/inject'].objectSelector, { matchLabels: { 'meshward.io/inject': 'enabled' } });
  });

  test(`webhook manifests (${renderer}): the Service, the port and --listen agree; TLS from the Secret`, () => {
    const service = one(objects, 'Service', 'meshward-webhook');
    const deployment = one(objects, 'Deployment', 'meshward-webhook');
    const port = one(objects, 'MutatingWebhookConfiguration', 'meshward-inject').webhooks[0].clientConfig.service.port;
    assert.equal(service.spec.ports[0].port, port);
    const container = deployment.spec.template.spec.containers[0];
    const named = container.ports.find((p: { name: string }) => p.name === service.spec.ports[0].targetPort);
    assert.ok(named, 'the Service targets a named container port');
    const args: string[] = container.args;
    assert.deepEqual(args.slice(0, 2), ['webhook', 'serve']);
    assert.equal(args[args.indexOf('--listen') + 1], `0.0.0.0:${named.containerPort}`);
    const tlsDir = args[args.indexOf('--tls-dir') + 1];
    const mount = container.volumeMounts.find((m: { mountPath: string }) => m.mountPath === tlsDir);
    const volume = deployment.spec.template.spec.volumes.find((v: { name: string }) => v.name === mount.name);
    assert.equal(volume.secret.secretName, 'meshward-webhook-tls');
    assert.equal(container.readinessProbe.httpGet.scheme, 'HTTPS');
    assert.equal(container.readinessProbe.httpGet.path, '/healthz');
    assert.ok(deployment.spec.replicas >= 2, 'failurePolicy Fail needs more than one replica');
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
  });
}
