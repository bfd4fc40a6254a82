// Test-only PKI fixtures: certificates of every shape the sidecar, CA and agent tests need, made without
// the CA (straight from src/pki), so those tests do not depend on the Authority.
//
// API
//   makeTestPki(opts?: { trustDomain?: string ('example.org'); keyType?: KeyType ('ec-p256'); now?: Date (new Date()) }): TestPki
//     pki.root, pki.intermediate: TestCa   root (pathLen 1, 10 years) -> intermediate (pathLen 0, 1 year,
//                                          URI name constraint permitting the trust domain)
//     pki.bundlePem: string                the trust bundle (root PEM)
//     pki.untrusted: TestCa                an unrelated intermediate under an unrelated root (same trust
//                                          domain, same subject names), for "from another CA" tests
//     pki.untrustedRoot: TestCa
//     pki.leaf(opts?: LeafOptions): TestLeaf
//        shape (default 'good'):
//          'good'             spiffe URI SAN, EKU serverAuth+clientAuth, KU digitalSignature (+keyEncipherment
//                             for RSA), valid from now-1m for 1h
//          'expired'          valid from now-2h to now-1h
//          'not-yet-valid'    valid from now+1h to now+2h
//          'untrusted-ca'     a good leaf issued by pki.untrusted
//          'ca-as-leaf'       cA=true, pathLen 0, keyCertSign+cRLSign+digitalSignature, CN workload-ca, with the URI SAN
//          'server-auth-only' EKU serverAuth only
//          'client-auth-only' EKU clientAuth only
//          'two-uris'         two spiffe URI SANs (the second is spiffeId + '-2')
//          'no-uri'           no URI SAN: subject CN/OU only (cn defaults to 'legacy-batch', ou ['payments'])
//          'key-cert-sign'    cA=false but keyUsage includes keyCertSign
//        spiffeId (default `spiffe://<td>/ns/default/sa/workload`), cn, ou, dns, ips, keyType (default: the
//        PKI's), key (reuse a KeyPair), notBefore/notAfter (override the shape's validity), issuer (a TestCa)
//     pki.crlFor(issuer: TestCa, revoked: (string | TestLeaf)[], opts?): string     PEM CRL (see crlFor)
//   writeIdentityDir(dir, leaf, bundle: string | TestPki, crlPem?): writes dir/tls.crt (leaf + intermediate),
//     dir/tls.key (PKCS#8, mode 0600), dir/ca.crt (bundle), dir/crl.pem when given. Creates dir if needed.
//     OpenSSL with -crl_check_all (and the sidecar) needs a CRL for every CA in the chain: pass
//     pki.crlFor(pki.root, []) + pki.crlFor(pki.intermediate, [revokedLeaf]) (concatenated PEM).
//   crlFor(issuer: TestCa, revoked: (serialHex | TestLeaf)[], opts?: { now?: Date; crlNumber?: bigint; thisUpdate?: Date;
//     nextUpdate?: Date; reason? }): string   a PEM CRL signed by issuer, valid from now-1m to now+1h by default, its
//     certificates revoked at thisUpdate for keyCompromise. crlDerFor(...): the same CRL as DER.
//   serialBytes(): Buffer   16 random bytes, as the CA makes serials.
//   caTemplate(cn | name, keys, now, days, pathLen): CertificateTemplate   a CA certificate's, as the fixtures' own CAs.
import { randomBytes, type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateSigner, parseCertificate, selfSign, type CertificateTemplate, type KeyUsage, type ParsedCertificate } from '../../src/pki/certificate.js';
import { buildCrl, type RevocationReason } from '../../src/pki/crl.js';
import { exportPrivateKeyPem, generateKeyPair, type KeyPair, type KeyType } from '../../src/pki/keys.js';
import type { DistinguishedName } from '../../src/pki/name.js';
import { encodePem } from '../../src/pki/pem.js';

/** The trust domain of the test PKIs (and of every test SPIFFE ID). */
export const TD = 'example.org';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export interface TestCa {
  cert: ParsedCertificate;
  der: Buffer;
  pem: string;
  key: KeyObject;
  keyPem: string;
  keys: KeyPair;
  signer: CertificateSigner;
  /** PEM of the CA certificates above this one, excluding the root (intermediates: ''; untrusted: its own chain). */
  chainPem: string;
}

export type LeafShape =
  | 'good'
  | 'expired'
  | 'not-yet-valid'
  | 'untrusted-ca'
  | 'ca-as-leaf'
  | 'server-auth-only'
  | 'client-auth-only'
  | 'two-uris'
  | 'no-uri'
  | 'key-cert-sign';

export interface LeafOptions {
  shape?: LeafShape;
  spiffeId?: string;
  cn?: string;
  ou?: string[];
  dns?: string[];
  ips?: string[];
  keyType?: KeyType;
  key?: KeyPair;
  notBefore?: Date;
  notAfter?: Date;
  issuer?: TestCa;
}

export interface TestLeaf {
  cert: ParsedCertificate;
  der: Buffer;
  /** The leaf alone. */
  pem: string;
  /** Leaf then its intermediate: what tls.crt holds. */
  chainPem: string;
  key: KeyObject;
  keyPem: string;
  keys: KeyPair;
  spiffeId?: string;
  issuer: TestCa;
}

export interface TestPki {
  trustDomain: string;
  now: Date;
  keyType: KeyType;
  root: TestCa;
  intermediate: TestCa;
  bundlePem: string;
  untrustedRoot: TestCa;
  untrusted: TestCa;
  leaf(opts?: LeafOptions): TestLeaf;
  crlFor(issuer: TestCa, revoked: (string | TestLeaf)[], opts?: TestCrlOptions): string;
}

export function serialBytes(): Buffer {
  return randomBytes(16);
}

function caFrom(der: Buffer, keys: KeyPair, chainPem: string): TestCa {
  const cert = parseCertificate(der);
  return {
    cert,
    der,
    pem: encodePem('CERTIFICATE', der),
    key: keys.privateKey,
    keyPem: exportPrivateKeyPem(keys.privateKey),
    keys,
    signer: new CertificateSigner(cert, keys.privateKey),
    chainPem,
  };
}

/**
 * A CA certificate's template: valid from a minute before `now` for `days`, signing certificates and CRLs.
 * `subject` is a CN (organisation "meshward test") or a whole name.
 */
export function caTemplate(subject: string | DistinguishedName, keys: KeyPair, now: Date, days: number, pathLen: number): CertificateTemplate {
  return {
    serial: serialBytes(),
    subject: typeof subject === 'string' ? { cn: subject, o: 'meshward test' } : subject,
    publicKey: keys.publicKey,
    notBefore: new Date(now.getTime() - MINUTE),
    notAfter: new Date(now.getTime() + days * DAY),
    isCA: true,
    pathLen,
    keyUsage: ['keyCertSign', 'cRLSign'],
  };
}

function makeRoot(name: string, type: KeyType, now: Date): TestCa {
  const keys = generateKeyPair(type);
  return caFrom(selfSign(caTemplate(name, keys, now, 3650, 1), keys.privateKey), keys, '');
}

function makeIntermediate(root: TestCa, name: string, type: KeyType, trustDomain: string, now: Date): TestCa {
  const keys = generateKeyPair(type);
  const der = root.signer.sign({ ...caTemplate(name, keys, now, 365, 0), permittedUriDomains: [trustDomain] });
  const ca = caFrom(der, keys, '');
  ca.chainPem = ca.pem;
  return ca;
}

/** What a test CRL may choose; the defaults make a current CRL (from a minute before now for an hour). */
export interface TestCrlOptions {
  now?: Date;
  crlNumber?: bigint;
  /** Default: a minute before `now`; also when the listed certificates were revoked. */
  thisUpdate?: Date;
  nextUpdate?: Date;
  reason?: RevocationReason;
}

/** A DER CRL signed by `issuer` listing `revoked` (serials or leaves). */
export function crlDerFor(issuer: TestCa, revoked: (string | TestLeaf)[], opts: TestCrlOptions = {}): Buffer {
  const now = opts.now ?? new Date();
  const thisUpdate = opts.thisUpdate ?? new Date(now.getTime() - MINUTE);
  return buildCrl({
    issuer: issuer.cert,
    issuerKey: issuer.key,
    crlNumber: opts.crlNumber ?? 1n,
    thisUpdate,
    nextUpdate: opts.nextUpdate ?? new Date(now.getTime() + HOUR),
    revoked: revoked.map((r) => ({
      serialHex: typeof r === 'string' ? r : r.cert.serialHex,
      revokedAt: thisUpdate,
      reason: opts.reason ?? 'keyCompromise',
    })),
  });
}

/** The same CRL as PEM. */
export function crlFor(issuer: TestCa, revoked: (string | TestLeaf)[], opts: TestCrlOptions = {}): string {
  return encodePem('X509 CRL', crlDerFor(issuer, revoked, opts));
}

export function makeTestPki(opts: { trustDomain?: string; keyType?: KeyType; now?: Date } = {}): TestPki {
  const trustDomain = opts.trustDomain ?? TD;
  const keyType = opts.keyType ?? 'ec-p256';
  const now = opts.now ?? new Date();
  const root = makeRoot('meshward test root', keyType, now);
  const intermediate = makeIntermediate(root, 'meshward test intermediate', keyType, trustDomain, now);
  let untrustedPair: { root: TestCa; intermediate: TestCa } | undefined;
  const untrustedCas = (): { root: TestCa; intermediate: TestCa } => {
    if (!untrustedPair) {
      const r = makeRoot('meshward test root', keyType, now);
      untrustedPair = { root: r, intermediate: makeIntermediate(r, 'meshward test intermediate', keyType, trustDomain, now) };
    }
    return untrustedPair;
  };

  const leaf = (o: LeafOptions = {}): TestLeaf => {
    const shape = o.shape ?? 'good';
    const issuer = o.issuer ?? (shape === 'untrusted-ca' ? untrustedCas().intermediate : intermediate);
    const keys = o.key ?? generateKeyPair(o.keyType ?? keyType);
    const rsa = keys.type.startsWith('rsa');
    const spiffeId = o.spiffeId ?? `spiffe://${trustDomain}/ns/default/sa/workload`;
    const t = now.getTime();
    const baseUsage: KeyUsage[] = rsa ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature'];
    const template: CertificateTemplate = {
      serial: serialBytes(),
      subject: { ...(o.cn !== undefined ? { cn: o.cn } : {}), ...(o.ou !== undefined ? { ou: o.ou } : {}) },
      publicKey: keys.publicKey,
      notBefore: new Date(t - MINUTE),
      notAfter: new Date(t + HOUR),
      isCA: false,
      keyUsage: baseUsage,
      extKeyUsage: ['serverAuth', 'clientAuth'],
      uris: [spiffeId],
      dns: o.dns,
      ips: o.ips,
    };
    switch (shape) {
      case 'expired':
        template.notBefore = new Date(t - 2 * HOUR);
        template.notAfter = new Date(t - HOUR);
        break;
      case 'not-yet-valid':
        template.notBefore = new Date(t + HOUR);
        template.notAfter = new Date(t + 2 * HOUR);
        break;
      case 'ca-as-leaf':
        template.isCA = true;
        template.pathLen = 0;
        template.subject = { cn: o.cn ?? 'workload-ca', ...(o.ou !== undefined ? { ou: o.ou } : {}) };
        template.keyUsage = ['digitalSignature', 'keyCertSign', 'cRLSign'];
        break;
      case 'server-auth-only':
        template.extKeyUsage = ['serverAuth'];
        break;
      case 'client-auth-only':
        template.extKeyUsage = ['clientAuth'];
        break;
      case 'two-uris':
        template.uris = [spiffeId, `${spiffeId}-2`];
        break;
      case 'no-uri':
        template.uris = [];
        template.subject = { cn: o.cn ?? 'legacy-batch', ou: o.ou ?? ['payments'] };
        break;
      case 'key-cert-sign':
        template.keyUsage = [...baseUsage, 'keyCertSign'];
        break;
      default:
        break;
    }
    if (o.notBefore) template.notBefore = o.notBefore;
    if (o.notAfter) template.notAfter = o.notAfter;
    const der = issuer.signer.sign(template);
    const pem = encodePem('CERTIFICATE', der);
    return {
      cert: parseCertificate(der),
      der,
      pem,
      chainPem: pem + issuer.chainPem,
      key: keys.privateKey,
      keyPem: exportPrivateKeyPem(keys.privateKey),
      keys,
      spiffeId: template.uris && template.uris.length > 0 ? template.uris[0] : undefined,
      issuer,
    };
  };

  return {
    trustDomain,
    now,
    keyType,
    root,
    intermediate,
    bundlePem: root.pem,
    get untrustedRoot() {
      return untrustedCas().root;
    },
    get untrusted() {
      return untrustedCas().intermediate;
    },
    leaf,
    crlFor: (issuer, revoked, o) => crlFor(issuer, revoked, { now, ...o }),
  };
}

/** Writes a workload identity directory as the sidecar reads it (see the header comment). */
export function writeIdentityDir(dir: string, leaf: TestLeaf, bundle: string | TestPki, crlPem?: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tls.crt'), leaf.chainPem);
  writeFileSync(join(dir, 'tls.key'), leaf.keyPem, { mode: 0o600 });
  chmodSync(join(dir, 'tls.key'), 0o600);
  writeFileSync(join(dir, 'ca.crt'), typeof bundle === 'string' ? bundle : bundle.bundlePem);
  if (crlPem !== undefined) writeFileSync(join(dir, 'crl.pem'), crlPem);
}
