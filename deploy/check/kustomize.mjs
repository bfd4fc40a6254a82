// A small kustomize, for machines without kubectl: renders deploy/kubernetes with only the repo's own
// dependencies (the `yaml` package). It implements exactly the subset the manifests use, the way kustomize
// v5 does it, and refuses anything else by name, so a manifest change that needs more fails loudly here
// instead of rendering differently from `kubectl kustomize` (test/deploy compares the two object by object).
//
// Supported: Kustomization and Component files with `resources` (files and directories), `components`,
// `namespace`, `labels` (metadata labels only), `configMapGenerator` (files, literals; name hash suffix and
// the references to it), `patches` (strategic-merge, by file or inline, with or without a target selecting
// by kind/name/labelSelector/annotationSelector). Order of work per kustomization, as in kustomize:
// resources, components, generators, then patches, namespace, labels; name references fixed at the end.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import YAML from 'yaml';

export class RenderError extends Error {}

const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];
const SUPPORTED_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'components', 'namespace', 'labels', 'configMapGenerator', 'patches']);
/** Kinds that live outside namespaces (the namespace transformer leaves them alone). */
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PersistentVolume', 'StorageClass', 'PriorityClass', 'ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']);
/** kustomize's `legacy` output order: these kinds first in this order, then the rest, then the last two. */
const ORDER_FIRST = ['Namespace', 'ResourceQuota', 'StorageClass', 'CustomResourceDefinition', 'ServiceAccount', 'PodSecurityPolicy', 'Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding', 'ConfigMap', 'Secret', 'Endpoints', 'Service', 'LimitRange', 'PriorityClass', 'PersistentVolume', 'PersistentVolumeClaim', 'Deployment', 'StatefulSet', 'CronJob', 'PodDisruptionBudget'];
const ORDER_LAST = ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'];
/** Strategic-merge keys of the lists the patches touch (from the Kubernetes API's patchMergeKey tags). */
const MERGE_KEYS = {
  containers: 'name', initContainers: 'name', ephemeralContainers: 'name', volumes: 'name', env: 'name',
  imagePullSecrets: 'name', volumeMounts: 'mountPath', volumeDevices: 'devicePath', ports: 'containerPort',
  hostAliases: 'ip', topologySpreadConstraints: 'topologyKey',
};

/** Parses every YAML document of a file; plain scalars that YAML 1.1 and 1.2 read differently are refused. */
export function parseManifests(text, source) {
  const docs = YAML.parseAllDocuments(text, { uniqueKeys: true });
  const out = [];
  for (const doc of docs) {
    if (doc.errors.length) throw new RenderError(`${source}: ${doc.errors[0].message.split('\n')[0]}`);
    YAML.visit(doc, {
      Scalar(_, node) {
        // kustomize (Go, yaml.v3) reads 0440 as octal 288, YAML 1.2 as 440: write such numbers in decimal.
        if (node.type === 'PLAIN' && typeof node.source === 'string' && /^[-+]?0[0-9_]+$/.test(node.source)) {
          throw new RenderError(`${source}: "${node.source}" is read as octal by kustomize and as decimal by YAML 1.2: write it in decimal`);
        }
      },
    });
    const value = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

function readKustomization(dir) {
  const file = KUSTOMIZATION_FILES.map((f) => join(dir, f)).find((f) => existsSync(f));
  if (!file) throw new RenderError(`${dir}: no kustomization.yaml`);
  const docs = parseManifests(readFileSync(file, 'utf8'), file);
  if (docs.length !== 1 || typeof docs[0] !== 'object' || Array.isArray(docs[0])) throw new RenderError(`${file}: must hold one mapping`);
  const k = docs[0];
  for (const field of Object.keys(k)) {
    if (!SUPPORTED_FIELDS.has(field)) {
      throw new RenderError(`${file}: "${field}" is outside the subset the fallback renderer implements (${[...SUPPORTED_FIELDS].join(', ')}): keep the manifests within it, or render with kubectl`);
    }
  }
  return { file, k };
}

/** kustomize's name suffix: the first 10 hex digits of a SHA-256, with 0 1 3 a e replaced (no words, no look-alikes). */
export function nameHash(configMap) {
  const data = Object.fromEntries(Object.entries(configMap.data ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  // What kustomize v5 hashes: {data, kind, name} as Go's json.Marshal writes it. Its name lookup misses
  // (it asks for a field literally called "metadata/name"), so the name is always "".
  const json = JSON.stringify({ data, kind: 'ConfigMap', name: '' }).replace(/[<>&\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const hex = createHash('sha256').update(json).digest('hex');
  return hex.slice(0, 10).replace(/[013ae]/g, (ch) => ({ 0: 'g', 1: 'h', 3: 'k', a: 'm', e: 't' })[ch]);
}

/** A resource plus what kustomize tracks beside it: the name it was generated with. */
function item(object, generatedFrom) {
  return { object, generatedFrom };
}

function loadResourceFile(path) {
  return parseManifests(readFileSync(path, 'utf8'), path).map((o) => {
    if (!o || typeof o !== 'object' || typeof o.kind !== 'string' || typeof o.apiVersion !== 'string' || typeof o.metadata?.name !== 'string') {
      throw new RenderError(`${path}: every document needs apiVersion, kind and metadata.name`);
    }
    return item(o);
  });
}

function generateConfigMaps(dir, file, generators) {
  return generators.map((g, i) => {
    const where = `${file}: configMapGenerator[${i}]`;
    const extra = Object.keys(g).filter((key) => !['name', 'files', 'literals'].includes(key));
    if (extra.length) throw new RenderError(`${where}: "${extra[0]}" is not supported by the fallback renderer`);
    if (typeof g.name !== 'string') throw new RenderError(`${where}: name is required`);
    const data = {};
    for (const spec of [...(g.files ?? []), ...(g.literals ?? [])]) {
      if (typeof spec !== 'string') throw new RenderError(`${where}: every files and literals entry must be a string, got ${JSON.stringify(spec)}`);
    }
    for (const spec of g.files ?? []) {
      const [key, path] = spec.includes('=') ? spec.split(/=(.*)/s, 2) : [basename(spec), spec];
      const full = resolve(dir, path);
      if (!existsSync(full)) throw new RenderError(`${where}: ${path} not found`);
      data[key] = readFileSync(full, 'utf8');
    }
    for (const spec of g.literals ?? []) {
      const [key, value] = spec.split(/=(.*)/s, 2);
      data[key] = value ?? '';
    }
    const configMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: g.name }, data };
    configMap.metadata.name = `${g.name}-${nameHash(configMap)}`;
    return item(configMap, g.name);
  });
}

function isMapping(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Strategic merge of `patch` into `target` (both plain JSON values); returns the merged value. */
export function strategicMerge(target, patch, field = '') {
  if (isMapping(patch)) {
    const out = isMapping(target) ? { ...target } : {};
    for (const [key, value] of Object.entries(patch)) {
      if (key.startsWith('$')) throw new RenderError(`patch directive "${key}" is not supported by the fallback renderer`);
      if (value === null) delete out[key];
      else out[key] = strategicMerge(out[key], value, key);
    }
    return out;
  }
  if (Array.isArray(patch) && Array.isArray(target) && MERGE_KEYS[field] && patch.every(isMapping)) {
    // As kustomize orders a merged list: the patch's items first (each merged with the item of the same
    // key, if any), then the target's items the patch does not name.
    const key = MERGE_KEYS[field];
    const named = new Set(patch.map((p) => p[key]));
    const merged = patch.map((p) => strategicMerge(target.find((t) => isMapping(t) && t[key] === p[key]), p, ''));
    return [...merged, ...target.filter((t) => !(isMapping(t) && named.has(t[key])))];
  }
  return structuredClone(patch);
}

function parseSelector(text, where) {
  return String(text).split(',').map((part) => {
    const m = /^\s*([^=!\s]+)\s*=\s*([^=\s]*)\s*$/.exec(part);
    if (!m) throw new RenderError(`${where}: selector "${part}" is not supported (only key=value terms)`);
    return [m[1], m[2]];
  });
}

function selects(target, object, where) {
  const extra = Object.keys(target).filter((k) => !['kind', 'name', 'namespace', 'labelSelector', 'annotationSelector'].includes(k));
  if (extra.length) throw new RenderError(`${where}: target.${extra[0]} is not supported by the fallback renderer`);
  if (target.kind !== undefined && target.kind !== object.kind) return false;
  if (target.name !== undefined && target.name !== object.metadata.name) return false;
  if (target.namespace !== undefined && target.namespace !== object.metadata.namespace) return false;
  const matchAll = (sel, map) => parseSelector(sel, where).every(([k, v]) => (map ?? {})[k] === v);
  if (target.labelSelector !== undefined && !matchAll(target.labelSelector, object.metadata.labels)) return false;
  if (target.annotationSelector !== undefined && !matchAll(target.annotationSelector, object.metadata.annotations)) return false;
  return true;
}

function applyPatches(dir, file, patches, items) {
  patches.forEach((p, i) => {
    const where = `${file}: patches[${i}]`;
    const extra = Object.keys(p).filter((k) => !['path', 'patch', 'target'].includes(k));
    if (extra.length) throw new RenderError(`${where}: "${extra[0]}" is not supported by the fallback renderer`);
    const text = p.path !== undefined ? readFileSync(resolve(dir, p.path), 'utf8') : p.patch;
    if (typeof text !== 'string') throw new RenderError(`${where}: needs path or patch`);
    const docs = parseManifests(text, p.path ? resolve(dir, p.path) : where);
    if (docs.length !== 1 || !isMapping(docs[0])) {
      throw new RenderError(`${where}: only strategic-merge patches (one mapping) are supported by the fallback renderer, not JSON 6902 lists`);
    }
    const patch = docs[0];
    const matched = items.filter(({ object }) => (p.target
      ? selects(p.target, object, where)
      : object.kind === patch.kind && object.metadata.name === patch.metadata?.name));
    // kustomize: a target that selects nothing is fine (a component may meet no matching Deployment);
    // a patch naming its resource must find it.
    if (matched.length === 0 && !p.target) throw new RenderError(`${where}: no ${patch.kind} named ${patch.metadata?.name} to patch`);
    for (const it of matched) {
      // As kustomize does: with a target, the patch takes on each selected resource's identity.
      const own = { ...patch, apiVersion: it.object.apiVersion, kind: it.object.kind, metadata: { ...patch.metadata, name: it.object.metadata.name } };
      if (it.object.metadata.namespace !== undefined) own.metadata.namespace = it.object.metadata.namespace;
      else delete own.metadata.namespace;
      it.object = strategicMerge(it.object, own);
    }
  });
}

function applyNamespace(namespace, items) {
  for (const it of items) {
    if (!CLUSTER_SCOPED.has(it.object.kind)) it.object.metadata = { ...it.object.metadata, namespace };
  }
}

function applyLabels(file, labels, items) {
  labels.forEach((entry, i) => {
    const extra = Object.keys(entry).filter((k) => k !== 'pairs' && !(k === 'includeSelectors' && entry[k] === false) && !(k === 'includeTemplates' && entry[k] === false));
    if (extra.length) throw new RenderError(`${file}: labels[${i}].${extra[0]} is not supported by the fallback renderer (metadata labels only)`);
    for (const it of items) {
      it.object.metadata = { ...it.object.metadata, labels: { ...(it.object.metadata.labels ?? {}), ...entry.pairs } };
    }
  });
}

function accumulate(dir, items, expectKind, seen) {
  const { file, k } = readKustomization(dir);
  const kind = k.kind ?? 'Kustomization';
  if (kind !== expectKind) throw new RenderError(`${file}: kind ${kind} where a ${expectKind} was expected`);
  for (const entry of k.resources ?? []) {
    const path = resolve(dir, entry);
    if (!existsSync(path)) throw new RenderError(`${file}: resource ${entry} not found`);
    if (statSync(path).isDirectory()) {
      if (seen.has(path)) throw new RenderError(`${file}: ${entry} is included twice`);
      seen.add(path);
      items.push(...buildItems(path, seen));
    } else {
      items.push(...loadResourceFile(path));
    }
  }
  for (const entry of k.components ?? []) accumulate(resolve(dir, entry), items, 'Component', seen);
  items.push(...generateConfigMaps(dir, file, k.configMapGenerator ?? []));
  applyPatches(dir, file, k.patches ?? [], items);
  if (k.namespace !== undefined) applyNamespace(k.namespace, items);
  applyLabels(file, k.labels ?? [], items);
}

function buildItems(dir, seen) {
  const items = [];
  accumulate(dir, items, 'Kustomization', seen);
  return items;
}

/** Every place a pod spec names a ConfigMap (the name-reference rules kustomize applies to workloads). */
function configMapRefs(podSpec) {
  const refs = [];
  for (const v of podSpec.volumes ?? []) {
    if (v.configMap) refs.push(v.configMap);
    for (const s of v.projected?.sources ?? []) if (s.configMap) refs.push(s.configMap);
  }
  for (const c of [...(podSpec.containers ?? []), ...(podSpec.initContainers ?? [])]) {
    for (const e of c.env ?? []) if (e.valueFrom?.configMapKeyRef) refs.push(e.valueFrom.configMapKeyRef);
    for (const e of c.envFrom ?? []) if (e.configMapRef) refs.push(e.configMapRef);
  }
  return refs;
}

function fixNameReferences(items) {
  for (const gen of items.filter((it) => it.generatedFrom)) {
    const ns = gen.object.metadata.namespace;
    for (const { object } of items) {
      const podSpec = object.kind === 'Pod' ? object.spec : object.spec?.template?.spec;
      if (!podSpec || object.metadata.namespace !== ns) continue;
      for (const ref of configMapRefs(podSpec)) if (ref.name === gen.generatedFrom) ref.name = gen.object.metadata.name;
    }
  }
}

function orderKey(object) {
  const first = ORDER_FIRST.indexOf(object.kind);
  const last = ORDER_LAST.indexOf(object.kind);
  return first >= 0 ? first : last >= 0 ? ORDER_FIRST.length + 1 + last : ORDER_FIRST.length;
}

/** Compares two objects the way kustomize's legacy order does: kind rank, then kind, namespace and name. */
export function compareObjects(a, b) {
  const ka = [orderKey(a), `${a.apiVersion}/${a.kind}`, a.metadata?.namespace ?? '', a.metadata?.name ?? ''];
  const kb = [orderKey(b), `${b.apiVersion}/${b.kind}`, b.metadata?.namespace ?? '', b.metadata?.name ?? ''];
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i] < kb[i] ? -1 : 1;
  return 0;
}

/** Renders the kustomization in `dir` to a list of plain objects, in kustomize's output order. */
export function renderKustomization(dir) {
  const items = buildItems(resolve(dir), new Set([resolve(dir)]));
  fixNameReferences(items);
  const objects = items.map((it) => it.object);
  const ids = new Set();
  for (const o of objects) {
    const id = `${o.apiVersion}/${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`;
    if (ids.has(id)) throw new RenderError(`${id} is defined twice`);
    ids.add(id);
  }
  return objects.sort(compareObjects);
}
