// The kustomize component's patch (deploy/kubernetes/components/sidecar/sidecar-patch.yaml) as text, built
// from the same sidecar spec that `meshward inject` and the webhook use, so the three cannot drift apart.
// scripts/generate-sidecar-component.ts writes it; a test fails when the committed file differs.
import YAML from 'yaml';
import { DEFAULT_BUNDLE_CONFIG_MAP, DEFAULT_CONFIG_MAP, DEFAULT_IMAGE, SIDECAR_LABEL, sidecarContainer, sidecarVolumes } from './sidecar-spec.js';

export const COMPONENT_PATCH_FILE = 'deploy/kubernetes/components/sidecar/sidecar-patch.yaml';

const HEADER = `# GENERATED from src/kubernetes/sidecar-spec.ts by \`node dist/scripts/generate-sidecar-component.js\`:
# do not edit (test/kubernetes/sidecar-component-is-generated-from-the-spec fails when this file differs).
#
# meshward as a native sidecar (Kubernetes >= 1.29): an init container with \`restartPolicy: Always\` starts
# before the app and, with its startupProbe, holds the app back until /readyz says the workload certificate
# is in place (up to two minutes for the first one). It is stopped only after the app has exited, so the
# app's own preStop pause (while the endpoints controller drops the pod) and shutdown still go through it;
# then SIGTERM makes it drain: no new requests, in-flight ones finish (limits.drainTimeout, 20 s by default,
# inside the pod's terminationGracePeriodSeconds). A preStop hook here would only run after the app is gone,
# so it has none. The in-process agent (identity.provision in sidecar.yaml) gets the certificate from the CA
# with the projected service-account token (audience meshward, rotated by the kubelet) and keeps it
# renewed; the key lives only in the memory-backed meshward-identity volume. Resources: from the benchmark
# targets (<= 60 MB idle and <= 120 MB under load per worker). The pod label lets it through the CA's
# NetworkPolicy.
`;

export function sidecarComponentPatch(): string {
  const opts = { image: DEFAULT_IMAGE, configMap: DEFAULT_CONFIG_MAP, bundleConfigMap: DEFAULT_BUNDLE_CONFIG_MAP };
  const patch = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'any-deployment' },
    spec: {
      template: {
        metadata: { labels: { [SIDECAR_LABEL]: 'true' } },
        spec: { initContainers: [sidecarContainer(opts)], volumes: sidecarVolumes(opts) },
      },
    },
  };
  return HEADER + YAML.stringify(patch);
}
