// A JWT issuer's keys from its JWKS document (RFC 7517), compiled once per load for the verifier: public
// signature keys only, indexed by kid. Pure: the sidecar reads the file or fetches the URL and hands in the
// parsed JSON. A JWKS holding private or symmetric key material is refused whole: it is a leaked secret or
// the wrong file, and meshward never verifies HS* tokens against a JWKS. Also the pure decision "may the
// sidecar refetch a JWKS URL now?" for unknown kids (RefetchGate).
import { createPublicKey, type KeyObject } from 'node:crypto';
import { invalid } from '../errors.js';

/** The asymmetric JWS algorithms a JWT issuer may be allowed (docs/api-credentials.md, "JWT"). */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

/** What key each algorithm needs: kty, and the curve for EC/OKP. */
const KEY_FOR: Record<JwtAlgorithm, { kty: string; crv?: string }> = {
  RS256: { kty: 'RSA' }, RS384: { kty: 'RSA' }, RS512: { kty: 'RSA' },
  PS256: { kty: 'RSA' }, PS384: { kty: 'RSA' }, PS512: { kty: 'RSA' },
  ES256: { kty: 'EC', crv: 'P-256' }, ES384: { kty: 'EC', crv: 'P-384' }, ES512: { kty: 'EC', crv: 'P-521' },
  EdDSA: { kty: 'OKP', crv: 'Ed25519' }, Ed25519: { kty: 'OKP', crv: 'Ed25519' },
};

const MAX_KEYS = 100;
export const MAX_KID_LENGTH = 256;
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

export interface VerificationKey {
  kid?: string;
  kty: string;
  crv?: string;
  /** The JWK's own alg, when it names one: then only that algorithm may use the key. */
  alg?: string;
  key: KeyObject;
}

export interface JwksKeySet {
  byKid: ReadonlyMap<string, readonly VerificationKey[]>;
  all: readonly VerificationKey[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Compiles a parsed JWKS; `source` (a path or URL) names it in errors. Keys not meant for signatures are skipped. */
export function keySetFromJwks(doc: unknown, source: string): JwksKeySet {
  if (!isObject(doc) || !Array.isArray(doc.keys)) throw invalid(`${source}: not a JSON Web Key Set (no "keys" array)`);
  if (doc.keys.length > MAX_KEYS) throw invalid(`${source}: holds ${doc.keys.length} keys, more than ${MAX_KEYS}`);
  const all: VerificationKey[] = [];
  doc.keys.forEach((jwk: unknown, i: number) => {
    const at = `${source}: keys[${i}]`;
    if (!isObject(jwk) || typeof jwk.kty !== 'string') throw invalid(`${at}: not a JWK (no "kty")`);
    const secret = PRIVATE_MEMBERS.find((m) => m in jwk);
    if (secret !== undefined || jwk.kty === 'oct') {
      throw invalid(`${at}: holds ${jwk.kty === 'oct' ? 'a symmetric key (kty oct)' : `private key material ("${secret}")`}: a JWKS must publish public keys only`);
    }
    if (jwk.use !== undefined && jwk.use !== 'sig') return; // an encryption key: not for us
    if (Array.isArray(jwk.key_ops) && !jwk.key_ops.includes('verify')) return;
    if (jwk.kid !== undefined && (typeof jwk.kid !== 'string' || jwk.kid.length > MAX_KID_LENGTH)) {
      throw invalid(`${at}: kid must be a string of at most ${MAX_KID_LENGTH} characters`);
    }
    if (jwk.alg !== undefined && !(JWT_ALGORITHMS as readonly unknown[]).includes(jwk.alg)) return; // a key for an algorithm never allowed
    if (!['RSA', 'EC', 'OKP'].includes(jwk.kty)) return;
    if (jwk.kty === 'OKP' && jwk.crv !== 'Ed25519') return; // X25519 and the like are not signature keys
    let key: KeyObject;
    try {
      key = createPublicKey({ key: jwk as never, format: 'jwk' });
    } catch (err) {
      throw invalid(`${at}: not a valid ${jwk.kty} public key: ${(err as Error).message}`);
    }
    if (jwk.kty === 'RSA' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
      throw invalid(`${at}: an RSA key of ${key.asymmetricKeyDetails?.modulusLength} bits is too small (2048 at least)`);
    }
    const entry: VerificationKey = { kty: jwk.kty, key };
    if (typeof jwk.kid === 'string') entry.kid = jwk.kid;
    if (typeof jwk.crv === 'string') entry.crv = jwk.crv;
    if (typeof jwk.alg === 'string') entry.alg = jwk.alg;
    all.push(entry);
  });
  const byKid = new Map<string, VerificationKey[]>();
  for (const k of all) {
    if (k.kid === undefined) continue;
    const list = byKid.get(k.kid);
    if (list) list.push(k);
    else byKid.set(k.kid, [k]);
  }
  return { byKid, all };
}

/** True when `key` can verify `alg` signatures. */
export function keyFits(key: VerificationKey, alg: JwtAlgorithm): boolean {
  const need = KEY_FOR[alg];
  return key.kty === need.kty && (need.crv === undefined || key.crv === need.crv) && (key.alg === undefined || key.alg === alg);
}

/**
 * The keys a token may be checked with: those under its kid (the kid is only a map key: a hostile value
 * finds nothing), or, without a kid, every key that fits the algorithm.
 */
export function candidateKeys(set: JwksKeySet, kid: string | undefined, alg: JwtAlgorithm): VerificationKey[] {
  const pool = kid === undefined ? set.all : kid.length > MAX_KID_LENGTH ? [] : (set.byKid.get(kid) ?? []);
  return pool.filter((k) => keyFits(k, alg));
}

/**
 * Whether a JWKS URL may be fetched again now: at most once per `minIntervalMs` (an unknown kid in a flood
 * of forged tokens must not become a flood of fetches). Time is passed in.
 */
export class RefetchGate {
  private last: number | undefined;

  constructor(readonly minIntervalMs: number) {}

  /** True (and the attempt recorded) when the last attempt is at least minIntervalMs ago. */
  tryAcquire(now: number): boolean {
    if (this.last !== undefined && now - this.last < this.minIntervalMs && now >= this.last) return false;
    this.last = now;
    return true;
  }
}
