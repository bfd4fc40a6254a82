// Two CAs with the same subject name (a federation, a CA re-created under its old name) are both in ca.crt,
// and the CRL of one lists a serial that a certificate of the other also carries. A serial means something
// only for the key that issued it: the CRL names its key (authorityKeyIdentifier), so it revokes the
// certificates of that key and no namesake's. Through a real sidecar (handshake check), and on the pure
// Revocations (with the name fallback when a side names no key).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { makeTestPki, type TestLeaf, type TestPki } from '../../support/pki-fixtures.js';
import { runningSidecar } from '../../support/running-sidecar.js';
import { FRONTEND_ID, clientTlsOptions, serverLeaf, tcpRoundTrip, writeKubernetesIdentity } from '../../support/sidecar.js';
import { certificateRef, isRevoked, loadCrlSet, Revocations } from '../../../src/sidecar/tls/crl.js';

describe('a CRL of one of two namesake CAs', () => {
  /** A second PKI whose root and intermediate carry the same subject names as scenario.pki's. */
  let namesake: TestPki;
  /** A caller of our CA whose serial the namesake's CRL lists, and the namesake's own revoked caller. */
  let ours: TestLeaf;
  let revoked: TestLeaf;
  const rig = runningSidecar('tcp', {
    writeIdentity: false,
    prepare: (scenario) => {
      namesake = makeTestPki();
      assert.ok(namesake.intermediate.cert.subjectDer.equals(scenario.pki.intermediate.cert.subjectDer), 'the two intermediates share a name');
      ours = scenario.pki.leaf({ spiffeId: FRONTEND_ID });
      revoked = namesake.leaf({ spiffeId: FRONTEND_ID });
      // The namesake's intermediate revokes its own leaf and, by serial, one that only our intermediate issued.
      const crl = namesake.crlFor(namesake.root, []) + namesake.crlFor(namesake.intermediate, [revoked, ours.cert.serialHex]) + scenario.pki.crlFor(scenario.pki.root, []) + scenario.pki.crlFor(scenario.pki.intermediate, []);
      writeKubernetesIdentity(scenario.identityDir, serverLeaf(scenario.pki), scenario.pki.root.pem + namesake.root.pem, crl);
    },
  });

  it('refuses the certificate it lists and accepts the namesake CA\'s certificate with the same serial', async () => {
    const { scenario, port } = rig;
    assert.equal((await tcpRoundTrip(clientTlsOptions(scenario.pki, ours, port), 'ping')).result, 'echoed', 'our CA\'s caller whose serial a namesake listed');
    assert.equal((await tcpRoundTrip(clientTlsOptions(scenario.pki, revoked, port), 'ping')).result, 'refused', 'the namesake\'s revoked caller');
  });

  it('Revocations: by key where both sides name one, by name where either does not', () => {
    const { scenario } = rig;
    const ours = scenario.pki.leaf();
    const set = loadCrlSet(Buffer.from(namesake.crlFor(namesake.intermediate, [ours.cert.serialHex])), [namesake.root, namesake.intermediate].map((c) => new X509Certificate(c.der)));
    assert.equal(set.revoked.count, 1);
    assert.equal(set.revoked.has(certificateRef(ours.cert)), false, 'another key\'s certificate');
    assert.equal(isRevoked(set.revoked, certificateRef(ours.cert), () => [ours.der, scenario.pki.intermediate.der]), false);
    assert.equal(set.revoked.has({ ...certificateRef(ours.cert), issuerKeyIdHex: undefined }), true, 'a certificate naming no key: by name');
    const nameOnly = new Revocations();
    nameOnly.add(ours.cert.issuerDer.toString('hex'), undefined, [ours.cert.serialHex]);
    assert.equal(nameOnly.has(certificateRef(ours.cert)), true, 'a CRL naming no key: by name');
    assert.equal(Revocations.NONE.empty, true);
  });
});
