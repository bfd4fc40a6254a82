// Grants: who holds which scopes. A caller is named by its SPIFFE ID (matched against identity patterns)
// or, only when its certificate has no SPIFFE ID, by its subject CN and OU. Evaluated once per connection.
import { compileSpiffePattern } from '../../pki/spiffe.js';

/** The parts of a peer that grants and limits look at (a subset of policy.ts's Subject). */
export interface CallerName {
  spiffeId?: string;
  cn?: string;
  ou: readonly string[];
}

export interface SubjectMatch {
  cn?: string;
  ou?: string;
}

/** Matches callers by SPIFFE ID pattern or, for certificates without a SPIFFE ID, by CN and/or OU. */
export class CallerMatcher {
  private readonly identities: ((id: string) => boolean)[];

  /** Throws invalid_argument (from compileSpiffePattern) for a bad identity pattern. */
  constructor(identities: readonly string[], private readonly subjects: readonly SubjectMatch[]) {
    this.identities = identities.map((pattern) => compileSpiffePattern(pattern));
  }

  matches(caller: CallerName): boolean {
    if (caller.spiffeId !== undefined) {
      const id = caller.spiffeId;
      return this.identities.some((match) => match(id));
    }
    // Both given: both must hold. The certificate's OU is a list; the grant names one of them.
    return this.subjects.some(
      (s) => (s.cn === undefined || s.cn === caller.cn) && (s.ou === undefined || caller.ou.includes(s.ou)),
    );
  }
}

export interface Grant {
  callers: CallerMatcher;
  scopes: readonly string[];
}

/** The scopes granted to a caller: the union over every grant that names it, sorted. */
export function grantedScopes(grants: readonly Grant[], caller: CallerName): string[] {
  const scopes = new Set<string>();
  for (const grant of grants) {
    if (grant.callers.matches(caller)) for (const scope of grant.scopes) scopes.add(scope);
  }
  return [...scopes].sort();
}
