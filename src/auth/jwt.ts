// JWT bearer tokens (docs/api-credentials.md, "JWT"): signature by a key of the issuer's JWKS (jose does the
// cryptography), the issuer's algorithm allow-list (never `none`, never HS* since keys come from a JWKS),
// exact `iss`, `aud` required and one of the configured audiences, `exp` required, 60 s leeway on
// exp/nbf/iat, no `crit` extensions, and headers that name their own key source (jku, x5u, jwk, x5c) refused
// outright: meshward trusts only the configured JWKS and never fetches what a token points to. `kid` is only a
// map key. Scopes come from the issuer's scope claim; RFC 8705 `cnf.x5t#S256` binds a token to the caller's
// certificate. Verified tokens are cached by token string until their exp (or a JWKS change), so a client
// that repeats its token pays for the signature once.
import { createHash } from 'node:crypto';
import type { JWTPayload } from 'jose';
import { invalid } from '../errors.js';
import { candidateKeys, JWT_ALGORITHMS, type JwksKeySet, type JwtAlgorithm, type VerificationKey } from './jwks.js';
import { API_KEY_PREFIX } from './api-key.js';
import { headerValues, refuse, SEVERAL_AUTHORIZATION, type Accepted, type AuthRequest, type AuthVerdict, type Peer, type Refused } from './verdict.js';

export interface JwtIssuerConfig {
  issuer: string;
  audiences: readonly string[];
  algorithms: readonly string[];
  /** Default `scope`; a space-separated string or an array of strings (`scp`). */
  scopeClaim?: string;
  /** true: a token without cnf.x5t#S256 is refused. */
  requireCertBound?: boolean;
}

/** Seconds of leeway on exp, nbf and iat (clocks of issuer and sidecar differ a little). */
export const JWT_LEEWAY_S = 60;
export const MAX_JWT_LENGTH = 16 * 1024;
export const DEFAULT_TOKEN_CACHE_ENTRIES = 10_000;
/** Characters of token text the cache may hold (one-byte strings in V8: about this many bytes). */
export const DEFAULT_TOKEN_CACHE_CHARS = 16 * 1024 * 1024;
const KEY_SOURCE_HEADERS = ['jku', 'x5u', 'jwk', 'x5c'] as const;

type Jose = typeof import('jose');
let jose: Jose | undefined;
/**
 * jose is imported on the first token to verify, not with the module: a sidecar without JWT issuers (most
 * of them) then never holds its code (about 1.1 MB of V8 heap per process and worker; docs/configuration.md,
 * "Memory"). Cached tokens are answered without it.
 */
async function loadJose(): Promise<Jose> {
  jose ??= await import('jose');
  return jose;
}

/** The iss of a token, read without verifying anything (to pick the issuer whose JWKS to refetch); undefined when unreadable. */
export function unverifiedIssuer(token: string): unknown {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
    return typeof claims === 'object' && claims !== null ? (claims as Record<string, unknown>).iss : undefined;
  } catch {
    return undefined;
  }
}

interface CompiledIssuer {
  issuer: string;
  audiences: string[];
  algorithms: Set<string>;
  scopeClaim: string;
  requireCertBound: boolean;
  keys?: JwksKeySet;
}

interface CachedToken {
  verdict: Accepted;
  /** ms after which the token is expired, leeway included. */
  expiresAt: number;
  /** Decoded cnf.x5t#S256, when the token is certificate-bound. */
  x5t?: Buffer;
  requireCertBound: boolean;
}

/** Checks one issuer entry of the sidecar configuration; `at` names it in errors. */
function compileIssuer(c: JwtIssuerConfig, at: string): CompiledIssuer {
  if (typeof c.issuer !== 'string' || c.issuer === '' || /\s/.test(c.issuer)) throw invalid(`${at}.issuer: must be the exact iss of the tokens, without spaces`);
  if (!Array.isArray(c.audiences) || c.audiences.length === 0) {
    throw invalid(`${at}.audiences: must list at least one audience (an empty list would accept tokens meant for any service)`);
  }
  c.audiences.forEach((a, i) => {
    if (typeof a !== 'string' || a === '') throw invalid(`${at}.audiences[${i}]: must be a non-empty string`);
  });
  if (!Array.isArray(c.algorithms) || c.algorithms.length === 0) throw invalid(`${at}.algorithms: must list the allowed algorithms, e.g. [ES256, RS256]`);
  c.algorithms.forEach((alg, i) => {
    if (String(alg).toLowerCase() === 'none') throw invalid(`${at}.algorithms[${i}]: "none" is never allowed (unsigned tokens)`);
    if (/^HS/i.test(String(alg))) throw invalid(`${at}.algorithms[${i}]: ${alg} is never allowed: keys come from a JWKS of public keys, and HMAC against a public key lets anyone sign`);
    if (!(JWT_ALGORITHMS as readonly string[]).includes(alg)) throw invalid(`${at}.algorithms[${i}]: "${alg}" is not one of ${JWT_ALGORITHMS.join(', ')}`);
  });
  const scopeClaim = c.scopeClaim ?? 'scope';
  if (typeof scopeClaim !== 'string' || scopeClaim === '') throw invalid(`${at}.scopeClaim: must be a claim name such as scope or scp`);
  return { issuer: c.issuer, audiences: [...c.audiences], algorithms: new Set(c.algorithms), scopeClaim, requireCertBound: c.requireCertBound === true };
}

/** The scopes a claim value holds: a space-separated string or an array of strings; undefined when malformed. */
function scopesOf(value: unknown): string[] | undefined {
  if (value === undefined) return [];
  if (typeof value === 'string') return value.split(' ').filter((s) => s !== '');
  if (Array.isArray(value) && value.every((s) => typeof s === 'string')) return value as string[];
  return undefined;
}

/** x-mesh-principal is space-separated: anything outside visible ASCII (and %) in sub is percent-encoded. */
function principalOf(iss: string, sub: string): string {
  const encoded = sub.replace(/[^\x21-\x24\x26-\x7e]/gu, (c) => [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
  return `jwt:${iss}#${encoded}`;
}

function describeJoseError(joseErrors: Jose['errors'], err: unknown, issuer: CompiledIssuer): Refused {
  if (err instanceof joseErrors.JWTExpired) return refuse('jwt', 'expired', 'the token has expired (exp is in the past)');
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') {
      if (err.claim === 'aud') return refuse('jwt', 'audience', `the token has no aud claim (expected one of ${issuer.audiences.join(', ')})`);
      return refuse('jwt', 'claims', `the token has no ${err.claim} claim, which is required`);
    }
    if (err.claim === 'aud') return refuse('jwt', 'audience', `the token's aud is not one of ${issuer.audiences.join(', ')}`);
    if (err.claim === 'iss') return refuse('jwt', 'issuer', `the token's iss is not ${issuer.issuer}`);
    if (err.claim === 'nbf') return refuse('jwt', 'not_yet_valid', 'the token is not valid yet (nbf is in the future)');
    return refuse('jwt', 'claims', `the token's ${err.claim} claim is invalid`);
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return refuse('jwt', 'bad_signature', 'the token\'s signature does not verify with the issuer\'s keys');
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return refuse('jwt', 'algorithm', 'the token\'s algorithm is not allowed for this issuer');
  if (err instanceof joseErrors.JOSEError) return refuse('jwt', 'malformed', `the token is not a valid JWT (${err.code})`);
  if (err instanceof TypeError) return refuse('jwt', 'malformed', 'the token is not a valid JWT');
  throw err;
}

/** The bearer token of a request that is not an API key, or the refusal (missing, ambiguous, in the query). */
export function bearerToken(req: AuthRequest): { token: string } | Refused {
  if (req.query !== undefined && /(^|&)access_token=/i.test(req.query)) {
    return refuse('jwt', 'in_query', 'a token in the URL query string (access_token) is refused (URLs end up in logs): send authorization: Bearer');
  }
  const authorization = headerValues(req.headers, 'authorization');
  if (authorization.length > 1) return refuse('jwt', 'ambiguous', SEVERAL_AUTHORIZATION);
  const tokens: string[] = [];
  for (const line of authorization) {
    const m = /^bearer +(.*)$/i.exec(line.trim());
    if (m !== null && !m[1]!.startsWith(API_KEY_PREFIX)) tokens.push(m[1]!.trim());
  }
  if (tokens.length === 0) return refuse('jwt', 'missing', 'no bearer token: send authorization: Bearer <JWT>');
  if (tokens.length > 1) return refuse('jwt', 'ambiguous', 'several bearer tokens in one request: send exactly one');
  return { token: tokens[0]! };
}

export interface JwtVerifierOptions {
  cacheEntries?: number;
  cacheChars?: number;
}

export class JwtVerifier {
  private readonly issuers = new Map<string, CompiledIssuer>();
  private readonly cache = new Map<string, CachedToken>();
  private cacheChars = 0;
  /** Bumped by setKeys: a verification that began under older keys is not cached. */
  private keysGeneration = 0;
  private readonly pending = new Map<string, Promise<CachedToken | Refused>>();
  private readonly maxEntries: number;
  private readonly maxChars: number;

  /** Validates the issuers (throws invalid_argument naming `jwt[i].field`); keys arrive with setKeys. */
  constructor(issuers: readonly JwtIssuerConfig[], options: JwtVerifierOptions = {}) {
    issuers.forEach((c, i) => {
      const compiled = compileIssuer(c, `jwt[${i}]`);
      if (this.issuers.has(compiled.issuer)) throw invalid(`jwt[${i}].issuer: ${compiled.issuer} is configured twice`);
      this.issuers.set(compiled.issuer, compiled);
    });
    this.maxEntries = options.cacheEntries ?? DEFAULT_TOKEN_CACHE_ENTRIES;
    this.maxChars = options.cacheChars ?? DEFAULT_TOKEN_CACHE_CHARS;
  }

  /** Installs (or replaces) an issuer's keys; every cached token is dropped, so a removed key stops working. */
  setKeys(issuer: string, keys: JwksKeySet): void {
    const entry = this.issuers.get(issuer);
    if (entry === undefined) throw invalid(`no JWT issuer ${issuer} is configured`);
    entry.keys = keys;
    this.keysGeneration++;
    this.cache.clear();
    this.cacheChars = 0;
  }

  get cachedTokens(): number {
    return this.cache.size;
  }

  /** The JWT check for one request: the bearer token, verified (or found in the cache). Sync on a cache hit. */
  check(req: AuthRequest, now: number): AuthVerdict | Promise<AuthVerdict> {
    const found = bearerToken(req);
    if ('ok' in found) return found;
    return this.cached(found.token, now, req.peer) ?? this.verify(found.token, now, req.peer);
  }

  /** The verdict for a token verified before, or undefined when it must be verified. */
  cached(token: string, now: number, peer: Peer | undefined): AuthVerdict | undefined {
    const hit = this.cache.get(token);
    if (hit === undefined) return undefined;
    if (now >= hit.expiresAt) {
      this.forget(token, hit);
      return refuse('jwt', 'expired', 'the token has expired (exp is in the past)');
    }
    return this.bound(hit, peer);
  }

  async verify(token: string, now: number, peer: Peer | undefined): Promise<AuthVerdict> {
    const hit = this.cached(token, now, peer);
    if (hit !== undefined) return hit;
    let result = this.pending.get(token);
    if (result === undefined) {
      result = this.verifyToken(token, now).finally(() => this.pending.delete(token));
      this.pending.set(token, result);
    }
    const verified = await result;
    if ('ok' in verified) return verified;
    return this.bound(verified, peer);
  }

  /** RFC 8705: a bound token only over a connection whose certificate has that SHA-256 thumbprint. */
  private bound(t: CachedToken, peer: Peer | undefined): AuthVerdict {
    if (t.x5t !== undefined) {
      if (peer?.certificateSha256 === undefined) return refuse('jwt', 'binding', 'the token is bound to a client certificate (cnf.x5t#S256) and this connection has none');
      if (!peer.certificateSha256.equals(t.x5t)) return refuse('jwt', 'binding', 'the token is bound to another client certificate (cnf.x5t#S256 differs)');
    } else if (t.requireCertBound) {
      return refuse('jwt', 'binding', 'this issuer\'s tokens must be bound to the client certificate (cnf.x5t#S256) and this one is not');
    }
    return t.verdict;
  }

  private forget(token: string, hit: CachedToken): void {
    if (this.cache.get(token) !== hit) return;
    this.cache.delete(token);
    this.cacheChars -= token.length;
  }

  private remember(token: string, entry: CachedToken): void {
    if (token.length > this.maxChars) return;
    const previous = this.cache.get(token);
    if (previous !== undefined) this.forget(token, previous);
    while (this.cache.size >= this.maxEntries || this.cacheChars + token.length > this.maxChars) {
      const [oldest, value] = this.cache.entries().next().value as [string, CachedToken];
      this.forget(oldest, value);
    }
    this.cache.set(token, entry);
    this.cacheChars += token.length;
  }

  /** Everything about the token that does not depend on the connection; cached when valid. */
  private async verifyToken(token: string, now: number): Promise<CachedToken | Refused> {
    if (token.length > MAX_JWT_LENGTH) return refuse('jwt', 'malformed', `the token is longer than ${MAX_JWT_LENGTH} characters`);
    const generation = this.keysGeneration;
    const { decodeJwt, decodeProtectedHeader, errors } = await loadJose();
    let header: Record<string, unknown>;
    let claims: JWTPayload;
    try {
      header = decodeProtectedHeader(token) as Record<string, unknown>;
      claims = decodeJwt(token);
    } catch {
      return refuse('jwt', 'malformed', 'the token is not a JWT (three base64url parts: header, claims, signature)');
    }
    const alg = header.alg;
    if (typeof alg !== 'string') return refuse('jwt', 'malformed', 'the token\'s header has no alg');
    if (alg.toLowerCase() === 'none') return refuse('jwt', 'algorithm', 'alg "none" (an unsigned token) is never accepted');
    if (/^hs/i.test(alg)) return refuse('jwt', 'algorithm', `alg ${alg} is never accepted: keys come from a JWKS of public keys`);
    const issuer = typeof claims.iss === 'string' ? this.issuers.get(claims.iss) : undefined;
    if (issuer === undefined) return refuse('jwt', 'issuer', 'the token\'s iss is not a configured issuer');
    if (!issuer.algorithms.has(alg)) return refuse('jwt', 'algorithm', `alg ${alg} is not allowed for ${issuer.issuer} (allowed: ${[...issuer.algorithms].join(', ')})`);
    const keySource = KEY_SOURCE_HEADERS.find((h) => h in header);
    if (keySource !== undefined) {
      return refuse('jwt', 'forbidden_header', `the token's header names its own key (${keySource}): meshward verifies only with the configured JWKS and refuses such tokens`);
    }
    if ('crit' in header) return refuse('jwt', 'forbidden_header', 'the token has critical header extensions (crit), which meshward does not understand');
    if (header.kid !== undefined && typeof header.kid !== 'string') return refuse('jwt', 'malformed', 'the token\'s kid is not a string');
    if (issuer.keys === undefined) return refuse('jwt', 'keys_unavailable', `the keys of ${issuer.issuer} are not loaded yet`);
    const kid = header.kid as string | undefined;
    const keys = candidateKeys(issuer.keys, kid, alg as JwtAlgorithm);
    if (keys.length === 0) return refuse('jwt', 'unknown_key', kid === undefined ? `no key of ${issuer.issuer} fits ${alg}` : `no key of ${issuer.issuer} has this kid and fits ${alg}`);
    if (kid === undefined && keys.length > 1) return refuse('jwt', 'unknown_key', `the token has no kid and ${issuer.issuer} has ${keys.length} keys for ${alg}: the issuer must set kid`);
    let payload: JWTPayload | undefined;
    let failure: Refused | undefined;
    for (const key of keys) {
      try {
        payload = (await this.joseVerify(token, key, issuer, alg, now)).payload;
        break;
      } catch (err) {
        failure = describeJoseError(errors, err, issuer);
        if (failure.reason !== 'bad_signature') break;
      }
    }
    if (payload === undefined) return failure!;
    const accepted = this.accept(payload, issuer, now);
    if (!('ok' in accepted) && generation === this.keysGeneration) this.remember(token, accepted);
    return accepted;
  }

  private async joseVerify(token: string, key: VerificationKey, issuer: CompiledIssuer, alg: string, now: number) {
    const { jwtVerify } = await loadJose();
    return jwtVerify(token, key.key, {
      issuer: issuer.issuer,
      audience: issuer.audiences,
      algorithms: [alg],
      currentDate: new Date(now),
      clockTolerance: JWT_LEEWAY_S,
      requiredClaims: ['exp'],
    });
  }

  private accept(payload: JWTPayload, issuer: CompiledIssuer, now: number): CachedToken | Refused {
    if (typeof payload.iat === 'number' && payload.iat > now / 1000 + JWT_LEEWAY_S) return refuse('jwt', 'not_yet_valid', 'the token was issued in the future (iat)');
    if (typeof payload.sub !== 'string' || payload.sub === '') return refuse('jwt', 'claims', 'the token has no sub claim (the principal)');
    const scopes = scopesOf(payload[issuer.scopeClaim]);
    if (scopes === undefined) return refuse('jwt', 'claims', `the ${issuer.scopeClaim} claim must be a space-separated string or an array of strings`);
    const entry: CachedToken = {
      verdict: Object.freeze({ ok: true, kind: 'jwt', principal: principalOf(issuer.issuer, payload.sub), scopes: Object.freeze(scopes) }),
      expiresAt: (payload.exp! + JWT_LEEWAY_S) * 1000,
      requireCertBound: issuer.requireCertBound,
    };
    const cnf = payload.cnf as Record<string, unknown> | undefined;
    if (cnf !== undefined) {
      const x5t = typeof cnf === 'object' && cnf !== null ? cnf['x5t#S256'] : null;
      if (x5t !== undefined) {
        const bytes = typeof x5t === 'string' && /^[A-Za-z0-9_-]{43}$/.test(x5t) ? Buffer.from(x5t, 'base64url') : undefined;
        if (bytes?.length !== 32) return refuse('jwt', 'claims', 'cnf.x5t#S256 must be the base64url SHA-256 of a certificate (43 characters)');
        entry.x5t = bytes;
      }
    }
    return entry;
  }
}

/** RFC 8705's certificate thumbprint: base64url SHA-256 of the DER (for issuers and tests). */
export function certificateThumbprint(der: Buffer): string {
  return createHash('sha256').update(der).digest('base64url');
}
