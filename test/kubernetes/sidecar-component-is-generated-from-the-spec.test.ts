// One source of truth for the sidecar container: the kustomize component's patch is the text
// scripts/generate-sidecar-component.ts writes from src/kubernetes/sidecar-spec.ts, and the example
// workload rendered through it carries the very container and volumes `meshward inject` adds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMPONENT_PATCH_FILE, sidecarComponentPatch } from '../../src/kubernetes/sidecar-component.js';
import { DEFAULT_BUNDLE_CONFIG_MAP, DEFAULT_IMAGE, sidecarContainer, sidecarVolumes } from '../../src/kubernetes/sidecar-spec.js';
import { REPO_ROOT } from '../support/cli.js';
import { deployCheck, kustomize } from '../deploy/check-module.js';

test('components/sidecar/sidecar-patch.yaml is exactly what the generator writes from the spec', () => {
  const committed = readFileSync(join(REPO_ROOT, COMPONENT_PATCH_FILE), 'utf8');
  assert.equal(committed, sidecarComponentPatch(), `${COMPONENT_PATCH_FILE} differs from src/kubernetes/sidecar-spec.ts: run \`npx tsc && node dist/scripts/generate-sidecar-component.js\``);
});

test('the example rendered through the component has the container and volumes inject adds', () => {
  const objects = kustomize.renderKustomization(deployCheck.MANIFEST_DIR);
  const orders = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'orders')!;
  const spec = orders.spec.template.spec;
  const configMap = spec.volumes.find((v: { name: string }) => v.name === 'meshward-sidecar').configMap.name;
  assert.match(configMap, /^meshward-sidecar-[a-z0-9]{10}$/, 'kustomize names the generated ConfigMap with its hash');
  const opts = { image: DEFAULT_IMAGE, configMap, bundleConfigMap: DEFAULT_BUNDLE_CONFIG_MAP };
  assert.deepEqual(spec.initContainers.find((c: { name: string }) => c.name === 'meshward'), sidecarContainer(opts));
  const meshwardVolumes = spec.volumes.filter((v: { name: string }) => v.name.startsWith('meshward-'));
  assert.deepEqual(meshwardVolumes, sidecarVolumes(opts));
  assert.equal(orders.spec.template.metadata.labels['meshward.io/sidecar'], 'true');
});
