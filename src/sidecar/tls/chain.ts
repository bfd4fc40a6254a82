// Building a certificate path from a leaf to a trust anchor (node's X509Certificate does the name and
// signature checks). Used to validate our own credentials before use, and to say precisely why a peer
// was refused: OpenSSL keeps verifying after the first error and reports the last one, so its
// authorizationError for an untrusted chain under CRL checking is "UNABLE_TO_GET_CRL", not "untrusted".
import { X509Certificate } from 'node:crypto';
import type { Revocations } from './crl.js';

/** The path leaf → … → anchor (anchor included), or undefined when no anchor signs the chain. */
export function pathToAnchor(leaf: X509Certificate, intermediates: X509Certificate[], anchors: X509Certificate[]): X509Certificate[] | undefined {
  const path = [leaf];
  let current = leaf;
  for (let depth = 0; depth <= 8; depth++) {
    const signedBy = (c: X509Certificate) => current.checkIssued(c) && current.verify(c.publicKey);
    const anchor = anchors.find(signedBy);
    if (anchor) {
      path.push(anchor);
      return path;
    }
    const next = intermediates.find((c) => c !== current && signedBy(c));
    if (!next) return undefined;
    path.push(next);
    current = next;
  }
  return undefined;
}

/** What the current ca.crt and crl.pem say, in the form the refusal classifier needs. */
export interface TrustView {
  anchors: X509Certificate[];
  /** The serials crl.pem revokes, by issuer name and key. */
  revoked: Revocations;
}
