// One-time bootstrap tokens (`meshward token create`): 256 random bits, base64url, bound to one SPIFFE ID
// and an expiry. The store keeps only the token's SHA-256, so a copy of the database cannot be used to enroll;
// a presented token is hashed and looked up by that hash. The secret itself is never compared with anything:
// the index lookup compares SHA-256 digests, whose timing tells an attacker nothing usable (steering it
// would need SHA-256 preimages), which is the constant-time property a byte-by-byte token compare lacks.
// The identity bound to the token is not secret; the Authority checks it against the CSR.
import { createHash, randomBytes } from 'node:crypto';
import { MeshwardError } from '../errors.js';
import { formatDuration } from '../duration.js';
import { parseWorkloadSpiffeId } from '../pki/spiffe.js';
import type { StoreOps } from './store/store.js';

/** 32 bytes: 256 bits of entropy (the floor is 128). */
export const TOKEN_BYTES = 32;
/** Length of the base64url text of TOKEN_BYTES bytes (no padding). */
export const TOKEN_LENGTH = Math.ceil((TOKEN_BYTES * 8) / 6);
const TOKEN_SHAPE = new RegExp(`^[A-Za-z0-9_-]{${TOKEN_LENGTH}}$`);
export const DEFAULT_TOKEN_TTL_MS = 10 * 60_000;
export const MAX_TOKEN_TTL_MS = 7 * 24 * 3_600_000;

/** The part of the store tokens need: the store itself, or a transaction of it. */
export type TokenStore = Pick<StoreOps, 'createToken' | 'consumeToken'>;

export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** True when `text` has the shape of a bootstrap token (a JWT has dots, a token never does). */
export function isBootstrapTokenShape(text: string): boolean {
  return TOKEN_SHAPE.test(text);
}

/**
 * 256 random bits as base64url, never beginning with "-": one token in 64 did, and a command line then read
 * `--token -hX…` as flags (yargs took the "h" for --help and exited 0 without a certificate). Drawing again
 * costs under 0.01 bits of entropy.
 */
export function newTokenText(): string {
  for (;;) {
    const token = randomBytes(TOKEN_BYTES).toString('base64url');
    if (!token.startsWith('-')) return token;
  }
}

export interface CreatedToken { token: string; spiffeId: string; expiresAt: Date }

/** Makes a token for `spiffeId` valid for `ttlMs` from `now`; only its hash is stored. */
export async function createBootstrapToken(store: TokenStore, spiffeId: string, ttlMs: number, now: Date): Promise<CreatedToken> {
  parseWorkloadSpiffeId(spiffeId);
  if (!(ttlMs > 0)) throw new MeshwardError('invalid_argument', 'a token lifetime must be positive: use e.g. --ttl 10m');
  if (ttlMs > MAX_TOKEN_TTL_MS) {
    throw new MeshwardError('invalid_argument', `a token lifetime of ${formatDuration(ttlMs)} is above the maximum ${formatDuration(MAX_TOKEN_TTL_MS)}: bootstrap tokens are meant to be used within minutes`);
  }
  const token = newTokenText();
  const expiresAt = new Date(now.getTime() + ttlMs);
  await store.createToken(tokenHash(token), spiffeId, expiresAt, now);
  return { token, spiffeId, expiresAt };
}

const PROBLEM_SENTENCES: Record<'unknown' | 'used' | 'expired', string> = {
  unknown: 'the bootstrap token is not known to this CA: create one with meshward token create',
  used: 'the bootstrap token was already used (tokens are single use): create a new one with meshward token create',
  expired: 'the bootstrap token has expired: create a new one with meshward token create',
};

/**
 * Uses a token once and returns the SPIFFE ID it is bound to. Callers that must not burn a token on a
 * failed signing run this inside the same store transaction as the signing, so a failure rolls it back.
 */
export async function redeemBootstrapToken(store: TokenStore, token: string, now: Date): Promise<string> {
  if (!isBootstrapTokenShape(token)) {
    throw new MeshwardError('unauthenticated', 'the token is neither a bootstrap token from meshward token create nor a Kubernetes service-account JWT');
  }
  const result = await store.consumeToken(tokenHash(token), now);
  if ('problem' in result) throw new MeshwardError('unauthenticated', PROBLEM_SENTENCES[result.problem]);
  return result.spiffeId;
}
