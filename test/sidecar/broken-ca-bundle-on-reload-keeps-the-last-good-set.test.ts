// A broken ca.crt arriving by a Kubernetes ..data swap (beside a new, good server certificate) never
// replaces the credential set in use: the sidecar keeps presenting its old certificate, callers keep
// getting through, /readyz stays 200, and it says why: a credentials_reload_failed line whose reason
// names ca.crt and the problem, and meshward_reloads_total{kind="credentials",result="failure"}.
// (reload-broken-credentials-keeps-old covers a half-written tls.crt and a mismatched key.)
// A good swap afterwards is picked up: the watcher did not give up.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodePem } from '../../src/pki/pem.js';
import { FRONTEND_ID, clientTlsOptions, metricValue, presentedSerial, serverLeaf, tcpRoundTrip, writeKubernetesIdentity } from '../support/sidecar.js';
import { waitFor } from '../support/poll.js';
import { runningSidecar } from '../support/running-sidecar.js';

/** The root's PEM with its base64 body cut to a length that is not a multiple of 4 (END line kept). */
function truncatedBody(pem: string): string {
  const b64 = decodePem(pem)[0]!.der.toString('base64');
  const cut = b64.slice(0, Math.floor(b64.length / 2) - (Math.floor(b64.length / 2) % 4) + 3);
  return `-----BEGIN CERTIFICATE-----\n${cut.replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
}

describe('a broken ca.crt on reload keeps the last good credential set', () => {
  const rig = runningSidecar('tcp', { layout: 'kubernetes' });

  const failures = async () => metricValue(await rig.sidecar.metrics(), 'meshward_reloads_total', { kind: 'credentials', result: 'failure' });
  const caller = () => clientTlsOptions(rig.scenario.pki, rig.scenario.pki.leaf({ spiffeId: FRONTEND_ID }), rig.port);

  const cases: [string, () => string, RegExp][] = [
    ['garbage between PEM markers', () => '-----BEGIN CERTIFICATE-----\nthis is not base64 at all!\n-----END CERTIFICATE-----\n', /^ca\.crt: .*invalid base64/],
    ['a PEM with no CERTIFICATE block (a CRL)', () => rig.scenario.pki.crlFor(rig.scenario.pki.root, []), /^ca\.crt: no CERTIFICATE block/],
    ['a certificate whose base64 body is truncated', () => truncatedBody(rig.scenario.pki.root.pem), /^ca\.crt: .*truncated base64/],
    ['a leaf (non-CA) certificate as the bundle', () => rig.scenario.pki.leaf({ spiffeId: FRONTEND_ID }).pem, /^ca\.crt: its certificate \(spiffe:\/\/example\.org\/ns\/shop\/sa\/frontend\) is not a CA certificate/],
    ['an empty file', () => '', /^ca\.crt: the file is empty/],
  ];
  for (const [what, bundle, reason] of cases) {
    it(`${what}: refused with its reason, the old certificate still served, callers still get through`, async () => {
      const before = await failures();
      const seen = rig.sidecar.logs.length;
      // A new, good server certificate in the same swap: were the set taken, the sidecar would present it.
      writeKubernetesIdentity(rig.scenario.identityDir, serverLeaf(rig.scenario.pki), bundle());
      await waitFor('the failed reload to be counted', async () => ((await failures()) > before ? true : undefined), { timeoutMs: 30_000 });
      const line = await waitFor('a credentials_reload_failed line', () => rig.sidecar.logs.slice(seen).find((l) => l.event === 'credentials_reload_failed'));
      assert.match(String(line.reason), reason);
      assert.equal(await presentedSerial(caller()), rig.scenario.server.cert.serialHex, 'the old certificate is still presented');
      assert.equal((await tcpRoundTrip(caller(), 'still here')).result, 'echoed');
      const ready = await rig.sidecar.readyz();
      assert.equal(ready.status, 200);
    });
  }

  it('a good swap after the broken ones is picked up', async () => {
    const next = serverLeaf(rig.scenario.pki);
    writeKubernetesIdentity(rig.scenario.identityDir, next, rig.scenario.pki);
    await waitFor('the new certificate to be served', async () => ((await presentedSerial(caller())) === next.cert.serialHex ? true : undefined), { timeoutMs: 30_000 });
    assert.equal((await tcpRoundTrip(caller(), 'after')).result, 'echoed');
    assert.equal((await rig.sidecar.readyz()).status, 200);
  });
});
