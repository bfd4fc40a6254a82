// Leaves of every key type, under CAs of several key types, verify with `openssl verify -x509_strict`,
// and `openssl x509 -text` shows the §1.7 extensions with the right critical flags.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KEY_TYPES, type KeyType } from '../../src/pki/keys.js';
import { runOpenssl } from '../support/cli.js';
import { opensslVerify } from './fixtures.js';
import { useAuthority } from '../support/ca-authority.js';

/** The text block of one extension in `openssl x509 -text` output: its header line and value lines. */
function extension(text: string, name: string): { critical: boolean; value: string } | undefined {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.trim().startsWith(`${name}:`));
  if (i < 0) return undefined;
  const value: string[] = [];
  for (let j = i + 1; j < lines.length && /^ {16}/.test(lines[j]!); j++) value.push(lines[j]!.trim());
  return { critical: lines[i]!.includes('critical'), value: value.join('\n') };
}

for (const caKeyType of ['ec-p256', 'rsa-2048', 'ed25519'] as KeyType[]) {
  describe(`a CA with ${caKeyType} keys`, () => {
    const now = new Date();
    const fx = useAuthority({ keyType: caKeyType }, now);

    for (const keyType of KEY_TYPES) {
      it(`issues a ${keyType} leaf that openssl verify -x509_strict accepts`, async () => {
        const issued = await fx.ca.issue({ spiffeId: `spiffe://example.org/ns/test/sa/${keyType}`, keyType, dns: ['svc.example.org'], ips: ['127.0.0.1'] }, now);
        const leaf = fx.file(`leaf-${caKeyType}-${keyType}.crt`, issued.certificatePem);
        const r = await opensslVerify({ caFile: `${fx.caDir}/root.crt`, untrusted: `${fx.caDir}/intermediate.crt`, cert: leaf });
        assert.equal(r.code, 0, r.stderr + r.stdout);
        assert.match(r.stdout, /: OK/);
        // The chain file (leaf + intermediate) verifies against the bundle the same way.
        const chain = fx.file(`chain-${caKeyType}-${keyType}.crt`, issued.chainPem);
        const viaBundle = await opensslVerify({ caFile: `${fx.caDir}/bundle.crt`, untrusted: chain, cert: leaf });
        assert.equal(viaBundle.code, 0, viaBundle.stderr);
        // openssl's own SSL client/server purpose checks pass too.
        for (const purpose of ['sslclient', 'sslserver']) {
          const p = await opensslVerify({ caFile: `${fx.caDir}/root.crt`, untrusted: `${fx.caDir}/intermediate.crt`, cert: leaf, extra: ['-purpose', purpose] });
          assert.equal(p.code, 0, `${purpose}: ${p.stderr}`);
        }
      });
    }
  });
}

describe('openssl x509 -text on issued certificates', () => {
  const now = new Date();
  const fx = useAuthority({}, now);

  it('shows a leaf with critical basicConstraints CA:FALSE, critical keyUsage, both EKUs, SKI, AKI and the SPIFFE URI SAN', async () => {
    const issued = await fx.ca.issue({ spiffeId: 'spiffe://example.org/ns/shop/sa/orders', dns: ['orders.shop.svc'] }, now);
    const r = await runOpenssl(['x509', '-noout', '-text', '-in', fx.file('leaf.crt', issued.certificatePem)]);
    assert.equal(r.code, 0, r.stderr);
    const bc = extension(r.stdout, 'X509v3 Basic Constraints');
    assert.deepEqual(bc, { critical: true, value: 'CA:FALSE' });
    assert.deepEqual(extension(r.stdout, 'X509v3 Key Usage'), { critical: true, value: 'Digital Signature' });
    assert.deepEqual(extension(r.stdout, 'X509v3 Extended Key Usage'), { critical: false, value: 'TLS Web Server Authentication, TLS Web Client Authentication' });
    assert.ok(extension(r.stdout, 'X509v3 Subject Key Identifier'));
    assert.ok(extension(r.stdout, 'X509v3 Authority Key Identifier'));
    const san = extension(r.stdout, 'X509v3 Subject Alternative Name');
    assert.equal(san?.value, 'URI:spiffe://example.org/ns/shop/sa/orders, DNS:orders.shop.svc');
    // The subject is empty, so RFC 5280 §4.2.1.6 wants the SAN critical.
    assert.equal(san?.critical, true);
    assert.match(r.stdout, /Signature Algorithm: ecdsa-with-SHA256/);
  });

  it('adds keyEncipherment for RSA leaves only', async () => {
    const issued = await fx.ca.issue({ spiffeId: 'spiffe://example.org/rsa', keyType: 'rsa-2048', cn: 'rsa-workload' }, now);
    const r = await runOpenssl(['x509', '-noout', '-text', '-in', fx.file('rsa.crt', issued.certificatePem)]);
    assert.deepEqual(extension(r.stdout, 'X509v3 Key Usage'), { critical: true, value: 'Digital Signature, Key Encipherment' });
    assert.match(r.stdout, /Subject: CN ?= ?rsa-workload/);
  });

  it('shows the intermediate with pathlen 0, certificate and CRL signing, and a critical URI name constraint in host form', async () => {
    const r = await runOpenssl(['x509', '-noout', '-text', '-in', `${fx.caDir}/intermediate.crt`]);
    assert.deepEqual(extension(r.stdout, 'X509v3 Basic Constraints'), { critical: true, value: 'CA:TRUE, pathlen:0' });
    assert.deepEqual(extension(r.stdout, 'X509v3 Key Usage'), { critical: true, value: 'Certificate Sign, CRL Sign' });
    const nc = extension(r.stdout, 'X509v3 Name Constraints');
    assert.equal(nc?.critical, true);
    assert.equal(nc?.value, 'Permitted:\nURI:example.org');
    assert.equal(extension(r.stdout, 'X509v3 Extended Key Usage'), undefined);
  });

  it('shows the root self-signed with pathlen 1 and a ten-year lifetime', async () => {
    const r = await runOpenssl(['x509', '-noout', '-text', '-in', `${fx.caDir}/root.crt`]);
    assert.deepEqual(extension(r.stdout, 'X509v3 Basic Constraints'), { critical: true, value: 'CA:TRUE, pathlen:1' });
    assert.deepEqual(extension(r.stdout, 'X509v3 Key Usage'), { critical: true, value: 'Certificate Sign, CRL Sign' });
    const issuer = /Issuer: (.*)/.exec(r.stdout)![1];
    const subject = /Subject: (.*)/.exec(r.stdout)![1];
    assert.equal(issuer, subject);
    const notBefore = Date.parse(/Not Before: (.*)/.exec(r.stdout)![1]!);
    const notAfter = Date.parse(/Not After : (.*)/.exec(r.stdout)![1]!);
    assert.equal(notAfter - notBefore, 87_600 * 3_600_000 + 60_000);
  });

  it('lets openssl reject a leaf whose URI SAN lies outside the intermediate name constraint (the constraint is enforced)', async () => {
    // The Authority refuses such an identity, so build the proof from openssl's side: a leaf for another
    // trust domain signed with the intermediate key must fail verification because of the constraint.
    const key = `${fx.caDir}/intermediate.key`;
    const csrKey = fx.file('other.key', (await runOpenssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'])).stdout);
    const ext = fx.file('other.ext', 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectAltName=critical,URI:spiffe://evil.example/x\n');
    const csr = fx.file('other.csr', (await runOpenssl(['req', '-new', '-key', csrKey, '-subj', '/CN=other'])).stdout);
    const signed = await runOpenssl(['x509', '-req', '-in', csr, '-CA', `${fx.caDir}/intermediate.crt`, '-CAkey', key, '-set_serial', '7', '-days', '1', '-extfile', ext]);
    assert.equal(signed.code, 0, signed.stderr);
    const r = await opensslVerify({ caFile: `${fx.caDir}/root.crt`, untrusted: `${fx.caDir}/intermediate.crt`, cert: fx.file('other.crt', signed.stdout) });
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /name constraint|permitted subtree/i);
  });
});
