// The ConfigMap `meshward inject` generates when the user names none (--config-map): sidecar.yaml wired to
// the paths and ports of the sidecar spec, and a starting policy.yaml that lets any workload of the trust
// domain call the app (mTLS everywhere, identities checked; narrow it with grants and routes per
// docs/policy.md). Pure: the text is built here, nothing is read or written.
import YAML from 'yaml';
import { ADMIN_PORT, BUNDLE_DIR, IDENTITY_DIR, MESH_PORT, SIDECAR_CONFIG_DIR, TOKEN_DIR, type K8sObject } from './sidecar-spec.js';

export interface GeneratedConfigOptions {
  /** host:port of `meshward ca serve`. */
  ca: string;
  trustDomain: string;
  /** The port the app listens on, on 127.0.0.1 inside the pod. */
  appPort: number;
}

/** sidecar.yaml for an injected pod (docs/configuration.md). */
export function generatedSidecarYaml(opts: GeneratedConfigOptions): string {
  return YAML.stringify({
    identity: {
      dir: IDENTITY_DIR,
      provision: { ca: opts.ca, bundle: `${BUNDLE_DIR}/bundle.crt`, tokenFile: `${TOKEN_DIR}/token` },
    },
    inbound: { listen: `0.0.0.0:${MESH_PORT}`, app: `http://127.0.0.1:${opts.appPort}` },
    policy: `${SIDECAR_CONFIG_DIR}/policy.yaml`,
    // Not loopback: the kubelet probes /readyz and /healthz from the node.
    admin: { listen: `0.0.0.0:${ADMIN_PORT}` },
  });
}

/** policy.yaml: any identity of the trust domain may call any path (docs/policy.md to narrow it). */
export function generatedPolicyYaml(opts: GeneratedConfigOptions): string {
  return YAML.stringify({
    mode: 'enforce',
    grants: [{ identities: [`spiffe://${opts.trustDomain}/**`], scopes: ['mesh:call'] }],
    routes: [{ match: { path: '/**' }, scope: 'mesh:call' }],
  });
}

/** The ConfigMap, in the workload's namespace (none: the namespace it is applied to). */
export function generatedConfigMap(name: string, namespace: string | undefined, opts: GeneratedConfigOptions): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, ...(namespace !== undefined ? { namespace } : {}), labels: { 'app.kubernetes.io/managed-by': 'meshward-inject' } },
    data: { 'sidecar.yaml': generatedSidecarYaml(opts), 'policy.yaml': generatedPolicyYaml(opts) },
  };
}
