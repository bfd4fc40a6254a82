// The shared test fixtures (test/support/pki-fixtures.ts) make the certificate shapes they promise: each
// shape is checked with openssl verify and by its parsed fields, and writeIdentityDir writes the layout.
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseCrl } from '../../src/pki/crl.js';
import { importPrivateKeyPem, publicKeyMatches } from '../../src/pki/keys.js';
import { decodePem } from '../../src/pki/pem.js';
import { makeTestPki, writeIdentityDir, type LeafShape } from '../support/pki-fixtures.js';
import { openssl, tempDir } from './openssl-tool.js';

const tmp = tempDir();
after(() => tmp.cleanup());
const pki = makeTestPki({ trustDomain: 'shop.example' });
writeFileSync(join(tmp.dir, 'ca.crt'), pki.bundlePem);
writeFileSync(join(tmp.dir, 'int.crt'), pki.intermediate.pem);

function verify(pem: string, purpose = 'sslclient'): string {
  const file = join(tmp.dir, 'leaf.crt');
  writeFileSync(file, pem);
  const r = openssl(['verify', '-x509_strict', '-purpose', purpose, '-CAfile', join(tmp.dir, 'ca.crt'), '-untrusted', join(tmp.dir, 'int.crt'), file]);
  return r.status === 0 ? 'OK' : (r.stdout + r.stderr).replace(/\s+/g, ' ');
}

describe('makeTestPki leaf shapes', () => {
  const expectations: [LeafShape, RegExp][] = [
    ['good', /^OK$/],
    ['expired', /certificate has expired/],
    ['not-yet-valid', /certificate is not yet valid/],
    ['untrusted-ca', /unable to get local issuer certificate/],
    ['server-auth-only', /unsuitable certificate purpose/],
    ['two-uris', /^OK$/],
    ['no-uri', /^OK$/],
    ['key-cert-sign', /keyCertSign invalid for non-CA/],
    ['client-auth-only', /^OK$/],
  ];
  for (const [shape, expected] of expectations) {
    it(`${shape}: openssl verify (client purpose) says ${expected.source}`, () => {
      assert.match(verify(pki.leaf({ shape }).pem), expected);
    });
  }

  it('the intermediate name constraint refuses a SPIFFE ID outside the trust domain', () => {
    assert.match(verify(pki.leaf({ spiffeId: 'spiffe://other.example/ns/a/sa/b' }).pem), /permitted subtree violation/);
    assert.equal(verify(pki.leaf({ spiffeId: 'spiffe://shop.example/ns/a/sa/b' }).pem), 'OK');
  });

  it('good leaves follow the SVID profile', () => {
    const leaf = pki.leaf({ dns: ['orders.local'], ips: ['127.0.0.1'] });
    assert.equal(leaf.spiffeId, 'spiffe://shop.example/ns/default/sa/workload');
    assert.deepEqual(leaf.cert.uris, [leaf.spiffeId]);
    assert.deepEqual(leaf.cert.extKeyUsage, ['serverAuth', 'clientAuth']);
    assert.deepEqual(leaf.cert.keyUsage, ['digitalSignature']);
    assert.equal(leaf.cert.isCA, false);
    assert.deepEqual(leaf.cert.dns, ['orders.local']);
    assert.deepEqual(leaf.cert.ips, ['127.0.0.1']);
    assert.equal(verify(leaf.pem, 'sslserver'), 'OK');
    assert.ok(publicKeyMatches(leaf.key, leaf.cert.publicKey));
    const rsa = makeTestPki({ keyType: 'rsa-2048' }).leaf();
    assert.deepEqual(rsa.cert.keyUsage, ['digitalSignature', 'keyEncipherment']);
  });

  it('the odd shapes carry what their names say', () => {
    assert.equal(pki.leaf({ shape: 'ca-as-leaf' }).cert.isCA, true);
    assert.deepEqual(pki.leaf({ shape: 'server-auth-only' }).cert.extKeyUsage, ['serverAuth']);
    assert.equal(pki.leaf({ shape: 'two-uris' }).cert.uris.length, 2);
    const noUri = pki.leaf({ shape: 'no-uri' });
    assert.deepEqual(noUri.cert.uris, []);
    assert.equal(noUri.spiffeId, undefined);
    assert.equal(noUri.cert.subjectString, 'CN=legacy-batch,OU=payments');
    assert.ok(pki.leaf({ shape: 'key-cert-sign' }).cert.keyUsage.includes('keyCertSign'));
    assert.ok(pki.leaf({ shape: 'untrusted-ca' }).cert.issuerDer.equals(pki.intermediate.cert.subjectDer), 'same issuer name, different key');
    assert.equal(pki.leaf({ shape: 'expired' }).cert.notAfter < pki.now, true);
  });
});

describe('writeIdentityDir and crlFor', () => {
  it('writes tls.crt (leaf + intermediate), tls.key 0600, ca.crt and crl.pem, usable by openssl', () => {
    const dir = join(tmp.dir, 'identity');
    const leaf = pki.leaf();
    const revoked = pki.leaf();
    const crl = pki.crlFor(pki.root, []) + pki.crlFor(pki.intermediate, [revoked]);
    writeIdentityDir(dir, leaf, pki, crl);
    const chain = decodePem(readFileSync(join(dir, 'tls.crt')));
    assert.deepEqual(chain.map((b) => b.der), [leaf.der, pki.intermediate.der]);
    assert.equal(statSync(join(dir, 'tls.key')).mode & 0o777, 0o600);
    assert.ok(publicKeyMatches(importPrivateKeyPem(readFileSync(join(dir, 'tls.key'))), leaf.cert.publicKey));
    assert.equal(readFileSync(join(dir, 'ca.crt'), 'utf8'), pki.bundlePem);
    const crls = decodePem(readFileSync(join(dir, 'crl.pem'))).map((b) => parseCrl(b.der));
    assert.deepEqual(crls.map((c) => c.revoked.map((r) => r.serialHex)), [[], [revoked.cert.serialHex]]);
    writeFileSync(join(dir, 'revoked.crt'), revoked.pem);
    const base = ['verify', '-crl_check_all', '-CRLfile', join(dir, 'crl.pem'), '-CAfile', join(dir, 'ca.crt'), '-untrusted', join(tmp.dir, 'int.crt')];
    const bad = openssl([...base, join(dir, 'revoked.crt')]);
    assert.match(bad.stdout + bad.stderr, /certificate revoked/);
    writeFileSync(join(dir, 'leaf.crt'), leaf.pem);
    assert.equal(openssl([...base, join(dir, 'leaf.crt')]).status, 0);
  });
});
