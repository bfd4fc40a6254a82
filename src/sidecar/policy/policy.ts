// The policy engine: a policy document compiled once per load into lookup tables, then asked per
// connection (principal: which scopes and which rate limit a caller has) and per request (decide:
// normalize → first matching route → scope → rate limit). Pure apart from loadPolicyFile; time is passed in.
import { configError, type ConfigProblem, type ConfigSource } from '../../config-file.js';
import { CallerMatcher, grantedScopes, type Grant } from './grants.js';
import { TokenBuckets } from './limits.js';
import { newPathScratch, normalizePath, queryAcceptable } from './normalize.js';
import { RouteTable, methodBucket, methodMask } from './routes.js';
import { POLICY_FILE, type Mode, type PolicyDocument } from './schema.js';

export type { Mode } from './schema.js';

/** Who a connection's peer is, as far as policy cares (Identity in ../tls/identity.ts extends it). */
export interface Subject {
  spiffeId?: string;
  cn?: string;
  ou: readonly string[];
  /** spiffeId ?? the subject string. */
  id: string;
}

export interface Principal {
  readonly id: string;
  readonly scopes: ReadonlySet<string>;
  /** Granted scopes, sorted, space-separated (the x-mesh-scopes header). */
  readonly scopeHeader: string;
}

export interface Decision {
  /** What the sidecar does now (audit mode: true except for status 400). */
  allow: boolean;
  /** What enforce mode answers (200 = allowed). */
  status: 200 | 400 | 403 | 429;
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

  constructor(
    owner: Policy,
    readonly id: string,
    readonly scopes: ReadonlySet<string>,
    readonly scopeHeader: string,
    holds: Uint8Array,
    limit: number,
  ) {
    Object.defineProperties(this, { owner: { value: owner }, holds: { value: holds }, limit: { value: limit } });
  }
}

interface CompiledRoute {
  rule: string;
  /** Scope number (index into scopeNames), or -1 for a public route. */
  scope: number;
  scopeName?: string;
  denyReason: string;
  allowReason: string;
}

interface CompiledLimit {
  rule: string;
  callers: CallerMatcher;
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
      if (r.scope === undefined) return { rule, scope: -1, denyReason: '', allowReason: 'public route' };
      return {
        rule,
        scope: this.scopeNumbers.get(r.scope)!,
        scopeName: r.scope,
        denyReason: `missing scope ${r.scope}`,
        allowReason: `scope ${r.scope} granted`,
      };
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
    const scopes = grantedScopes(this.grants, subject);
    const holds = new Uint8Array(this.scopeNumbers.size);
    for (const s of scopes) holds[this.scopeNumbers.get(s)!] = 1;
    const limit = this.limits.findIndex((l) => l.callers.matches(subject));
    return new CompiledPrincipal(this, subject.id, new Set(scopes), scopes.join(' '), holds, limit);
  }

  /** A principal computed by another Policy (e.g. before a reload): re-derived from what it exposes. */
  private adopt(p: Principal): CompiledPrincipal {
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
  private deny(status: 403 | 429, reason: string, rule: string, target: string, scope: string | undefined): Decision {
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
