// PKCS#10 certificate signing requests (RFC 2986): creation for every key type, and parsing that always
// verifies the request's self-signature (proof that the requester holds the private key).
import { KeyObject } from 'node:crypto';
import { invalid } from '../errors.js';
import {
  asBuffer,
  guardParse,
  readExtensions,
  readPublicKey,
  readSignedParts,
  signatureAlgorithmFor,
  signedDer,
  verifySignedData,
  verifySignedDataAsync,
} from './certificate.js';
import * as der from './der.js';
import { decodeAltNames, encodeAltNames } from './general-names.js';
import { exportSpkiDer, keyTypeOf, publicKeyMatches, type KeyType } from './keys.js';
import { decodeName, encodeName, type DistinguishedName } from './name.js';
import { OID } from './oids.js';

export interface CsrRequest {
  subject: DistinguishedName;
  uris?: string[];
  dns?: string[];
  ips?: string[];
}

export interface ParsedCsr {
  der: Buffer;
  subject: DistinguishedName;
  publicKey: KeyObject;
  keyType: KeyType;
  uris: string[];
  dns: string[];
  ips: string[];
  // Additions beyond the shared API:
  subjectString: string;
  spkiDer: Buffer;
  signatureAlgorithmOid: string;
  /** OIDs of every extension the CSR requests (the CA decides which it honours). */
  requestedExtensions: string[];
}

/** A signed CSR, DER. The subjectAltName (when any name is given) goes in an extensionRequest attribute. */
export function createCsr(req: CsrRequest, keys: { privateKey: KeyObject; publicKey: KeyObject }): Buffer {
  if (!keys || !(keys.privateKey instanceof KeyObject) || keys.privateKey.type !== 'private') {
    throw invalid('A CSR needs the private key that signs it.');
  }
  if (!publicKeyMatches(keys.privateKey, keys.publicKey)) throw invalid('The CSR private key does not match its public key.');
  keyTypeOf(keys.publicKey);
  const names = { uris: req.uris ?? [], dns: req.dns ?? [], ips: req.ips ?? [] };
  const attributes: Buffer[] = [];
  if (names.uris.length + names.dns.length + names.ips.length > 0) {
    const extensions = der.sequence(der.sequence(der.oid(OID.subjectAltName), der.octetString(encodeAltNames(names))));
    attributes.push(der.sequence(der.oid(OID.extensionRequest), der.set(extensions)));
  }
  const info = der.sequence(
    der.smallInteger(0),
    encodeName(req.subject ?? {}),
    exportSpkiDer(keys.publicKey),
    der.tlv(0xa0, ...attributes),
  );
  const alg = signatureAlgorithmFor(keys.privateKey);
  return signedDer(info, alg, keys.privateKey);
}

/** Parses a CSR and verifies its signature; invalid_argument for anything malformed, unsupported or unsigned. */
export function parseCsr(input: Buffer): ParsedCsr {
  const csr = readCsr(input);
  if (csr.signed.unusedBits !== 0 || !verifySignedData(csr.signed.algorithmOid, csr.signed.data, csr.signed.signature, csr.signed.publicKey)) throw badCsrSignature();
  return csr.rest();
}

/**
 * parseCsr with the signature check on libuv's thread pool (crypto.verify with a callback), so a CA serving
 * many Sign calls checks several CSRs at once beside its main thread. Same checks, same order, same errors:
 * only where the verification runs differs.
 */
export async function parseCsrAsync(input: Buffer): Promise<ParsedCsr> {
  const csr = readCsr(input);
  if (csr.signed.unusedBits !== 0 || !await verifySignedDataAsync(csr.signed.algorithmOid, csr.signed.data, csr.signed.signature, csr.signed.publicKey)) throw badCsrSignature();
  return csr.rest();
}

function badCsrSignature(): Error {
  return invalid('The CSR signature does not verify: the request was altered or not signed by its own key.');
}

/**
 * A CSR read up to its signature check: what the check needs, and `rest` to read the attributes once it
 * passed (a request whose signature fails is refused for that, whatever its attributes hold).
 */
function readCsr(input: Buffer): { signed: { algorithmOid: string; data: Buffer; signature: Buffer; unusedBits: number; publicKey: KeyObject }; rest: () => ParsedCsr } {
  const bytes = Buffer.from(asBuffer(input, 'CSR'));
  return guardParse('CSR', () => {
    const { tbs: infoNode, algorithm: alg, signature } = readSignedParts(bytes, 'CSR', 'CertificationRequestInfo', 'request info');
    const info = der.children(infoNode);
    if (info.length !== 4 && info.length !== 3) throw new der.DerError('malformed CertificationRequestInfo');
    if (der.readSmallInteger(info[0]!) !== 0) throw new der.DerError('unknown CSR version');
    const subjectNode = der.expectTag(info[1], der.TAG.SEQUENCE, 'subject');
    const spkiNode = der.expectTag(info[2], der.TAG.SEQUENCE, 'subject public key info');
    // OpenSSL and others always write the [0] attributes field; tolerate its absence.
    const attributesNode = info[3] === undefined ? undefined : der.expectTag(info[3], 0xa0, 'attributes');

    const subject = decodeName(subjectNode);
    const spkiDer = der.bytesOf(spkiNode);
    const { publicKey } = readPublicKey(spkiDer);
    const keyType = keyTypeOf(publicKey); // refuses RSA < 2048 and unsupported keys with a clear sentence
    const signed = { algorithmOid: alg.oid, data: der.bytesOf(infoNode), signature: signature.bytes, unusedBits: signature.unusedBits, publicKey };
    const rest = () => guardParse('CSR', () => readAttributes({
      der: bytes,
      subject: subject.name,
      subjectString: subject.text,
      publicKey,
      keyType,
      spkiDer,
      uris: [],
      dns: [],
      ips: [],
      signatureAlgorithmOid: alg.oid,
      requestedExtensions: [],
    }, attributesNode));
    return { signed, rest };
  });
}

function readAttributes(parsed: ParsedCsr, attributesNode: der.DerNode | undefined): ParsedCsr {
  for (const attribute of attributesNode ? der.children(attributesNode) : []) {
    der.expectTag(attribute, der.TAG.SEQUENCE, 'attribute');
    const [typeNode, valuesNode] = der.children(attribute);
    if (!typeNode || !valuesNode) throw new der.DerError('malformed attribute');
    if (der.readOid(typeNode) !== OID.extensionRequest) continue;
    const values = der.children(der.expectTag(valuesNode, der.TAG.SET, 'extensionRequest values'));
    if (values.length !== 1) throw new der.DerError('extensionRequest must hold one value');
    for (const ext of readExtensions(values[0]!)) {
      parsed.requestedExtensions.push(ext.oid);
      if (ext.oid === OID.subjectAltName) {
        const names = decodeAltNames(ext.value);
        parsed.uris = names.uris;
        parsed.dns = names.dns;
        parsed.ips = names.ips;
      }
    }
  }
  return parsed;
}
