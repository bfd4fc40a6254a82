// The Sign decision, free of gRPC: validate the request's fields, authenticate the caller (bootstrap token,
// Kubernetes JWT or the current certificate presented over mTLS), rate-limit per identity, and have the
// Authority sign the CSR for exactly that identity. A refusal writes nothing: a bootstrap token is redeemed
// in the same store transaction as the signing, so a failed signing rolls the redemption back, while a
// token whose signing succeeded is marked used before the transaction commits.
import { MeshwardError, invalid } from '../../errors.js';
import { certificateSerialHex } from '../../pki/certificate.js';
import type { Authority, IssuedCertificate } from '../authority.js';
import type { KubernetesTokenVerifier } from '../jwt.js';
import { formatTime } from '../../duration.js';
import { redeemBootstrapToken } from '../tokens.js';
import type { RateLimiter } from './rate-limit.js';

export const MAX_CSR_BYTES = 16 * 1024;
export const MAX_TOKEN_BYTES = 16 * 1024;
const MAX_TTL_SECONDS = 10 * 366 * 24 * 3600;

export type AuthMethod = 'token' | 'jwt' | 'mtls' | 'none';

export interface SignInput {
  csr: Buffer;
  token: string;
  ttlSeconds: number;
  /** DER of the TLS client certificate, when the handshake verified one against the bundle. */
  peerCertificateDer?: Buffer;
}

/** What is known about a request so far: filled in as the decision proceeds, for the audit line. */
export interface SignContext { method: AuthMethod; identity?: string }

/** Rate limited: mapped to RESOURCE_EXHAUSTED (retry later), which MeshwardError has no code for. */
export class RateLimitedError extends MeshwardError {
  constructor(message: string) {
    super('unavailable', message);
    this.name = 'RateLimitedError';
  }
}

export const NO_CREDENTIAL = 'no credential: send a bootstrap token (meshward token create) or a Kubernetes service-account token, or renew with a valid certificate as the TLS client certificate; a certificate that has expired cannot renew: bootstrap again with a new token';

export class SignService {
  constructor(
    private readonly authority: Authority,
    private readonly limiter: RateLimiter,
    private readonly kubernetes: KubernetesTokenVerifier | undefined,
  ) {}

  async sign(input: SignInput, ctx: SignContext, now: Date): Promise<IssuedCertificate> {
    const ttlMs = checkFields(input);
    const store = this.authority.store;
    if (input.token !== '' && !input.token.includes('.')) {
      ctx.method = 'token';
      return store.transaction(async (tx) => {
        const identity = await redeemBootstrapToken(tx, input.token, now);
        ctx.identity = identity;
        this.limit(identity, now);
        return this.authority.signCsr(input.csr, { ttlMs, expectedSpiffeId: identity, tx }, now);
      });
    }
    let identity: string;
    if (input.token !== '') {
      ctx.method = 'jwt';
      if (!this.kubernetes) {
        throw new MeshwardError('unauthenticated', 'this CA does not accept Kubernetes service-account tokens: configure issuer and jwks in kubernetes.yaml in the CA directory');
      }
      identity = await this.kubernetes.verify(input.token, now);
    } else if (input.peerCertificateDer) {
      ctx.method = 'mtls';
      identity = await this.renewalIdentity(input.peerCertificateDer, now);
    } else {
      throw new MeshwardError('unauthenticated', NO_CREDENTIAL);
    }
    ctx.identity = identity;
    this.limit(identity, now);
    return this.authority.signCsr(input.csr, { ttlMs, expectedSpiffeId: identity }, now);
  }

  /**
   * The identity of a client certificate that this CA issued and that is still valid and not revoked. TLS
   * has verified it against the bundle; the stored row (same DER, byte for byte) gives identity and state,
   * so only the serial is read from it here (a full parse would import its public key, for nothing).
   */
  private async renewalIdentity(der: Buffer, now: Date): Promise<string> {
    const serialHex = certificateSerialHex(der);
    const row = await this.authority.issuedCertificate(serialHex);
    if (!row || !row.der.equals(der)) {
      throw new MeshwardError('permission_denied', `the client certificate ${serialHex} was not issued by this CA: renew with the CA that issued it, or bootstrap with a token`);
    }
    if (row.status === 'revoked') {
      throw new MeshwardError('permission_denied', `certificate ${row.serialHex} (${row.spiffeId}) was revoked at ${formatTime(row.revokedAt!)} (${row.reason}): it cannot renew; bootstrap again with a new token`);
    }
    if (row.notAfter.getTime() <= now.getTime()) {
      throw new MeshwardError('unauthenticated', `certificate ${row.serialHex} expired at ${formatTime(row.notAfter)}: certificate expired; bootstrap again with a new token`);
    }
    return row.spiffeId;
  }

  private limit(identity: string, now: Date): void {
    if (!this.limiter.take(identity, now.getTime())) {
      throw new RateLimitedError(`${identity} asked for certificates too often (limit ${this.limiter.limit.ratePerSecond}/s, burst ${this.limiter.limit.burst}): retry in ${this.limiter.retryAfterSeconds(identity)} s`);
    }
  }
}

/** Field checks that need no credential; returns the requested lifetime (undefined: the CA's default). */
function checkFields(input: SignInput): number | undefined {
  if (!Buffer.isBuffer(input.csr) || input.csr.length === 0) throw invalid('csr is empty: send a PKCS#10 certificate signing request in DER');
  if (input.csr.length > MAX_CSR_BYTES) throw invalid(`csr is ${input.csr.length} bytes, above the limit of ${MAX_CSR_BYTES}: send one CSR in DER`);
  if (typeof input.token !== 'string' || Buffer.byteLength(input.token) > MAX_TOKEN_BYTES) throw invalid(`token is longer than ${MAX_TOKEN_BYTES} bytes`);
  const ttl = input.ttlSeconds;
  if (!Number.isSafeInteger(ttl) || ttl < 0 || ttl > MAX_TTL_SECONDS) {
    throw invalid(`ttl_seconds ${String(ttl)} is not a lifetime: use 0 for the CA's default or a positive number of seconds`);
  }
  return ttl === 0 ? undefined : ttl * 1000;
}
