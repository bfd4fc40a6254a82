// fallenCredential: whether the chain an open connection authenticated with still stands under the
// current ca.crt, crl.pem and clock, and ConnectionLifetimes' deadline (certificate notAfter or
// limits.maxConnectionAge, whichever comes first). A table of chains and the verdict each must get.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { fallenCredential } from '../../../src/sidecar/tls/standing.js';
import { connectionDeadline } from '../../../src/sidecar/inbound/lifetimes.js';
import type { TrustView } from '../../../src/sidecar/tls/chain.js';
import { Revocations } from '../../../src/sidecar/tls/crl.js';
import { makeTestPki } from '../../support/pki-fixtures.js';

const pki = makeTestPki();
const leaf = pki.leaf();
const chain = [leaf.der, pki.intermediate.der];

function trust(opts: { anchors?: Buffer[]; revoked?: [Buffer, string][] } = {}): TrustView {
  const revoked = new Revocations();
  for (const [issuerDer, serial] of opts.revoked ?? []) revoked.add(issuerDer.toString('hex'), undefined, [serial]);
  return { anchors: (opts.anchors ?? [pki.root.der]).map((d) => new X509Certificate(d)), revoked };
}

const now = new Date();
const cases: [string, Buffer[], TrustView, Date, ReturnType<typeof fallenCredential>][] = [
  ['a good chain under the same trust', chain, trust(), now, undefined],
  ['the leaf listed by its issuer’s CRL', chain, trust({ revoked: [[leaf.cert.issuerDer, leaf.cert.serialHex]] }), now, 'revoked'],
  ['the intermediate listed by the root’s CRL', chain, trust({ revoked: [[pki.intermediate.cert.issuerDer, pki.intermediate.cert.serialHex]] }), now, 'revoked'],
  ['the same serial listed by another issuer', chain, trust({ revoked: [[pki.root.cert.issuerDer, leaf.cert.serialHex]] }), now, undefined],
  ['the leaf past its notAfter', chain, trust(), new Date(leaf.cert.notAfter.getTime() + 1000), 'expired'],
  ['a bundle that no longer holds the root', chain, trust({ anchors: [pki.untrustedRoot.der] }), now, 'untrusted'],
  ['no chain at all', [], trust(), now, undefined],
];

for (const [name, c, t, at, expected] of cases) {
  test(`fallenCredential: ${name} → ${expected ?? 'stands'}`, () => {
    assert.equal(fallenCredential(c, t, at), expected);
  });
}

test('connectionDeadline: the earlier of notAfter and acceptedAt + maxConnectionAge; 0 means no age limit', () => {
  assert.deepEqual(connectionDeadline(1000, 50_000, 0), { deadline: 50_000, dueTo: 'expired' });
  assert.deepEqual(connectionDeadline(1000, 50_000, 10_000), { deadline: 11_000, dueTo: 'max_age' });
  assert.deepEqual(connectionDeadline(1000, 5000, 10_000), { deadline: 5000, dueTo: 'expired' });
});
