// Shared fixtures for the auth/ tests: requests as the sidecar would hand them in, a key set built through
// the real key file code, and a JWT issuer (keys, JWKS, signing) made with node:crypto and jose.
import { createHash, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { SignJWT, type JWTPayload } from 'jose';
import { formatApiKey, generateApiKey, hashSecret } from '../../src/auth/api-key.js';
import { formatApiKeyFile, parseApiKeyFile, type ApiKeyRecord } from '../../src/auth/key-file.js';
import { ApiKeySet } from '../../src/auth/key-set.js';
import type { AuthRequest, AuthVerdict, RefusalReason } from '../../src/auth/verdict.js';

export const NOW = Date.parse('2025-06-01T12:00:00Z');
export const NOW_S = NOW / 1000;
export const DAY = 86_400_000;

export function request(over: Partial<AuthRequest> = {}): AuthRequest {
  return { method: 'GET', scheme: 'https', authority: 'orders.example.com', path: '/orders/42', headers: {}, ...over };
}

/** A request with a body: its SHA-256 in `body` and a matching Content-Digest header. */
export function withBody(req: AuthRequest, body: string): AuthRequest {
  const sha256 = createHash('sha256').update(body).digest();
  return { ...req, body: { sha256 }, headers: { ...req.headers, 'content-digest': `sha-256=:${sha256.toString('base64')}:` } };
}

export interface TestKey {
  id: string;
  secret: string;
  key: string;
  hmacSecret: Buffer;
}

/** A key and its record (HMAC secret included), created as `apikey create` would. */
export function makeKey(over: Partial<ApiKeyRecord> = {}): { key: TestKey; record: ApiKeyRecord } {
  const g = generateApiKey();
  const hmacSecret = randomBytes(32);
  const record: ApiKeyRecord = {
    id: g.id,
    name: 'partner-acme',
    scopes: ['orders:read', 'orders:write'],
    created: new Date(NOW - DAY),
    expires: new Date(NOW + 90 * DAY),
    secretHashes: [{ sha256: hashSecret(g.secret) }],
    hmacSecrets: [{ secret: hmacSecret }],
    ...over,
  };
  return { key: { ...g, hmacSecret }, record };
}

/** The key set the sidecar would compile from a key file holding `records` (through the text format). */
export function keySet(...records: ApiKeyRecord[]): ApiKeySet {
  return ApiKeySet.fromFile(parseApiKeyFile(formatApiKeyFile({ keys: records }), 'apikeys.yaml'));
}

export function keyText(id: string, secret: string): string {
  return formatApiKey(id, secret);
}

/** Asserts a refusal with this reason and returns it. */
export function expectRefused(v: AuthVerdict, reason: RefusalReason): Extract<AuthVerdict, { ok: false }> {
  if (v.ok) throw new Error(`expected a refusal (${reason}), got accepted ${v.principal}`);
  if (v.reason !== reason) throw new Error(`expected reason ${reason}, got ${v.reason}: ${v.message}`);
  return v;
}

export const ISSUER = 'https://auth.example.com';
export const AUDIENCE = 'orders-api';

export interface TestIssuer {
  kid: string;
  alg: 'ES256' | 'RS256' | 'EdDSA';
  privateKey: KeyObject;
  publicKey: KeyObject;
  jwks: { keys: Record<string, unknown>[] };
}

export function makeIssuer(alg: TestIssuer['alg'] = 'ES256', kid = 'key-1'): TestIssuer {
  const pair = alg === 'ES256'
    ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    : alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
  const jwk = { ...pair.publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg };
  return { kid, alg, privateKey: pair.privateKey, publicKey: pair.publicKey, jwks: { keys: [jwk] } };
}

/** A token signed by the issuer: defaults valid at NOW for AUDIENCE; `claims` overrides (undefined removes). */
export async function signToken(issuer: TestIssuer, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): Promise<string> {
  const payload: Record<string, unknown> = { iss: ISSUER, aud: AUDIENCE, sub: 'client-7', scope: 'orders:read orders:write', iat: NOW_S - 10, exp: NOW_S + 600, ...claims };
  for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
  return new SignJWT(payload as JWTPayload).setProtectedHeader({ alg: issuer.alg, kid: issuer.kid, ...header }).sign(issuer.privateKey);
}

export function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}
