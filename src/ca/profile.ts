// The certificate profiles: what a root, an intermediate and a workload leaf contain.
// Pure: the Authority supplies keys, serials and the clock; pki/ encodes and signs.
import { randomBytes, randomFillSync, type KeyObject } from 'node:crypto';
import type { CertificateTemplate, KeyUsage } from '../pki/certificate.js';
import type { KeyType } from '../pki/keys.js';
import type { DistinguishedName } from '../pki/name.js';

const HOUR_MS = 3_600_000;
export const ROOT_TTL_MS = 87_600 * HOUR_MS; // 10 years
export const INTERMEDIATE_TTL_MS = 8_760 * HOUR_MS; // 1 year
/** notBefore is set this far in the past so a peer whose clock is slightly behind accepts a fresh certificate. */
export const BACKDATE_MS = 60_000;

/**
 * 128 random bits, positive (pki/ pads a leading 0x00 when the top bit is set) and never starting with a
 * zero byte, so the DER INTEGER keeps all 16 bytes and at least 120 random bits (RFC 5280 §4.1.2.2 allows
 * up to 20 octets; CA/B forum asks for 64 random bits).
 */
export function randomSerial(): Buffer {
  if (poolOffset + 16 > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const serial = Buffer.from(pool.subarray(poolOffset, poolOffset + 16));
  pool.fill(0, poolOffset, poolOffset + 16); // a serial's bytes are never handed out twice
  poolOffset += 16;
  while (serial[0] === 0) serial[0] = randomBytes(1)[0]!;
  return serial;
}
// One CSPRNG call per 256 serials instead of one per serial (the call, not the bytes, is what costs).
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

/** Lowercase hex without a leading 00 pad, as ParsedCertificate.serialHex spells it. */
export function serialHexOf(serial: Buffer): string {
  return serial.toString('hex').replace(/^(00)+(?=.)/, '');
}

/** Normalizes a serial a user typed (colons, spaces, uppercase, a 0x prefix or a 00 pad are accepted). */
export function normalizeSerialHex(text: string): string | undefined {
  const s = text.trim().toLowerCase().replace(/^0x/, '').replace(/[:\s]/g, '');
  if (!/^[0-9a-f]+$/.test(s) || s.length > 42) return undefined;
  const even = s.length % 2 ? `0${s}` : s;
  return even.replace(/^(00)+(?=.)/, '');
}

export interface Validity { notBefore: Date; notAfter: Date }

/** Certificates carry whole seconds: round down so the dates we report and store are the ones encoded. */
function wholeSeconds(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

/** notBefore = now - 1 min; notAfter = min(now + ttl, the issuer's notAfter), in whole seconds. */
export function leafValidity(now: Date, ttlMs: number, issuerNotAfter: Date): Validity {
  const notAfter = Math.min(wholeSeconds(now.getTime() + ttlMs), wholeSeconds(issuerNotAfter.getTime()));
  return { notBefore: new Date(wholeSeconds(now.getTime() - BACKDATE_MS)), notAfter: new Date(notAfter) };
}

/** A CA's name: the trust domain as O and a CN that tells generations apart (every rotation makes a new one). */
export function caSubject(role: 'root' | 'intermediate', trustDomain: string, serialHex: string): DistinguishedName {
  return { o: trustDomain, cn: `meshward ${role} CA ${serialHex.slice(0, 8)}` };
}

export function rootTemplate(o: { trustDomain: string; publicKey: KeyObject; serial: Buffer; now: Date; ttlMs: number }): CertificateTemplate {
  return {
    serial: o.serial,
    subject: caSubject('root', o.trustDomain, serialHexOf(o.serial)),
    publicKey: o.publicKey,
    notBefore: new Date(wholeSeconds(o.now.getTime() - BACKDATE_MS)),
    notAfter: new Date(wholeSeconds(o.now.getTime() + o.ttlMs)),
    isCA: true,
    pathLen: 1,
    keyUsage: ['keyCertSign', 'cRLSign'],
  };
}

/** pathLen 0 and a URI name constraint (host form: OpenSSL rejects `spiffe://td` as a constraint). */
export function intermediateTemplate(o: {
  trustDomain: string; publicKey: KeyObject; serial: Buffer; now: Date; ttlMs: number; rootNotAfter: Date;
}): CertificateTemplate {
  const validity = leafValidity(o.now, o.ttlMs, o.rootNotAfter);
  return {
    serial: o.serial,
    subject: caSubject('intermediate', o.trustDomain, serialHexOf(o.serial)),
    publicKey: o.publicKey,
    ...validity,
    isCA: true,
    pathLen: 0,
    keyUsage: ['keyCertSign', 'cRLSign'],
    permittedUriDomains: [o.trustDomain],
  };
}

/** keyEncipherment only for RSA: RSA key transport is the one TLS use of it, and EC/Ed25519 keys cannot encipher. */
export function leafKeyUsage(keyType: KeyType): KeyUsage[] {
  return keyType.startsWith('rsa-') ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature'];
}

export function leafTemplate(o: {
  serial: Buffer; publicKey: KeyObject; keyType: KeyType; spiffeId: string; dns: string[]; ips: string[];
  subject: DistinguishedName; validity: Validity;
}): CertificateTemplate {
  return {
    serial: o.serial,
    subject: o.subject,
    publicKey: o.publicKey,
    ...o.validity,
    isCA: false,
    keyUsage: leafKeyUsage(o.keyType),
    extKeyUsage: ['serverAuth', 'clientAuth'],
    uris: [o.spiffeId],
    dns: o.dns,
    ips: o.ips,
  };
}
