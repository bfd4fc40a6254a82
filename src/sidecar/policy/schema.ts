// The policy document (docs/policy.md): its shape (zod, strict: an unknown key is an error, because a typo
// must not silently widen or narrow access) and the rules a careful author expects to be told about,
// each reported with the field it concerns: `policy.yaml: routes[2].match.methods[0]: "GTE" is not an HTTP method`.
import { z } from 'zod';
import { ConfigFile } from '../../config-file.js';
import { compileSpiffePattern } from '../../pki/spiffe.js';
import { KEY_ID_FORMAT } from '../../auth/api-key.js';
import type { SubjectMatch } from './grants.js';
import { HTTP_METHODS, parsePathPattern, type PatternSegment } from './routes.js';

export type Mode = 'enforce' | 'audit';

export interface GrantDoc {
  identities: string[];
  subjects: SubjectMatch[];
  scopes: string[];
}

/** The proofs a route may require (docs/policy.md, "Credentials"). */
export const CREDENTIAL_KINDS = ['mtls', 'apikey', 'hmac', 'jwt'] as const;
export type ProofKind = (typeof CREDENTIAL_KINDS)[number];

export interface RouteDoc {
  /** undefined = any method. */
  methods?: string[];
  path: string;
  segments: PatternSegment[];
  /** undefined exactly when the route is public. */
  scope?: string;
  /** Alternatives, each a list of proofs that must all hold; undefined = the default [[mtls]]. */
  require?: ProofKind[][];
}

export interface LimitDoc {
  identities: string[];
  /** API key ids named as `apikey:<id>` in identities. */
  apiKeys: string[];
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
        require: z.union([z.array(z.string()), z.strictObject({ anyOf: z.array(z.array(z.string())) })], {
          error: 'must be a list of proofs (e.g. [mtls, apikey]) or {anyOf: [[jwt], [apikey]]}',
        }).optional(),
      }),
    )
    .optional(),
  tcp: z.strictObject({ scope: z.string() }).optional(),
  limits: z.array(z.strictObject({ ...callersShape, rps: z.number(), burst: z.number().optional() })).optional(),
});
type RawDocument = z.infer<typeof documentShape>;

/** Adds "field: sentence" problems to the document being validated. */
type Problems = { add(path: readonly PropertyKey[], text: string): void };

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

/** A route's `require`: every kind known, no alternative empty or repeating a kind, no alternative twice. */
function checkedRequire(problems: Problems, path: PropertyKey[], raw: string[] | { anyOf: string[][] }): ProofKind[][] {
  const alternatives = Array.isArray(raw) ? [raw] : raw.anyOf;
  const at = (i: number): PropertyKey[] => (Array.isArray(raw) ? path : [...path, 'anyOf', i]);
  if (alternatives.length === 0) problems.add([...path, 'anyOf'], 'must list at least one alternative');
  const seen = new Set<string>();
  return alternatives.map((alt, i) => {
    if (alt.length === 0) problems.add(at(i), 'must name at least one proof (mtls, apikey, hmac, jwt)');
    checkDuplicates(problems, at(i), alt);
    alt.forEach((kind, j) => {
      if (!(CREDENTIAL_KINDS as readonly string[]).includes(kind)) problems.add([...at(i), j], `"${kind}" is not a proof: use mtls, apikey, hmac or jwt`);
    });
    const key = [...alt].sort().join(',');
    if (seen.has(key)) problems.add(at(i), 'repeats an earlier alternative');
    seen.add(key);
    return alt as ProofKind[];
  });
}

/**
 * The rules beyond the shape, on a document whose shape is valid: every problem is reported with its
 * field. Returns the document with defaults applied.
 */
function checkedDocument(raw: RawDocument, problems: Problems): PolicyDocument {
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
    if (r.require !== undefined) {
      const require = checkedRequire(problems, ['routes', i, 'require'], r.require);
      // [mtls] is the default: kept implicit so such routes take the unchanged mTLS-only path.
      if (!(require.length === 1 && require[0]!.length === 1 && require[0]![0] === 'mtls')) route.require = require;
    }
    if (methods !== undefined) route.methods = methods;
    if (!isPublic && r.scope !== undefined) route.scope = r.scope;
    return route;
  });

  if (raw.tcp !== undefined) {
    checkScope(problems, ['tcp', 'scope'], raw.tcp.scope);
    checkGranted(['tcp', 'scope'], raw.tcp.scope);
  }
  if (raw.routes === undefined && raw.tcp === undefined) {
    problems.add([], 'has neither "routes" (for HTTP and gRPC apps) nor "tcp" (for tcp:// apps): it would deny everything');
  }

  const limits: LimitDoc[] = (raw.limits ?? []).map((l, i) => {
    // `apikey:<id>` entries name API keys (their principals); the rest are SPIFFE ID patterns.
    const apiKeys: string[] = [];
    const identities: string[] = [];
    (l.identities ?? []).forEach((entry, j) => {
      if (!entry.startsWith('apikey:')) return identities.push(entry);
      const id = entry.slice('apikey:'.length);
      if (!KEY_ID_FORMAT.test(id)) problems.add(['limits', i, 'identities', j], `"${entry}": an API key principal is apikey: and a 12-character key id`);
      apiKeys.push(id);
    });
    const named = l.identities === undefined ? l : { ...l, identities };
    const callers = apiKeys.length > 0 && identities.length === 0 && l.subjects === undefined
      ? { identities: [], subjects: [] }
      : checkCallers(problems, ['limits', i], named, 'the limit applies to');
    if (!(l.rps > 0)) problems.add(['limits', i, 'rps'], `must be greater than 0, got ${l.rps}`);
    let burst = Math.max(1, Math.ceil(l.rps));
    if (l.burst !== undefined) {
      if (!Number.isInteger(l.burst) || l.burst < 1) problems.add(['limits', i, 'burst'], `must be a whole number of at least 1, got ${l.burst}`);
      burst = l.burst;
    }
    return { ...callers, apiKeys, rps: l.rps, burst };
  });

  const document: PolicyDocument = { mode: raw.mode ?? 'enforce', grants, routes, limits };
  if (raw.tcp !== undefined) document.tcp = { scope: raw.tcp.scope };
  return document;
}

/** Policy files: read, parsed and validated, every problem named with its field (invalid_argument). */
export const POLICY_FILE = new ConfigFile(
  documentShape.transform((raw, ctx) => {
    // zod runs this even after an unknown key; the rules below assume a document of the right shape.
    if (ctx.issues.length > 0) return z.NEVER;
    return checkedDocument(raw, { add: (path, message) => ctx.addIssue({ code: 'custom', path: [...path], message }) });
  }),
  { what: 'the policy file' },
);
