// CRLs: buildCrl output is read by `openssl crl`, and `openssl verify -crl_check` reports a revoked leaf as
// revoked and another leaf as OK; parseCrl reads back every field.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { MeshwardError } from '../../src/errors.js';
import { buildCrl, parseCrl, REVOCATION_REASONS, verifyCrlSignature, type RevokedEntry } from '../../src/pki/crl.js';
import { encodePem } from '../../src/pki/pem.js';
import { makeTestPki } from '../support/pki-fixtures.js';
import { openssl, tempDir } from './openssl-tool.js';

const tmp = tempDir();
after(() => tmp.cleanup());
const isInvalid = (pattern: RegExp) => (err: unknown) =>
  err instanceof MeshwardError && err.code === 'invalid_argument' && pattern.test(err.message);

for (const keyType of ['ec-p256', 'ed25519', 'rsa-2048'] as const) {
  describe(`CRL signed with ${keyType}`, () => {
    const pki = makeTestPki({ keyType });
    const revokedLeaf = pki.leaf();
    const goodLeaf = pki.leaf();
    const now = pki.now;
    const revoked: RevokedEntry[] = [
      { serialHex: revokedLeaf.cert.serialHex, revokedAt: new Date(now.getTime() - 30_000), reason: 'keyCompromise' },
      { serialHex: '0badc0de', revokedAt: new Date(now.getTime() - 60_000), reason: 'unspecified' },
      { serialHex: 'f00d', revokedAt: new Date(Date.UTC(2051, 0, 2, 3, 4, 5)), reason: 'superseded' },
    ];
    const der = buildCrl({
      issuer: pki.intermediate.cert,
      issuerKey: pki.intermediate.key,
      crlNumber: 42n,
      thisUpdate: new Date(now.getTime() - 60_000),
      nextUpdate: new Date(now.getTime() + 3_600_000),
      revoked,
    });
    const dir = join(tmp.dir, keyType);

    it('is read by openssl crl -text', () => {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'crl.pem'), encodePem('X509 CRL', der));
      const r = openssl(['crl', '-in', join(dir, 'crl.pem'), '-noout', '-text']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /Version 2/);
      assert.match(r.stdout, /X509v3 CRL Number:\s+42/);
      assert.match(r.stdout, /X509v3 Authority Key Identifier:/);
      assert.match(r.stdout, new RegExp(`Serial Number: ${revokedLeaf.cert.serialHex.toUpperCase()}[\\s\\S]*?Key Compromise`));
      assert.match(r.stdout, /Serial Number: 0BADC0DE/);
      assert.match(r.stdout, /Serial Number: F00D[\s\S]*?Revocation Date: Jan  2 03:04:05 2051 GMT[\s\S]*?Superseded/);
    });

    it('makes openssl verify -crl_check say revoked for the revoked leaf and OK for another', () => {
      writeFileSync(join(dir, 'root.pem'), pki.root.pem);
      writeFileSync(join(dir, 'int.pem'), pki.intermediate.pem);
      writeFileSync(join(dir, 'revoked.pem'), revokedLeaf.pem);
      writeFileSync(join(dir, 'good.pem'), goodLeaf.pem);
      const base = ['verify', '-crl_check', '-CRLfile', join(dir, 'crl.pem'), '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'int.pem')];
      const bad = openssl([...base, join(dir, 'revoked.pem')]);
      assert.notEqual(bad.status, 0);
      assert.match(bad.stdout + bad.stderr, /certificate revoked/);
      const good = openssl([...base, join(dir, 'good.pem')]);
      assert.equal(good.status, 0, good.stdout + good.stderr);
      // -crl_check_all needs a CRL for every CA: add the root's (empty) CRL.
      writeFileSync(join(dir, 'all.pem'), encodePem('X509 CRL', der) + pki.crlFor(pki.root, []));
      const all = ['verify', '-crl_check_all', '-CRLfile', join(dir, 'all.pem'), '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'int.pem')];
      assert.equal(openssl([...all, join(dir, 'good.pem')]).status, 0);
      const revokedAll = openssl([...all, join(dir, 'revoked.pem')]);
      assert.match(revokedAll.stdout + revokedAll.stderr, /certificate revoked/);
    });

    it('parses back every field and verifies its signature', () => {
      const crl = parseCrl(der);
      assert.equal(crl.issuerString, 'CN=meshward test intermediate,O=meshward test');
      assert.ok(crl.issuerDer.equals(pki.intermediate.cert.subjectDer));
      assert.equal(crl.crlNumber, 42n);
      assert.ok(crl.authorityKeyId?.equals(pki.intermediate.cert.subjectKeyId!));
      assert.equal(crl.thisUpdate.getTime(), Math.floor((now.getTime() - 60_000) / 1000) * 1000);
      assert.equal(crl.nextUpdate?.getTime(), Math.floor((now.getTime() + 3_600_000) / 1000) * 1000);
      assert.deepEqual(
        crl.revoked,
        revoked.map((r) => ({ ...r, revokedAt: new Date(Math.floor(r.revokedAt.getTime() / 1000) * 1000) })),
      );
      assert.ok(verifyCrlSignature(crl, pki.intermediate.cert.publicKey));
      assert.equal(verifyCrlSignature(crl, pki.root.cert.publicKey), false);
    });
  });
}

describe('buildCrl refusals and round-trips', () => {
  const pki = makeTestPki();
  const base = {
    issuer: pki.intermediate.cert,
    issuerKey: pki.intermediate.key,
    crlNumber: 1n,
    thisUpdate: pki.now,
    nextUpdate: new Date(pki.now.getTime() + 60_000),
    revoked: [] as RevokedEntry[],
  };

  it('writes an empty CRL without a revokedCertificates field and reads it back', () => {
    const crl = parseCrl(buildCrl(base));
    assert.deepEqual(crl.revoked, []);
    assert.equal(crl.crlNumber, 1n);
  });

  it('round-trips every revocation reason', () => {
    const revoked = REVOCATION_REASONS.map((reason, i) => ({ serialHex: (i + 1).toString(16), revokedAt: pki.now, reason }));
    const crl = parseCrl(buildCrl({ ...base, revoked }));
    assert.deepEqual(crl.revoked.map((r) => r.reason), [...REVOCATION_REASONS]);
  });

  it('refuses a leaf as issuer, a key of another CA, a bad serial and a reversed window', () => {
    const leaf = pki.leaf();
    assert.throws(() => buildCrl({ ...base, issuer: leaf.cert, issuerKey: leaf.key }), isInvalid(/not a CA certificate/));
    assert.throws(() => buildCrl({ ...base, issuerKey: pki.root.key }), isInvalid(/does not belong/));
    assert.throws(() => buildCrl({ ...base, revoked: [{ serialHex: 'xyz', revokedAt: pki.now, reason: 'keyCompromise' }] }), isInvalid(/not a certificate serial/));
    assert.throws(() => buildCrl({ ...base, revoked: [{ serialHex: '00', revokedAt: pki.now, reason: 'keyCompromise' }] }), isInvalid(/not a certificate serial/));
    assert.throws(() => buildCrl({ ...base, nextUpdate: base.thisUpdate }), isInvalid(/nextUpdate must be after/));
    assert.throws(() => buildCrl({ ...base, crlNumber: -1n }), isInvalid(/CRL number/));
  });

  it('refuses a CRL with a flipped byte in its structure', () => {
    const der = buildCrl(base);
    assert.throws(() => parseCrl(der.subarray(0, der.length - 3)), isInvalid(/CRL is malformed/));
  });
});
