// The webhook's decision, pure: an admission.k8s.io/v1 AdmissionReview (as the API server sends it) in, the
// AdmissionReview to answer out: the request's uid echoed, `allowed: true`, and for a pod that should be
// meshed the pod patch as an RFC 6902 JSONPatch (base64, patchType JSONPatch). A review that is not one
// (wrong apiVersion or kind, no uid, no object) is a MalformedReview, which the server answers with 400.
//
// Which pods: the webhook configuration (deploy/kubernetes/webhook/) sends pods to one of two paths.
//   /inject            pods labelled `meshward.io/inject: enabled`: injected when labelled or annotated so;
//   /inject-namespace  every pod of a namespace labelled `meshward.io/inject: enabled`: injected unless the
//                      pod says `meshward.io/inject: disabled`.
// Either way `disabled` on the pod wins, and a pod that already has a sidecar (injected by `meshward
// inject` or the kustomize component, each with its own ConfigMap name) is left as it is: the webhook's
// options must not rewrite what those chose.
import { isDeepStrictEqual } from 'node:util';
import { MeshwardError } from '../errors.js';
import { hasSidecar, injectPodTemplate, injectSetting } from './pod-patch.js';
import type { K8sObject, SidecarOptions } from './sidecar-spec.js';

export type Selection = 'pod' | 'namespace';

export class MalformedReview extends Error {}

export interface JsonPatchOp {
  op: 'add' | 'remove';
  path: string;
  value?: unknown;
}

const isObject = (v: unknown): v is K8sObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** RFC 6901: `~` and `/` in a key are escaped. */
const pointer = (keys: string[]) => keys.map((k) => `/${k.replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');

/**
 * The JSONPatch turning `before` into `after`, field by field of metadata and spec: a changed field is
 * written whole (`add` replaces an existing member), a vanished one removed. The pod patch only changes
 * whole fields (labels, initContainers, volumes), so this is exact and short.
 */
export function fieldPatch(before: K8sObject, after: K8sObject): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  for (const part of ['metadata', 'spec'] as const) {
    const b = before[part] ?? {};
    const a = after[part] ?? {};
    if (before[part] === undefined && after[part] !== undefined) {
      ops.push({ op: 'add', path: pointer([part]), value: a });
      continue;
    }
    for (const key of Object.keys(a)) {
      if (!isDeepStrictEqual(a[key], b[key])) ops.push({ op: 'add', path: pointer([part, key]), value: a[key] });
    }
    for (const key of Object.keys(b)) if (!(key in a)) ops.push({ op: 'remove', path: pointer([part, key]) });
  }
  return ops;
}

/** Whether the pod should be meshed, given how it was selected. */
export function wantsInjection(pod: K8sObject, selection: Selection): boolean {
  const setting = injectSetting(pod.metadata);
  return selection === 'pod' ? setting === 'enabled' : setting !== 'disabled';
}

/** The AdmissionReview answering `review`; throws MalformedReview for a body that is not a v1 review of an object. */
export function answerReview(review: unknown, selection: Selection, opts: SidecarOptions): K8sObject {
  if (!isObject(review)) throw new MalformedReview('the body is not a JSON object');
  if (review.apiVersion !== 'admission.k8s.io/v1' || review.kind !== 'AdmissionReview') {
    throw new MalformedReview(`expected apiVersion admission.k8s.io/v1, kind AdmissionReview; got ${String(review.apiVersion)}, ${String(review.kind)}`);
  }
  const request = review.request;
  if (!isObject(request)) throw new MalformedReview('request: missing');
  if (typeof request.uid !== 'string' || request.uid === '') throw new MalformedReview('request.uid: missing');
  const response: K8sObject = { uid: request.uid, allowed: true };
  const answer = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
  const isPod = isObject(request.kind) && request.kind.group === '' && request.kind.kind === 'Pod';
  // Only pod creation is mutated; anything else the configuration sends by mistake passes untouched.
  if (!isPod || (request.operation !== undefined && request.operation !== 'CREATE')) return answer;
  if (!isObject(request.object)) throw new MalformedReview('request.object: missing (a Pod)');
  const pod = request.object;
  if (!wantsInjection(pod, selection) || hasSidecar(pod.spec)) return answer;
  let after: K8sObject;
  try {
    after = injectPodTemplate({ metadata: pod.metadata, spec: pod.spec }, opts);
  } catch (err) {
    if (!(err instanceof MeshwardError)) throw err;
    // The pod asked for the mesh and cannot have it: refuse it with why, rather than run it unmeshed.
    response.allowed = false;
    response.status = { code: 422, message: `meshward cannot inject this pod: ${err.message}` };
    return answer;
  }
  const ops = fieldPatch(pod, { ...pod, ...after });
  if (ops.length > 0) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(ops)).toString('base64');
  }
  return answer;
}
