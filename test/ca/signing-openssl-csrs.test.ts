// CSRs made by `openssl req` (EC, RSA, Ed25519, with a URI SAN) are signed and carry exactly that identity;
// CSRs that break a rule are refused before anything is written.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseCertificate } from '../../src/pki/certificate.js';
import { readDerOrPem } from '../../src/pki/pem.js';
import { runOpenssl, snapshotDir } from '../support/cli.js';
import { OPEN_DB_VOLATILE, opensslVerify } from './fixtures.js';
import { useAuthority } from '../support/ca-authority.js';

describe('signing CSRs made by openssl req', () => {
  const now = new Date();
  let n = 0;
  const fx = useAuthority({}, now);

  async function opensslCsr(newkey: string[], san: string | undefined, subj = '/CN=orders'): Promise<{ der: Buffer; keyFile: string }> {
    const name = `req${n++}`;
    const keyFile = `${fx.root}/${name}.key`;
    const csrFile = `${fx.root}/${name}.csr`;
    const args = ['req', '-new', ...newkey, '-nodes', '-keyout', keyFile, '-subj', subj, '-out', csrFile];
    if (san) args.push('-addext', `subjectAltName=${san}`);
    const r = await runOpenssl(args);
    assert.equal(r.code, 0, r.stderr);
    return { der: readDerOrPem(readFileSync(csrFile), 'CERTIFICATE REQUEST')[0]!, keyFile };
  }

  const kinds: [string, string[], string][] = [
    ['EC P-256', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'ec-p256'],
    ['EC P-384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'], 'ec-p384'],
    ['RSA 2048', ['-newkey', 'rsa:2048'], 'rsa-2048'],
    ['Ed25519', ['-newkey', 'ed25519'], 'ed25519'],
  ];
  for (const [what, newkey, keyType] of kinds) {
    it(`signs an ${what} CSR with a URI SAN; the certificate carries that identity and key and verifies`, async () => {
      const id = `spiffe://example.org/ns/shop/sa/${keyType}`;
      const csr = await opensslCsr(newkey, `URI:${id},DNS:orders.shop.svc`);
      const issued = await fx.ca.signCsr(csr.der, { ttlMs: 600_000 }, now);
      const leaf = parseCertificate(issued.chainDer[0]!);
      assert.deepEqual(leaf.uris, [id]);
      assert.deepEqual(leaf.dns, ['orders.shop.svc']);
      assert.equal(leaf.keyType, keyType);
      assert.equal(issued.spiffeId, id);
      assert.equal(leaf.notAfter.getTime(), Math.floor((now.getTime() + 600_000) / 1000) * 1000);
      assert.equal(issued.notAfter.getTime(), leaf.notAfter.getTime());
      assert.equal(issued.notBefore.getTime(), leaf.notBefore.getTime());
      assert.equal(leaf.subjectString, '', 'the CSR subject is not copied unless asked for');
      // The certificate's public key is the CSR's: openssl pairs it with the private key openssl made.
      const certFile = fx.file(`signed-${keyType}.crt`, issued.certificatePem);
      const certPub = await runOpenssl(['x509', '-in', certFile, '-noout', '-pubkey']);
      const keyPub = await runOpenssl(['pkey', '-in', csr.keyFile, '-pubout']);
      assert.equal(certPub.stdout, keyPub.stdout);
      const v = await opensslVerify({ caFile: `${fx.caDir}/root.crt`, untrusted: `${fx.caDir}/intermediate.crt`, cert: certFile });
      assert.equal(v.code, 0, v.stderr);
    });
  }

  it('copies the CSR subject only when asked (subjectFromCsr, used by the CLI)', async () => {
    const csr = await opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'URI:spiffe://example.org/subj', '/CN=legacy-batch/OU=payments');
    const leaf = parseCertificate((await fx.ca.signCsr(csr.der, { subjectFromCsr: true }, now)).chainDer[0]!);
    assert.equal(leaf.subject.cn, 'legacy-batch');
    assert.deepEqual(leaf.subject.ou, ['payments']);
  });

  it('refuses a CSR for another identity than the authenticated caller', async () => {
    const csr = await opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'URI:spiffe://example.org/b');
    await assert.rejects(() => fx.ca.signCsr(csr.der, { expectedSpiffeId: 'spiffe://example.org/a' }, now), { code: 'permission_denied' });
  });

  const refused: [string, () => Promise<Buffer>, RegExp][] = [
    ['no URI SAN', async () => (await opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'DNS:a.example.org')).der, /0 URI SANs/],
    ['two URI SANs', async () => (await opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'URI:spiffe://example.org/a,URI:spiffe://example.org/b')).der, /2 URI SANs/],
    ['no SAN at all', async () => (await opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], undefined)).der, /0 URI SANs/],
    ['an RSA 1024 key', async () => (await opensslCsr(['-newkey', 'rsa:1024'], 'URI:spiffe://example.org/weak')).der, /1024 bits.*at least 2048/],
    ['a broken signature', async () => {
      const der = Buffer.from((await opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'URI:spiffe://example.org/sig')).der);
      const i = der.indexOf(Buffer.from('spiffe://example.org/sig'));
      der[i + 'spiffe://example.org/'.length] = 'x'.charCodeAt(0); // the identity changes after signing
      return der;
    }, /signature/i],
    ['a SPIFFE ID of another trust domain', async () => (await opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'URI:spiffe://other.org/a')).der, /outside this CA's trust domain/],
    ['a URI that is not a SPIFFE ID', async () => (await opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'URI:https://example.org/a')).der, /scheme/],
    ['truncated DER', async () => (await opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'URI:spiffe://example.org/t')).der.subarray(0, 100), /./],
  ];
  for (const [what, make, expected] of refused) {
    it(`refuses a CSR with ${what} and writes nothing`, async () => {
      const der = await make();
      const before = snapshotDir(fx.caDir, OPEN_DB_VOLATILE);
      const count = (await fx.ca.list(now)).length;
      await assert.rejects(() => fx.ca.signCsr(der, {}, now), (err: Error & { code?: string }) => {
        assert.equal(err.name, 'MeshwardError');
        assert.match(err.message, expected);
        return true;
      });
      assert.deepEqual(snapshotDir(fx.caDir, OPEN_DB_VOLATILE), before);
      assert.equal((await fx.ca.list(now)).length, count);
    });
  }
});
