// A broken ca.crt arriving by a Kubernetes ..data swap (beside a new, good server certificate) never
// replaces the credential set in use: the sidecar keeps presenting its old certificate, callers keep
// getting through, /readyz stays 200, and it says why: a credentials_reload_failed line whose reason
// names ca.crt and the problem, and meshward_reloads_total{kind="credentials",result="failure"}.
// (reload-broken-credentials-keeps-old covers a half-written tls.crt and a mismatched key.)
// A good swap afterwards is picked up: the watcher did not give up.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodePem } from '../../src/pki/pem.js';
import { FRONTEND_ID, clientTlsOptions, makeScenario, metricValue, presentedSerial, serverLeaf, startSidecarProcess, startTcpEchoApp, tcpRoundTrip, writeKubernetesIdentity } from '../support/sidecar.js';
import type { Scenario, SidecarProcess, TcpEchoApp } from '../support/sidecar.js';
import { waitFor } from '../support/poll.js';

/** The root's PEM with its base64 body cut to a length that is not a multiple of 4 (END line kept). */
function truncatedBody(pem: string): string {
  const b64 = decodePem(pem)[0]!.der.toString('base64');
  const cut = b64.slice(0, Math.floor(b64.length / 2) - (Math.floor(b64.length / 2) % 4) + 3);
  return `-----BEGIN CERTIFICATE-----\n${cut.replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
}

describe('a broken ca.crt on reload keeps the last good credential set', () => {
  let app: TcpEchoApp;
  let scenario: Scenario;
  let sidecar: SidecarProcess;
  let port: number;

  before(async () => {
    app = await startTcpEchoApp();
    scenario = makeScenario({ app: `tcp://127.0.0.1:${app.port}`, layout: 'kubernetes' });
    sidecar = await startSidecarProcess(scenario.configPath);
    port = await sidecar.waitForInbound();
    await sidecar.waitUntilReady();
  });
  after(async () => {
    await sidecar?.stop();
    await app?.close();
    scenario?.cleanup();
  });

  const failures = async () => metricValue(await sidecar.metrics(), 'meshward_reloads_total', { kind: 'credentials', result: 'failure' });
  const caller = () => clientTlsOptions(scenario.pki, scenario.pki.leaf({ spiffeId: FRONTEND_ID }), port);

  const cases: [string, () => string, RegExp][] = [
    ['garbage between PEM markers', () => '-----BEGIN CERTIFICATE-----\nthis is not base64 at all!\n-----END CERTIFICATE-----\n', /^ca\.crt: .*invalid base64/],
    ['a PEM with no CERTIFICATE block (a CRL)', () => scenario.pki.crlFor(scenario.pki.root, []), /^ca\.crt: no CERTIFICATE block/],
    ['a certificate whose base64 body is truncated', () => truncatedBody(scenario.pki.root.pem), /^ca\.crt: .*truncated base64/],
    ['a leaf (non-CA) certificate as the bundle', () => scenario.pki.leaf({ spiffeId: FRONTEND_ID }).pem, /^ca\.crt: its certificate \(spiffe:\/\/example\.org\/ns\/shop\/sa\/frontend\) is not a CA certificate/],
    ['an empty file', () => '', /^ca\.crt: the file is empty/],
  ];
  for (const [what, bundle, reason] of cases) {
    it(`${what}: refused with its reason, the old certificate still served, callers still get through`, async () => {
      const before = await failures();
      const seen = sidecar.logs.length;
      // A new, good server certificate in the same swap: were the set taken, the sidecar would present it.
      writeKubernetesIdentity(scenario.identityDir, serverLeaf(scenario.pki), bundle());
      await waitFor('the failed reload to be counted', async () => ((await failures()) > before ? true : undefined), { timeoutMs: 30_000 });
      const line = await waitFor('a credentials_reload_failed line', () => sidecar.logs.slice(seen).find((l) => l.event === 'credentials_reload_failed'));
      assert.match(String(line.reason), reason);
      assert.equal(await presentedSerial(caller()), scenario.server.cert.serialHex, 'the old certificate is still presented');
      assert.equal((await tcpRoundTrip(caller(), 'still here')).result, 'echoed');
      const ready = await sidecar.readyz();
      assert.equal(ready.status, 200);
    });
  }

  it('a good swap after the broken ones is picked up', async () => {
    const next = serverLeaf(scenario.pki);
    writeKubernetesIdentity(scenario.identityDir, next, scenario.pki);
    await waitFor('the new certificate to be served', async () => ((await presentedSerial(caller())) === next.cert.serialHex ? true : undefined), { timeoutMs: 30_000 });
    assert.equal((await tcpRoundTrip(caller(), 'after')).result, 'echoed');
    assert.equal((await sidecar.readyz()).status, 200);
  });
});
