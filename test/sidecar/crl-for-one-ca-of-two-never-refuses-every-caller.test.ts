// ca.crt holds two roots (a federation, or a root rotation in progress) and crl.pem has CRLs for only one
// of them. OpenSSL's own CRL check would refuse every caller of the other CA (UNABLE_TO_GET_CRL); the
// sidecar must not: callers of both CAs are accepted, and the revoked caller of the CA that has a CRL is
// refused (counted as reason="revoked"). Both directions, the second arriving by a ..data swap.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { makeTestPki, type TestLeaf, type TestPki } from '../support/pki-fixtures.js';
import { FRONTEND_ID, clientTlsOptions, makeScenario, metricValue, presentedSerial, serverLeaf, startSidecarProcess, startTcpEchoApp, tcpRoundTrip, writeKubernetesIdentity } from '../support/sidecar.js';
import type { Scenario, SidecarProcess, TcpEchoApp } from '../support/sidecar.js';
import { waitFor } from '../support/poll.js';

describe('a crl.pem covering one CA of a two-root bundle', () => {
  let app: TcpEchoApp;
  let scenario: Scenario;
  let sidecar: SidecarProcess;
  let port: number;
  /** The second root of ca.crt, with its own intermediate; the sidecar's own certificate is from scenario.pki. */
  let other: TestPki;
  let bundle: string;

  before(async () => {
    app = await startTcpEchoApp();
    other = makeTestPki();
    scenario = makeScenario({ app: `tcp://127.0.0.1:${app.port}`, writeIdentity: false });
    bundle = scenario.pki.root.pem + other.root.pem;
  });
  after(async () => {
    await sidecar?.stop();
    await app?.close();
    scenario?.cleanup();
  });

  const call = async (leaf: TestLeaf) => (await tcpRoundTrip(clientTlsOptions(scenario.pki, leaf, port), 'ping')).result;
  const revokedCount = async () => metricValue(await sidecar.metrics(), 'meshward_handshake_failures_total', { reason: 'revoked' });

  // [which CA has CRLs, the PKI whose caller is revoked, the other PKI]
  const cases: [string, () => TestPki, () => TestPki][] = [
    ['the CA of the sidecar\'s own certificate', () => scenario.pki, () => other],
    ['the other CA (whose intermediate the sidecar does not hold)', () => other, () => scenario.pki],
  ];
  for (const [what, listed, unlisted] of cases) {
    it(`CRLs for ${what} only: callers of both CAs accepted, the revoked one refused`, async () => {
      const withCrl = listed();
      const revoked = withCrl.leaf({ spiffeId: FRONTEND_ID });
      const crl = withCrl.crlFor(withCrl.root, []) + withCrl.crlFor(withCrl.intermediate, [revoked]);
      const leaf = serverLeaf(scenario.pki);
      writeKubernetesIdentity(scenario.identityDir, leaf, bundle, crl);
      if (!sidecar) {
        sidecar = await startSidecarProcess(scenario.configPath);
        port = await sidecar.waitForInbound();
        await sidecar.waitUntilReady();
      } else {
        await waitFor('the swapped set to be served', async () =>
          ((await presentedSerial(clientTlsOptions(scenario.pki, scenario.pki.leaf({ spiffeId: FRONTEND_ID }), port))) === leaf.cert.serialHex ? true : undefined), { timeoutMs: 30_000 });
      }
      assert.equal(await call(withCrl.leaf({ spiffeId: FRONTEND_ID })), 'echoed', 'a caller of the CA with a CRL');
      assert.equal(await call(unlisted().leaf({ spiffeId: FRONTEND_ID })), 'echoed', 'a caller of the CA without a CRL');
      const before = await revokedCount();
      assert.equal(await call(revoked), 'refused', 'the revoked caller');
      await waitFor('the refusal counted as revoked', async () => ((await revokedCount()) > before ? true : undefined));
      const metrics = await sidecar.metrics();
      assert.equal(metricValue(metrics, 'meshward_handshake_failures_total', { reason: 'crl_problem' }), 0, 'no caller refused for a missing CRL');
      assert.equal(metricValue(metrics, 'meshward_reloads_total', { kind: 'crl', result: 'failure' }), 0);
      assert.equal((await sidecar.readyz()).status, 200);
    });
  }
});
