#!/usr/bin/env node
// Regenerates deploy/check/schemas/kubernetes.json, the pinned, strict JSON schemas that `make deploy-check`
// validates every rendered object against. Source: the `kubernetes-types` npm package (TypeScript
// declarations generated from the Kubernetes OpenAPI document), read with the TypeScript compiler API.
// Only the kinds the manifests use, and the types they reach, are written, so the committed file stays small.
//
// Run only to move to another Kubernetes version (the output is committed; the check never needs the package):
//   npm install --prefix /tmp/k8s-types kubernetes-types@1.30.0
//   node deploy/check/generate-schemas.mjs /tmp/k8s-types/node_modules/kubernetes-types
//
// Mapping: an interface becomes an object with `additionalProperties: false` (the API server rejects unknown
// fields with `kubectl apply --validate=strict`, the default since 1.27); a property without `?` is required;
// `number` is an integer (the API conventions forbid floats in these kinds); `Quantity` is a string or a
// number, as YAML lets a user write `cpu: 1`; a literal type such as `apiVersion?: "apps/v1"` is a const;
// `{[name: string]: string}` is a map.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * The kinds deploy/kubernetes renders (the Secrets are created out of band), and every workload kind
 * `meshward inject` writes (its tests validate the output): group-version file and type name.
 */
export const KINDS = [
  { apiVersion: 'v1', kind: 'Namespace', file: 'core/v1' },
  { apiVersion: 'v1', kind: 'ServiceAccount', file: 'core/v1' },
  { apiVersion: 'v1', kind: 'ConfigMap', file: 'core/v1' },
  { apiVersion: 'v1', kind: 'Service', file: 'core/v1' },
  { apiVersion: 'v1', kind: 'PersistentVolumeClaim', file: 'core/v1' },
  { apiVersion: 'apps/v1', kind: 'Deployment', file: 'apps/v1' },
  { apiVersion: 'apps/v1', kind: 'StatefulSet', file: 'apps/v1' },
  { apiVersion: 'apps/v1', kind: 'DaemonSet', file: 'apps/v1' },
  { apiVersion: 'apps/v1', kind: 'ReplicaSet', file: 'apps/v1' },
  { apiVersion: 'batch/v1', kind: 'Job', file: 'batch/v1' },
  { apiVersion: 'batch/v1', kind: 'CronJob', file: 'batch/v1' },
  { apiVersion: 'v1', kind: 'Pod', file: 'core/v1' },
  { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', file: 'networking/v1' },
  { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', file: 'admissionregistration/v1' },
  { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', file: 'policy/v1' },
];

const here = dirname(fileURLToPath(import.meta.url));

function main() {
  const root = process.argv[2];
  if (!root) {
    console.error('usage: node deploy/check/generate-schemas.mjs PATH/TO/node_modules/kubernetes-types');
    process.exit(2);
  }
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const sources = new Map(); // module path ("core/v1") -> ts.SourceFile
  const load = (mod) => {
    if (!sources.has(mod)) {
      const text = readFileSync(join(root, `${mod}.d.ts`), 'utf8');
      sources.set(mod, ts.createSourceFile(`${mod}.d.ts`, text, ts.ScriptTarget.Latest, true));
    }
    return sources.get(mod);
  };
  const definitions = {};
  const pending = [];
  const ref = (mod, name) => {
    const id = `${mod.replaceAll('/', '.')}.${name}`;
    if (!(id in definitions)) {
      definitions[id] = null;
      pending.push({ mod, name, id });
    }
    return { $ref: `#/definitions/${id}` };
  };

  /** Where a name used in module `mod` is declared: the module itself or the one it imports it from. */
  const resolveName = (mod, name) => {
    const sf = load(mod);
    for (const st of sf.statements) {
      if (ts.isImportDeclaration(st) && st.importClause?.namedBindings && ts.isNamedImports(st.importClause.namedBindings)) {
        for (const el of st.importClause.namedBindings.elements) {
          if (el.name.text === name) {
            const from = st.moduleSpecifier.text;
            return { mod: relative(root, resolve(root, dirname(mod), from)).replaceAll('\\', '/'), name: (el.propertyName ?? el.name).text };
          }
        }
      }
    }
    return { mod, name };
  };

  const typeSchema = (mod, node) => {
    switch (node.kind) {
      case ts.SyntaxKind.StringKeyword: return { type: 'string' };
      case ts.SyntaxKind.NumberKeyword: return { type: 'integer' };
      case ts.SyntaxKind.BooleanKeyword: return { type: 'boolean' };
      case ts.SyntaxKind.AnyKeyword:
      case ts.SyntaxKind.UnknownKeyword: return {};
      case ts.SyntaxKind.LiteralType:
        if (ts.isStringLiteral(node.literal)) return { type: 'string', enum: [node.literal.text] };
        throw new Error(`unsupported literal ${node.getText()}`);
      case ts.SyntaxKind.ArrayType: return { type: 'array', items: typeSchema(mod, node.elementType) };
      case ts.SyntaxKind.UnionType: return { anyOf: node.types.map((t) => typeSchema(mod, t)) };
      case ts.SyntaxKind.ParenthesizedType: return typeSchema(mod, node.type);
      case ts.SyntaxKind.TypeLiteral: {
        const index = node.members.find(ts.isIndexSignatureDeclaration);
        if (!index || node.members.length !== 1) throw new Error(`unsupported type literal ${node.getText()}`);
        return { type: 'object', additionalProperties: typeSchema(mod, index.type) };
      }
      case ts.SyntaxKind.TypeReference: {
        const name = node.typeName.getText();
        if (name === 'Array') return { type: 'array', items: typeSchema(mod, node.typeArguments[0]) };
        const target = resolveName(mod, name);
        return ref(target.mod, target.name);
      }
      default:
        throw new Error(`unsupported type ${ts.SyntaxKind[node.kind]}: ${node.getText()}`);
    }
  };

  const declare = ({ mod, name, id }) => {
    const sf = load(mod);
    const decl = sf.statements.find((st) => (ts.isInterfaceDeclaration(st) || ts.isTypeAliasDeclaration(st)) && st.name.text === name);
    if (!decl) throw new Error(`${name} not found in ${mod}.d.ts`);
    if (ts.isTypeAliasDeclaration(decl)) {
      // Quantity: a string ("100m", "64Mi") or a plain number in YAML.
      definitions[id] = name === 'Quantity' ? { anyOf: [{ type: 'string' }, { type: 'number' }] } : typeSchema(mod, decl.type);
      return;
    }
    const properties = {};
    const required = [];
    for (const member of decl.members) {
      if (!ts.isPropertySignature(member)) throw new Error(`unsupported member in ${name}`);
      const prop = member.name.getText();
      properties[prop] = typeSchema(mod, member.type);
      if (!member.questionToken) required.push(prop);
    }
    // kubernetes-types@1.30.0 drops the fields RuleWithOperations inherits from Rule in the OpenAPI
    // document (`resources`, `scope`: the API reference lists them, the API server requires resources);
    // without them every webhook rule would be refused. Put them back.
    if (name === 'RuleWithOperations') {
      properties.resources ??= { type: 'array', items: { type: 'string' } };
      properties.scope ??= { type: 'string' };
    }
    const schema = { type: 'object', properties, additionalProperties: false };
    if (required.length) schema.required = required;
    if (name === 'RawExtension' || name === 'FieldsV1') {
      // Free-form by design: an embedded object, a managed-fields set.
      definitions[id] = { type: 'object' };
      return;
    }
    definitions[id] = schema;
  };

  const kinds = {};
  for (const k of KINDS) kinds[`${k.apiVersion}/${k.kind}`] = ref(k.file, k.kind).$ref.slice('#/definitions/'.length);
  while (pending.length) declare(pending.shift());

  const out = {
    $comment: `Generated by deploy/check/generate-schemas.mjs from ${pkg.name}@${pkg.version}; do not edit.`,
    source: `${pkg.name}@${pkg.version}`,
    kinds,
    definitions: Object.fromEntries(Object.keys(definitions).sort().map((k) => [k, definitions[k]])),
  };
  const file = join(here, 'schemas', 'kubernetes.json');
  writeFileSync(file, `${JSON.stringify(out, null, 1)}\n`);
  console.log(`wrote ${relative(process.cwd(), file)}: ${Object.keys(kinds).length} kinds, ${Object.keys(definitions).length} definitions from ${out.source}`);
}

main();
