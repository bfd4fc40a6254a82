// Why an inbound TLS handshake was refused, as a short metrics label. OpenSSL's verify codes
// (socket.authorizationError) and TLS-level error codes (tlsClientError) map onto a small fixed set,
// so the label's cardinality stays bounded whatever a client sends.
import { X509Certificate } from 'node:crypto';
import { parseCertificate } from '../../pki/certificate.js';
import { pathToAnchor } from './chain.js';
import type { TrustView } from './chain.js';
import { certificateRef } from './crl.js';

export type HandshakeFailureReason =
  | 'no_certificate'
  | 'expired'
  | 'not_yet_valid'
  | 'untrusted'
  | 'revoked'
  | 'crl_problem'
  | 'bad_key_usage'
  | 'invalid_chain'
  | 'ca_as_leaf'
  | 'multiple_uri_sans'
  | 'invalid_spiffe_id'
  | 'unparsable_certificate'
  | 'invalid_certificate'
  | 'handshake_timeout'
  | 'connection_reset'
  | 'protocol_mismatch'
  | 'not_tls'
  | 'server_certificate_rejected'
  | 'tls_error';

const VERIFY_REASONS: Record<string, HandshakeFailureReason> = {
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not_yet_valid',
  CERT_REVOKED: 'revoked',
  UNABLE_TO_GET_ISSUER_CERT: 'untrusted',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'untrusted',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'untrusted',
  SELF_SIGNED_CERT_IN_CHAIN: 'untrusted',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'untrusted',
  CERT_SIGNATURE_FAILURE: 'untrusted',
  CERT_UNTRUSTED: 'untrusted',
  CERT_REJECTED: 'untrusted',
  UNABLE_TO_GET_CRL: 'crl_problem',
  UNABLE_TO_GET_CRL_ISSUER: 'crl_problem',
  CRL_HAS_EXPIRED: 'crl_problem',
  CRL_NOT_YET_VALID: 'crl_problem',
  CRL_SIGNATURE_FAILURE: 'crl_problem',
  UNABLE_TO_DECRYPT_CRL_SIGNATURE: 'crl_problem',
  INVALID_PURPOSE: 'bad_key_usage',
  KEYUSAGE_NO_CERTSIGN: 'invalid_chain',
  INVALID_CA: 'invalid_chain',
  PATH_LENGTH_EXCEEDED: 'invalid_chain',
  PERMITTED_VIOLATION: 'invalid_chain',
  EXCLUDED_VIOLATION: 'invalid_chain',
  UNHANDLED_CRITICAL_EXTENSION: 'invalid_certificate',
  CERT_CHAIN_TOO_LONG: 'invalid_chain',
};

/** Reason for `socket.authorized === false`; `hasCertificate` is whether the peer sent one at all. */
export function verifyFailureReason(authorizationError: string | Error | null | undefined, hasCertificate: boolean): HandshakeFailureReason {
  if (!hasCertificate) return 'no_certificate';
  const code = authorizationError instanceof Error ? ((authorizationError as NodeJS.ErrnoException).code ?? authorizationError.message) : authorizationError;
  return (code && VERIFY_REASONS[code]) || 'invalid_certificate';
}

/** Reason for a `tlsClientError` (the handshake did not complete). */
export function tlsErrorReason(err: NodeJS.ErrnoException): HandshakeFailureReason {
  const code = err.code ?? '';
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'handshake_timeout';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'connection_reset';
  if (code === 'ERR_SSL_HTTP_REQUEST') return 'not_tls';
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') return 'no_certificate';
  if (/UNSUPPORTED_PROTOCOL|NO_SHARED_CIPHER|WRONG_VERSION_NUMBER|VERSION_TOO_LOW|NO_PROTOCOLS_AVAILABLE|NO_APPLICATION_PROTOCOL|PROTOCOL_VERSION/.test(code)) {
    return 'protocol_mismatch';
  }
  if (/ALERT_(BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_|DECRYPT_ERROR|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED)/.test(code)) {
    return 'server_certificate_rejected';
  }
  if (/CERTIFICATE|SIGNATURE/.test(code)) return 'invalid_certificate';
  return 'tls_error';
}

/**
 * Why a peer that OpenSSL did not authorize was refused. OpenSSL reports the LAST verify error (it keeps
 * going after the first), so the peer's chain is judged again here in the order a person would ask:
 * is it in its validity window, does it chain to our bundle, is anything on the path revoked; only then
 * is OpenSSL's own code used.
 */
export function classifyRefusal(
  peerChain: Buffer[],
  trust: TrustView,
  now: Date,
  authorizationError: string | Error | null | undefined,
): HandshakeFailureReason {
  if (peerChain.length === 0) return 'no_certificate';
  let certs: X509Certificate[];
  try {
    certs = peerChain.map((der) => new X509Certificate(der));
  } catch {
    return 'unparsable_certificate';
  }
  const leaf = certs[0]!;
  if (now < new Date(leaf.validFrom)) return 'not_yet_valid';
  if (now > new Date(leaf.validTo)) return 'expired';
  const path = pathToAnchor(leaf, certs.slice(1), trust.anchors);
  if (!path) return 'untrusted';
  for (const c of path.slice(0, -1)) {
    if (now > new Date(c.validTo)) return 'expired';
    if (now < new Date(c.validFrom)) return 'not_yet_valid';
    try {
      const parsed = parseCertificate(c.raw);
      if (trust.revoked.has(certificateRef(parsed))) return 'revoked';
    } catch {
      return 'unparsable_certificate';
    }
  }
  if (outsideUriNameConstraints(leaf, path.slice(1))) return 'invalid_chain';
  return verifyFailureReason(authorizationError, true);
}

/**
 * Whether a URI SAN of the leaf lies outside the permitted URI subtrees of a CA on its path. OpenSSL
 * refuses it with X509_V_ERR_PERMITTED_VIOLATION, which Node reports as "UNSPECIFIED": without this check
 * a SPIFFE ID of another trust domain would be counted as invalid_certificate.
 */
function outsideUriNameConstraints(leaf: X509Certificate, cas: X509Certificate[]): boolean {
  let uris: string[];
  try {
    uris = parseCertificate(leaf.raw).uris;
  } catch {
    return false;
  }
  for (const ca of cas) {
    let permitted: string[];
    try {
      permitted = parseCertificate(ca.raw).permittedUriDomains;
    } catch {
      continue;
    }
    if (permitted.length === 0) continue;
    for (const uri of uris) {
      let host: string;
      try {
        host = new URL(uri).hostname.toLowerCase();
      } catch {
        return true;
      }
      // RFC 5280 §4.2.1.10: a host-form constraint matches that host; ".example.org" matches subdomains only.
      const ok = permitted.some((d) => (d.startsWith('.') ? host.endsWith(d.toLowerCase()) : host === d.toLowerCase()));
      if (!ok) return true;
    }
  }
  return false;
}
