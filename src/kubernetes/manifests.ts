// `meshward inject` over YAML text: every document (and every item of a List) that is a workload gets the
// pod patch; everything else is printed as it came. Pure: text in, text out, or one MeshwardError naming
// the file, the document and the field; nothing is half-done (the caller prints only a complete result).
//
// Documents are edited in place with the yaml package's document model (setIn on the changed fields only),
// so comments and formatting elsewhere survive, and a document without a change is printed from its own
// source: injecting twice prints the same text.
import { isDeepStrictEqual } from 'node:util';
import YAML, { type Document } from 'yaml';
import { MeshwardError, invalid } from '../errors.js';
import { checkPodSpec, hasSidecar, injectPodTemplate, injectSetting, type PodTemplate } from './pod-patch.js';
import { generatedConfigMap } from './sidecar-config.js';
import { VOLUMES, type K8sObject, type SidecarOptions } from './sidecar-spec.js';

/** Where each workload kind keeps its pod template ([] = the object is the pod). */
const TEMPLATE_PATHS: Record<string, readonly string[]> = {
  'v1/Pod': [],
  'apps/v1/Deployment': ['spec', 'template'],
  'apps/v1/StatefulSet': ['spec', 'template'],
  'apps/v1/DaemonSet': ['spec', 'template'],
  'apps/v1/ReplicaSet': ['spec', 'template'],
  'batch/v1/Job': ['spec', 'template'],
  'batch/v1/CronJob': ['spec', 'jobTemplate', 'spec', 'template'],
};

export interface InjectOptions {
  image: string;
  bundleConfigMap: string;
  /** An existing ConfigMap with sidecar.yaml and policy.yaml; without it one is generated per workload. */
  configMap?: string;
  /** What a generated ConfigMap needs. */
  ca: string;
  trustDomain?: string;
  /** Default: the first containerPort of the pod's first container. */
  appPort?: number;
}

/** An aliased document expanding beyond this many nodes is refused (a "billion laughs" input). */
const MAX_ALIAS_COUNT = 100;

const isObject = (v: unknown): v is K8sObject => typeof v === 'object' && v !== null && !Array.isArray(v);

function getIn(obj: K8sObject, path: readonly (string | number)[]): unknown {
  let at: unknown = obj;
  for (const key of path) at = isObject(at) || Array.isArray(at) ? (at as any)[key] : undefined;
  return at;
}

/** What one workload needs done: fields of its document to set, and a ConfigMap to print before it. */
interface Edit {
  sets: { path: (string | number)[]; value: unknown }[];
  configMap?: K8sObject;
}

/** The ConfigMap the pod mounts: named by the user, kept from an earlier injection, or generated. */
function chooseConfig(template: PodTemplate, workload: K8sObject, opts: InjectOptions, where: string): { name: string; generate?: K8sObject } {
  if (opts.configMap !== undefined) return { name: opts.configMap };
  const injected = hasSidecar(template.spec);
  const earlier = (template.spec.volumes ?? []).find((v: K8sObject) => v?.name === VOLUMES.config)?.configMap?.name;
  if (injected && typeof earlier === 'string') return { name: earlier };
  if (opts.trustDomain === undefined) {
    throw new MeshwardError('usage', `${where}: --trust-domain is needed to generate the sidecar's ConfigMap (or name an existing one with --config-map)`);
  }
  const appPort = opts.appPort ?? template.spec.containers?.[0]?.ports?.[0]?.containerPort;
  if (!Number.isInteger(appPort)) {
    throw new MeshwardError('usage', `${where}: the first container declares no containerPort: pass --app-port (the port the app listens on)`);
  }
  const base = workload.metadata?.name ?? String(workload.metadata?.generateName ?? 'pod').replace(/-+$/, '');
  const name = `meshward-${base}`;
  return { name, generate: generatedConfigMap(name, workload.metadata?.namespace, { ca: opts.ca, trustDomain: opts.trustDomain, appPort }) };
}

/** The edit for one object at `path` of its document (a List's items are visited one by one). */
function editsFor(obj: unknown, path: (string | number)[], opts: InjectOptions, where: string): Edit[] {
  if (!isObject(obj)) return [];
  if (typeof obj.kind === 'string' && obj.kind.endsWith('List') && Array.isArray(obj.items)) {
    return obj.items.flatMap((item: unknown, i: number) => editsFor(item, [...path, 'items', i], opts, `${where} items[${i}]`));
  }
  const templatePath = TEMPLATE_PATHS[`${obj.apiVersion}/${obj.kind}`];
  if (templatePath === undefined) return [];
  const label = `${where} (${obj.kind} ${obj.metadata?.name ?? 'without a name'})`;
  const template = templatePath.length ? getIn(obj, templatePath) : obj;
  if (!isObject(template)) throw invalid(`${label}: ${templatePath.join('.')}: must be a pod template`);
  if (injectSetting(obj.metadata, template.metadata) === 'disabled') return [];
  const prefix = templatePath.length ? `${templatePath.join('.')}.` : '';
  const at = (field: string) => [...path, ...templatePath, ...field.split('.')];
  try {
    checkPodSpec(template.spec, `${prefix}spec`); // before choosing a config: the shape is the first problem to name
    const config = chooseConfig(template as PodTemplate, obj, opts, label);
    const sidecar: SidecarOptions = { image: opts.image, bundleConfigMap: opts.bundleConfigMap, configMap: config.name };
    const after = injectPodTemplate(template as PodTemplate, sidecar, `${prefix}spec`);
    const edit: Edit = { sets: [], configMap: config.generate };
    if (!isDeepStrictEqual(after.metadata?.labels, template.metadata?.labels)) edit.sets.push({ path: at('metadata.labels'), value: after.metadata!.labels });
    for (const field of ['initContainers', 'volumes']) {
      if (!isDeepStrictEqual(after.spec[field], template.spec[field])) edit.sets.push({ path: at(`spec.${field}`), value: after.spec[field] });
    }
    return [edit];
  } catch (err) {
    if (err instanceof MeshwardError && !err.message.startsWith(label)) throw new MeshwardError(err.code, `${label}: ${err.message}`);
    throw err;
  }
}

/** The first parse error of a document, as "line L, column C: sentence". */
function parseProblem(doc: Document.Parsed): string | undefined {
  const error = doc.errors[0];
  if (!error) return undefined;
  const sentence = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
  const pos = error.linePos?.[0];
  return pos ? `line ${pos.line}, column ${pos.col}: ${sentence}` : sentence;
}

/** `text` (from `source`, for messages) with meshward injected into every workload. */
export function injectManifests(text: string, source: string, opts: InjectOptions): string {
  // An input with nothing but comments comes back as an EmptyStream (not an array): nothing to print.
  const docs = YAML.parseAllDocuments(text);
  if (!Array.isArray(docs)) return '';
  const out: string[] = [];
  docs.forEach((doc, i) => {
    const where = `${source}: document ${i + 1}`;
    const problem = parseProblem(doc);
    if (problem) throw invalid(`${source}: ${problem} (document ${i + 1}; nothing was printed)`);
    if (doc.contents === null) return; // an empty document (a stray ---) carries nothing
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      throw invalid(`${where}: ${(err as Error).message.split('\n')[0]}`);
    }
    const edits = editsFor(value, [], opts, where);
    for (const edit of edits) {
      if (edit.configMap) out.push(YAML.stringify(edit.configMap));
      for (const set of edit.sets) doc.setIn(set.path, doc.createNode(set.value));
    }
    // Separators are written below, one per document; the document's own `---` would double them.
    doc.directives.docStart = null;
    out.push(doc.toString());
  });
  return out.join('---\n');
}
