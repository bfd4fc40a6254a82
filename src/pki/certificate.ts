// X.509 v3 certificates: building (CertificateSigner for issued certificates, selfSign for roots) and
// parsing. Building writes DER directly with ./der.ts so one leaf costs one TBS encoding and one signature;
// everything that depends only on the issuer is computed once per signer.
import { createHash, createPublicKey, KeyObject, sign as cryptoSign, verify as cryptoVerify, type JsonWebKey } from 'node:crypto';
import { invalid, MeshwardError } from '../errors.js';
import * as der from './der.js';
import { decodeAltNames, decodePermittedUris, encodeAltNames, encodeUriNameConstraints } from './general-names.js';
import { exportSpkiDer, keyTypeOf, publicKeyMatches, type KeyType } from './keys.js';
import { decodeName, encodeName, isEmptyName, type DistinguishedName } from './name.js';
import { OID, SIGNATURE_DIGEST } from './oids.js';

export type KeyUsage = 'digitalSignature' | 'keyEncipherment' | 'keyCertSign' | 'cRLSign';
export type ExtKeyUsage = 'serverAuth' | 'clientAuth';

export interface CertificateTemplate {
  /** Big-endian, positive (the caller makes 16 random bytes; a 0x00 pad is added when needed). */
  serial: Buffer;
  subject: DistinguishedName;
  publicKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  /** basicConstraints, always critical. */
  isCA: boolean;
  pathLen?: number;
  /** Critical. */
  keyUsage: KeyUsage[];
  /** Omitted when empty. */
  extKeyUsage?: ExtKeyUsage[];
  /** subjectAltName (critical when the subject is empty). */
  uris?: string[];
  dns?: string[];
  ips?: string[];
  /** nameConstraints (critical): URI permitted subtrees in host form ("example.org"). */
  permittedUriDomains?: string[];
}

export interface ParsedCertificate {
  der: Buffer;
  tbsDer: Buffer;
  /** Lowercase hex, no leading 00 pad. */
  serialHex: string;
  subject: DistinguishedName;
  subjectString: string;
  subjectDer: Buffer;
  issuer: DistinguishedName;
  issuerString: string;
  issuerDer: Buffer;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
  keyType: KeyType | 'unsupported';
  spkiDer: Buffer;
  isCA: boolean;
  pathLen?: number;
  basicConstraintsCritical: boolean;
  keyUsage: KeyUsage[];
  keyUsageCritical: boolean;
  extKeyUsage: ExtKeyUsage[];
  uris: string[];
  dns: string[];
  ips: string[];
  subjectKeyId?: Buffer;
  authorityKeyId?: Buffer;
  permittedUriDomains: string[];
  extensions: { oid: string; critical: boolean }[];
  signatureAlgorithmOid: string;
  /** Lowercase hex of sha256(der). */
  fingerprintSha256: string;
  // Additions beyond the shared API:
  /** X.509 version number (1-3). */
  version: number;
  /** The signature value (BIT STRING contents). */
  signature: Buffer;
  /** Every keyUsage bit set, by RFC 5280 name (including ones KeyUsage has no member for). */
  keyUsageNames: string[];
  /** Every extKeyUsage OID (including ones ExtKeyUsage has no member for). */
  extKeyUsageOids: string[];
  /** True when a basicConstraints extension is present. */
  hasBasicConstraints: boolean;
  subjectAltNameCritical: boolean;
}

// ---------- shared helpers ----------

// SEQUENCE { OID subjectKeyIdentifier, OCTET STRING { OCTET STRING (20 bytes) } }: only the 20 bytes vary.
const SKI_EXTENSION_PREFIX = Buffer.from('301d0603551d0e04160414', 'hex');
const VERSION_3 = der.explicit(0, der.smallInteger(2));
const BOOLEAN_TRUE = der.booleanTrue();
const SAN_OID = der.oid(OID.subjectAltName);
const NO_UNUSED_BITS = Buffer.from([0]);


const KEY_USAGE_BITS = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
const KNOWN_KEY_USAGES: readonly string[] = ['digitalSignature', 'keyEncipherment', 'keyCertSign', 'cRLSign'];
const EKU_OIDS: Record<ExtKeyUsage, string> = { serverAuth: OID.serverAuth, clientAuth: OID.clientAuth };

export interface SignatureAlgorithm {
  oid: string;
  /** Digest passed to crypto.sign (null for Ed25519, which hashes internally). */
  digest: string | null;
  /** The AlgorithmIdentifier DER. */
  identifierDer: Buffer;
}

/** The signature algorithm meshward uses for a signing key of each type. */
export function signatureAlgorithmFor(key: KeyObject): SignatureAlgorithm {
  switch (keyTypeOf(key)) {
    case 'ec-p256':
      return { oid: OID.ecdsaWithSha256, digest: 'sha256', identifierDer: der.sequence(der.oid(OID.ecdsaWithSha256)) };
    case 'ec-p384':
      return { oid: OID.ecdsaWithSha384, digest: 'sha384', identifierDer: der.sequence(der.oid(OID.ecdsaWithSha384)) };
    case 'ed25519':
      return { oid: OID.ed25519, digest: null, identifierDer: der.sequence(der.oid(OID.ed25519)) };
    case 'rsa-2048':
    case 'rsa-3072':
      return { oid: OID.sha256WithRsa, digest: 'sha256', identifierDer: der.sequence(der.oid(OID.sha256WithRsa), der.nullValue()) };
  }
}

// SPKI DER (and, once computed, the SKI) of keys we parsed from certificates and CSRs or signed for before,
// so signing for them needs no second export (an SPKI export costs about as much as a signature).
const keyIdentities = new WeakMap<KeyObject, { spki: Buffer; ski?: Buffer }>();

export function rememberSpki(key: KeyObject, spkiDer: Buffer): void {
  keyIdentities.set(key, { spki: spkiDer });
}

function keyIdentityOf(key: KeyObject): { spki: Buffer; ski: Buffer } {
  let entry = keyIdentities.get(key);
  if (!entry) {
    entry = { spki: exportSpkiDer(key) };
    keyIdentities.set(key, entry);
  }
  entry.ski ??= subjectKeyIdentifier(entry.spki);
  return entry as { spki: Buffer; ski: Buffer };
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING contents (without the unused-bits octet). */
export function subjectKeyIdentifier(spkiDer: Buffer): Buffer {
  const spki = der.children(der.readRoot(spkiDer));
  const bits = der.readBitString(der.expectTag(spki[1], der.TAG.BIT_STRING, 'subjectPublicKey'));
  return createHash('sha1').update(bits.bytes).digest();
}

function extension(oidText: string, critical: boolean, value: Buffer): Buffer {
  return critical
    ? der.sequence(der.oid(oidText), BOOLEAN_TRUE, der.octetString(value))
    : der.sequence(der.oid(oidText), der.octetString(value));
}

// Extensions that recur with the same value on every leaf are encoded once per process.
const extensionCache = new Map<string, Buffer>();
function cachedExtension(key: string, make: () => Buffer): Buffer {
  let hit = extensionCache.get(key);
  if (!hit) {
    hit = make();
    if (extensionCache.size < 256) extensionCache.set(key, hit);
  }
  return hit;
}

function basicConstraintsExtension(isCA: boolean, pathLen: number | undefined): Buffer {
  return cachedExtension(`bc:${isCA}:${pathLen}`, () => {
    const parts = isCA ? [der.booleanTrue(), ...(pathLen === undefined ? [] : [der.smallInteger(pathLen)])] : [];
    return extension(OID.basicConstraints, true, der.sequence(...parts));
  });
}

function keyUsageExtension(usages: KeyUsage[]): Buffer {
  return cachedExtension(`ku:${usages.join(',')}`, () => {
    let byte = 0;
    let highest = -1;
    for (const u of usages) {
      const bit = KEY_USAGE_BITS.indexOf(u);
      if (bit < 0 || !KNOWN_KEY_USAGES.includes(u)) throw invalid(`Unknown key usage "${u}": use ${KNOWN_KEY_USAGES.join(', ')}.`);
      byte |= 0x80 >> bit;
      highest = Math.max(highest, bit);
    }
    // DER: trailing zero bits are dropped and counted as unused.
    return extension(OID.keyUsage, true, der.bitString(Buffer.from([byte]), 7 - highest));
  });
}

function extKeyUsageExtension(usages: ExtKeyUsage[]): Buffer {
  return cachedExtension(`eku:${usages.join(',')}`, () =>
    extension(
      OID.extKeyUsage,
      false,
      der.sequence(
        ...usages.map((u) => {
          const o = EKU_OIDS[u];
          if (!o) throw invalid(`Unknown extended key usage "${u}": use serverAuth or clientAuth.`);
          return der.oid(o);
        }),
      ),
    ),
  );
}

function authorityKeyIdExtension(keyId: Buffer): Buffer {
  return extension(OID.authorityKeyIdentifier, false, der.sequence(der.implicitPrimitive(0, keyId)));
}

function checkTemplate(t: CertificateTemplate): Buffer {
  if (!t || typeof t !== 'object') throw invalid('A certificate template is required.');
  if (!Buffer.isBuffer(t.serial)) throw invalid('The certificate serial must be a Buffer of big-endian bytes.');
  let i = 0;
  while (i < t.serial.length && t.serial[i] === 0) i++;
  if (i === t.serial.length) throw invalid('The certificate serial must be a positive number (it is zero or empty).');
  const serial = t.serial.subarray(i);
  if (serial.length > 20 || (serial.length === 20 && serial[0]! & 0x80)) {
    throw invalid('The certificate serial must fit in 20 octets (RFC 5280): use 16 random bytes.');
  }
  if (!(t.notBefore instanceof Date) || !(t.notAfter instanceof Date) || Number.isNaN(t.notBefore.getTime()) || Number.isNaN(t.notAfter.getTime())) {
    throw invalid('The certificate validity needs valid notBefore and notAfter dates.');
  }
  if (t.notAfter.getTime() <= t.notBefore.getTime()) {
    throw invalid(`The certificate notAfter (${t.notAfter.toISOString()}) must be after notBefore (${t.notBefore.toISOString()}).`);
  }
  if (t.pathLen !== undefined) {
    if (!t.isCA) throw invalid('A path length constraint is only allowed on a CA certificate.');
    if (!Number.isInteger(t.pathLen) || t.pathLen < 0 || t.pathLen > 255) throw invalid(`The path length ${t.pathLen} must be an integer from 0 to 255.`);
  }
  if (!Array.isArray(t.keyUsage) || t.keyUsage.length === 0) throw invalid('The certificate needs at least one key usage.');
  if (t.isCA && !t.keyUsage.includes('keyCertSign')) throw invalid('A CA certificate needs the keyCertSign key usage.');
  if (!(t.publicKey instanceof KeyObject)) throw invalid('The certificate template needs a public key (KeyObject).');
  return serial;
}

/** Everything about the issuer a signature needs; computed once. */
interface IssuerContext {
  nameDer: Buffer;
  algorithm: SignatureAlgorithm;
  /** The TBS signature AlgorithmIdentifier followed by the issuer Name: adjacent in every TBS. */
  algorithmAndName: Buffer;
  /** The complete authorityKeyIdentifier extension, or undefined for a self-signed certificate (computed per call). */
  akiExtension?: Buffer;
  key: KeyObject;
}

function encodeTbs(t: CertificateTemplate, serial: Buffer, issuer: IssuerContext): Buffer {
  const { spki: spkiDer, ski } = keyIdentityOf(t.publicKey);
  const emptySubject = isEmptyName(t.subject ?? {});
  const uris = t.uris ?? [];
  const dns = t.dns ?? [];
  const ips = t.ips ?? [];
  const hasSan = uris.length + dns.length + ips.length > 0;
  if (emptySubject && !hasSan) throw invalid('A certificate with an empty subject needs at least one subject alternative name.');

  const exts: der.Part[] = [basicConstraintsExtension(t.isCA, t.pathLen), keyUsageExtension(t.keyUsage)];
  if (t.extKeyUsage && t.extKeyUsage.length > 0) exts.push(extKeyUsageExtension(t.extKeyUsage));
  exts.push(Buffer.concat([SKI_EXTENSION_PREFIX, ski]));
  exts.push(issuer.akiExtension ?? authorityKeyIdExtension(ski));
  if (hasSan) {
    const value = der.constructed(der.TAG.OCTET_STRING, [encodeAltNames({ uris, dns, ips })]);
    exts.push(der.constructed(der.TAG.SEQUENCE, emptySubject ? [SAN_OID, BOOLEAN_TRUE, value] : [SAN_OID, value]));
  }
  if (t.permittedUriDomains && t.permittedUriDomains.length > 0) {
    if (!t.isCA) throw invalid('Name constraints are only allowed on a CA certificate.');
    exts.push(extension(OID.nameConstraints, true, encodeUriNameConstraints(t.permittedUriDomains)));
  }
  const subjectDer = issuer.akiExtension ? encodeName(t.subject ?? {}) : issuer.nameDer;

  return der.encode(
    der.constructed(der.TAG.SEQUENCE, [
      VERSION_3,
      der.unsignedInteger(serial),
      issuer.algorithmAndName,
      der.constructed(der.TAG.SEQUENCE, [der.time(t.notBefore), der.time(t.notAfter)]),
      subjectDer,
      spkiDer,
      der.constructed(0xa3, [der.constructed(der.TAG.SEQUENCE, exts)]),
    ]),
  );
}

function signTbs(tbs: Buffer, issuer: IssuerContext): Buffer {
  return signedCertificate(tbs, issuer, cryptoSign(issuer.algorithm.digest, tbs, issuer.key));
}

function signedCertificate(tbs: Buffer, issuer: IssuerContext, signature: Buffer): Buffer {
  return der.encode(
    der.constructed(der.TAG.SEQUENCE, [tbs, issuer.algorithm.identifierDer, der.constructed(der.TAG.BIT_STRING, [NO_UNUSED_BITS, signature])]),
  );
}

/** Precomputes everything that depends only on the issuer, so each leaf costs one TBS encoding + one signature. */
export class CertificateSigner {
  private readonly issuer: IssuerContext;

  constructor(issuer: ParsedCertificate, issuerKey: KeyObject) {
    if (!issuer.isCA || !issuer.keyUsage.includes('keyCertSign')) {
      throw invalid(`The issuer "${issuer.subjectString}" is not a CA certificate (it needs cA=true and keyCertSign).`);
    }
    if (!(issuerKey instanceof KeyObject) || issuerKey.type !== 'private') throw invalid('The issuer key must be a private key.');
    if (!publicKeyMatches(issuerKey, issuer.publicKey)) {
      throw invalid(`The issuer key does not belong to the issuer certificate "${issuer.subjectString}".`);
    }
    const algorithm = signatureAlgorithmFor(issuerKey);
    this.issuer = {
      nameDer: Buffer.from(issuer.subjectDer),
      algorithm,
      algorithmAndName: Buffer.concat([algorithm.identifierDer, issuer.subjectDer]),
      akiExtension: authorityKeyIdExtension(issuer.subjectKeyId ?? subjectKeyIdentifier(issuer.spkiDer)),
      key: issuerKey,
    };
  }

  /** The signed certificate, DER. */
  sign(template: CertificateTemplate): Buffer {
    const serial = checkTemplate(template);
    return signTbs(encodeTbs(template, serial, this.issuer), this.issuer);
  }

  /**
   * sign() with the signature made on libuv's thread pool (crypto.sign with a callback): the same
   * certificate bytes but for the signature's randomness; the template is checked and encoded here first.
   */
  async signAsync(template: CertificateTemplate): Promise<Buffer> {
    const serial = checkTemplate(template);
    const tbs = encodeTbs(template, serial, this.issuer);
    const signature = await new Promise<Buffer>((resolve, reject) => {
      cryptoSign(this.issuer.algorithm.digest, tbs, this.issuer.key, (err, sig) => (err ? reject(err) : resolve(sig)));
    });
    return signedCertificate(tbs, this.issuer, signature);
  }
}

/** A self-signed certificate (roots): issuer = subject, AKI = SKI. */
export function selfSign(template: CertificateTemplate, key: KeyObject): Buffer {
  const serial = checkTemplate(template);
  if (!(key instanceof KeyObject) || key.type !== 'private') throw invalid('Self-signing needs a private key.');
  if (!publicKeyMatches(key, template.publicKey)) throw invalid('The signing key does not match the template public key.');
  if (isEmptyName(template.subject ?? {})) throw invalid('A self-signed certificate needs a subject name.');
  const nameDer = encodeName(template.subject);
  const algorithm = signatureAlgorithmFor(key);
  const issuer: IssuerContext = { nameDer, algorithm, algorithmAndName: Buffer.concat([algorithm.identifierDer, nameDer]), key };
  return signTbs(encodeTbs(template, serial, issuer), issuer);
}

/** A signed structure as certificates, CRLs and CSRs share it: SEQUENCE { tbs, algorithm, BIT STRING signature }. */
export function signedDer(tbs: Buffer, algorithm: SignatureAlgorithm, key: KeyObject): Buffer {
  return der.sequence(tbs, algorithm.identifierDer, der.bitString(cryptoSign(algorithm.digest, tbs, key)));
}

/** Checks the certificate's signature with the issuer's public key; false on any mismatch or unsupported algorithm. */
export function verifyCertificateSignature(cert: ParsedCertificate, issuerPublicKey: KeyObject): boolean {
  return verifySignedData(cert.signatureAlgorithmOid, cert.tbsDer, cert.signature, issuerPublicKey);
}

/** Verifies a signature made with one of the algorithms in oids.ts; false when it does not verify or is unsupported. */
export function verifySignedData(algorithmOid: string, data: Buffer, signature: Buffer, publicKey: KeyObject): boolean {
  if (!signatureFits(algorithmOid, publicKey)) return false;
  try {
    return cryptoVerify(SIGNATURE_DIGEST[algorithmOid]!, data, publicKey, signature);
  } catch {
    return false;
  }
}

/** verifySignedData on libuv's thread pool (crypto.verify with a callback): same answers, off the main thread. */
export function verifySignedDataAsync(algorithmOid: string, data: Buffer, signature: Buffer, publicKey: KeyObject): Promise<boolean> {
  if (!signatureFits(algorithmOid, publicKey)) return Promise.resolve(false);
  return new Promise((resolve) => {
    try {
      cryptoVerify(SIGNATURE_DIGEST[algorithmOid]!, data, publicKey, signature, (err, ok) => resolve(!err && ok));
    } catch {
      resolve(false);
    }
  });
}

/** The algorithm is one meshward knows and matches the key's type. */
function signatureFits(algorithmOid: string, publicKey: KeyObject): boolean {
  if (!(algorithmOid in SIGNATURE_DIGEST)) return false;
  const kind = publicKey.asymmetricKeyType;
  const expected = algorithmOid === OID.ed25519 ? 'ed25519' : algorithmOid.startsWith('1.2.840.10045.') ? 'ec' : 'rsa';
  return kind === expected;
}

// ---------- parsing ----------

export interface AlgorithmIdentifier {
  oid: string;
  der: Buffer;
}

export function readAlgorithmIdentifier(node: der.DerNode | undefined, what: string): AlgorithmIdentifier {
  der.expectTag(node, der.TAG.SEQUENCE, what);
  const parts = der.children(node!);
  if (parts.length < 1 || parts.length > 2) throw new der.DerError(`malformed ${what}`);
  return { oid: der.readOid(parts[0]!), der: der.bytesOf(node!) };
}

/** The three parts of a signed structure (certificate, CRL, CSR), with the signed part's node still to be read. */
export interface SignedParts {
  tbs: der.DerNode;
  algorithm: AlgorithmIdentifier;
  signature: { bytes: Buffer; unusedBits: number };
}

/**
 * Reads SEQUENCE { tbs, algorithm, signature } of a certificate, CRL or CSR: `what` names the structure and
 * `tbsName` its signed part in errors (`TBSCertificate`), `tbsWords` that part in the three-parts sentence.
 */
export function readSignedParts(bytes: Buffer, what: string, tbsName: string, tbsWords: string): SignedParts {
  const root = der.readRoot(bytes);
  der.expectTag(root, der.TAG.SEQUENCE, what);
  const top = der.children(root);
  if (top.length !== 3) throw new der.DerError(`a ${what} has three parts (${tbsWords}, algorithm, signature)`);
  const tbs = der.expectTag(top[0], der.TAG.SEQUENCE, tbsName);
  return { tbs, algorithm: readAlgorithmIdentifier(top[1], 'signature algorithm'), signature: der.readBitString(top[2]!) };
}

const EC_CURVES: Record<string, { crv: string; size: number }> = {
  '1.2.840.10045.3.1.7': { crv: 'P-256', size: 32 },
  '1.3.132.0.34': { crv: 'P-384', size: 48 },
};

/**
 * The JWK form of the SPKI for the key types we support, or undefined to fall back to DER. Why: OpenSSL 3's
 * DER decoder makes createPublicKey cost about three signatures; importing the same key as a JWK costs about
 * half of that, and a CSR's key is imported on every CSR signed. Node validates the JWK point as it would DER.
 */
export function spkiToJwk(spkiDer: Buffer): JsonWebKey | undefined {
  const [algNode, keyNode, extra] = der.children(der.readRoot(spkiDer));
  if (!algNode || !keyNode || extra) return undefined;
  const alg = der.children(der.expectTag(algNode, der.TAG.SEQUENCE, 'algorithm'));
  const algOid = der.readOid(alg[0]!);
  const bits = der.readBitString(keyNode);
  if (bits.unusedBits !== 0) return undefined;
  const key = bits.bytes;
  if (algOid === OID.ecPublicKey && alg.length === 2 && alg[1]!.tag === der.TAG.OID) {
    const curve = EC_CURVES[der.readOid(alg[1]!)];
    if (!curve || key.length !== 1 + 2 * curve.size || key[0] !== 0x04) return undefined;
    return {
      kty: 'EC',
      crv: curve.crv,
      x: key.subarray(1, 1 + curve.size).toString('base64url'),
      y: key.subarray(1 + curve.size).toString('base64url'),
    };
  }
  if (algOid === OID.ed25519 && alg.length === 1 && key.length === 32) {
    return { kty: 'OKP', crv: 'Ed25519', x: key.toString('base64url') };
  }
  return undefined;
}

/** A public key from SPKI DER plus its type; throws DerError when the key cannot be read. */
export function readPublicKey(spkiDer: Buffer): { publicKey: KeyObject; keyType: KeyType | 'unsupported' } {
  let publicKey: KeyObject;
  try {
    const jwk = spkiToJwk(spkiDer);
    publicKey = jwk ? createPublicKey({ key: jwk, format: 'jwk' }) : createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
  } catch {
    throw new der.DerError('the public key is unreadable or of an unsupported algorithm');
  }
  rememberSpki(publicKey, spkiDer);
  let keyType: KeyType | 'unsupported';
  try {
    keyType = keyTypeOf(publicKey);
  } catch {
    keyType = 'unsupported';
  }
  return { publicKey, keyType };
}

/** Buffer view of any Uint8Array input; anything else is refused. */
export function asBuffer(input: unknown, what: string): Buffer {
  if (Buffer.isBuffer(input)) return input;
  if (input instanceof Uint8Array) return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  throw invalid(`The ${what} must be DER bytes (a Buffer).`);
}

/** Runs a parser, turning every failure into one invalid_argument sentence about `what`. */
export function guardParse<T>(what: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof MeshwardError) throw err;
    const reason = err instanceof der.DerError ? err.message : 'it is not valid DER';
    throw invalid(`The ${what} is malformed: ${reason}.`, err);
  }
}

export interface ParsedExtension {
  oid: string;
  critical: boolean;
  value: der.DerNode;
}

/** Reads an Extensions SEQUENCE; refuses duplicates (RFC 5280 §4.2). */
export function readExtensions(node: der.DerNode): ParsedExtension[] {
  der.expectTag(node, der.TAG.SEQUENCE, 'extensions');
  const out: ParsedExtension[] = [];
  for (const ext of der.children(node)) {
    der.expectTag(ext, der.TAG.SEQUENCE, 'extension');
    const parts = der.children(ext);
    if (parts.length < 2 || parts.length > 3) throw new der.DerError('malformed extension');
    const oidText = der.readOid(parts[0]!);
    const critical = parts.length === 3 ? der.readBoolean(parts[1]!) : false;
    const octets = der.expectTag(parts[parts.length - 1], der.TAG.OCTET_STRING, 'extension value');
    if (out.some((e) => e.oid === oidText)) throw new der.DerError(`extension ${oidText} appears twice`);
    out.push({ oid: oidText, critical, value: der.readRoot(der.contentOf(octets)) });
  }
  return out;
}

function readKeyUsage(node: der.DerNode): string[] {
  const { bytes, unusedBits } = der.readBitString(node);
  const names: string[] = [];
  const totalBits = bytes.length * 8 - unusedBits;
  for (let bit = 0; bit < totalBits && bit < KEY_USAGE_BITS.length; bit++) {
    if (bytes[bit >> 3]! & (0x80 >> (bit & 7))) names.push(KEY_USAGE_BITS[bit]!);
  }
  return names;
}

export function parseCertificate(input: Buffer): ParsedCertificate {
  const bytes = Buffer.from(asBuffer(input, 'certificate'));
  return guardParse('certificate', () => parseCertificateDer(bytes));
}

/**
 * Only the serial number of a DER certificate, without decoding names or importing the public key (which
 * costs about as much as a signature): for callers that then compare the whole DER with a stored copy, as
 * the CA's renewal check does with the client certificate TLS already verified.
 */
export function certificateSerialHex(input: Buffer): string {
  const bytes = asBuffer(input, 'certificate');
  return guardParse('certificate', () => {
    const top = der.children(der.expectTag(der.readRoot(bytes), der.TAG.SEQUENCE, 'certificate'));
    const tbs = der.children(der.expectTag(top[0], der.TAG.SEQUENCE, 'TBSCertificate'));
    const serial = der.expectTag(tbs[tbs[0]?.tag === 0xa0 ? 1 : 0], der.TAG.INTEGER, 'serial number');
    return stripHexZeros(der.readIntegerBytes(serial).toString('hex'));
  });
}

function parseCertificateDer(bytes: Buffer): ParsedCertificate {
  const { tbs: tbsNode, algorithm: outerAlg, signature } = readSignedParts(bytes, 'certificate', 'TBSCertificate', 'TBS');
  if (signature.unusedBits !== 0) throw new der.DerError('signature bit string has unused bits');

  const tbs = der.children(tbsNode);
  let i = 0;
  let version = 1;
  if (tbs[0]?.tag === 0xa0) {
    const v = der.children(tbs[0]);
    if (v.length !== 1) throw new der.DerError('malformed version');
    version = der.readSmallInteger(v[0]!) + 1;
    if (version > 3) throw new der.DerError(`unknown version ${version}`);
    i = 1;
  }
  const serialBytes = der.readIntegerBytes(der.expectTag(tbs[i++], der.TAG.INTEGER, 'serial number'));
  const innerAlg = readAlgorithmIdentifier(tbs[i++], 'TBS signature algorithm');
  if (!innerAlg.der.equals(outerAlg.der)) throw new der.DerError('the two signature algorithm fields differ');
  const issuerNode = der.expectTag(tbs[i++], der.TAG.SEQUENCE, 'issuer');
  const validity = der.children(der.expectTag(tbs[i++], der.TAG.SEQUENCE, 'validity'));
  if (validity.length !== 2) throw new der.DerError('malformed validity');
  const notBefore = der.readTime(validity[0]!);
  const notAfter = der.readTime(validity[1]!);
  const subjectNode = der.expectTag(tbs[i++], der.TAG.SEQUENCE, 'subject');
  const spkiNode = der.expectTag(tbs[i++], der.TAG.SEQUENCE, 'subject public key info');
  let extensionsNode: der.DerNode | undefined;
  for (; i < tbs.length; i++) {
    const t = tbs[i]!.tag;
    if (t === 0xa3) {
      if (version !== 3) throw new der.DerError('extensions in a certificate that is not version 3');
      const inner = der.children(tbs[i]!);
      if (inner.length !== 1) throw new der.DerError('malformed extensions');
      extensionsNode = inner[0];
    } else if (t !== 0x81 && t !== 0x82 && t !== 0xa1 && t !== 0xa2) {
      throw new der.DerError(`unexpected element 0x${t.toString(16)} in the TBS certificate`);
    }
  }

  const issuer = decodeName(issuerNode);
  const subject = decodeName(subjectNode);
  const spkiDer = der.bytesOf(spkiNode);
  const { publicKey, keyType } = readPublicKey(spkiDer);

  const parsed: ParsedCertificate = {
    der: bytes,
    tbsDer: der.bytesOf(tbsNode),
    serialHex: stripHexZeros(serialBytes.toString('hex')),
    subject: subject.name,
    subjectString: subject.text,
    subjectDer: der.bytesOf(subjectNode),
    issuer: issuer.name,
    issuerString: issuer.text,
    issuerDer: der.bytesOf(issuerNode),
    notBefore,
    notAfter,
    publicKey,
    keyType,
    spkiDer,
    isCA: false,
    basicConstraintsCritical: false,
    keyUsage: [],
    keyUsageCritical: false,
    extKeyUsage: [],
    uris: [],
    dns: [],
    ips: [],
    permittedUriDomains: [],
    extensions: [],
    signatureAlgorithmOid: outerAlg.oid,
    fingerprintSha256: createHash('sha256').update(bytes).digest('hex'),
    version,
    signature: signature.bytes,
    keyUsageNames: [],
    extKeyUsageOids: [],
    hasBasicConstraints: false,
    subjectAltNameCritical: false,
  };
  if (extensionsNode) applyExtensions(parsed, readExtensions(extensionsNode));
  return parsed;
}

function stripHexZeros(hex: string): string {
  const s = hex.replace(/^(00)+/, '');
  return s === '' ? '00' : s;
}

function applyExtensions(cert: ParsedCertificate, exts: ParsedExtension[]): void {
  for (const ext of exts) {
    cert.extensions.push({ oid: ext.oid, critical: ext.critical });
    const v = ext.value;
    switch (ext.oid) {
      case OID.basicConstraints: {
        const parts = der.children(der.expectTag(v, der.TAG.SEQUENCE, 'basicConstraints'));
        let k = 0;
        if (parts[k]?.tag === der.TAG.BOOLEAN) cert.isCA = der.readBoolean(parts[k++]!);
        if (parts[k]?.tag === der.TAG.INTEGER) cert.pathLen = der.readSmallInteger(parts[k++]!);
        if (k !== parts.length) throw new der.DerError('malformed basicConstraints');
        cert.basicConstraintsCritical = ext.critical;
        cert.hasBasicConstraints = true;
        break;
      }
      case OID.keyUsage:
        cert.keyUsageNames = readKeyUsage(v);
        cert.keyUsage = cert.keyUsageNames.filter((n): n is KeyUsage => KNOWN_KEY_USAGES.includes(n));
        cert.keyUsageCritical = ext.critical;
        break;
      case OID.extKeyUsage:
        cert.extKeyUsageOids = der.children(der.expectTag(v, der.TAG.SEQUENCE, 'extKeyUsage')).map(der.readOid);
        if (cert.extKeyUsageOids.includes(OID.serverAuth)) cert.extKeyUsage.push('serverAuth');
        if (cert.extKeyUsageOids.includes(OID.clientAuth)) cert.extKeyUsage.push('clientAuth');
        break;
      case OID.subjectKeyIdentifier:
        cert.subjectKeyId = Buffer.from(der.contentOf(der.expectTag(v, der.TAG.OCTET_STRING, 'subjectKeyIdentifier')));
        break;
      case OID.authorityKeyIdentifier: {
        for (const part of der.children(der.expectTag(v, der.TAG.SEQUENCE, 'authorityKeyIdentifier'))) {
          if (part.tag === 0x80) cert.authorityKeyId = Buffer.from(der.contentOf(part));
        }
        break;
      }
      case OID.subjectAltName: {
        const names = decodeAltNames(v);
        cert.uris = names.uris;
        cert.dns = names.dns;
        cert.ips = names.ips;
        cert.subjectAltNameCritical = ext.critical;
        break;
      }
      case OID.nameConstraints:
        cert.permittedUriDomains = decodePermittedUris(v);
        break;
      default:
        break;
    }
  }
}
