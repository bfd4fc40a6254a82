// A crl.pem that does not parse, holds no CRL, or whose signature does not verify arrives together with a
// new server certificate. The certificate set is loaded (a CRL problem never blocks rotation), the last
// good CRLs stay in force (their revoked caller is still refused), and the sidecar says why: a warning
// naming the problem and meshward_reloads_total{kind="crl",result="failure"}.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodePem, encodePem } from '../../src/pki/pem.js';

const crlDer = (pem: string): Buffer => Buffer.from(decodePem(pem)[0]!.der);
import { FRONTEND_ID } from '../support/sidecar.js';
import { startCrlSidecar, type CrlSidecar } from '../support/crl-sidecar.js';
import { waitFor } from '../support/poll.js';

describe('a broken crl.pem keeps the last good CRLs in force', () => {
  let s: CrlSidecar;
  before(async () => {
    s = await startCrlSidecar(({ pki }, revoked) => pki.crlFor(pki.root, []) + pki.crlFor(pki.intermediate, [revoked]));
  });
  after(async () => {
    await s?.close();
  });

  const cases: [string, () => string, RegExp][] = [
    ['text that is not PEM', () => 'this is not a CRL\n', /crl\.pem: /],
    ['a certificate instead of a CRL', () => s.scenario.pki.root.pem, /crl\.pem: no X509 CRL block/],
    ['a CRL whose DER is cut short', () => encodePem('X509 CRL', crlDer(s.scenario.pki.crlFor(s.scenario.pki.intermediate, [])).subarray(0, 40)), /crl\.pem: CRL 1 does not parse/],
    ['a CRL of our intermediate whose signature was altered', () => {
      const der = crlDer(s.scenario.pki.crlFor(s.scenario.pki.intermediate, []));
      der[der.length - 1]! ^= 0x01; // the last byte of the ECDSA signature's s value: still parses, no longer verifies
      return encodePem('X509 CRL', der);
    }, /crl\.pem: the CRL of .*intermediate.* is not signed by that CA/],
  ];
  for (const [what, pem, reason] of cases) {
    it(`${what}: the new certificate is loaded, the last good CRL still refuses its caller`, async () => {
      const failures = await s.metric('meshward_reloads_total', { kind: 'crl', result: 'failure' });
      const seen = s.sidecar.logs.length;
      await s.rotate(pem());
      assert.ok(await s.metric('meshward_reloads_total', { kind: 'crl', result: 'failure' }) > failures, 'counted as a failed CRL reload');
      // The warning is written through the log buffer, at the end of the sidecar's event-loop turn: it may
      // arrive after the metric is scraped (on a loaded machine it did, and the next case then found it).
      const warning = await waitFor('a crl_reload_failed warning', () => s.sidecar.logs.slice(seen).find((l) => l.event === 'crl_reload_failed'));
      assert.match(String(warning.reason), reason);
      assert.equal(warning.keeping, 'previous');
      assert.equal(await s.call(s.revokedLeaf), 'refused', 'the revoked caller is still refused');
      assert.equal(await s.call(s.scenario.pki.leaf({ spiffeId: FRONTEND_ID })), 'echoed');
      assert.equal(await s.metric('meshward_reloads_total', { kind: 'credentials', result: 'failure' }), 0, 'no certificate set refused');
    });
  }
});
