// Kubernetes projected service-account tokens as a Sign credential: a JWT verified with jose against the
// cluster's JWKS (a file, re-read when it changes), audience `meshward`, expiry and issuer checked, and the
// identity `spiffe://TD/ns/NS/sa/SA` taken from the `kubernetes.io` claims.
//
// Configured by `D/kubernetes.yaml` (kept apart from config.yaml, which holds the rules of issuance):
//   issuer: https://kubernetes.default.svc.cluster.local   # the token's `iss`
//   jwks: jwks.json                                         # the cluster's JWKS, relative to D
//   audience: meshward                                      # optional, default meshward
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { createLocalJWKSet, errors as joseErrors, jwtVerify } from 'jose';
import type { JSONWebKeySet, JWTPayload } from 'jose';
import { z } from 'zod';
import { ConfigFile } from '../config-file.js';
import { MeshwardError } from '../errors.js';
import { parseWorkloadSpiffeId } from '../pki/spiffe.js';

export const DEFAULT_AUDIENCE = 'meshward';
export const KUBERNETES_CONFIG_FILE = 'kubernetes.yaml';
/** Asymmetric algorithms only: a JWKS holds public keys, and `none`/HMAC must never be accepted. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
/** Kubernetes and the CA may disagree on the time by a few seconds. */
const CLOCK_TOLERANCE_S = 5;
const MAX_JWT_BYTES = 16 * 1024;

export interface KubernetesAuthConfig {
  issuer: string;
  jwksFile: string;
  audience: string;
}

const schema = z.strictObject({
  issuer: z.string({ error: 'must be the issuer (iss) of the cluster\'s service-account tokens' }).min(1, { error: 'must not be empty' }),
  jwks: z.string({ error: 'must be the path of the cluster\'s JWKS file' }).min(1, { error: 'must not be empty' }),
  audience: z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }).optional(),
});

const KUBERNETES_CONFIG = new ConfigFile(schema, { what: 'the Kubernetes token settings' });

/** Reads D/kubernetes.yaml; undefined when the file is absent (Kubernetes tokens are then refused). */
export function loadKubernetesAuthConfig(caDir: string): KubernetesAuthConfig | undefined {
  const c = KUBERNETES_CONFIG.loadIfPresent(join(caDir, KUBERNETES_CONFIG_FILE), KUBERNETES_CONFIG_FILE);
  if (c === undefined) return undefined;
  return { issuer: c.issuer, jwksFile: isAbsolute(c.jwks) ? c.jwks : join(caDir, c.jwks), audience: c.audience ?? DEFAULT_AUDIENCE };
}

function unauthenticated(message: string): MeshwardError {
  return new MeshwardError('unauthenticated', `Kubernetes service-account token refused: ${message}`);
}

/** The SPIFFE ID a verified token's `kubernetes.io` claims name. */
export function identityFromKubernetesClaims(payload: JWTPayload, trustDomain: string): string {
  const k8s = payload['kubernetes.io'] as { namespace?: unknown; serviceaccount?: { name?: unknown } } | undefined;
  const namespace = k8s?.namespace;
  const account = k8s?.serviceaccount?.name;
  if (typeof namespace !== 'string' || typeof account !== 'string' || !namespace || !account) {
    throw unauthenticated('it has no kubernetes.io namespace and serviceaccount.name claims (use a projected service-account token)');
  }
  // The legacy subject must agree when present: two claims naming different accounts is a forged token.
  if (payload.sub !== undefined && payload.sub !== `system:serviceaccount:${namespace}:${account}`) {
    throw unauthenticated(`its sub "${payload.sub}" does not name the service account ${namespace}/${account}`);
  }
  const id = `spiffe://${trustDomain}/ns/${namespace}/sa/${account}`;
  try {
    parseWorkloadSpiffeId(id);
  } catch (err) {
    throw unauthenticated(`its namespace/service account do not form a valid SPIFFE ID: ${(err as Error).message}`);
  }
  return id;
}

/** Verifies service-account JWTs; the JWKS file is re-read when its size or mtime changes (key rotation). */
export class KubernetesTokenVerifier {
  private jwks: ReturnType<typeof createLocalJWKSet> | undefined;
  private jwksStamp = '';

  constructor(readonly config: KubernetesAuthConfig, readonly trustDomain: string) {
    this.currentJwks();
  }

  private currentJwks(): ReturnType<typeof createLocalJWKSet> {
    let stamp: string;
    try {
      const st = statSync(this.config.jwksFile);
      stamp = `${st.size}:${st.mtimeMs}:${st.ino}`;
    } catch (err) {
      throw new MeshwardError('unavailable', `cannot read the JWKS file ${this.config.jwksFile}: ${(err as Error).message}`);
    }
    if (this.jwks && stamp === this.jwksStamp) return this.jwks;
    let set: JSONWebKeySet;
    try {
      set = JSON.parse(readFileSync(this.config.jwksFile, 'utf8')) as JSONWebKeySet;
      if (!set || !Array.isArray(set.keys)) throw new Error('there is no "keys" array');
    } catch (err) {
      throw new MeshwardError('invalid_argument', `the JWKS file ${this.config.jwksFile} is not a JSON Web Key Set: ${(err as Error).message}`);
    }
    this.jwks = createLocalJWKSet(set);
    this.jwksStamp = stamp;
    return this.jwks;
  }

  /** Returns the SPIFFE ID the token proves; unauthenticated with the reason otherwise. */
  async verify(jwt: string, now: Date): Promise<string> {
    if (Buffer.byteLength(jwt) > MAX_JWT_BYTES) throw unauthenticated(`it is larger than ${MAX_JWT_BYTES} bytes`);
    const jwks = this.currentJwks();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(jwt, jwks, {
        issuer: this.config.issuer,
        audience: this.config.audience,
        algorithms: ALGORITHMS,
        currentDate: now,
        clockTolerance: CLOCK_TOLERANCE_S,
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      throw unauthenticated(describeJoseError(err, this.config));
    }
    return identityFromKubernetesClaims(payload, this.trustDomain);
  }
}

function describeJoseError(err: unknown, config: KubernetesAuthConfig): string {
  if (err instanceof joseErrors.JWTExpired) return 'it has expired (exp is in the past): the kubelet refreshes projected tokens, read the file again';
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return `its audience is not "${config.audience}" (project the token with audience: ${config.audience})`;
    if (err.claim === 'iss') return `its issuer is not "${config.issuer}"`;
    if (err.claim === 'nbf') return 'it is not valid yet (nbf is in the future)';
    return `claim ${err.claim} is invalid: ${err.reason}`;
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'no key in the cluster\'s JWKS matches its kid and algorithm';
  if (err instanceof joseErrors.JWKSMultipleMatchingKeys) return 'several keys in the JWKS match it and none verifies it';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'its signature does not verify with the cluster\'s key';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'its signature algorithm is not allowed (asymmetric algorithms only)';
  if (err instanceof joseErrors.JOSEError) return `it is not a valid JWT (${err.message})`;
  return `it could not be verified (${(err as Error).message ?? String(err)})`;
}
