// The sidecar's CRLs (identity.dir/crl.pem) and the revocation check it runs itself. Why not OpenSSL's own
// CRL check (the `crl` TLS option): OpenSSL refuses EVERY client once a CRL is past its nextUpdate
// (CRL_HAS_EXPIRED) and every client of a CA that has no CRL (UNABLE_TO_GET_CRL). A CA that could not
// publish for a while would then take the whole mesh down, and refusing the CRL instead would forgive
// every revoked certificate in it (istio#61075's failure). So the sidecar reads the CRLs here, keeps
// enforcing a stale one (and reports it: metric, /readyz detail, warning), and a crl.pem that does not
// parse or whose signature does not verify is refused on its own: the last good CRLs stay in force and the
// new certificate set is loaded regardless.
import { X509Certificate, createHash } from 'node:crypto';
import { invalid } from '../../errors.js';
import { parseCertificate } from '../../pki/certificate.js';
import { parseCrl, verifyCrlSignature } from '../../pki/crl.js';
import { decodePem } from '../../pki/pem.js';

export interface CrlInfo {
  issuerString: string;
  thisUpdate: Date;
  nextUpdate?: Date;
  crlNumber?: bigint;
  /** Whether a CA certificate the sidecar holds (ca.crt, tls.crt) signed it; otherwise its issuer is not known here. */
  verified: boolean;
}

/** A certificate as a CRL sees it: who issued it (name, and key when it names one) and its serial. */
export interface CertificateRef {
  /** The issuer name, DER as hex. */
  issuerHex: string;
  /** The authorityKeyIdentifier's key id as hex, when the certificate has one. */
  issuerKeyIdHex?: string | undefined;
  /** Lowercase hex, no 00 pad. */
  serialHex: string;
}

/** What one CRL revokes, filed under its issuer's name. */
interface IssuerRevocations {
  /** The CRL's authorityKeyIdentifier key id (hex), or undefined when the CRL names no key. */
  keyIdHex: string | undefined;
  serials: Set<string>;
}

/**
 * The revoked serials of every CRL, by issuer. A serial means something only for the CA key that issued
 * it: two CAs may share a subject name (a federation, a re-created CA, a rotation that kept the name),
 * and a CRL of one must not revoke the other's certificates that happen to carry the same serial. So a
 * CRL that names its key (authorityKeyIdentifier, as meshward's CA and most CAs write) applies only to
 * certificates issued by that key; the issuer name is the fallback when either side names no key.
 */
export class Revocations {
  private readonly byName = new Map<string, IssuerRevocations[]>();
  /** Revoked serials in all, for the log. */
  count = 0;

  static readonly NONE: Revocations = new Revocations();

  add(issuerHex: string, keyIdHex: string | undefined, serials: Iterable<string>): void {
    const entries = this.byName.get(issuerHex) ?? [];
    let entry = entries.find((e) => e.keyIdHex === keyIdHex);
    if (entry === undefined) {
      entry = { keyIdHex, serials: new Set() };
      entries.push(entry);
      this.byName.set(issuerHex, entries);
    }
    for (const serial of serials) {
      if (!entry.serials.has(serial)) this.count++;
      entry.serials.add(serial);
    }
  }

  get empty(): boolean {
    return this.count === 0;
  }

  /** Whether a CRL of this certificate's issuer (same name, and same key where both name one) lists its serial. */
  has(cert: CertificateRef): boolean {
    const entries = this.byName.get(cert.issuerHex);
    if (entries === undefined) return false;
    for (const e of entries) {
      if (e.keyIdHex !== undefined && cert.issuerKeyIdHex !== undefined && e.keyIdHex !== cert.issuerKeyIdHex) continue;
      if (e.serials.has(cert.serialHex)) return true;
    }
    return false;
  }

  /** Whether a CRL of an issuer other than this name lists anything (then a chain's intermediates need a look). */
  listsOtherThan(issuerHex: string): boolean {
    for (const [name, entries] of this.byName) if (name !== issuerHex && entries.some((e) => e.serials.size > 0)) return true;
    return false;
  }
}

/** The CertificateRef of a parsed certificate. */
export function certificateRef(cert: { issuerDer: Buffer; authorityKeyId?: Buffer | undefined; serialHex: string }): CertificateRef {
  return { issuerHex: cert.issuerDer.toString('hex'), issuerKeyIdHex: cert.authorityKeyId?.toString('hex'), serialHex: cert.serialHex };
}

export interface CrlSet {
  /** The crl.pem bytes these CRLs came from. */
  source: Buffer;
  crls: CrlInfo[];
  revoked: Revocations;
  /** The earliest nextUpdate: from then on the set is stale (still enforced). */
  nextUpdate: Date | undefined;
  /** Changes exactly when the CRLs change. */
  digest: string;
}

/**
 * Parses crl.pem and checks each CRL's signature with the CA certificate that issued it, when the sidecar
 * holds that certificate (ca.crt's roots, tls.crt's intermediates). A CRL of an issuer the sidecar does not
 * hold (an older intermediate after a rotation) is used unverified: a CRL can only refuse, never admit.
 * Throws invalid_argument naming the problem.
 */
export function loadCrlSet(source: Buffer, cas: X509Certificate[]): CrlSet {
  let blocks;
  try {
    blocks = decodePem(source);
  } catch (err) {
    throw invalid(`crl.pem: ${(err as Error).message}`);
  }
  const crlBlocks = blocks.filter((b) => b.label === 'X509 CRL');
  if (crlBlocks.length === 0) throw invalid('crl.pem: no X509 CRL block');
  const parsedCas = cas.map((x) => parseCertificate(x.raw));
  const crls: CrlInfo[] = [];
  const revoked = new Revocations();
  let nextUpdate: Date | undefined;
  const digest = createHash('sha256');
  crlBlocks.forEach((block, i) => {
    let crl;
    try {
      crl = parseCrl(block.der);
    } catch (err) {
      throw invalid(`crl.pem: CRL ${i + 1} does not parse: ${(err as Error).message}`);
    }
    // The issuer by key identifier when the CRL names one (two CAs of a federation may share a name), else by name.
    const aki = crl.authorityKeyId;
    const issuers = parsedCas.filter((c) => (aki && c.subjectKeyId ? c.subjectKeyId.equals(aki) : c.subjectDer.equals(crl.issuerDer)));
    const verified = issuers.some((c) => verifyCrlSignature(crl, c.publicKey));
    if (issuers.length > 0 && !verified) {
      throw invalid(`crl.pem: the CRL of ${crl.issuerString} is not signed by that CA (its signature does not verify with the certificate in ca.crt or tls.crt)`);
    }
    revoked.add(crl.issuerDer.toString('hex'), aki?.toString('hex'), crl.revoked.map((r) => r.serialHex));
    if (crl.nextUpdate && (!nextUpdate || crl.nextUpdate < nextUpdate)) nextUpdate = crl.nextUpdate;
    crls.push({ issuerString: crl.issuerString, thisUpdate: crl.thisUpdate, ...(crl.nextUpdate ? { nextUpdate: crl.nextUpdate } : {}), ...(crl.crlNumber !== undefined ? { crlNumber: crl.crlNumber } : {}), verified });
    digest.update(block.der);
  });
  return { source, crls, revoked, nextUpdate, digest: digest.digest('hex') };
}

/** A sentence for /readyz and the log when the CRLs are past their nextUpdate, else undefined. */
export function staleCrlProblem(set: CrlSet | undefined, now: Date): string | undefined {
  if (!set?.nextUpdate || now < set.nextUpdate) return undefined;
  const stale = set.crls.filter((c) => c.nextUpdate && now >= c.nextUpdate).map((c) => c.issuerString);
  return `crl.pem is past its nextUpdate ${set.nextUpdate.toISOString()} (${stale.join('; ')}): its revocations are still enforced; the agent or whoever writes crl.pem is not delivering fresh CRLs`;
}

/**
 * Whether any certificate of a verified peer chain is revoked. `leaf` is the leaf's issuer and serial
 * (cached per certificate by the caller); `chain` gives the rest and is asked for only when a CRL lists
 * serials of another issuer (a revoked intermediate), because reading the whole peer chain is slow.
 */
export function isRevoked(revoked: Revocations, leaf: CertificateRef, chain: () => Buffer[]): boolean {
  if (revoked.empty) return false;
  if (revoked.has(leaf)) return true;
  if (!revoked.listsOtherThan(leaf.issuerHex)) return false;
  for (const der of chain().slice(1)) {
    try {
      if (revoked.has(certificateRef(parseCertificate(der)))) return true;
    } catch {
      // OpenSSL verified this chain; a certificate we cannot parse cannot be listed either.
    }
  }
  return false;
}
