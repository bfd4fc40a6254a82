// What a peer's leaf certificate says, remembered by its exact DER bytes. Parsing the leaf, checking the
// X509-SVID leaf rules and building the Identity are pure functions of those bytes, and a mesh's callers
// reconnect with the same certificate until it rotates: profiling full handshakes showed the parse alone
// (mostly importing the public key) at about 9% of the sidecar's CPU per handshake. The chain, validity
// window are NOT remembered here: OpenSSL checks them on every handshake before this runs; revocation is
// checked on every handshake (tls/crl.ts) against the issuer and serial remembered here.
import type { TLSSocket } from 'node:tls';
import { parseCertificate } from '../../pki/certificate.js';
import * as der from '../../pki/der.js';
import { identityFromCertificate, svidLeafViolation } from './identity.js';
import type { Identity, LeafViolation } from './identity.js';

export type PeerVerdict =
  | { ok: true; identity: Identity; /** The leaf's issuer name, DER as hex, and the issuer's key id (authorityKeyIdentifier, hex): where a CRL files its serials. */ issuerHex: string; issuerKeyIdHex: string | undefined; /** The leaf's notAfter: an open connection ends then. */ notAfter: Date }
  | { ok: false; reason: LeafViolation['reason'] | 'unparsable_certificate'; message: string };

/**
 * The DER of the certificate the peer authenticated with, read from the TLS session. Why not
 * getPeerX509Certificate() or getPeerCertificate(): on Node 20 both copy the certificate (and the chain)
 * through OpenSSL 3.0's decoder, whose set-up for every public key made the first call on a connection
 * cost 110-160 µs (measured on this machine; later calls 2-4 µs). getSession() only encodes what OpenSSL
 * holds (about 12 µs), and the peer certificate sits in it as `peer [3] EXPLICIT Certificate` of the
 * SSL_SESSION ASN.1 structure (OpenSSL ssl/ssl_asn1.c, stable since 0.9.x). Falls back to the slow path
 * when the session is missing or shaped otherwise. The encoded session also holds the session's secret;
 * the buffer is zeroed before it is dropped.
 */
export function peerLeafDer(socket: TLSSocket): Buffer | undefined {
  const session = socket.getSession();
  if (session !== undefined) {
    try {
      const leaf = leafFromSession(session);
      if (leaf !== undefined) return leaf;
    } finally {
      session.fill(0);
    }
  }
  return socket.getPeerX509Certificate()?.raw;
}

/** A copy of the `peer [3]` certificate of an encoded SSL_SESSION, or undefined when there is none. */
export function leafFromSession(session: Buffer): Buffer | undefined {
  try {
    const fields = der.children(der.expectTag(der.readRoot(session), der.TAG.SEQUENCE, 'SSL_SESSION'));
    const peer = fields.find((f) => f.tag === 0xa3);
    if (peer === undefined) return undefined;
    const inner = der.children(peer);
    if (inner.length !== 1 || inner[0]!.tag !== der.TAG.SEQUENCE) return undefined;
    return Buffer.from(der.bytesOf(inner[0]!));
  } catch {
    return undefined;
  }
}

/** Distinct certificates kept; the oldest is forgotten first. Enough for every caller of a busy service. */
const DEFAULT_CAPACITY = 512;

/** The verdict on a client leaf, computed without a cache. */
export function judgeClientLeaf(raw: Buffer): PeerVerdict {
  let identity: Identity;
  let issuerHex: string;
  let issuerKeyIdHex: string | undefined;
  let notAfter: Date;
  try {
    const cert = parseCertificate(raw);
    const violation = svidLeafViolation(cert, 'client');
    if (violation) return { ok: false, reason: violation.reason, message: violation.message };
    identity = identityFromCertificate(cert);
    issuerHex = cert.issuerDer.toString('hex');
    issuerKeyIdHex = cert.authorityKeyId?.toString('hex');
    notAfter = cert.notAfter;
  } catch (err) {
    return { ok: false, reason: 'unparsable_certificate', message: (err as Error).message };
  }
  return { ok: true, identity: Object.freeze(identity), issuerHex, issuerKeyIdHex, notAfter };
}

export class PeerCertificates {
  // Keyed by the DER as a latin1 string: one byte per character, so equal keys mean equal bytes.
  private readonly verdicts = new Map<string, PeerVerdict>();

  constructor(private readonly capacity = DEFAULT_CAPACITY) {}

  /** The verdict on a client leaf; the same bytes give the same (frozen, shared) Identity object. */
  judge(raw: Buffer): PeerVerdict {
    const key = raw.toString('latin1');
    let verdict = this.verdicts.get(key);
    if (verdict === undefined) {
      verdict = judgeClientLeaf(raw);
      if (this.verdicts.size >= this.capacity) this.verdicts.delete(this.verdicts.keys().next().value!);
      this.verdicts.set(key, verdict);
    }
    return verdict;
  }

  get size(): number {
    return this.verdicts.size;
  }
}
