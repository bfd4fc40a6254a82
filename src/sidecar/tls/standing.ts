// Whether the certificate an open connection authenticated with still stands under the current trust
// (ca.crt and crl.pem) and clock. The handshake checked it once; a connection can outlive that check by
// hours, so the inbound listener asks again whenever the trust changes and when the certificate's own
// notAfter passes. Pure: the caller supplies the chain, the trust view and the time.
import { X509Certificate } from 'node:crypto';
import { parseCertificate } from '../../pki/certificate.js';
import { pathToAnchor } from './chain.js';
import type { TrustView } from './chain.js';
import { certificateRef } from './crl.js';

/** Why an open connection's certificate no longer stands: also the metrics label of the ended connection. */
export type Fallen = 'revoked' | 'expired' | 'untrusted';

/**
 * undefined while the chain (leaf first, as the peer sent it) still reaches an anchor of `trust`, every
 * certificate on the path is within its validity window, and none of them is listed by a CRL.
 * A chain that cannot be parsed any more is judged by what is known: it is left alone (the handshake
 * accepted it), since ending connections on a parser doubt would turn a library quirk into an outage.
 */
export function fallenCredential(chain: readonly Buffer[], trust: TrustView, now: Date): Fallen | undefined {
  if (chain.length === 0) return undefined;
  let certs: X509Certificate[];
  try {
    certs = chain.map((der) => new X509Certificate(der));
  } catch {
    return undefined;
  }
  const path = pathToAnchor(certs[0]!, certs.slice(1), trust.anchors);
  if (!path) return 'untrusted';
  const t = now.getTime();
  for (const c of path) {
    if (t >= Date.parse(c.validTo) || t < Date.parse(c.validFrom)) return 'expired';
  }
  for (const c of path.slice(0, -1)) {
    try {
      const parsed = parseCertificate(c.raw);
      if (trust.revoked.has(certificateRef(parsed))) return 'revoked';
    } catch {
      return undefined;
    }
  }
  return undefined;
}
