// The pure parts of the sidecar's identity handling, as tables: what a certificate's Identity is, which
// X509-SVID leaf rule a certificate breaks (and under which metrics reason), and the exact XFCC value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { identityFromCertificate, svidLeafProblem, svidLeafViolation, xfccValue } from '../../src/sidecar/tls/identity.js';
import type { Identity } from '../../src/sidecar/tls/identity.js';
import { makeTestPki } from '../support/pki-fixtures.js';
import type { LeafShape } from '../support/pki-fixtures.js';

const pki = makeTestPki();
const ID = 'spiffe://example.org/ns/shop/sa/frontend';

test('identity of a SPIFFE leaf: the SPIFFE ID is the id; DNS, serial and fingerprint are kept', () => {
  const leaf = pki.leaf({ spiffeId: ID, dns: ['frontend.shop.svc'], cn: 'frontend' });
  const identity = identityFromCertificate(leaf.cert);
  assert.equal(identity.id, ID);
  assert.equal(identity.spiffeId, ID);
  assert.equal(identity.uri, ID);
  assert.deepEqual(identity.dns, ['frontend.shop.svc']);
  assert.equal(identity.cn, 'frontend');
  assert.equal(identity.subject, 'CN=frontend');
  assert.equal(identity.serialHex, leaf.cert.serialHex);
  assert.equal(identity.fingerprint, leaf.cert.fingerprintSha256);
});

test('identity of a certificate without a SPIFFE ID: the subject string is the id', () => {
  const identity = identityFromCertificate(pki.leaf({ shape: 'no-uri', cn: 'legacy-batch', ou: ['payments'] }).cert);
  assert.equal(identity.spiffeId, undefined);
  assert.equal(identity.cn, 'legacy-batch');
  assert.deepEqual(identity.ou, ['payments']);
  assert.equal(identity.id, identity.subject);
  assert.match(identity.subject, /CN=legacy-batch/);
});

const leafRules: [LeafShape, 'client' | 'server', string | undefined][] = [
  ['good', 'client', undefined],
  ['good', 'server', undefined],
  ['no-uri', 'client', undefined],
  ['client-auth-only', 'client', undefined],
  ['client-auth-only', 'server', 'bad_key_usage'],
  ['server-auth-only', 'client', 'bad_key_usage'],
  ['server-auth-only', 'server', undefined],
  ['ca-as-leaf', 'client', 'ca_as_leaf'],
  ['key-cert-sign', 'client', 'bad_key_usage'],
  ['two-uris', 'client', 'multiple_uri_sans'],
];

for (const [shape, use, reason] of leafRules) {
  test(`svid leaf rules: ${shape} as ${use} → ${reason ?? 'valid'}`, () => {
    const cert = pki.leaf({ shape, spiffeId: ID }).cert;
    assert.equal(svidLeafViolation(cert, use)?.reason, reason);
    const problem = svidLeafProblem(cert, use);
    if (reason === undefined) assert.equal(problem, undefined);
    else assert.ok(problem && problem.length > 10, 'a sentence saying what is wrong');
  });
}

test('xfcc: Envoy layout, Subject always quoted, quotes escaped, one DNS= per name', () => {
  const peer: Identity = {
    id: ID,
    spiffeId: ID,
    uri: ID,
    ou: [],
    dns: ['a.example', 'b.example'],
    subject: 'CN=say "hi",O=x\\y',
    serialHex: '01',
    fingerprint: 'ab'.repeat(32),
  };
  assert.equal(
    xfccValue(peer, 'spiffe://example.org/ns/shop/sa/orders'),
    `By=spiffe://example.org/ns/shop/sa/orders;Hash=${'ab'.repeat(32)};Subject="CN=say \\"hi\\",O=x\\\\y";URI=${ID};DNS=a.example;DNS=b.example`,
  );
});

test('xfcc: no By when we have no SPIFFE ID, no URI when the peer has none', () => {
  const peer: Identity = { id: 'CN=legacy', ou: [], dns: [], subject: 'CN=legacy', serialHex: '01', fingerprint: 'cd'.repeat(32) };
  assert.equal(xfccValue(peer, ''), `Hash=${'cd'.repeat(32)};Subject="CN=legacy"`);
});
