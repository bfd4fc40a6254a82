// Certificate revocation lists (RFC 5280 §5, v2): building one signed by a CA certificate, and parsing.
// OpenSSL (and so the sidecar) reads them with -crl_check; the CA rewrites one per trusted CA certificate.
import { KeyObject } from 'node:crypto';
import { invalid } from '../errors.js';
import {
  asBuffer,
  guardParse,
  readAlgorithmIdentifier,
  readExtensions,
  readSignedParts,
  signedDer,
  signatureAlgorithmFor,
  subjectKeyIdentifier,
  verifySignedData,
  type ParsedCertificate,
} from './certificate.js';
import * as der from './der.js';
import { publicKeyMatches } from './keys.js';
import { decodeName } from './name.js';
import { OID } from './oids.js';

export type RevocationReason =
  | 'unspecified'
  | 'keyCompromise'
  | 'cACompromise'
  | 'affiliationChanged'
  | 'superseded'
  | 'cessationOfOperation'
  | 'certificateHold'
  | 'privilegeWithdrawn';

export const REVOCATION_REASONS: readonly RevocationReason[] = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  'privilegeWithdrawn',
];

/** RFC 5280 §5.3.1 CRLReason codes (7 is unused; 8 removeFromCRL and 10 aACompromise are not issued here). */
const REASON_CODES: Record<RevocationReason, number> = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  privilegeWithdrawn: 9,
};

export function parseRevocationReason(text: string): RevocationReason {
  if ((REVOCATION_REASONS as readonly string[]).includes(text)) return text as RevocationReason;
  throw invalid(`Unknown revocation reason "${text}": use one of ${REVOCATION_REASONS.join(', ')}.`);
}

export interface RevokedEntry {
  serialHex: string;
  revokedAt: Date;
  reason: RevocationReason;
}

export interface ParsedCrl {
  der: Buffer;
  issuerString: string;
  issuerDer: Buffer;
  thisUpdate: Date;
  nextUpdate?: Date;
  crlNumber?: bigint;
  authorityKeyId?: Buffer;
  revoked: RevokedEntry[];
  // Additions beyond the shared API:
  tbsDer: Buffer;
  signature: Buffer;
  signatureAlgorithmOid: string;
}

function serialBytes(hex: string): Buffer {
  if (typeof hex !== 'string' || !/^[0-9a-fA-F]{1,40}$/.test(hex) || /^0+$/.test(hex)) {
    throw invalid(`"${String(hex)}" is not a certificate serial: use the positive hexadecimal serial (up to 40 digits).`);
  }
  return Buffer.from(hex.length % 2 ? '0' + hex : hex, 'hex');
}

export function buildCrl(opts: {
  issuer: ParsedCertificate;
  issuerKey: KeyObject;
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  revoked: RevokedEntry[];
}): Buffer {
  const { issuer, issuerKey } = opts;
  if (!issuer.isCA) throw invalid(`"${issuer.subjectString}" is not a CA certificate and cannot sign a CRL.`);
  if (issuer.keyUsage.length > 0 && !issuer.keyUsage.includes('cRLSign')) {
    throw invalid(`The CA certificate "${issuer.subjectString}" lacks the cRLSign key usage.`);
  }
  if (!(issuerKey instanceof KeyObject) || issuerKey.type !== 'private' || !publicKeyMatches(issuerKey, issuer.publicKey)) {
    throw invalid(`The CRL signing key does not belong to "${issuer.subjectString}".`);
  }
  if (typeof opts.crlNumber !== 'bigint' || opts.crlNumber < 0n || opts.crlNumber >= 1n << 159n) {
    throw invalid('The CRL number must be a non-negative integer below 2^159.');
  }
  if (!(opts.nextUpdate.getTime() > opts.thisUpdate.getTime())) {
    throw invalid('The CRL nextUpdate must be after thisUpdate.');
  }
  const algorithm = signatureAlgorithmFor(issuerKey);
  const entries = opts.revoked.map((entry) => {
    const code = REASON_CODES[entry.reason];
    if (code === undefined) throw invalid(`Unknown revocation reason "${entry.reason}": use one of ${REVOCATION_REASONS.join(', ')}.`);
    const parts = [der.unsignedInteger(serialBytes(entry.serialHex)), der.time(entry.revokedAt)];
    // RFC 5280 §5.3.1: the reason code "unspecified" SHOULD be absent.
    if (code !== 0) {
      parts.push(der.sequence(der.sequence(der.oid(OID.cRLReason), der.octetString(der.tlv(der.TAG.ENUMERATED, Buffer.from([code]))))));
    }
    return der.sequence(...parts);
  });
  const aki = issuer.subjectKeyId ?? subjectKeyIdentifier(issuer.spkiDer);
  const extensions = der.sequence(
    der.sequence(der.oid(OID.authorityKeyIdentifier), der.octetString(der.sequence(der.implicitPrimitive(0, aki)))),
    der.sequence(der.oid(OID.cRLNumber), der.octetString(der.smallInteger(opts.crlNumber))),
  );
  const tbs = der.sequence(
    der.smallInteger(1),
    algorithm.identifierDer,
    issuer.subjectDer,
    der.time(opts.thisUpdate),
    der.time(opts.nextUpdate),
    ...(entries.length > 0 ? [der.sequence(...entries)] : []),
    der.explicit(0, extensions),
  );
  return signedDer(tbs, algorithm, issuerKey);
}

const REASON_BY_CODE = new Map<number, RevocationReason>(Object.entries(REASON_CODES).map(([k, v]) => [v, k as RevocationReason]));

export function parseCrl(input: Buffer): ParsedCrl {
  const bytes = Buffer.from(asBuffer(input, 'CRL'));
  return guardParse('CRL', () => {
    const { tbs: tbsNode, algorithm: alg, signature } = readSignedParts(bytes, 'CRL', 'TBSCertList', 'TBS');
    const tbs = der.children(tbsNode);
    let i = 0;
    if (tbs[0]?.tag === der.TAG.INTEGER) {
      if (der.readSmallInteger(tbs[0]) !== 1) throw new der.DerError('unknown CRL version');
      i++;
    }
    const inner = readAlgorithmIdentifier(tbs[i++], 'TBS signature algorithm');
    if (!inner.der.equals(alg.der)) throw new der.DerError('the two signature algorithm fields differ');
    const issuerNode = der.expectTag(tbs[i++], der.TAG.SEQUENCE, 'issuer');
    const issuer = decodeName(issuerNode);
    if (!tbs[i]) throw new der.DerError('thisUpdate is missing');
    const thisUpdate = der.readTime(tbs[i++]!);
    let nextUpdate: Date | undefined;
    if (tbs[i] && (tbs[i]!.tag === der.TAG.UTC_TIME || tbs[i]!.tag === der.TAG.GENERALIZED_TIME)) nextUpdate = der.readTime(tbs[i++]!);
    const parsed: ParsedCrl = {
      der: bytes,
      issuerString: issuer.text,
      issuerDer: der.bytesOf(issuerNode),
      thisUpdate,
      nextUpdate,
      revoked: [],
      tbsDer: der.bytesOf(tbsNode),
      signature: signature.bytes,
      signatureAlgorithmOid: alg.oid,
    };
    if (tbs[i]?.tag === der.TAG.SEQUENCE) {
      for (const entry of der.children(tbs[i++]!)) {
        der.expectTag(entry, der.TAG.SEQUENCE, 'revoked certificate');
        const parts = der.children(entry);
        if (parts.length < 2 || parts.length > 3) throw new der.DerError('malformed revoked certificate entry');
        const serial = der.readIntegerBytes(parts[0]!).toString('hex').replace(/^(00)+/, '') || '00';
        let reason: RevocationReason = 'unspecified';
        if (parts[2]) {
          for (const ext of readExtensions(parts[2])) {
            if (ext.oid !== OID.cRLReason) continue;
            const code = der.contentOf(der.expectTag(ext.value, der.TAG.ENUMERATED, 'reason code'));
            if (code.length !== 1) throw new der.DerError('malformed reason code');
            reason = REASON_BY_CODE.get(code[0]!) ?? 'unspecified';
          }
        }
        parsed.revoked.push({ serialHex: serial, revokedAt: der.readTime(parts[1]!), reason });
      }
    }
    if (tbs[i]?.tag === 0xa0) {
      const wrapped = der.children(tbs[i++]!);
      if (wrapped.length !== 1) throw new der.DerError('malformed CRL extensions');
      for (const ext of readExtensions(wrapped[0]!)) {
        if (ext.oid === OID.cRLNumber) parsed.crlNumber = der.readBigInteger(ext.value);
        if (ext.oid === OID.authorityKeyIdentifier) {
          for (const part of der.children(der.expectTag(ext.value, der.TAG.SEQUENCE, 'authorityKeyIdentifier'))) {
            if (part.tag === 0x80) parsed.authorityKeyId = Buffer.from(der.contentOf(part));
          }
        }
      }
    }
    if (i !== tbs.length) throw new der.DerError('unexpected data at the end of the CRL');
    return parsed;
  });
}

/** Checks the CRL's signature with the issuer's public key. */
export function verifyCrlSignature(crl: ParsedCrl, issuerPublicKey: KeyObject): boolean {
  return verifySignedData(crl.signatureAlgorithmOid, crl.tbsDer, crl.signature, issuerPublicKey);
}
