// The policy engine: a policy document compiled once per load into lookup tables, then asked per
// connection (principal: which scopes and which rate limit a caller has) and per request (decide:
// normalize → first matching route → scope → rate limit). Pure apart from loadPolicyFile; time is passed in.
import { configError, type ConfigProblem, type ConfigSource } from '../../config-file.js';
import { CallerMatcher, grantedScopes, type Grant } from './grants.js';
import type { Accepted, AuthVerdict, CredentialKind, RefusalReason, Refused } from '../../auth/verdict.js';
import { DEFAULT_MAX_BUCKETS, TokenBuckets } from './limits.js';
import { newPathScratch, normalizePath, queryAcceptable } from './normalize.js';
import { RouteTable, methodBucket, methodMask } from './routes.js';
import { POLICY_FILE, type Mode, type PolicyDocument, type ProofKind } from './schema.js';

/** The challenge of a 401 for a route that needs a client certificate the connection did not present. */
export const MTLS_CHALLENGE = 'MutualTLS realm="meshward"';

/** "API key 3kTz9QpLm2Xa", "the client certificate (spiffe://…)": who lacked a scope, for the 403. */
function describeProof(kind: ProofKind, p: Principal, verdicts: Verdicts): string {
  if (kind === 'mtls') return `the client certificate (${p.id})`;
  const v = verdicts[kind] as Accepted;
  if (kind === 'jwt') return `the JWT (${v.principal})`;
  return `${kind === 'hmac' ? 'HMAC key' : 'API key'} ${v.keyId}`;
}

export type { Mode } from './schema.js';

/** Who a connection's peer is, as far as policy cares (Identity in ../tls/identity.ts extends it). */
export interface Subject {
  spiffeId?: string;
  cn?: string;
  ou: readonly string[];
  /** spiffeId ?? the subject string. */
  id: string;
  /** A connection without a client certificate (inbound.clientCertificate: optional). */
  anonymous?: true;
}

/** The Subject of a connection without a client certificate: no mTLS identity, no granted scopes. */
export const ANONYMOUS: Subject = Object.freeze({ id: 'anonymous', ou: Object.freeze([]) as readonly string[], anonymous: true as const });

export interface Principal {
  readonly id: string;
  readonly scopes: ReadonlySet<string>;
  /** Granted scopes, sorted, space-separated (the x-mesh-scopes header). */
  readonly scopeHeader: string;
  /** No client certificate: only routes whose `require` can be met without mtls are open to it. */
  readonly anonymous?: boolean;
}

/** What decide() hands back for a route with `require`: the gate checks these proofs, then calls authorize(). */
export interface PendingProofs {
  /** Index into the policy's routes. */
  readonly route: number;
  /** The credential kinds (besides mtls) any alternative needs: each is checked once. */
  readonly kinds: readonly CredentialKind[];
  /** An alternative needs an HMAC signature: the body must be read to check Content-Digest. */
  readonly hmac: boolean;
}

export interface Decision {
  /** What the sidecar does now (audit mode: true except for status 400). */
  allow: boolean;
  /** What enforce mode answers (200 = allowed). */
  status: 200 | 400 | 401 | 403 | 429;
  /** True when enforce mode would deny. */
  wouldDeny: boolean;
  /** A sentence: "missing scope orders:write", "no route matches DELETE /orders/1", … */
  reason: string;
  /** The rule that decided: "routes[1]", "no-route", "limits[0]", "path", "tcp". */
  rule: string;
  /** Normalized path plus the original query: what the app receives; "" when rejected. */
  target: string;
  /** The scope the deciding rule required. */
  scope?: string;
  /** Set by decide() when the route requires API credentials: not final until authorize() has run. */
  pending?: PendingProofs;
  /** 401: the WWW-Authenticate challenges to send. */
  challenges?: string[];
  /** 401 after authorize(): the refusal reason of the credential (docs/api-credentials.md, "Refusals"). */
  refusal?: RefusalReason;
  /** 401/403 after authorize(): which proof was refused or lacked the scope (mtls, apikey, hmac, jwt). */
  credential?: ProofKind;
  /** After authorize() allowed: x-mesh-principal and x-mesh-scopes for the app, and the API key id (audit lines). */
  principals?: string;
  scopes?: string;
  keyId?: string;
}

/** The verdicts of the credentials a route's alternatives name (those the request did not need are absent). */
export type Verdicts = Partial<Record<CredentialKind, AuthVerdict>>;

/** What an admitted alternative's proofs put in the headers for the app and in audit lines. */
interface AdmittedProofs {
  readonly principals: string;
  readonly scopes: string;
  readonly keyId: string | undefined;
}

/** One level of Policy.admitted()'s memo (WeakMaps by caller or scopes array, Maps by principal string). */
type MemoLevel = WeakMap<object, MemoLevel> | Map<string, MemoLevel> | AdmittedProofs;

/** The memo's caller slot for an alternative without mtls (the certificate plays no part then). */
const NO_CALLER = Object.freeze({});

/** A scopes array is a key's or a token's own; more principals under one means arrays are being shared: start over. */
const MAX_PRINCIPALS_PER_SCOPES = 64;

function computeAdmitted(alternative: readonly ProofKind[], p: Principal, verdicts: Verdicts): AdmittedProofs {
  let scopes: string[] | undefined;
  const principals: string[] = [];
  let keyId: string | undefined;
  for (const kind of alternative) {
    const held = kind === 'mtls' ? [...p.scopes] : (verdicts[kind] as Accepted).scopes;
    scopes = scopes === undefined ? [...held] : scopes.filter((s) => held.includes(s));
    const name = kind === 'mtls' ? p.id : (verdicts[kind] as Accepted).principal;
    if (!principals.includes(name)) principals.push(name);
    keyId ??= kind === 'mtls' ? undefined : (verdicts[kind] as Accepted).keyId;
  }
  return Object.freeze({ principals: principals.join(' '), scopes: (scopes ?? []).sort().join(' '), keyId });
}

/**
 * A principal as this policy computed it: scopes as a lookup by scope number, and its limit. The internals
 * are non-enumerable so that logging or serializing a principal shows only id, scopes and scopeHeader.
 */
class CompiledPrincipal implements Principal {
  declare readonly owner: Policy;
  /** holds[n] = 1 when the scope numbered n is granted. */
  declare readonly holds: Uint8Array;
  /** Index of the first matching limits entry, or -1. */
  declare readonly limit: number;
  declare readonly anonymous: boolean;

  constructor(
    owner: Policy,
    readonly id: string,
    readonly scopes: ReadonlySet<string>,
    readonly scopeHeader: string,
    holds: Uint8Array,
    limit: number,
    anonymous = false,
  ) {
    Object.defineProperties(this, { owner: { value: owner }, holds: { value: holds }, limit: { value: limit }, anonymous: { value: anonymous } });
  }
}

interface CompiledRoute {
  rule: string;
  /** Scope number (index into scopeNames), or -1 for a public route. */
  scope: number;
  scopeName?: string;
  denyReason: string;
  allowReason: string;
  require?: ProofKind[][];
  pending?: PendingProofs;
}

interface CompiledLimit {
  rule: string;
  callers: CallerMatcher;
  /** API key ids named `apikey:<id>`. */
  apiKeys: ReadonlySet<string>;
  /** Replaced by the previous policy's table when this entry did not change (carryRateLimitsFrom). */
  buckets: TokenBuckets;
  reason: string;
  /** What the entry says (callers, rps, burst): equal keys are the same rule, wherever it sits in the list. */
  key: string;
}

export class Policy {
  readonly mode: Mode;
  private readonly grants: Grant[];
  private readonly scopeNumbers = new Map<string, number>();
  private readonly routes: CompiledRoute[];
  private readonly table: RouteTable;
  private readonly tcpScope: number;
  private readonly tcpScopeName: string | undefined;
  private readonly limits: CompiledLimit[];
  private readonly scratch = newPathScratch();

  /** Use compilePolicy: the document must have been validated. */
  private constructor(
    doc: PolicyDocument,
    readonly source: ConfigSource | string,
  ) {
    this.mode = doc.mode;
    this.grants = doc.grants.map((g) => ({ callers: new CallerMatcher(g.identities, g.subjects), scopes: g.scopes }));
    for (const g of doc.grants) for (const s of g.scopes) if (!this.scopeNumbers.has(s)) this.scopeNumbers.set(s, this.scopeNumbers.size);
    this.routes = doc.routes.map((r, i) => {
      const rule = `routes[${i}]`;
      const route: CompiledRoute =
        r.scope === undefined
          ? { rule, scope: -1, denyReason: '', allowReason: 'public route' }
          : { rule, scope: this.scopeNumbers.get(r.scope)!, scopeName: r.scope, denyReason: `missing scope ${r.scope}`, allowReason: `scope ${r.scope} granted` };
      if (r.require !== undefined) {
        const kinds = [...new Set(r.require.flat().filter((k): k is CredentialKind => k !== 'mtls'))];
        route.require = r.require;
        route.pending = Object.freeze({ route: i, kinds, hmac: kinds.includes('hmac') });
      }
      return route;
    });
    let table: RouteTable;
    try {
      table = new RouteTable(doc.routes.map((r) => ({ segments: r.segments, methods: methodMask(r.methods) })));
    } catch (err) {
      throw configError(source, [{ path: ['routes'], message: err instanceof Error ? err.message : String(err) }]);
    }
    const shadowed: ConfigProblem[] = [];
    table.shadowedBy.forEach((winner, i) => {
      if (winner < 0) return;
      const w = doc.routes[winner]!;
      shadowed.push({
        path: ['routes', i],
        message: `can never match: routes[${winner}] (${w.methods?.join(',') ?? 'any method'} ${w.path}) comes first and matches every request it would`,
      });
    });
    if (shadowed.length > 0) throw configError(source, shadowed);
    this.table = table;
    this.tcpScopeName = doc.tcp?.scope;
    this.tcpScope = doc.tcp === undefined ? -1 : this.scopeNumbers.get(doc.tcp.scope)!;
    this.limits = doc.limits.map((l, i) => ({
      rule: `limits[${i}]`,
      callers: new CallerMatcher(l.identities, l.subjects),
      apiKeys: new Set(l.apiKeys),
      buckets: new TokenBuckets(l.rps, l.burst),
      reason: `rate limit ${l.rps} rps exceeded`,
      key: JSON.stringify([l.identities ?? [], l.subjects ?? [], l.rps, l.burst]),
    }));
  }

  /**
   * Takes over the rate-limit buckets of the policy this one replaces, for every `limits` entry that did
   * not change (same callers, rps and burst, at any position): a reload must not hand a caller that
   * used its burst a fresh one. Changed and new entries start full. Returns how many entries kept theirs.
   */
  carryRateLimitsFrom(previous: Policy): number {
    // Each API key's own buckets (key file rps/burst) are not policy entries: they always carry over, as they
    // do across key-file reloads (keyBuckets keeps a bucket while the key's rate is unchanged).
    this.perKey = previous.perKey;
    const tables = new Map(previous.limits.map((l) => [l.key, l.buckets]));
    let carried = 0;
    for (const l of this.limits) {
      const buckets = tables.get(l.key);
      if (buckets === undefined) continue;
      l.buckets = buckets;
      tables.delete(l.key);
      carried++;
    }
    return carried;
  }

  /** @internal compilePolicy's entry to the private constructor. */
  static fromDocument(doc: PolicyDocument, source: ConfigSource | string): Policy {
    return new Policy(doc, source);
  }

  /**
   * The caller's scopes and rate limit: computed once per connection, and once per policy load for a
   * subject object seen before (the sidecar hands the same frozen Identity to every connection that
   * presents the same certificate). Principals hold no per-connection state: rate limits key on the id.
   */
  principal(subject: Subject): Principal {
    let p = this.principals.get(subject);
    if (p === undefined) {
      p = this.computePrincipal(subject);
      this.principals.set(subject, p);
    }
    return p;
  }

  private readonly principals = new WeakMap<Subject, Principal>();

  private computePrincipal(subject: Subject): Principal {
    if (subject.anonymous) return new CompiledPrincipal(this, subject.id, new Set(), '', new Uint8Array(this.scopeNumbers.size), -1, true);
    const scopes = grantedScopes(this.grants, subject);
    const holds = new Uint8Array(this.scopeNumbers.size);
    for (const s of scopes) holds[this.scopeNumbers.get(s)!] = 1;
    const limit = this.limits.findIndex((l) => l.callers.matches(subject));
    return new CompiledPrincipal(this, subject.id, new Set(scopes), scopes.join(' '), holds, limit);
  }

  /** A principal computed by another Policy (e.g. before a reload): re-derived from what it exposes. */
  private adopt(p: Principal): CompiledPrincipal {
    if (p.anonymous === true) return this.computePrincipal(ANONYMOUS) as CompiledPrincipal;
    const holds = new Uint8Array(this.scopeNumbers.size);
    for (const s of p.scopes) {
      const n = this.scopeNumbers.get(s);
      if (n !== undefined) holds[n] = 1;
    }
    // Scopes are kept as they were granted; the limit is re-matched on the id when it is a SPIFFE ID.
    const caller = p.id.startsWith('spiffe://') ? { spiffeId: p.id, ou: [] } : { ou: [] };
    const limit = this.limits.findIndex((l) => l.callers.matches(caller));
    return new CompiledPrincipal(this, p.id, p.scopes, p.scopeHeader, holds, limit);
  }

  /** The decision for one request; `target` is the raw request-target (path and query). */
  decide(principal: Principal, method: string, target: string, nowMs: number): Decision {
    const p = principal instanceof CompiledPrincipal && principal.owner === this ? principal : this.adopt(principal);
    const scratch = this.scratch;
    const path = normalizePath(target, scratch);
    if (path === undefined || !queryAcceptable(target, scratch)) {
      return { allow: false, status: 400, wouldDeny: true, reason: `path rejected: ${scratch.reason}`, rule: 'path', target: '' };
    }
    // Unchanged path: the target as sent (no new string); otherwise the normalized path and the query as sent.
    const forwarded = !scratch.changed
      ? target
      : scratch.queryStart === target.length
        ? path
        : path + target.slice(scratch.queryStart);
    const index = this.table.match(scratch.segments, scratch.count, methodBucket(method));
    if (index < 0) return this.deny(403, `no route matches ${method} ${path}`, 'no-route', forwarded, undefined);
    const route = this.routes[index]!;
    if (route.pending !== undefined) {
      // Provisional: the gate checks the route's credentials and authorize() decides.
      const pending: Decision = { allow: true, status: 200, wouldDeny: false, reason: route.allowReason, rule: route.rule, target: forwarded, pending: route.pending };
      if (route.scopeName !== undefined) pending.scope = route.scopeName;
      return pending;
    }
    if (p.anonymous) {
      const d = this.deny(401, 'this route requires a client certificate (mTLS) and the connection has none', route.rule, forwarded, route.scopeName);
      d.challenges = [MTLS_CHALLENGE];
      d.credential = 'mtls';
      d.refusal = 'missing';
      return d;
    }
    if (route.scope >= 0 && p.holds[route.scope] !== 1) {
      return this.deny(403, route.denyReason, route.rule, forwarded, route.scopeName);
    }
    if (p.limit >= 0) {
      const limit = this.limits[p.limit]!;
      if (!limit.buckets.take(p.id, nowMs)) return this.deny(429, limit.reason, limit.rule, forwarded, route.scopeName);
    }
    const decision: Decision = { allow: true, status: 200, wouldDeny: false, reason: route.allowReason, rule: route.rule, target: forwarded };
    if (route.scopeName !== undefined) decision.scope = route.scopeName;
    return decision;
  }

  /**
   * The final decision for a route with `require`, from decide()'s provisional one and the verdicts of the
   * credentials the request carried: the first alternative whose proofs are all valid and all hold the
   * route's scope wins; then the rate limits (the certificate's, the key's own, policy limits naming
   * `apikey:<id>`). Refusals: 401 with every failing challenge when no alternative is authenticated, 403
   * naming the proof without the scope when one is.
   */
  authorize(pending: Decision, principal: Principal, verdicts: Verdicts, nowMs: number): Decision {
    const p = principal instanceof CompiledPrincipal && principal.owner === this ? principal : this.adopt(principal);
    const route = this.routes[pending.pending!.route]!;
    const target = pending.target;
    let lacking: { kind: ProofKind; reason: string } | undefined;
    let refused: Refused | undefined;
    // Made only when an alternative fails: an admitted request allocates nothing here.
    let challenges: Set<string> | undefined;
    for (const alternative of route.require!) {
      let authenticated = true;
      for (const kind of alternative) {
        if (kind === 'mtls') {
          if (p.anonymous) {
            authenticated = false;
            (challenges ??= new Set()).add(MTLS_CHALLENGE);
          }
          continue;
        }
        const v = verdicts[kind];
        if (v === undefined || !v.ok) {
          authenticated = false;
          if (v !== undefined) {
            (challenges ??= new Set()).add(v.wwwAuthenticate);
            if (refused === undefined || (refused.reason === 'missing' && v.reason !== 'missing')) refused = v;
          }
        }
      }
      if (!authenticated) continue;
      const without = route.scopeName === undefined ? undefined : alternative.find((kind) => !this.holdsScope(kind, p, verdicts, route));
      if (without !== undefined) {
        lacking ??= { kind: without, reason: `${describeProof(without, p, verdicts)} lacks scope ${route.scopeName}` };
        continue;
      }
      return this.admit(pending, route, alternative, p, verdicts, nowMs);
    }
    if (lacking !== undefined) {
      const d = this.deny(403, lacking.reason, route.rule, target, route.scopeName);
      d.credential = lacking.kind;
      return d;
    }
    const reason = refused !== undefined ? refused.message : 'this route requires a client certificate (mTLS) and the connection has none';
    const d = this.deny(401, reason, route.rule, target, route.scopeName);
    d.challenges = challenges === undefined ? [] : [...challenges];
    if (refused?.keyId !== undefined) d.keyId = refused.keyId;
    if (refused !== undefined) {
      d.credential = refused.kind;
      d.refusal = refused.reason;
    } else {
      d.credential = 'mtls';
      d.refusal = 'missing';
    }
    return d;
  }

  private holdsScope(kind: ProofKind, p: CompiledPrincipal, verdicts: Verdicts, route: CompiledRoute): boolean {
    if (kind === 'mtls') return p.holds[route.scope] === 1;
    const v = verdicts[kind] as Accepted;
    return v.scopes.includes(route.scopeName!);
  }

  /** An authenticated alternative with the scope: intersected scopes, principals, then the rate limits. */
  private admit(pending: Decision, route: CompiledRoute, alternative: readonly ProofKind[], p: CompiledPrincipal, verdicts: Verdicts, nowMs: number): Decision {
    const { principals, scopes, keyId } = this.admitted(alternative, p, verdicts);
    const limited = this.overLimit(alternative, p, verdicts, nowMs);
    if (limited !== undefined) {
      const d = this.deny(429, limited.reason, limited.rule, pending.target, route.scopeName);
      if (keyId !== undefined) d.keyId = keyId;
      return d;
    }
    const decision: Decision = { allow: true, status: 200, wouldDeny: false, reason: route.allowReason, rule: route.rule, target: pending.target, principals, scopes };
    if (route.scopeName !== undefined) decision.scope = route.scopeName;
    if (keyId !== undefined) decision.keyId = keyId;
    return decision;
  }

  /**
   * x-mesh-principal, x-mesh-scopes and the key id of an admitted alternative, remembered per (alternative,
   * caller, proofs): a client repeating its key or token gets the strings computed on its first request. The
   * proofs are told apart by what the headers are made of, each verdict's principal and its scopes array (the
   * key set and the JWT cache hand out one frozen array per key or token, so a reloaded key file or JWKS makes
   * new entries); the caller by its CompiledPrincipal, which a policy reload replaces. Weakly held: entries go
   * with the principals and scope arrays they were made for; the principal-keyed level is a Map bounded per
   * scopes array (one principal per key or token).
   */
  private admitted(alternative: readonly ProofKind[], p: CompiledPrincipal, verdicts: Verdicts): AdmittedProofs {
    let node = this.admittedMemo.get(alternative);
    if (node === undefined) {
      node = new WeakMap();
      this.admittedMemo.set(alternative, node);
    }
    let found: AdmittedProofs | undefined;
    let level: WeakMap<object, MemoLevel> = node;
    let slot: object = alternative.includes('mtls') ? p : NO_CALLER;
    for (const kind of alternative) {
      if (kind === 'mtls') continue;
      const v = verdicts[kind] as Accepted;
      let byPrincipal = level.get(slot) as Map<string, MemoLevel> | undefined;
      if (byPrincipal === undefined) {
        byPrincipal = new Map();
        level.set(slot, byPrincipal as unknown as MemoLevel);
      }
      let next = byPrincipal.get(v.principal);
      if (next === undefined) {
        if (byPrincipal.size >= MAX_PRINCIPALS_PER_SCOPES) byPrincipal.clear();
        next = new WeakMap();
        byPrincipal.set(v.principal, next);
      }
      level = next as WeakMap<object, MemoLevel>;
      slot = v.scopes;
    }
    found = level.get(slot) as AdmittedProofs | undefined;
    if (found === undefined) {
      found = computeAdmitted(alternative, p, verdicts);
      level.set(slot, found as unknown as MemoLevel);
    }
    return found;
  }

  private readonly admittedMemo = new WeakMap<readonly ProofKind[], WeakMap<object, MemoLevel>>();

  /** The first rate limit the request exceeds: the certificate's policy limit, each key's own, policy limits naming the key. */
  private overLimit(alternative: readonly ProofKind[], p: CompiledPrincipal, verdicts: Verdicts, nowMs: number): { rule: string; reason: string } | undefined {
    if (alternative.includes('mtls') && p.limit >= 0) {
      const limit = this.limits[p.limit]!;
      if (!limit.buckets.take(p.id, nowMs)) return limit;
    }
    let first: string | undefined; // apikey and hmac: at most two keys, and the same key counts once
    for (const kind of alternative) {
      if (kind === 'mtls' || kind === 'jwt') continue;
      const v = verdicts[kind] as Accepted;
      const id = v.keyId!;
      if (id === first) continue;
      first ??= id;
      if (v.limit !== undefined && !this.keyBuckets(id, v.limit).take(id, nowMs)) {
        return { rule: `apikey:${id}`, reason: `API key ${id}: its rate limit of ${v.limit.rps} rps is exceeded` };
      }
      const named = this.limits.find((l) => l.apiKeys.has(id));
      if (named !== undefined && !named.buckets.take(`apikey:${id}`, nowMs)) return named;
    }
    return undefined;
  }

  /** Each key's own token bucket (key file rps/burst); a changed rate starts a fresh bucket. */
  private keyBuckets(id: string, limit: { rps: number; burst: number }): TokenBuckets {
    let b = this.perKey.get(id);
    if (b === undefined || b.rps !== limit.rps || b.burst !== limit.burst) {
      if (b === undefined && this.perKey.size >= DEFAULT_MAX_BUCKETS) this.perKey.delete(this.perKey.keys().next().value!);
      b = new TokenBuckets(limit.rps, limit.burst, 1);
      this.perKey.set(id, b);
    }
    return b;
  }

  /** Shared with the policy this one replaced (carryRateLimitsFrom): a policy reload keeps every key's bucket. */
  private perKey = new Map<string, TokenBuckets>();

  /** The decision for a new connection to a tcp:// app: the `tcp.scope` check, then the rate limit. */
  connect(principal: Principal, nowMs: number): Decision {
    const p = principal instanceof CompiledPrincipal && principal.owner === this ? principal : this.adopt(principal);
    if (this.tcpScope < 0) return this.deny(403, 'policy has no tcp scope', 'tcp', '', undefined);
    if (p.holds[this.tcpScope] !== 1) return this.deny(403, `missing scope ${this.tcpScopeName}`, 'tcp', '', this.tcpScopeName);
    if (p.limit >= 0) {
      const limit = this.limits[p.limit]!;
      if (!limit.buckets.take(p.id, nowMs)) return this.deny(429, limit.reason, limit.rule, '', this.tcpScopeName);
    }
    return { allow: true, status: 200, wouldDeny: false, reason: `scope ${this.tcpScopeName} granted`, rule: 'tcp', target: '', scope: this.tcpScopeName! };
  }

  /** Enforce mode denies; audit mode lets the request through and marks what enforce would have done. */
  private deny(status: 401 | 403 | 429, reason: string, rule: string, target: string, scope: string | undefined): Decision {
    const decision: Decision = { allow: this.mode === 'audit', status, wouldDeny: true, reason, rule, target };
    if (scope !== undefined) decision.scope = scope;
    return decision;
  }
}

/**
 * Compiles a parsed document (from YAML or JSON); invalid_argument naming the field on any problem. An
 * inline policy names where it sits: `{ file: 'sidecar.yaml', at: ['policy'] }`.
 */
export function compilePolicy(doc: unknown, source: ConfigSource | string): Policy {
  return Policy.fromDocument(POLICY_FILE.validate(doc, source), source);
}

/** Parses YAML policy text (duplicate keys are errors) and compiles it; `file` names it in errors. */
export function parsePolicy(text: string, file: string): Policy {
  return Policy.fromDocument(POLICY_FILE.parse(text, file), file);
}

/** Reads and compiles a policy file; errors name the file as it was given. */
export function loadPolicyFile(path: string): Policy {
  return Policy.fromDocument(POLICY_FILE.load(path), path);
}
