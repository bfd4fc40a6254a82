// workers: 2 — while the workers wait for their first credentials, /metrics has no expiry value at all
// (a single process reads an unset expiry as 0, and a summed-by-minimum 0 would fire every "certificate
// expires" alert); once the credentials appear, the expiry is the leaf's notAfter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { metricValue } from '../support/sidecar.js';
import { writeIdentityDir } from '../support/pki-fixtures.js';
import { startedWorkers } from '../support/workers.js';
import { waitFor } from '../support/poll.js';
import { runningSidecar } from '../support/running-sidecar.js';

const rig = runningSidecar('http', { workers: 2, writeIdentity: false, ready: false });

test('no expiry value while waiting for credentials; the leaf notAfter once they are written', async () => {
  const s = rig.sidecar!;
  await waitFor('two started workers', () => (startedWorkers(s).size === 2 ? true : undefined), { timeoutMs: 30_000 });
  const waiting = await s.metrics();
  assert.doesNotMatch(waiting, /^meshward_certificate_not_after_seconds /m, 'no value while no worker has credentials');
  assert.match(waiting, /^# TYPE meshward_certificate_not_after_seconds gauge$/m);

  writeIdentityDir(rig.scenario.identityDir, rig.scenario.server, rig.scenario.pki);
  await s.waitUntilReady(30_000);
  const notAfter = Math.floor(rig.scenario.server.cert.notAfter.getTime() / 1000);
  const value = await waitFor('the expiry of the loaded leaf', async () => {
    const v = metricValue(await s.metrics(), 'meshward_certificate_not_after_seconds');
    return v === notAfter ? v : undefined;
  }, { timeoutMs: 30_000 });
  assert.equal(value, notAfter);
});
