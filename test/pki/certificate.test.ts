// Certificate building rules and parsing of foreign certificates: serials, time encodings, template
// refusals, RFC 4514 names, and certificates made by openssl itself.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { MeshwardError } from '../../src/errors.js';
import { CertificateSigner, parseCertificate, selfSign, subjectKeyIdentifier, verifyCertificateSignature, type CertificateTemplate } from '../../src/pki/certificate.js';
import { generateKeyPair } from '../../src/pki/keys.js';
import { formatName } from '../../src/pki/name.js';
import { decodePem } from '../../src/pki/pem.js';
import { makeTestPki } from '../support/pki-fixtures.js';
import { openssl, tempDir } from './openssl-tool.js';

const isInvalid = (pattern: RegExp) => (err: unknown) =>
  err instanceof MeshwardError && err.code === 'invalid_argument' && pattern.test(err.message);

const tmp = tempDir();
after(() => tmp.cleanup());
const pki = makeTestPki();
const leafKeys = generateKeyPair();

function template(over: Partial<CertificateTemplate> = {}): CertificateTemplate {
  return {
    serial: randomBytes(16),
    subject: {},
    publicKey: leafKeys.publicKey,
    notBefore: new Date(pki.now.getTime() - 60_000),
    notAfter: new Date(pki.now.getTime() + 3_600_000),
    isCA: false,
    keyUsage: ['digitalSignature'],
    extKeyUsage: ['serverAuth', 'clientAuth'],
    uris: ['spiffe://example.org/a'],
    ...over,
  };
}
const sign = (over: Partial<CertificateTemplate> = {}) => parseCertificate(pki.intermediate.signer.sign(template(over)));

describe('serials', () => {
  it('keeps serials positive: a 0x00 pad when the high bit is set, leading zeros dropped', () => {
    const high = Buffer.from('80' + '11'.repeat(15), 'hex');
    assert.equal(sign({ serial: high }).serialHex, high.toString('hex'));
    const leadingZeros = Buffer.from('0000' + '7f'.repeat(14), 'hex');
    const der = pki.intermediate.signer.sign(template({ serial: leadingZeros }));
    assert.equal(parseCertificate(der).serialHex, '7f'.repeat(14));
    assert.ok(der.includes(Buffer.concat([Buffer.from([0x02, 14]), Buffer.alloc(14, 0x7f)])));
  });

  it('refuses a zero, empty or over-long serial', () => {
    assert.throws(() => sign({ serial: Buffer.alloc(16) }), isInvalid(/positive/));
    assert.throws(() => sign({ serial: Buffer.alloc(0) }), isInvalid(/positive/));
    assert.throws(() => sign({ serial: Buffer.alloc(21, 1) }), isInvalid(/20 octets/));
    assert.throws(() => sign({ serial: Buffer.alloc(20, 0xff) }), isInvalid(/20 octets/));
    assert.equal(sign({ serial: Buffer.alloc(20, 0x7f) }).serialHex, '7f'.repeat(20));
  });
});

describe('validity times', () => {
  it('uses UTCTime through 2049 and GeneralizedTime from 2050, and reads both back', () => {
    const before2050 = new Date(Date.UTC(2049, 11, 31, 23, 59, 59));
    const from2050 = new Date(Date.UTC(2050, 0, 1, 0, 0, 0));
    const root = makeTestPki({ now: new Date(Date.UTC(2049, 0, 1)) });
    const der = root.intermediate.signer.sign(template({ notBefore: before2050, notAfter: from2050 }));
    assert.ok(der.includes(Buffer.from('\x17\x0d491231235959Z', 'latin1')), 'UTCTime for 2049');
    assert.ok(der.includes(Buffer.from('\x18\x0f20500101000000Z', 'latin1')), 'GeneralizedTime for 2050');
    const c = parseCertificate(der);
    assert.equal(c.notBefore.getTime(), before2050.getTime());
    assert.equal(c.notAfter.getTime(), from2050.getTime());
  });

  it('drops milliseconds', () => {
    const c = sign({ notBefore: new Date(Date.UTC(2030, 5, 1, 12, 0, 0, 999)), notAfter: new Date(Date.UTC(2030, 5, 1, 13, 0, 0, 1)) });
    assert.equal(c.notBefore.toISOString(), '2030-06-01T12:00:00.000Z');
    assert.equal(c.notAfter.toISOString(), '2030-06-01T13:00:00.000Z');
  });

  it('refuses notAfter not after notBefore, and invalid dates', () => {
    const t = pki.now;
    assert.throws(() => sign({ notBefore: t, notAfter: t }), isInvalid(/must be after notBefore/));
    assert.throws(() => sign({ notBefore: new Date(NaN) }), isInvalid(/valid notBefore and notAfter/));
  });
});

describe('CertificateSigner.signAsync (the signature made on the thread pool)', () => {
  it('gives the certificate sign() gives, but for the randomized ECDSA signature, and it verifies under the issuer', async () => {
    const t = template({ uris: ['spiffe://example.org/ns/a/sa/b'], dns: ['b.local'] });
    const viaPool = parseCertificate(await pki.intermediate.signer.signAsync(t));
    const direct = parseCertificate(pki.intermediate.signer.sign(t));
    assert.deepEqual(viaPool.tbsDer, direct.tbsDer);
    assert.ok(verifyCertificateSignature(viaPool, pki.intermediate.cert.publicKey));
    assert.ok(!verifyCertificateSignature(viaPool, pki.root.cert.publicKey), 'not under another key');
  });

  it('refuses the templates sign() refuses, before anything is signed', async () => {
    await assert.rejects(pki.intermediate.signer.signAsync(template({ uris: [] })), isInvalid(/empty subject needs at least one subject alternative name/));
    await assert.rejects(pki.intermediate.signer.signAsync(template({ notBefore: pki.now, notAfter: pki.now })), isInvalid(/must be after notBefore/));
  });
});

describe('template rules', () => {
  it('refuses an empty subject without SANs, pathLen on a leaf, a CA without keyCertSign, name constraints on a leaf', () => {
    assert.throws(() => sign({ uris: [] }), isInvalid(/empty subject needs at least one subject alternative name/));
    assert.throws(() => sign({ pathLen: 0 }), isInvalid(/path length constraint is only allowed on a CA/));
    assert.throws(() => sign({ isCA: true, keyUsage: ['digitalSignature'] }), isInvalid(/keyCertSign/));
    assert.throws(() => sign({ permittedUriDomains: ['example.org'] }), isInvalid(/Name constraints are only allowed on a CA/));
    assert.throws(() => sign({ keyUsage: [] }), isInvalid(/at least one key usage/));
    assert.throws(() => sign({ dns: ['bad host!'] }), isInvalid(/printable ASCII|not a valid DNS name/));
    assert.throws(() => sign({ ips: ['300.1.1.1'] }), isInvalid(/not an IPv4 or IPv6 address/));
    assert.throws(() => sign({ subject: { c: 'usa' } }), isInvalid(/two capital letters/));
    assert.throws(() => sign({ subject: { cn: '' } }), isInvalid(/must not be empty/));
  });

  it('makes the SAN non-critical when the subject is not empty, and omits an empty EKU', () => {
    const c = sign({ subject: { cn: 'orders' }, extKeyUsage: [] });
    assert.equal(c.subjectAltNameCritical, false);
    assert.equal(c.extensions.find((e) => e.oid === '2.5.29.17')?.critical, false);
    assert.ok(!c.extensions.some((e) => e.oid === '2.5.29.37'));
    assert.deepEqual(c.extKeyUsage, []);
  });

  it('refuses a signer whose key is not the issuer key or whose issuer is not a CA', () => {
    assert.throws(() => new CertificateSigner(pki.intermediate.cert, pki.root.key), isInvalid(/does not belong/));
    const leaf = pki.leaf();
    assert.throws(() => new CertificateSigner(leaf.cert, leaf.key), isInvalid(/not a CA certificate/));
    assert.throws(() => selfSign(template({ subject: { cn: 'r' }, isCA: true, keyUsage: ['keyCertSign'] }), pki.root.key), isInvalid(/does not match/));
  });

  it('computes the SKI as SHA-1 of the subjectPublicKey bits and the AKI from the issuer', () => {
    const c = sign();
    assert.ok(c.subjectKeyId!.equals(subjectKeyIdentifier(c.spkiDer)));
    assert.ok(c.authorityKeyId!.equals(pki.intermediate.cert.subjectKeyId!));
  });

  it('encodes IPv6 forms (compressed, embedded IPv4) as 16 octets and prints them in RFC 5952 form', () => {
    const c = sign({ ips: ['::ffff:192.0.2.1', '2001:0db8:0000:0000:0000:0000:0000:0001', '1:0:0:2:0:0:0:3', '::', '10.0.0.255'] });
    assert.deepEqual(c.ips, ['::ffff:c000:201', '2001:db8::1', '1:0:0:2::3', '::', '10.0.0.255']);
  });
});

describe('names', () => {
  it('formats RFC 4514 text with escaping, CN first and OUs in order', () => {
    assert.equal(formatName({ cn: 'a,b', ou: ['x+y', ' lead'], o: 'O"rg;', c: 'US' }), 'CN=a\\,b,OU=x\\+y,OU=\\ lead,O=O\\"rg\\;,C=US');
    assert.equal(formatName({ cn: '#hash', o: 'trail ' }), 'CN=\\#hash,O=trail\\ ');
    assert.equal(formatName({}), '');
    const c = sign({ subject: { cn: 'orders, eu', ou: ['shop', 'team'], o: 'Example', c: 'DE' } });
    assert.equal(c.subjectString, 'CN=orders\\, eu,OU=shop,OU=team,O=Example,C=DE');
    assert.deepEqual(c.subject, { cn: 'orders, eu', ou: ['shop', 'team'], o: 'Example', c: 'DE' });
  });
});

describe('certificates made by openssl', () => {
  it('parses a self-signed openssl certificate with extra name attributes, like openssl prints it', () => {
    const crt = join(tmp.dir, 'ossl.crt');
    const r = openssl([
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(tmp.dir, 'ossl.key'), '-out', crt,
      '-days', '30', '-subj', '/C=US/ST=CA/L=San Francisco/O=Example Inc/OU=Payments/OU=Batch/CN=legacy-batch/emailAddress=ops@example.org',
      '-addext', 'subjectAltName=URI:spiffe://example.org/legacy,DNS:legacy.example.org,IP:192.168.0.1,email:ops@example.org',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const [block] = decodePem(readFileSync(crt));
    const c = parseCertificate(block!.der);
    const expected = openssl(['x509', '-in', crt, '-noout', '-subject', '-nameopt', 'RFC2253']).stdout.trim().replace(/^subject=/, '');
    assert.equal(c.subjectString, expected);
    assert.deepEqual(c.subject, { c: 'US', o: 'Example Inc', ou: ['Batch', 'Payments'], cn: 'legacy-batch' });
    assert.deepEqual(c.uris, ['spiffe://example.org/legacy']);
    assert.deepEqual(c.dns, ['legacy.example.org']);
    assert.deepEqual(c.ips, ['192.168.0.1']);
    assert.equal(c.isCA, true, 'openssl req -x509 marks CA:TRUE');
    assert.equal(c.keyType, 'ec-p256');
    assert.equal(c.serialHex, openssl(['x509', '-in', crt, '-noout', '-serial']).stdout.trim().replace(/^serial=/, '').toLowerCase().replace(/^(00)+/, ''));
  });

  it('parses a v1 certificate (no extensions)', () => {
    const crt = join(tmp.dir, 'v1.crt');
    const key = join(tmp.dir, 'v1.key');
    assert.equal(openssl(['genpkey', '-algorithm', 'ed25519', '-out', key]).status, 0);
    const csr = join(tmp.dir, 'v1.csr');
    assert.equal(openssl(['req', '-new', '-key', key, '-subj', '/CN=v1', '-out', csr]).status, 0);
    const r = openssl(['x509', '-req', '-in', csr, '-signkey', key, '-out', crt, '-days', '1']);
    assert.equal(r.status, 0, r.stderr);
    const c = parseCertificate(decodePem(readFileSync(crt))[0]!.der);
    assert.equal(c.version, 1);
    assert.deepEqual(c.extensions, []);
    assert.equal(c.isCA, false);
    assert.equal(c.hasBasicConstraints, false);
    assert.equal(c.subjectString, 'CN=v1');
    assert.equal(c.keyType, 'ed25519');
  });
});
