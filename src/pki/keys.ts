// Key pairs: the five supported key types, generation, PEM/DER import and export, and type detection.
// node:crypto does the work (OpenSSL speed); this module decides what meshward accepts.
import { createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject } from 'node:crypto';
import { invalid, MeshwardError } from '../errors.js';
import * as der from './der.js';
import { decodePem } from './pem.js';

export type KeyType = 'ec-p256' | 'ec-p384' | 'ed25519' | 'rsa-2048' | 'rsa-3072';
export const KEY_TYPES: readonly KeyType[] = ['ec-p256', 'ec-p384', 'ed25519', 'rsa-2048', 'rsa-3072'];

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  type: KeyType;
}

export function parseKeyType(text: string): KeyType {
  if ((KEY_TYPES as readonly string[]).includes(text)) return text as KeyType;
  throw invalid(`Unknown key type "${text}": use one of ${KEY_TYPES.join(', ')}.`);
}

function generateRaw(type: KeyType): KeyObject {
  switch (type) {
    case 'ec-p256':
      return generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    case 'ec-p384':
      return generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey;
    case 'ed25519':
      return generateKeyPairSync('ed25519').privateKey;
    case 'rsa-2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    case 'rsa-3072':
      return generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey;
    default:
      throw invalid(`Unknown key type "${String(type)}": use one of ${KEY_TYPES.join(', ')}.`);
  }
}

/**
 * A new key pair. Workaround for a Node 20 deadlock (seen here: a test process hung for good, main thread
 * in ~KeyGenJob waiting on the key's mutex): keys straight from generateKeyPairSync share a mutex with
 * the key-generation job, which V8 may finalize during a GC triggered *inside* export({format:'jwk'}) or
 * asymmetricKeyDetails while they hold that same mutex. A stress loop of generate + JWK export hangs
 * within ~20k iterations; re-importing the key from its PKCS#8 DER (which takes no lock) gives key
 * objects of their own and ran 60k iterations clean. Costs one DER export and import per key.
 */
export function generateKeyPair(type: KeyType = 'ec-p256'): KeyPair {
  const generated = generateRaw(type);
  const privateKey = createPrivateKey({ key: generated.export({ type: 'pkcs8', format: 'der' }), format: 'der', type: 'pkcs8' });
  return { privateKey, publicKey: createPublicKey(privateKey), type };
}

/** The key type of a public or private key; refuses RSA under 2048 bits, other RSA sizes and other curves/algorithms. */
export function keyTypeOf(key: KeyObject): KeyType {
  const kind = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (kind === 'ec') {
    if (details.namedCurve === 'prime256v1') return 'ec-p256';
    if (details.namedCurve === 'secp384r1') return 'ec-p384';
    throw invalid(`EC keys on curve ${details.namedCurve ?? 'unknown'} are not supported: use P-256 (ec-p256) or P-384 (ec-p384).`);
  }
  if (kind === 'ed25519') return 'ed25519';
  if (kind === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (bits < 2048) throw invalid(`RSA keys of ${bits} bits are too weak: use at least 2048 bits (rsa-2048 or rsa-3072).`);
    if (bits === 2048) return 'rsa-2048';
    if (bits === 3072) return 'rsa-3072';
    throw invalid(`RSA keys of ${bits} bits are not supported: use rsa-2048 or rsa-3072.`);
  }
  throw invalid(`${kind ?? 'Unknown'} keys are not supported: use one of ${KEY_TYPES.join(', ')}.`);
}

export function exportPrivateKeyPem(key: KeyObject): string {
  if (key.type !== 'private') throw invalid('Only a private key can be exported as a private key.');
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

const PRIVATE_KEY_FORMATS: Record<string, 'pkcs8' | 'sec1' | 'pkcs1'> = {
  'PRIVATE KEY': 'pkcs8',
  'EC PRIVATE KEY': 'sec1',
  'RSA PRIVATE KEY': 'pkcs1',
};

/** The first private key in a PEM text (PKCS#8, SEC1 or PKCS#1); encrypted keys are refused. */
export function importPrivateKeyPem(pem: string | Buffer): KeyObject {
  const blocks = decodePem(pem);
  if (blocks.some((b) => b.label === 'ENCRYPTED PRIVATE KEY')) {
    throw invalid('The private key is encrypted: decrypt it first (openssl pkey -in KEY -out PLAIN.key).');
  }
  const block = blocks.find((b) => PRIVATE_KEY_FORMATS[b.label]);
  if (!block) {
    throw invalid(`No private key found (PEM blocks: ${blocks.map((b) => b.label).join(', ')}): expected a PRIVATE KEY block.`);
  }
  try {
    return createPrivateKey({ key: block.der, format: 'der', type: PRIVATE_KEY_FORMATS[block.label]! });
  } catch (err) {
    throw invalid(`The ${block.label} block is not a readable private key.`, err);
  }
}

// Fixed SPKI prefixes (SEQUENCE, AlgorithmIdentifier, BIT STRING header) before the public point/key bytes.
const SPKI_PREFIX: Record<string, { prefix: Buffer; size: number }> = {
  'P-256': { prefix: Buffer.from('3059301306072a8648ce3d020106082a8648ce3d03010703420004', 'hex'), size: 32 },
  'P-384': { prefix: Buffer.from('3076301006072a8648ce3d020106052b81040022036200' + '04', 'hex'), size: 48 },
  Ed25519: { prefix: Buffer.from('302a300506032b6570032100', 'hex'), size: 32 },
};
const RSA_ALGORITHM = Buffer.from('300d06092a864886f70d0101010500', 'hex');

/**
 * SubjectPublicKeyInfo DER. Built from the JWK export, because OpenSSL 3's DER encoder makes
 * `export({type:'spki'})` cost about 20 times more (as much as a signature) for the same bytes.
 */
export function exportSpkiDer(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  const fixed = jwk.crv ? SPKI_PREFIX[jwk.crv] : undefined;
  if (fixed && (jwk.kty === 'EC' || jwk.kty === 'OKP')) {
    const x = Buffer.from(jwk.x ?? '', 'base64url');
    const y = jwk.kty === 'EC' ? Buffer.from(jwk.y ?? '', 'base64url') : Buffer.alloc(0);
    if (x.length === fixed.size && (jwk.kty === 'OKP' || y.length === fixed.size)) return Buffer.concat([fixed.prefix, x, y]);
  }
  if (jwk.kty === 'RSA' && jwk.n && jwk.e && key.asymmetricKeyType === 'rsa') {
    const rsaPublicKey = der.sequence(der.unsignedInteger(Buffer.from(jwk.n, 'base64url')), der.unsignedInteger(Buffer.from(jwk.e, 'base64url')));
    return der.sequence(RSA_ALGORITHM, der.bitString(rsaPublicKey));
  }
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ type: 'spki', format: 'der' });
}

export function importSpkiDer(der: Buffer): KeyObject {
  try {
    if (!Buffer.isBuffer(der) || der.length === 0) throw invalid('The public key is empty.');
    return createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch (err) {
    if (err instanceof MeshwardError) throw err;
    throw invalid('The data is not a readable SubjectPublicKeyInfo public key.', err);
  }
}

/** True when the private key is the partner of the public key. */
export function publicKeyMatches(privateKey: KeyObject, publicKey: KeyObject): boolean {
  try {
    return exportSpkiDer(privateKey).equals(exportSpkiDer(publicKey));
  } catch {
    return false;
  }
}
