// `meshward inject` on one manifest of each workload kind, through the real CLI: the pod template gains the
// native sidecar (the spec's container, first among the init containers), its volumes and the pod label,
// and nothing else changes; a ConfigMap with a valid sidecar.yaml and policy.yaml is generated beside it;
// the output is valid Kubernetes (the pinned schemas `make deploy-check` uses).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSidecarConfigText } from '../../src/sidecar/config.js';
import { parsePolicy } from '../../src/sidecar/policy/policy.js';
import { sidecarContainer, sidecarVolumes, DEFAULT_IMAGE, DEFAULT_BUNDLE_CONFIG_MAP } from '../../src/kubernetes/sidecar-spec.js';
import { validate } from '../deploy/check-module.js';
import { WORKLOADS, inject, parseAll, podTemplate } from './workloads.js';

for (const [kind, manifest] of Object.entries(WORKLOADS)) {
  test(`inject: a ${kind} gets the native sidecar, its volumes and a generated config`, async () => {
    const result = await inject(manifest, ['--trust-domain', 'example.org', '--ca', 'ca.mesh.svc:8443']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    const [configMap, workload, ...rest] = parseAll(result.stdout);
    assert.equal(rest.length, 0);
    const [before] = parseAll(manifest);

    assert.equal(configMap!.kind, 'ConfigMap');
    const configName = `meshward-${before!.metadata.name}`;
    assert.equal(configMap!.metadata.name, configName);
    assert.equal(configMap!.metadata.namespace, before!.metadata.namespace);
    const config = parseSidecarConfigText(configMap!.data['sidecar.yaml'], 'sidecar.yaml');
    assert.equal(config.identity.provision?.ca, 'ca.mesh.svc:8443');
    assert.equal(config.inbound?.app.href, 'http://127.0.0.1:8080/', 'the app port is the first containerPort');
    const policy = parsePolicy(configMap!.data['policy.yaml'], 'policy.yaml');
    const caller = (id: string) => policy.principal({ spiffeId: id, ou: [], id });
    assert.equal(policy.decide(caller('spiffe://example.org/ns/shop/sa/web'), 'GET', '/orders/1', Date.now()).status, 200);
    assert.equal(policy.decide(caller('spiffe://other.org/ns/shop/sa/web'), 'GET', '/orders/1', Date.now()).status, 403);

    const template = podTemplate(workload!);
    const opts = { image: DEFAULT_IMAGE, configMap: configName, bundleConfigMap: DEFAULT_BUNDLE_CONFIG_MAP };
    assert.deepEqual(template.spec.initContainers, [sidecarContainer(opts)]);
    assert.equal(template.spec.initContainers[0].restartPolicy, 'Always');
    assert.deepEqual(template.spec.volumes, sidecarVolumes(opts));
    assert.equal(template.metadata.labels['meshward.io/sidecar'], 'true');

    // Everything but the three injected fields is as it was.
    const stripped = structuredClone(workload!);
    const t = podTemplate(stripped);
    delete t.spec.initContainers;
    delete t.spec.volumes;
    delete t.metadata.labels['meshward.io/sidecar'];
    assert.deepEqual(stripped, before);

    assert.deepEqual(validate.validateObjects([configMap, workload]), []);
  });
}
