// Certificate shapes an attacker (or a mistake) presents to the sidecar, beyond those of
// test/sidecar/handshake-refusals-counted-by-reason.test.ts (no certificate, expired, not yet valid,
// another CA, revoked leaf, CA as leaf, serverAuth-only, two URI SANs, keyCertSign leaf) and
// test/sidecar/resumed-session-refused-after-revocation.test.ts (a resumed session after revocation):
// a leaf under a revoked intermediate, a chain longer than the root's pathLen allows, and SPIFFE IDs of
// another trust domain (refused by the intermediate's name constraint; and, for a federated bundle,
// accepted by TLS but granted nothing, so 403). Each case ends with the granted client being served.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CertificateSigner, parseCertificate, type CertificateTemplate } from '../../src/pki/certificate.js';
import { exportPrivateKeyPem, generateKeyPair } from '../../src/pki/keys.js';
import { encodePem } from '../../src/pki/pem.js';
import { crlFor, makeTestPki, serialBytes, type TestCa, type TestLeaf, type TestPki } from '../support/pki-fixtures.js';
import { FRONTEND_ID, makeScenario, metricValue, startEchoHttpApp, startSidecarProcess, type EchoHttpApp, type Scenario, type SidecarProcess } from '../support/sidecar.js';
import { httpsGet, type ClientTls } from './harness.js';
import { waitFor } from '../support/poll.js';

const HOUR = 3_600_000;

/** A CA certificate signed by `parent`, with its own chain (itself, then the parent's chain) for tls.crt. */
function subCa(parent: TestCa, name: string, extra: Partial<CertificateTemplate> = {}): TestCa {
  const keys = generateKeyPair('ec-p256');
  const now = Date.now();
  const der = parent.signer.sign({
    serial: serialBytes(),
    subject: { cn: name, o: 'meshward test' },
    publicKey: keys.publicKey,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 24 * HOUR),
    isCA: true,
    pathLen: 0,
    keyUsage: ['keyCertSign', 'cRLSign'],
    ...extra,
  });
  const cert = parseCertificate(der);
  const pem = encodePem('CERTIFICATE', der);
  return { cert, der, pem, key: keys.privateKey, keyPem: exportPrivateKeyPem(keys.privateKey), keys, signer: new CertificateSigner(cert, keys.privateKey), chainPem: pem + parent.chainPem };
}

function tlsOf(leaf: TestLeaf, bundlePem: string): ClientTls {
  return { key: leaf.keyPem, cert: leaf.chainPem, ca: bundlePem, servername: 'localhost' };
}

describe('identity: certificate shapes beyond the sidecar suite', () => {
  let app: EchoHttpApp;
  let scenario: Scenario;
  let sidecar: SidecarProcess;
  let port: number;
  let pki: TestPki;
  let other: TestPki;
  let granted: ClientTls;
  let revokedIntermediate: TestCa;
  let tooDeep: TestCa;

  before(async () => {
    app = await startEchoHttpApp();
    other = makeTestPki({ trustDomain: 'other.org' });
    scenario = makeScenario({ app: app.url, config: { log: { level: 'info', allowed: 'silent' } } });
    pki = scenario.pki;
    revokedIntermediate = subCa(pki.root, 'meshward revoked intermediate', { permittedUriDomains: [pki.trustDomain] });
    // The intermediate has pathLen 0: a CA under it makes the chain one CA longer than allowed.
    tooDeep = subCa(pki.intermediate, 'meshward sub-intermediate');
    // Federation: the sidecar trusts this CA's root and other.org's root; one CRL per CA (OpenSSL checks all).
    writeFileSync(join(scenario.identityDir, 'ca.crt'), pki.bundlePem + other.bundlePem);
    writeFileSync(
      join(scenario.identityDir, 'crl.pem'),
      [
        crlFor(pki.root, [revokedIntermediate.cert.serialHex]),
        crlFor(pki.intermediate, []),
        crlFor(revokedIntermediate, []),
        crlFor(tooDeep, []),
        crlFor(other.root, []),
        crlFor(other.intermediate, []),
      ].join(''),
    );
    sidecar = await startSidecarProcess(scenario.configPath);
    port = await sidecar.waitForInbound();
    await sidecar.waitUntilReady();
    granted = tlsOf(pki.leaf({ spiffeId: FRONTEND_ID }), pki.bundlePem);
  });
  after(async () => {
    await sidecar?.stop('SIGKILL');
    await app?.close();
    scenario?.cleanup();
  });

  async function refusedWith(client: ClientTls, reasons: string[]): Promise<string> {
    const before = await sidecar.metrics();
    const counts = (t: string) => reasons.map((r) => metricValue(t, 'meshward_handshake_failures_total', { reason: r }));
    const b = counts(before);
    await assert.rejects(httpsGet(port, client, '/orders/1', 10_000));
    const seenBefore = app.seen.length;
    return waitFor(`a handshake refusal counted as one of ${reasons.join(', ')}`, async () => {
      const c = counts(await sidecar.metrics());
      const i = c.findIndex((v, k) => v > b[k]!);
      assert.equal(app.seen.length, seenBefore, 'nothing reached the app');
      return i >= 0 ? reasons[i] : undefined;
    });
  }

  async function stillServed(): Promise<void> {
    const r = await httpsGet(port, granted, '/orders/ok');
    assert.equal(r.status, 200);
  }

  it('a leaf signed by an intermediate that the root CRL lists as revoked: refused as revoked', async () => {
    const leaf = pki.leaf({ spiffeId: FRONTEND_ID, issuer: revokedIntermediate });
    assert.equal(await refusedWith(tlsOf(leaf, pki.bundlePem), ['revoked']), 'revoked');
    await stillServed();
  });

  it('a chain longer than the path length constraints allow (a CA under the pathLen-0 intermediate): refused', async () => {
    const leaf = pki.leaf({ spiffeId: FRONTEND_ID, issuer: tooDeep });
    assert.equal(await refusedWith(tlsOf(leaf, pki.bundlePem), ['invalid_chain', 'untrusted', 'invalid_certificate']), 'invalid_chain');
    await sidecar.waitForLog((l) => l.event === 'handshake_refused' && l.detail === 'PATH_LENGTH_EXCEEDED', 'a refusal naming PATH_LENGTH_EXCEEDED');
    await stillServed();
  });

  it('a SPIFFE ID of another trust domain under this CA\'s intermediate: refused by its URI name constraint', async () => {
    const leaf = pki.leaf({ spiffeId: 'spiffe://other.org/ns/shop/sa/frontend' });
    // Node reports OpenSSL's X509_V_ERR_PERMITTED_VIOLATION as "UNSPECIFIED"; the sidecar judges the
    // constraint itself so the refusal is counted as invalid_chain rather than invalid_certificate.
    assert.equal(await refusedWith(tlsOf(leaf, pki.bundlePem), ['invalid_chain', 'untrusted', 'invalid_certificate']), 'invalid_chain');
    await stillServed();
  });

  it('a SPIFFE ID of a federated trust domain (its root is in ca.crt): the handshake succeeds, no grant matches, 403 naming the missing scope', async () => {
    // Same path as the granted frontend, other trust domain: the bundle vouches for the certificate,
    // and only the policy's grants (exact SPIFFE IDs / patterns with their trust domain) give scopes.
    const leaf = other.leaf({ spiffeId: 'spiffe://other.org/ns/shop/sa/frontend' });
    const seenBefore = app.seen.length;
    const r = await httpsGet(port, tlsOf(leaf, pki.bundlePem), '/orders/1');
    assert.equal(r.status, 403);
    const body = JSON.parse(r.body) as { error: string; reason: string; identity: string };
    assert.equal(body.identity, 'spiffe://other.org/ns/shop/sa/frontend');
    assert.match(body.reason, /orders:read/);
    assert.equal(app.seen.length, seenBefore, 'the denied request never reached the app');
    await stillServed();
  });
});
