// The pod patch: a pod template (metadata + spec) in, the same template with meshward added out. Pure (no
// I/O, the input is never modified) and idempotent by construction: whatever meshward added before (the
// `meshward` init container, the meshward-* volumes) is removed and the current spec put back at the same
// places, so injecting twice gives the same pod, and injecting with a new image upgrades it.
// Used by `meshward inject` (src/kubernetes/manifests.ts) and the webhook (src/kubernetes/admission.ts).
import { invalid } from '../errors.js';
import {
  INJECT_KEY, SIDECAR_CONTAINER, SIDECAR_LABEL, isSidecarVolume, sidecarContainer, sidecarVolumes,
  type K8sObject, type SidecarOptions,
} from './sidecar-spec.js';

export interface PodTemplate {
  metadata?: K8sObject;
  spec: K8sObject;
}

/** `enabled`, `disabled` or undefined: what the workload's annotation, else its label, says. */
export function injectSetting(...metadatas: (K8sObject | undefined)[]): string | undefined {
  for (const m of metadatas) {
    const value = m?.annotations?.[INJECT_KEY] ?? m?.labels?.[INJECT_KEY];
    if (typeof value === 'string') return value;
  }
  return undefined;
}

const isObject = (v: unknown): v is K8sObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks the shape the patch relies on; `where` is the field path of the pod spec, for messages. */
export function checkPodSpec(spec: unknown, where: string): asserts spec is K8sObject {
  if (!isObject(spec)) throw invalid(`${where}: must be a pod spec (a mapping)`);
  if (!Array.isArray(spec.containers) || spec.containers.length === 0 || !spec.containers.every(isObject)) {
    throw invalid(`${where}.containers: must be a non-empty list of containers`);
  }
  for (const field of ['initContainers', 'volumes'] as const) {
    if (spec[field] !== undefined && !(Array.isArray(spec[field]) && spec[field].every(isObject))) {
      throw invalid(`${where}.${field}: must be a list of mappings`);
    }
  }
  if (spec.containers.some((c: K8sObject) => c.name === SIDECAR_CONTAINER)) {
    throw invalid(`${where}.containers: a container is already named "${SIDECAR_CONTAINER}", the sidecar's name: rename it`);
  }
}

/** Whether the spec already carries meshward's sidecar (from inject, the component or the webhook). */
export function hasSidecar(spec: unknown): boolean {
  return isObject(spec) && Array.isArray(spec.initContainers) && spec.initContainers.some((c: unknown) => isObject(c) && c.name === SIDECAR_CONTAINER);
}

/** The pod spec with the sidecar: first among the init containers (the app's init containers may need the mesh). */
export function injectPodSpec(spec: unknown, opts: SidecarOptions, where = 'spec'): K8sObject {
  checkPodSpec(spec, where);
  const init = (spec.initContainers ?? []).filter((c: K8sObject) => c.name !== SIDECAR_CONTAINER);
  const volumes = (spec.volumes ?? []).filter((v: K8sObject) => !isSidecarVolume(v.name));
  return {
    ...structuredClone(spec),
    initContainers: [sidecarContainer(opts), ...structuredClone(init)],
    volumes: [...structuredClone(volumes), ...sidecarVolumes(opts)],
  };
}

/** The template with the sidecar and the pod label the CA's NetworkPolicy admits. */
export function injectPodTemplate(template: PodTemplate, opts: SidecarOptions, where = 'spec'): PodTemplate {
  if (template.metadata !== undefined && !isObject(template.metadata)) throw invalid(`${where.replace(/spec$/, 'metadata')}: must be a mapping`);
  const metadata = structuredClone(template.metadata ?? {});
  metadata.labels = { ...(isObject(metadata.labels) ? metadata.labels : {}), [SIDECAR_LABEL]: 'true' };
  return { metadata, spec: injectPodSpec(template.spec, opts, where) };
}
