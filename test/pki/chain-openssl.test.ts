// Root -> intermediate -> leaf for every key type, checked by `openssl verify -x509_strict` and
// `openssl x509 -text`, then parsed back field by field.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CertificateSigner,
  parseCertificate,
  selfSign,
  verifyCertificateSignature,
  type CertificateTemplate,
} from '../../src/pki/certificate.js';
import { generateKeyPair, KEY_TYPES, type KeyType } from '../../src/pki/keys.js';
import { encodePem } from '../../src/pki/pem.js';
import { caTemplate } from '../support/pki-fixtures.js';
import { openssl, tempDir } from './openssl-tool.js';

const NOW = new Date();
const MINUTE = 60_000;
const DAY = 86_400_000;
const SPIFFE_ID = 'spiffe://example.org/ns/shop/sa/orders';
const SIG_NAMES: Record<KeyType, string> = {
  'ec-p256': 'ecdsa-with-SHA256',
  'ec-p384': 'ecdsa-with-SHA384',
  ed25519: 'ED25519',
  'rsa-2048': 'sha256WithRSAEncryption',
  'rsa-3072': 'sha256WithRSAEncryption',
};

/** The extension block of `openssl x509 -text` as "name: critical?" -> following value line. */
function extensionsFromText(text: string): Map<string, { critical: boolean; value: string }> {
  const out = new Map<string, { critical: boolean; value: string }>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s+X509v3 ([A-Za-z ]+):( critical)?\s*$/.exec(lines[i]!);
    if (m) out.set(m[1]!, { critical: m[2] !== undefined, value: (lines[i + 1] ?? '').trim() });
  }
  return out;
}

const tmp = tempDir();
after(() => tmp.cleanup());

for (const keyType of KEY_TYPES) {
  describe(`chain with ${keyType} keys`, () => {
    const rsa = keyType.startsWith('rsa');
    let rootDer: Buffer;
    let interDer: Buffer;
    let leafDer: Buffer;
    let leafTemplate: CertificateTemplate;
    const dir = join(tmp.dir, keyType);

    before(() => {
      const rootKeys = generateKeyPair(keyType);
      const interKeys = generateKeyPair(keyType);
      const leafKeys = generateKeyPair(keyType);
      rootDer = selfSign(caTemplate({ cn: 'meshward root', o: 'meshward' }, rootKeys, NOW, 3650, 1), rootKeys.privateKey);
      interDer = new CertificateSigner(parseCertificate(rootDer), rootKeys.privateKey).sign({
        ...caTemplate({ cn: 'meshward intermediate', o: 'meshward' }, interKeys, NOW, 365, 0),
        permittedUriDomains: ['example.org'],
      });
      // High bit set: the encoder must add the 0x00 pad to keep the serial positive.
      const serial = Buffer.concat([Buffer.from([0x80 | (randomBytes(1)[0]! & 0x7f)]), randomBytes(15)]);
      leafTemplate = {
        serial,
        subject: {},
        publicKey: leafKeys.publicKey,
        notBefore: new Date(NOW.getTime() - MINUTE),
        notAfter: new Date(NOW.getTime() + 60 * MINUTE),
        isCA: false,
        keyUsage: rsa ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature'],
        extKeyUsage: ['serverAuth', 'clientAuth'],
        uris: [SPIFFE_ID],
        dns: ['orders.shop.svc.cluster.local'],
        ips: ['10.1.2.3', '2001:db8::7'],
      };
      leafDer = new CertificateSigner(parseCertificate(interDer), interKeys.privateKey).sign(leafTemplate);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'root.crt'), encodePem('CERTIFICATE', rootDer));
      writeFileSync(join(dir, 'intermediate.crt'), encodePem('CERTIFICATE', interDer));
      writeFileSync(join(dir, 'leaf.crt'), encodePem('CERTIFICATE', leafDer));
    });

    it('passes openssl verify -x509_strict for the leaf and the intermediate', () => {
      const leaf = openssl(['verify', '-x509_strict', '-CAfile', join(dir, 'root.crt'), '-untrusted', join(dir, 'intermediate.crt'), join(dir, 'leaf.crt')]);
      assert.equal(leaf.status, 0, leaf.stderr + leaf.stdout);
      assert.match(leaf.stdout, /leaf\.crt: OK/);
      const inter = openssl(['verify', '-x509_strict', '-CAfile', join(dir, 'root.crt'), join(dir, 'intermediate.crt')]);
      assert.equal(inter.status, 0, inter.stderr + inter.stdout);
      const purpose = openssl(['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', join(dir, 'root.crt'), '-untrusted', join(dir, 'intermediate.crt'), join(dir, 'leaf.crt')]);
      assert.equal(purpose.status, 0, purpose.stderr);
      const client = openssl(['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', join(dir, 'root.crt'), '-untrusted', join(dir, 'intermediate.crt'), join(dir, 'leaf.crt')]);
      assert.equal(client.status, 0, client.stderr);
    });

    it('shows the leaf extensions with the right critical flags in openssl x509 -text', () => {
      const r = openssl(['x509', '-in', join(dir, 'leaf.crt'), '-noout', '-text']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /Version: 3 \(0x2\)/);
      assert.match(r.stdout, new RegExp(`Signature Algorithm: ${SIG_NAMES[keyType]}`));
      const ext = extensionsFromText(r.stdout);
      assert.deepEqual(ext.get('Basic Constraints'), { critical: true, value: 'CA:FALSE' });
      assert.deepEqual(ext.get('Key Usage'), { critical: true, value: rsa ? 'Digital Signature, Key Encipherment' : 'Digital Signature' });
      assert.deepEqual(ext.get('Extended Key Usage'), { critical: false, value: 'TLS Web Server Authentication, TLS Web Client Authentication' });
      assert.equal(ext.get('Subject Key Identifier')?.critical, false);
      assert.equal(ext.get('Authority Key Identifier')?.critical, false);
      // Empty subject: the SAN must be critical (RFC 5280 §4.2.1.6).
      assert.deepEqual(ext.get('Subject Alternative Name'), {
        critical: true,
        value: `URI:${SPIFFE_ID}, DNS:orders.shop.svc.cluster.local, IP Address:10.1.2.3, IP Address:2001:DB8:0:0:0:0:0:7`,
      });
      assert.ok(!ext.has('Name Constraints'));
    });

    it('shows the CA extensions: pathLen, keyCertSign, the URI name constraint in host form', () => {
      const root = extensionsFromText(openssl(['x509', '-in', join(dir, 'root.crt'), '-noout', '-text']).stdout);
      assert.deepEqual(root.get('Basic Constraints'), { critical: true, value: 'CA:TRUE, pathlen:1' });
      assert.deepEqual(root.get('Key Usage'), { critical: true, value: 'Certificate Sign, CRL Sign' });
      const inter = openssl(['x509', '-in', join(dir, 'intermediate.crt'), '-noout', '-text']).stdout;
      const ext = extensionsFromText(inter);
      assert.deepEqual(ext.get('Basic Constraints'), { critical: true, value: 'CA:TRUE, pathlen:0' });
      assert.deepEqual(ext.get('Name Constraints'), { critical: true, value: 'Permitted:' });
      assert.match(inter, /Permitted:\s+URI:example\.org/);
    });

    it('parses back every field', () => {
      const root = parseCertificate(rootDer);
      const inter = parseCertificate(interDer);
      const leaf = parseCertificate(leafDer);
      const serialHex = leafTemplate.serial.toString('hex');
      assert.equal(leaf.serialHex, serialHex);
      assert.equal(leafDer.includes(Buffer.concat([Buffer.from([0x02, 0x11, 0x00]), leafTemplate.serial])), true, 'serial padded to stay positive');
      assert.equal(leaf.version, 3);
      assert.deepEqual(leaf.subject, {});
      assert.equal(leaf.subjectString, '');
      assert.equal(leaf.issuerString, 'CN=meshward intermediate,O=meshward');
      assert.deepEqual(leaf.issuer, { cn: 'meshward intermediate', o: 'meshward' });
      assert.ok(leaf.issuerDer.equals(inter.subjectDer));
      assert.equal(leaf.notBefore.getTime(), Math.floor(leafTemplate.notBefore.getTime() / 1000) * 1000);
      assert.equal(leaf.notAfter.getTime(), Math.floor(leafTemplate.notAfter.getTime() / 1000) * 1000);
      assert.equal(leaf.keyType, keyType);
      assert.ok(leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(leaf.spkiDer));
      assert.equal(leaf.isCA, false);
      assert.equal(leaf.pathLen, undefined);
      assert.equal(leaf.basicConstraintsCritical, true);
      assert.deepEqual(leaf.keyUsage, rsa ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature']);
      assert.equal(leaf.keyUsageCritical, true);
      assert.deepEqual(leaf.extKeyUsage, ['serverAuth', 'clientAuth']);
      assert.deepEqual(leaf.uris, [SPIFFE_ID]);
      assert.deepEqual(leaf.dns, ['orders.shop.svc.cluster.local']);
      assert.deepEqual(leaf.ips, ['10.1.2.3', '2001:db8::7']);
      assert.ok(leaf.authorityKeyId?.equals(inter.subjectKeyId!));
      assert.ok(inter.authorityKeyId?.equals(root.subjectKeyId!));
      assert.ok(root.authorityKeyId?.equals(root.subjectKeyId!));
      assert.equal(leaf.subjectKeyId?.length, 20);
      assert.deepEqual(leaf.permittedUriDomains, []);
      assert.deepEqual(inter.permittedUriDomains, ['example.org']);
      assert.equal(inter.isCA, true);
      assert.equal(inter.pathLen, 0);
      assert.equal(root.pathLen, 1);
      assert.deepEqual(root.keyUsage, ['keyCertSign', 'cRLSign']);
      assert.deepEqual(
        leaf.extensions.map((e) => `${e.oid}${e.critical ? '!' : ''}`).sort(),
        ['2.5.29.14', '2.5.29.15!', '2.5.29.17!', '2.5.29.19!', '2.5.29.35', '2.5.29.37'].sort(),
      );
      assert.equal(leaf.fingerprintSha256, openssl(['x509', '-in', join(dir, 'leaf.crt'), '-noout', '-fingerprint', '-sha256']).stdout.trim().split('=')[1]!.replace(/:/g, '').toLowerCase());
      const sigOids: Record<KeyType, string> = {
        'ec-p256': '1.2.840.10045.4.3.2',
        'ec-p384': '1.2.840.10045.4.3.3',
        ed25519: '1.3.101.112',
        'rsa-2048': '1.2.840.113549.1.1.11',
        'rsa-3072': '1.2.840.113549.1.1.11',
      };
      assert.equal(leaf.signatureAlgorithmOid, sigOids[keyType]);
      assert.ok(verifyCertificateSignature(leaf, inter.publicKey));
      assert.ok(verifyCertificateSignature(inter, root.publicKey));
      assert.ok(verifyCertificateSignature(root, root.publicKey));
      assert.equal(verifyCertificateSignature(leaf, root.publicKey), false);
      // SKI is SHA-1 of the subjectPublicKey bits (RFC 5280 method 1), as openssl computes it.
      const ski = openssl(['x509', '-in', join(dir, 'leaf.crt'), '-noout', '-ext', 'subjectKeyIdentifier']).stdout;
      assert.match(ski, new RegExp(leaf.subjectKeyId!.toString('hex').toUpperCase().match(/../g)!.join(':')));
    });
  });
}
