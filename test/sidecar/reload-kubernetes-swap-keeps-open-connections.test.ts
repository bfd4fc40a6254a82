// Credentials rotated the way Kubernetes updates a Secret volume (a new `..data` folder, one symlink
// rename): a connection opened before the swap keeps working, and new connections are served the new
// certificate soon after (polled with a generous bound, never a tight timing assertion).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FRONTEND_ID, clientTlsOptions, exchange, metricValue, presentedSerial, serverLeaf, tlsOpen, writeKubernetesIdentity } from '../support/sidecar.js';
import { waitFor } from '../support/poll.js';
import { runningSidecar } from '../support/running-sidecar.js';

const rig = runningSidecar('tcp', { layout: 'kubernetes' });

test('a ..data swap rotates the certificate for new connections while an open one keeps working', async () => {
  const client = rig.scenario.pki.leaf({ spiffeId: FRONTEND_ID });
  const options = clientTlsOptions(rig.scenario.pki, client, rig.port);
  assert.equal(await presentedSerial(options), rig.scenario.server.cert.serialHex);

  const open = await tlsOpen(options);
  try {
    assert.equal(await exchange(open, 'before'), 'before');
    const successes = metricValue(await rig.sidecar.metrics(), 'meshward_reloads_total', { kind: 'credentials', result: 'success' });

    for (let rotation = 1; rotation <= 3; rotation++) {
      const next = serverLeaf(rig.scenario.pki);
      writeKubernetesIdentity(rig.scenario.identityDir, next, rig.scenario.pki);
      await waitFor(`new connections to present rotation ${rotation}`, async () =>
        (await presentedSerial(options)) === next.cert.serialHex ? true : undefined,
      );
      assert.equal(await exchange(open, `during ${rotation}`), `during ${rotation}`, 'the connection opened before the swap still works');
    }
    const metrics = await rig.sidecar.metrics();
    assert.equal(metricValue(metrics, 'meshward_reloads_total', { kind: 'credentials', result: 'success' }), successes + 3);
    assert.equal(metricValue(metrics, 'meshward_reloads_total', { kind: 'credentials', result: 'failure' }), 0);
    assert.ok(metricValue(metrics, 'meshward_certificate_not_after_seconds') > Date.now() / 1000);
  } finally {
    open.destroy();
  }
});
