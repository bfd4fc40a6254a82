// The one source of truth for what meshward adds to a pod: the sidecar container, its volumes and the
// pod label. `meshward inject`, the admission webhook and the kustomize component
// (deploy/kubernetes/components/sidecar, written by scripts/generate-sidecar-component.ts and checked
// equal by test/kubernetes/sidecar-component-is-generated-from-the-spec) all take it from here.
//
// The sidecar runs as a native sidecar (Kubernetes >= 1.29): an init container with `restartPolicy:
// Always` starts before the app and, with its startupProbe, holds the app back until /readyz says the
// workload certificate is in place; it is stopped only after the app has exited, so a Job completes and
// the app's own shutdown still goes through it. The in-process agent (identity.provision in sidecar.yaml)
// gets the certificate from the CA with the projected service-account token (audience meshward) and keeps
// it renewed; the key lives only in a memory-backed emptyDir.

export type K8sObject = Record<string, any>;

/** What may vary between clusters; everything else about the container is fixed here. */
export interface SidecarOptions {
  /** The meshward image. */
  image: string;
  /** ConfigMap holding sidecar.yaml (and policy.yaml), mounted at SIDECAR_CONFIG_DIR. */
  configMap: string;
  /** ConfigMap holding bundle.crt, the CA's trust bundle. */
  bundleConfigMap: string;
}

export const DEFAULT_IMAGE = 'meshward:0.1.0';
export const DEFAULT_CONFIG_MAP = 'meshward-sidecar';
export const DEFAULT_BUNDLE_CONFIG_MAP = 'meshward-bundle';

/** The container's name: how an injected pod is recognised (injecting again replaces it). */
export const SIDECAR_CONTAINER = 'meshward';
/** Ports: the mTLS listener and the admin server (probes, /metrics). sidecar.yaml must listen on them. */
export const MESH_PORT = 8443;
export const ADMIN_PORT = 15000;
/** Where the sidecar finds its files; a generated sidecar.yaml names these paths. */
export const IDENTITY_DIR = '/var/run/meshward';
export const TOKEN_DIR = '/var/run/secrets/meshward';
export const BUNDLE_DIR = '/etc/meshward/bundle';
export const SIDECAR_CONFIG_DIR = '/etc/meshward/sidecar';
/** The label on every injected pod: the CA's NetworkPolicy lets only such pods in. */
export const SIDECAR_LABEL = 'meshward.io/sidecar';
/** The workload annotation (or label) that opts in (`enabled`) or out (`disabled`). */
export const INJECT_KEY = 'meshward.io/inject';

export const VOLUMES = {
  identity: 'meshward-identity',
  token: 'meshward-token',
  bundle: 'meshward-bundle',
  config: 'meshward-sidecar',
} as const;
const VOLUME_NAMES: readonly string[] = Object.values(VOLUMES);

/** True for the volumes this module owns (replaced on every injection). */
export function isSidecarVolume(name: unknown): boolean {
  return typeof name === 'string' && VOLUME_NAMES.includes(name);
}

/** The sidecar container (an init container: restartPolicy Always makes it a native sidecar). */
export function sidecarContainer(opts: SidecarOptions): K8sObject {
  const probe = (path: string, periodSeconds: number, failureThreshold: number) => ({
    httpGet: { path, port: 'mesh-admin' },
    periodSeconds,
    failureThreshold,
  });
  return {
    name: SIDECAR_CONTAINER,
    image: opts.image,
    restartPolicy: 'Always',
    args: ['sidecar', '--config', `${SIDECAR_CONFIG_DIR}/sidecar.yaml`],
    ports: [
      { name: 'mesh', containerPort: MESH_PORT, protocol: 'TCP' },
      { name: 'mesh-admin', containerPort: ADMIN_PORT, protocol: 'TCP' },
    ],
    // /readyz is 503 until valid credentials are loaded (the agent may still be bootstrapping): allow up
    // to two minutes for the first certificate before the kubelet restarts the container.
    startupProbe: probe('/readyz', 1, 120),
    readinessProbe: probe('/readyz', 5, 2),
    livenessProbe: probe('/healthz', 10, 3),
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    // From the benchmark targets (issue 6): <= 60 MB idle and <= 120 MB under load per worker.
    resources: {
      requests: { cpu: '50m', memory: '64Mi' },
      limits: { cpu: '1', memory: '160Mi' },
    },
    volumeMounts: [
      { name: VOLUMES.identity, mountPath: IDENTITY_DIR },
      { name: VOLUMES.token, mountPath: TOKEN_DIR, readOnly: true },
      { name: VOLUMES.bundle, mountPath: BUNDLE_DIR, readOnly: true },
      { name: VOLUMES.config, mountPath: SIDECAR_CONFIG_DIR, readOnly: true },
    ],
  };
}

/** The pod volumes the sidecar mounts. */
export function sidecarVolumes(opts: SidecarOptions): K8sObject[] {
  return [
    // tls.crt / tls.key / ca.crt written by the in-process agent: in memory, never on the node's disk.
    { name: VOLUMES.identity, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
    // A short-lived token for the CA only (audience meshward), rotated by the kubelet.
    {
      name: VOLUMES.token,
      projected: { sources: [{ serviceAccountToken: { audience: 'meshward', expirationSeconds: 600, path: 'token' } }] },
    },
    { name: VOLUMES.bundle, configMap: { name: opts.bundleConfigMap } },
    { name: VOLUMES.config, configMap: { name: opts.configMap } },
  ];
}
