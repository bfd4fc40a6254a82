// Credentials rotated the way Kubernetes updates a Secret volume (a new `..data` folder, one symlink
// rename): a connection opened before the swap keeps working, and new connections are served the new
// certificate soon after (polled with a generous bound, never a tight timing assertion).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { FRONTEND_ID, clientTlsOptions, exchange, makeScenario, metricValue, presentedSerial, serverLeaf, startSidecarProcess, startTcpEchoApp, tlsOpen, writeKubernetesIdentity } from '../support/sidecar.js';
import type { Scenario, SidecarProcess, TcpEchoApp } from '../support/sidecar.js';
import { waitFor } from '../support/poll.js';

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

test('a ..data swap rotates the certificate for new connections while an open one keeps working', async () => {
  const client = scenario.pki.leaf({ spiffeId: FRONTEND_ID });
  const options = clientTlsOptions(scenario.pki, client, port);
  assert.equal(await presentedSerial(options), scenario.server.cert.serialHex);

  const open = await tlsOpen(options);
  try {
    assert.equal(await exchange(open, 'before'), 'before');
    const successes = metricValue(await sidecar.metrics(), 'meshward_reloads_total', { kind: 'credentials', result: 'success' });

    for (let rotation = 1; rotation <= 3; rotation++) {
      const next = serverLeaf(scenario.pki);
      writeKubernetesIdentity(scenario.identityDir, next, scenario.pki);
      await waitFor(`new connections to present rotation ${rotation}`, async () =>
        (await presentedSerial(options)) === next.cert.serialHex ? true : undefined,
      );
      assert.equal(await exchange(open, `during ${rotation}`), `during ${rotation}`, 'the connection opened before the swap still works');
    }
    const metrics = await sidecar.metrics();
    assert.equal(metricValue(metrics, 'meshward_reloads_total', { kind: 'credentials', result: 'success' }), successes + 3);
    assert.equal(metricValue(metrics, 'meshward_reloads_total', { kind: 'credentials', result: 'failure' }), 0);
    assert.ok(metricValue(metrics, 'meshward_certificate_not_after_seconds') > Date.now() / 1000);
  } finally {
    open.destroy();
  }
});
