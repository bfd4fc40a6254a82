// Every YAML file meshward reads goes through here: read, parse (duplicate keys and alias bombs refused),
// validate with a zod schema whose objects are strict (an unknown key is an error: a typo must not
// silently change behaviour), and report every problem the same way, on one line:
//
//   FILE: field.path: what is wrong and what to do
//   sidecar.yaml: inbound.lisen: unknown field (did you mean "listen"?); valid fields here: listen, app
//   policy.yaml: routes[0].match.methods[0]: "GTE" is not an HTTP method; routes[1]: needs "scope: NAME" or "public: true"
//
// How to use it for a new file:
//
//   const KEY_FILE = new ConfigFile(keyFileSchema, { what: 'the API key file' });   // once, at module level
//   const keys = KEY_FILE.load(path);           // read + parse + validate; throws a MeshwardError
//   const keys = KEY_FILE.parse(text, path);    // text read earlier (kept to notice changes on reload)
//   const creds = CREDENTIALS.validate(doc.credentials, { file: 'sidecar.yaml', at: ['credentials'] });
//
// - The schema carries its own sentences: give each leaf an `error` ("must be HOST:PORT, e.g. …"), use
//   `z.strictObject` everywhere, and put cross-field rules in `.superRefine()`/`.transform()` adding
//   issues with a `path`. Start those with `if (ctx.issues.length > 0) return`: zod runs them even after
//   an unknown key, and a rule about a misspelled document only adds noise. Unknown keys, missing fields
//   ("is required"), wrong types ("expected a list, got a mapping") and enum values are worded here
//   when the schema says nothing.
// - `validate` is for a structure inside another file (the sidecar's inline `policy:`): `at` is where it
//   sits, so its problems read `sidecar.yaml: policy.routes[0].scope: …`.
// - Problems found after the schema (compiling, cross-file checks) use `configError(source, problems)`
//   so they read the same.
// - Errors are MeshwardErrors: `invalid_argument` for content, `not_found` / `permission_denied` /
//   `unavailable` for reading, unless `code` says otherwise (`usage` makes the CLI exit 2).
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { MeshwardError, type ErrorCode } from './errors.js';

/** Where a document came from: the file as the user named it and, for a section of it, the field holding it. */
export interface ConfigSource {
  readonly file: string;
  readonly at?: readonly (string | number)[];
}

/** One problem: the field (path inside the document) and the sentence. An empty path is the whole document. */
export interface ConfigProblem {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

export interface ConfigFileOptions {
  /** What the file is, for "cannot read …" messages: 'the policy file', 'the CA settings'. */
  what: string;
  /** What to do when the file does not exist: 'pass an existing file to --config'. */
  ifMissing?: string;
  /** The code of every error about this file, reading included. Default: see the header. */
  code?: ErrorCode;
}

/** At most this many problems are spelled out; the rest are counted. */
const MAX_SHOWN = 5;

/** A kind of configuration file: its schema and how its errors are worded. */
export class ConfigFile<S extends z.ZodType> {
  constructor(
    readonly schema: S,
    readonly options: ConfigFileOptions,
  ) {}

  /** Reads, parses and validates the file at `path`; messages name it `name` (default: the path). */
  load(path: string, name: string = path): z.output<S> {
    return this.parse(this.read(path), name);
  }

  /** Like load, but undefined when the file does not exist (an optional file such as D/kubernetes.yaml). */
  loadIfPresent(path: string, name: string = path): z.output<S> | undefined {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw this.readError(path, err);
    }
    return this.parse(text, name);
  }

  /** The file's text, or an error naming the path, the reason and what to do. */
  read(path: string): string {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw this.readError(path, err);
    }
  }

  /** Parses YAML text and validates it. */
  parse(text: string, file: string): z.output<S> {
    return this.validate(parseYaml(text, file, this.options.code), file);
  }

  /** Validates a document already parsed (an inline section of another file, a test's object). */
  validate(doc: unknown, source: ConfigSource | string): z.output<S> {
    const src = toSource(source);
    // An empty file (or `section:` with nothing after it) is an empty mapping: its required fields say what is missing.
    const value = doc ?? {};
    if (typeof value !== 'object' || Array.isArray(value)) {
      const fields = fieldsAt(this.schema, []);
      const valid = fields === undefined ? '' : ` (fields: ${fields.join(', ')})`;
      throw configError(src, [{ path: [], message: `must be a YAML mapping${valid}, got ${describeValue(value)}` }], this.options.code);
    }
    const result = this.schema.safeParse(value, { error: defaultMessage });
    if (result.success) return result.data;
    throw configError(src, result.error.issues.flatMap((issue) => problemsOf(this.schema, issue)), this.options.code);
  }

  private readError(path: string, err: unknown): MeshwardError {
    const errno = (err as NodeJS.ErrnoException).code;
    const [code, advice]: [ErrorCode, string] =
      errno === 'ENOENT'
        ? ['not_found', `no such file${this.options.ifMissing === undefined ? '' : `; ${this.options.ifMissing}`}`]
        : errno === 'EACCES'
          ? ['permission_denied', 'permission denied; run as its owner or fix its mode']
          : errno === 'EISDIR'
            ? ['invalid_argument', 'it is a directory; name a file']
            : ['unavailable', (err as Error).message];
    return new MeshwardError(this.options.code ?? code, `${path}: cannot read ${this.options.what} (${errno ?? 'error'}): ${advice}`);
  }
}

/**
 * One error for problems found in a document: "FILE: path: sentence; path: sentence" on one line.
 * For checks made after the schema, so that every refusal about a file reads the same.
 */
export function configError(source: ConfigSource | string, problems: readonly ConfigProblem[], code: ErrorCode = 'invalid_argument'): MeshwardError {
  const src = toSource(source);
  const lines = problems.map((p) => {
    const field = fieldPath([...(src.at ?? []), ...p.path]);
    return field === '' ? p.message : `${field}: ${p.message}`;
  });
  const shown = lines.slice(0, MAX_SHOWN).join('; ');
  const more = lines.length > MAX_SHOWN ? ` (and ${lines.length - MAX_SHOWN} more)` : '';
  return new MeshwardError(code, `${src.file}: ${shown}${more}`);
}

/** `routes[2].match.methods[0]` from ['routes', 2, 'match', 'methods', 0]. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : `${out === '' ? '' : '.'}${String(part)}`;
  return out;
}

function toSource(source: ConfigSource | string): ConfigSource {
  return typeof source === 'string' ? { file: source } : source;
}

function parseYaml(text: string, file: string, code: ErrorCode | undefined): unknown {
  const document = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  const problem = document.errors[0];
  if (problem !== undefined) {
    const line = problem.linePos?.[0]?.line;
    const message = problem.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new MeshwardError(code ?? 'invalid_argument', `${file}${line !== undefined ? `:${line}` : ''}: not valid YAML: ${message}`);
  }
  let doc: unknown;
  try {
    // Aliases are expanded at most 100 times: a "billion laughs" document cannot exhaust memory.
    doc = document.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // yaml throws a plain ReferenceError ("Excessive alias count indicates a resource exhaustion attack").
    throw new MeshwardError(code ?? 'invalid_argument', `${file}: not valid YAML: ${(err as Error).message}; expand the aliases`);
  }
  const proto = protoKeyPath(doc);
  if (proto !== undefined) throw configError(file, [{ path: proto, message: 'is not a name meshward accepts ("__proto__")' }], code);
  return doc;
}

/**
 * The path of the first "__proto__" mapping key, if any. yaml makes it an own property, but zod's records
 * skip it (and assigning it elsewhere would set a prototype): refused here, so no file loses an entry
 * without a word.
 */
function protoKeyPath(doc: unknown): PropertyKey[] | undefined {
  const stack: [unknown, PropertyKey[]][] = [[doc, []]];
  while (stack.length > 0) {
    const [value, path] = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (Array.isArray(value)) {
      value.forEach((v, i) => stack.push([v, [...path, i]]));
      continue;
    }
    if (Object.hasOwn(value, '__proto__')) return [...path, '__proto__'];
    for (const [k, v] of Object.entries(value)) stack.push([v, [...path, k]]);
  }
  return undefined;
}

/** The problems one zod issue stands for (an unknown-keys issue names each key). */
function problemsOf(schema: z.ZodType, issue: z.core.$ZodIssue): ConfigProblem[] {
  if (issue.code !== 'unrecognized_keys') return [{ path: issue.path, message: issue.message }];
  const valid = fieldsAt(schema, issue.path) ?? [];
  return issue.keys.map((key) => {
    const near = nearest(key, valid);
    const hint = near === undefined ? '' : ` (did you mean "${near}"?)`;
    return { path: [...issue.path, key], message: `unknown field${hint}; valid fields here: ${valid.join(', ')}` };
  });
}

/** The words for an issue the schema gave no sentence of its own. */
function defaultMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.input === undefined) return 'is required';
      if (issue.expected === 'number' && typeof issue.input === 'number') return `${issue.input} is not a finite number`;
      const expected = issue.expected === 'object' ? 'a mapping' : issue.expected === 'array' ? 'a list' : `a ${issue.expected}`;
      return `expected ${expected}, got ${describeValue(issue.input)}`;
    }
    case 'invalid_value':
      return `${describeValue(issue.input)} is not one of ${issue.values.join(', ')}`;
    default:
      return undefined; // zod's own sentence
  }
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `"${value}"`;
  return String(value);
}

/**
 * The fields the schema allows in the mapping at `path`, or undefined when there is no mapping there.
 * Follows zod's definitions (zod documents `_zod.def` for library authors): wrappers to what they wrap,
 * arrays to their element, records to their value, unions to their first mapping.
 */
function fieldsAt(schema: z.core.$ZodType, path: readonly PropertyKey[]): string[] | undefined {
  const at = (s: z.core.$ZodType, i: number): string[] | undefined => {
    const def = s._zod.def as unknown as Record<string, unknown> & { type: string };
    switch (def.type) {
      case 'object': {
        const shape = def.shape as Record<string, z.core.$ZodType>;
        if (i === path.length) return Object.keys(shape);
        const next = shape[String(path[i])];
        return next === undefined ? undefined : at(next, i + 1);
      }
      case 'array':
        return i === path.length ? undefined : at(def.element as z.core.$ZodType, i + 1);
      case 'record':
        return i === path.length ? undefined : at(def.valueType as z.core.$ZodType, i + 1);
      case 'union':
        for (const option of def.options as z.core.$ZodType[]) {
          const found = at(option, i);
          if (found !== undefined) return found;
        }
        return undefined;
      case 'pipe':
        return at(def.in as z.core.$ZodType, i);
      case 'lazy':
        return at((def.getter as () => z.core.$ZodType)(), i);
      default:
        return def.innerType === undefined ? undefined : at(def.innerType as z.core.$ZodType, i);
    }
  };
  return at(schema, 0);
}

/** The valid field closest to a misspelled one (at most two edits away), for "did you mean". */
function nearest(key: string, valid: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of valid) {
    const d = editDistance(k, key);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}
