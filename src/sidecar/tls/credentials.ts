// The sidecar's own credentials: identity.dir (tls.crt leaf + chain, tls.key, ca.crt, optional crl.pem)
// read together, validated the way a peer would judge them (parses, key matches the leaf, leaf chains to
// the bundle, in its validity window, X509-SVID leaf rules for a server) and turned into TLS options.
// A set that fails any check is never used: the caller keeps the previous one. crl.pem is judged apart
// (./crl.ts): a stale CRL is kept in force, a broken one leaves the last good CRLs in force, and neither
// ever refuses the certificate set beside it.
import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { SecureContextOptions } from 'node:tls';
import { MeshwardError, invalid } from '../../errors.js';
import { parseCertificate } from '../../pki/certificate.js';
import type { ParsedCertificate } from '../../pki/certificate.js';
import { importPrivateKeyPem, publicKeyMatches } from '../../pki/keys.js';
import { decodePem } from '../../pki/pem.js';
import { loadCrlSet, Revocations, type CrlSet } from './crl.js';
import { identityFromCertificate, svidLeafViolation } from './identity.js';
import type { Identity } from './identity.js';
import { pathToAnchor } from './chain.js';
import type { TrustView } from './chain.js';

export const CREDENTIAL_FILES = { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt', crl: 'crl.pem' } as const;

export interface CredentialFiles {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
  crl?: Buffer;
}

export interface Credentials {
  files: CredentialFiles;
  leaf: ParsedCertificate;
  identity: Identity;
  notAfter: Date;
  /** Changes exactly when ca.crt or the CRLs in force change: then resumed sessions must not skip the new checks. */
  trustDigest: string;
  /** The CRLs in force: crl.pem's, or the last good ones when crl.pem is broken; undefined without any. */
  crl?: CrlSet;
  /** Why crl.pem was not taken (the CRLs in force are then the previous ones). */
  crlProblem?: string;
  /** ca.crt and crl.pem, for explaining refusals. */
  trust: TrustView;
  /** What tls.createSecureContext / server.setSecureContext take. */
  tlsOptions: SecureContextOptions;
}

function readOptional(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new MeshwardError('unavailable', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Reads the four files; not_found names the first required file that is missing. */
export function readCredentialFiles(dir: string): CredentialFiles {
  const cert = readOptional(join(dir, CREDENTIAL_FILES.cert));
  const key = readOptional(join(dir, CREDENTIAL_FILES.key));
  const ca = readOptional(join(dir, CREDENTIAL_FILES.ca));
  const missing = [cert ? '' : CREDENTIAL_FILES.cert, key ? '' : CREDENTIAL_FILES.key, ca ? '' : CREDENTIAL_FILES.ca].filter(Boolean);
  if (missing.length > 0) {
    throw new MeshwardError('not_found', `waiting for credentials in ${dir}: ${missing.join(', ')} missing`);
  }
  const files: CredentialFiles = { cert: cert!, key: key!, ca: ca! };
  const crl = readOptional(join(dir, CREDENTIAL_FILES.crl));
  if (crl) files.crl = crl;
  return files;
}

export function sameFiles(a: CredentialFiles, b: CredentialFiles): boolean {
  return a.cert.equals(b.cert) && a.key.equals(b.key) && a.ca.equals(b.ca) && (a.crl ?? Buffer.alloc(0)).equals(b.crl ?? Buffer.alloc(0));
}

function certificates(pem: Buffer, file: string): { parsed: ParsedCertificate; x509: X509Certificate }[] {
  // A Secret key written empty is a common Kubernetes mistake: say so rather than "no PEM block".
  if (pem.toString('latin1').trim() === '') throw invalid(`${file}: the file is empty`);
  let blocks;
  try {
    blocks = decodePem(pem).filter((b) => b.label === 'CERTIFICATE');
  } catch (err) {
    throw invalid(`${file}: ${(err as Error).message}`);
  }
  if (blocks.length === 0) throw invalid(`${file}: no CERTIFICATE block`);
  return blocks.map((b, i) => {
    try {
      return { parsed: parseCertificate(b.der), x509: new X509Certificate(b.der) };
    } catch (err) {
      throw invalid(`${file}: certificate ${i + 1} is malformed: ${(err as Error).message}`);
    }
  });
}

function validityProblem(c: ParsedCertificate, now: Date): string | undefined {
  if (now < c.notBefore) return `is not valid before ${c.notBefore.toISOString()}`;
  if (now >= c.notAfter) return `expired at ${c.notAfter.toISOString()}`;
  return undefined;
}

/**
 * Checks a set of credential files at `now`; invalid_argument says which check failed. `previous` is the
 * set in use: its CRLs stay in force when the new crl.pem is broken.
 */
export function validateCredentials(files: CredentialFiles, now: Date, previous?: Credentials): Credentials {
  const chain = certificates(files.cert, CREDENTIAL_FILES.cert);
  const bundle = certificates(files.ca, CREDENTIAL_FILES.ca);
  // A bundle of leaves (the wrong Secret key mounted as ca.crt) anchors nothing; without this the reason
  // would read "tls.crt does not chain to a CA in ca.crt", pointing at the certificate that is fine.
  if (!bundle.some((c) => c.parsed.isCA)) {
    const first = bundle[0]!.parsed;
    const name = first.subjectString || first.uris[0] || `serial ${first.serialHex}`;
    const what = bundle.length === 1 ? `its certificate (${name}) is not a CA certificate` : `none of its ${bundle.length} certificates is a CA certificate (the first: ${name})`;
    throw invalid(`${CREDENTIAL_FILES.ca}: ${what}: a trust bundle holds CA certificates (cA=true), not leaves`);
  }
  const leaf = chain[0]!;

  let key;
  try {
    key = importPrivateKeyPem(files.key);
  } catch (err) {
    throw invalid(`${CREDENTIAL_FILES.key}: ${(err as Error).message}`);
  }
  if (!publicKeyMatches(key, leaf.parsed.publicKey)) {
    throw invalid(`${CREDENTIAL_FILES.key} does not match the certificate in ${CREDENTIAL_FILES.cert} (a new certificate beside an old key?)`);
  }
  const leafTime = validityProblem(leaf.parsed, now);
  if (leafTime) throw invalid(`${CREDENTIAL_FILES.cert}: the certificate ${leafTime}`);
  const violation = svidLeafViolation(leaf.parsed, 'server');
  if (violation) throw invalid(`${CREDENTIAL_FILES.cert}: ${violation.message}`);

  // The path leaf -> intermediates (from tls.crt) -> an anchor in ca.crt, each in its validity window.
  const path = pathToAnchor(leaf.x509, chain.slice(1).map((c) => c.x509), bundle.map((b) => b.x509));
  if (!path) {
    throw invalid(`${CREDENTIAL_FILES.cert}: the certificate does not chain to a CA in ${CREDENTIAL_FILES.ca} (its issuer is ${leaf.parsed.issuerString})`);
  }
  for (const x of path.slice(1)) {
    const c = [...chain, ...bundle].find((e) => e.x509 === x)!;
    if (!c.parsed.isCA) throw invalid(`${CREDENTIAL_FILES.cert}: ${c.parsed.subjectString} signs the chain but is not a CA certificate`);
    const t = validityProblem(c.parsed, now);
    if (t) throw invalid(`the CA certificate ${c.parsed.subjectString} ${t}`);
  }

  // No `crl` option: OpenSSL verifies the chain only, revocation is checked by the sidecar (./crl.ts says why).
  const tlsOptions: SecureContextOptions = { cert: files.cert, key: files.key, ca: files.ca };
  let crl: CrlSet | undefined;
  let crlProblem: string | undefined;
  if (files.crl) {
    if (previous?.crl && previous.crl.source.equals(files.crl)) crl = previous.crl;
    else {
      try {
        crl = loadCrlSet(files.crl, [...bundle, ...chain.slice(1)].map((c) => c.x509));
      } catch (err) {
        crlProblem = (err as Error).message;
        crl = previous?.crl;
      }
    }
  }
  try {
    createSecureContext(tlsOptions); // OpenSSL's own opinion of the same bytes
  } catch (err) {
    throw invalid(`OpenSSL refuses the credentials: ${(err as Error).message}`);
  }
  const trustDigest = createHash('sha256').update(files.ca).update('\0').update(crl?.digest ?? '').digest('hex');
  return {
    files,
    leaf: leaf.parsed,
    identity: identityFromCertificate(leaf.parsed),
    notAfter: leaf.parsed.notAfter,
    trustDigest,
    ...(crl ? { crl } : {}),
    ...(crlProblem !== undefined ? { crlProblem } : {}),
    trust: { anchors: bundle.map((b) => b.x509), revoked: crl?.revoked ?? Revocations.NONE },
    tlsOptions,
  };
}
