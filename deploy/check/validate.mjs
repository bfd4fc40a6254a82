// Validates rendered Kubernetes objects offline against the pinned schemas in schemas/kubernetes.json
// (generated from kubernetes-types by generate-schemas.mjs). Strict like `kubectl apply --validate=strict`:
// an unknown field, a wrong type or a missing required field is a problem, named by its path in the object.
// The validator covers the JSON Schema keywords that file uses: type, properties, additionalProperties,
// required, items, enum, anyOf, $ref.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const SCHEMA_FILE = join(here, 'schemas', 'kubernetes.json');

/** DNS-1123 subdomain: what the API server requires of most object names. */
const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function loadSchemas(file = SCHEMA_FILE) {
  return JSON.parse(readFileSync(file, 'utf8'));
}

function typeOf(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function describe(schema, schemas) {
  const s = resolveRef(schema, schemas);
  if (s.anyOf) return s.anyOf.map((b) => describe(b, schemas)).join(' or ');
  if (s.enum) return s.enum.map((e) => JSON.stringify(e)).join(' or ');
  return s.type ?? 'any value';
}

function resolveRef(schema, schemas) {
  let s = schema;
  while (s.$ref) {
    const id = s.$ref.replace('#/definitions/', '');
    s = schemas.definitions[id];
    if (!s) throw new Error(`schema reference ${id} is missing from ${SCHEMA_FILE}`);
  }
  return s;
}

function check(value, schema, path, schemas, problems) {
  const s = resolveRef(schema, schemas);
  if (s.anyOf) {
    const ok = s.anyOf.some((branch) => {
      const sub = [];
      check(value, branch, path, schemas, sub);
      return sub.length === 0;
    });
    if (!ok) problems.push(`${path}: expected ${describe(s, schemas)}, got ${typeOf(value)} ${JSON.stringify(value)}`);
    return;
  }
  if (s.type) {
    const actual = typeOf(value);
    const matches = actual === s.type || (s.type === 'number' && actual === 'integer');
    if (!matches) {
      problems.push(`${path}: expected ${s.type}, got ${actual}${actual === 'object' || actual === 'array' ? '' : ` ${JSON.stringify(value)}`}`);
      return;
    }
  }
  if (s.enum && !s.enum.includes(value)) {
    problems.push(`${path}: must be ${describe(s, schemas)}, got ${JSON.stringify(value)}`);
    return;
  }
  if (s.type === 'array' && s.items) {
    value.forEach((v, i) => check(v, s.items, `${path}[${i}]`, schemas, problems));
  }
  if (s.type === 'object') {
    const properties = s.properties ?? {};
    for (const req of s.required ?? []) {
      if (value[req] === undefined) problems.push(`${path}: missing required field "${req}"`);
    }
    for (const [key, v] of Object.entries(value)) {
      const sub = path === '' ? key : `${path}.${key}`;
      if (key in properties) {
        // null is how YAML spells "unset" (`key:` with nothing after it); the API server drops it.
        if (v !== null) check(v, properties[key], sub, schemas, problems);
      } else if (s.additionalProperties === false) {
        const allowed = Object.keys(properties);
        problems.push(`${sub}: unknown field "${key}"${allowed.length ? ` (allowed here: ${allowed.join(', ')})` : ''}`);
      } else if (s.additionalProperties && typeof s.additionalProperties === 'object') {
        check(v, s.additionalProperties, sub, schemas, problems);
      }
    }
  }
}

/** "Deployment meshward-example/orders" or "Namespace meshward-system". */
export function objectLabel(object) {
  const ns = object?.metadata?.namespace;
  return `${object?.kind ?? '(no kind)'} ${ns ? `${ns}/` : ''}${object?.metadata?.name ?? '(no name)'}`;
}

/** Problems with one object, each a sentence starting with the object's kind and name; [] when valid. */
export function validateObject(object, schemas = loadSchemas()) {
  const label = objectLabel(object);
  if (typeOf(object) !== 'object') return [`${label}: not a mapping`];
  const id = schemas.kinds[`${object.apiVersion}/${object.kind}`];
  if (!id) {
    return [`${label}: no pinned schema for apiVersion ${object.apiVersion} kind ${object.kind} (pinned: ${Object.keys(schemas.kinds).join(', ')}); add it to KINDS in deploy/check/generate-schemas.mjs and regenerate`];
  }
  const problems = [];
  const name = object.metadata?.name;
  if (typeof name !== 'string' || name === '') problems.push('metadata.name: missing required field "name"');
  else if (name.length > 253 || !NAME.test(name)) problems.push(`metadata.name: "${name}" is not a valid name (lowercase letters, digits, "-" and ".", at most 253 characters)`);
  check(object, { $ref: `#/definitions/${id}` }, '', schemas, problems);
  return problems.map((p) => `${label}: ${p}`);
}

/** Every problem in a list of objects. */
export function validateObjects(objects, schemas = loadSchemas()) {
  return objects.flatMap((o) => validateObject(o, schemas));
}
