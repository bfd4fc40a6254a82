// Readiness is judged at request time: a sidecar whose own leaf expires (its agent stopped renewing)
// turns /readyz 503 with the reason, without any event, so Kubernetes takes it out of rotation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serverLeaf } from '../support/sidecar.js';
import { writeIdentityDir } from '../support/pki-fixtures.js';
import { waitFor } from '../support/poll.js';
import { runningSidecar } from '../support/running-sidecar.js';

const rig = runningSidecar('tcp', { writeIdentity: false, ready: false });

test('200 while the leaf is valid, 503 naming the expiry once it has passed', async () => {
  const shortLived = serverLeaf(rig.scenario.pki, { notAfter: new Date(Date.now() + 8_000) });
  writeIdentityDir(rig.scenario.identityDir, shortLived, rig.scenario.pki);
  await rig.sidecar.waitUntilReady();
  await waitFor(
    '/readyz to report the expiry',
    async () => {
      const r = await rig.sidecar.readyz();
      return r.status === 503 ? r : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250 },
  ).then((r) => {
    assert.equal(r.body.ready, false);
    assert.match(r.body.reason ?? '', /expired at/);
  });
});
