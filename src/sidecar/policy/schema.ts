// The policy document (DESIGN.md §1.4): its shape (zod, strict: an unknown key is an error, because a typo
// must not silently widen or narrow access) and the rules a careful author expects to be told about,
// each reported with the field it concerns: `policy.yaml: routes[2].match.methods[0]: "GTE" is not an HTTP method`.
import { z } from 'zod';
import { invalid, type MeshwardError } from '../../errors.js';
import { compileSpiffePattern } from '../../pki/spiffe.js';
import type { SubjectMatch } from './grants.js';
import { HTTP_METHODS, parsePathPattern, type PatternSegment } from './routes.js';

export type Mode = 'enforce' | 'audit';

export interface GrantDoc {
  identities: string[];
  subjects: SubjectMatch[];
  scopes: string[];
}

export interface RouteDoc {
  /** undefined = any method. */
  methods?: string[];
  path: string;
  segments: PatternSegment[];
  /** undefined exactly when the route is public. */
  scope?: string;
}

export interface LimitDoc {
  identities: string[];
  subjects: SubjectMatch[];
  rps: number;
  burst: number;
}

export interface PolicyDocument {
  mode: Mode;
  grants: GrantDoc[];
  routes: RouteDoc[];
  tcp?: { scope: string };
  limits: LimitDoc[];
}

const subjectShape = z.strictObject({ cn: z.string().optional(), ou: z.string().optional() });
const callersShape = {
  identities: z.array(z.string()).optional(),
  subjects: z.array(subjectShape).optional(),
};
const documentShape = z.strictObject({
  mode: z.enum(['enforce', 'audit']).optional(),
  grants: z.array(z.strictObject({ ...callersShape, scopes: z.array(z.string()) })).optional(),
  routes: z
    .array(
      z.strictObject({
        match: z.strictObject({ methods: z.array(z.string()).optional(), path: z.string() }),
        scope: z.string().optional(),
        public: z.boolean().optional(),
      }),
    )
    .optional(),
  tcp: z.strictObject({ scope: z.string() }).optional(),
  limits: z.array(z.strictObject({ ...callersShape, rps: z.number(), burst: z.number().optional() })).optional(),
});
type RawDocument = z.infer<typeof documentShape>;

/** The keys each object may hold, by its path with indexes removed (for "unknown key" messages). */
const KNOWN_KEYS: Record<string, string[]> = {
  '': ['mode', 'grants', 'routes', 'tcp', 'limits'],
  grants: ['identities', 'subjects', 'scopes'],
  'grants.subjects': ['cn', 'ou'],
  routes: ['match', 'scope', 'public'],
  'routes.match': ['methods', 'path'],
  tcp: ['scope'],
  limits: ['identities', 'subjects', 'rps', 'burst'],
  'limits.subjects': ['cn', 'ou'],
};

/** `routes[2].match.methods[0]` from ['routes', 2, 'match', 'methods', 0]. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : `${out === '' ? '' : '.'}${String(part)}`;
  return out;
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

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `"${value}"`;
  return String(value);
}

function zodProblem(issue: z.core.$ZodIssue): string {
  const where = fieldPath(issue.path);
  const at = (text: string) => (where === '' ? text : `${where}: ${text}`);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowed = KNOWN_KEYS[issue.path.filter((p) => typeof p === 'string').join('.')] ?? [];
      return issue.keys
        .map((key) => {
          const near = allowed.find((k) => editDistance(k, key) <= 2);
          const hint = near !== undefined ? `did you mean "${near}"?` : `allowed: ${allowed.join(', ')}`;
          return at(`unknown key "${key}" (${hint})`);
        })
        .join('; ');
    }
    case 'invalid_type': {
      if (issue.input === undefined) return at('is required');
      if (issue.expected === 'number' && typeof issue.input === 'number') return at(`${issue.input} is not a finite number`);
      const expected = issue.expected === 'object' ? 'a mapping' : issue.expected === 'array' ? 'a list' : `a ${issue.expected}`;
      return at(`expected ${expected}, got ${describeValue(issue.input)}`);
    }
    case 'invalid_value':
      return at(`${describeValue(issue.input)} is not one of ${issue.values.join(', ')}`);
    default:
      return at(issue.message);
  }
}

/** Problems found so far, each "field: sentence". */
class Problems {
  readonly list: string[] = [];
  add(path: readonly PropertyKey[], text: string): void {
    this.list.push(`${fieldPath(path)}: ${text}`);
  }
}

/** One error naming the source and every problem (the first few spelled out), on one line. */
export function policyError(source: string, problems: readonly string[]): MeshwardError {
  const shown = problems.slice(0, 5).join(`; `);
  const more = problems.length > 5 ? ` (and ${problems.length - 5} more)` : '';
  return invalid(`${source}: ${shown}${more}`);
}

/** OAuth 2.0 scope-token characters (RFC 6749 §3.3): printable ASCII except space, '"' and '\'. */
const SCOPE_NAME = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

function checkScope(problems: Problems, path: PropertyKey[], scope: string): void {
  if (scope === '') problems.add(path, 'a scope name must not be empty');
  else if (!SCOPE_NAME.test(scope)) {
    problems.add(path, `"${scope}" is not a scope name (printable ASCII without spaces, quotes or backslashes)`);
  }
}

function checkNonEmpty(problems: Problems, path: PropertyKey[], list: readonly unknown[] | undefined): void {
  if (list !== undefined && list.length === 0) problems.add(path, 'must not be an empty list (leave the key out instead)');
}

function checkDuplicates(problems: Problems, path: PropertyKey[], list: readonly string[] | undefined): void {
  if (list === undefined) return;
  const seen = new Set<string>();
  list.forEach((item, i) => {
    if (seen.has(item)) problems.add([...path, i], `"${item}" is listed twice`);
    seen.add(item);
  });
}

function checkCallers(
  problems: Problems,
  path: PropertyKey[],
  entry: { identities?: string[] | undefined; subjects?: { cn?: string | undefined; ou?: string | undefined }[] | undefined },
  what: string,
): { identities: string[]; subjects: SubjectMatch[] } {
  if (entry.identities === undefined && entry.subjects === undefined) {
    problems.add(path, `needs "identities" (SPIFFE ID patterns) or "subjects" ([{cn, ou}]): whom ${what}`);
  }
  checkNonEmpty(problems, [...path, 'identities'], entry.identities);
  checkNonEmpty(problems, [...path, 'subjects'], entry.subjects);
  checkDuplicates(problems, [...path, 'identities'], entry.identities);
  (entry.identities ?? []).forEach((pattern, i) => {
    try {
      compileSpiffePattern(pattern);
    } catch (err) {
      problems.add([...path, 'identities', i], err instanceof Error ? err.message : String(err));
    }
  });
  const subjects: SubjectMatch[] = [];
  (entry.subjects ?? []).forEach((s, i) => {
    const at = [...path, 'subjects', i];
    if (s.cn === undefined && s.ou === undefined) problems.add(at, 'needs cn, ou or both (an empty subject would match every certificate without a SPIFFE ID)');
    if (s.cn === '') problems.add([...at, 'cn'], 'must not be empty');
    if (s.ou === '') problems.add([...at, 'ou'], 'must not be empty');
    const match: SubjectMatch = {};
    if (s.cn !== undefined) match.cn = s.cn;
    if (s.ou !== undefined) match.ou = s.ou;
    subjects.push(match);
  });
  return { identities: entry.identities ?? [], subjects };
}

/**
 * Validates a parsed YAML/JSON policy document and returns it with defaults applied; throws
 * invalid_argument listing every problem, each with its field.
 */
export function validatePolicyDocument(doc: unknown, source: string): PolicyDocument {
  if (doc === null || doc === undefined) throw invalid(`${source}: the policy is empty (it needs at least "routes" or "tcp")`);
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw invalid(`${source}: expected a mapping with mode, grants, routes, tcp and limits, got ${describeValue(doc)}`);
  }
  const parsed = documentShape.safeParse(doc, { reportInput: true });
  if (!parsed.success) throw policyError(source, parsed.error.issues.map(zodProblem));
  const raw: RawDocument = parsed.data;
  const problems = new Problems();

  const granted = new Set<string>();
  const grants: GrantDoc[] = (raw.grants ?? []).map((g, i) => {
    const callers = checkCallers(problems, ['grants', i], g, 'the scopes are granted to');
    if (g.scopes.length === 0) problems.add(['grants', i, 'scopes'], 'must list at least one scope');
    checkDuplicates(problems, ['grants', i, 'scopes'], g.scopes);
    g.scopes.forEach((scope, j) => {
      checkScope(problems, ['grants', i, 'scopes', j], scope);
      granted.add(scope);
    });
    return { ...callers, scopes: g.scopes };
  });

  const checkGranted = (path: PropertyKey[], scope: string) => {
    if (scope !== '' && !granted.has(scope)) {
      problems.add(path, `"${scope}" is not granted by any grant, so nobody could ever pass this check (a typo?)`);
    }
  };

  const routes: RouteDoc[] = (raw.routes ?? []).map((r, i) => {
    const methods = r.match.methods;
    checkNonEmpty(problems, ['routes', i, 'match', 'methods'], methods);
    (methods ?? []).forEach((m, j) => {
      if (HTTP_METHODS.includes(m)) return;
      const upper = m.toUpperCase();
      const hint = HTTP_METHODS.includes(upper) ? ` (methods are upper case: ${upper})` : '';
      problems.add(['routes', i, 'match', 'methods', j], `"${m}" is not an HTTP method${hint}`);
    });
    checkDuplicates(problems, ['routes', i, 'match', 'methods'], methods);
    const segments = parsePathPattern(r.match.path);
    if (typeof segments === 'string') problems.add(['routes', i, 'match', 'path'], segments);
    const isPublic = r.public === true;
    if (isPublic && r.scope !== undefined) {
      problems.add(['routes', i], 'has both "scope" and "public: true": a route is either public or needs a scope');
    } else if (!isPublic && r.scope === undefined) {
      problems.add(['routes', i], 'needs "scope: NAME" or "public: true"');
    }
    if (r.scope !== undefined) {
      checkScope(problems, ['routes', i, 'scope'], r.scope);
      checkGranted(['routes', i, 'scope'], r.scope);
    }
    const route: RouteDoc = { path: r.match.path, segments: typeof segments === 'string' ? [] : segments };
    if (methods !== undefined) route.methods = methods;
    if (!isPublic && r.scope !== undefined) route.scope = r.scope;
    return route;
  });

  if (raw.tcp !== undefined) {
    checkScope(problems, ['tcp', 'scope'], raw.tcp.scope);
    checkGranted(['tcp', 'scope'], raw.tcp.scope);
  }
  if (raw.routes === undefined && raw.tcp === undefined) {
    problems.list.push('has neither "routes" (for HTTP and gRPC apps) nor "tcp" (for tcp:// apps): it would deny everything');
  }

  const limits: LimitDoc[] = (raw.limits ?? []).map((l, i) => {
    const callers = checkCallers(problems, ['limits', i], l, 'the limit applies to');
    if (!(l.rps > 0)) problems.add(['limits', i, 'rps'], `must be greater than 0, got ${l.rps}`);
    let burst = Math.max(1, Math.ceil(l.rps));
    if (l.burst !== undefined) {
      if (!Number.isInteger(l.burst) || l.burst < 1) problems.add(['limits', i, 'burst'], `must be a whole number of at least 1, got ${l.burst}`);
      burst = l.burst;
    }
    return { ...callers, rps: l.rps, burst };
  });

  if (problems.list.length > 0) throw policyError(source, problems.list);
  const document: PolicyDocument = { mode: raw.mode ?? 'enforce', grants, routes, limits };
  if (raw.tcp !== undefined) document.tcp = { scope: raw.tcp.scope };
  return document;
}
