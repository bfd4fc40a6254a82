// A sidecar may start before its agent has written identity.dir: /readyz answers 503 with the reason
// ("waiting for credentials in DIR"), /healthz is 200, and as soon as valid files appear the inbound
// listener starts and /readyz turns 200. Invalid files in the meantime say why they are not usable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FRONTEND_ID, clientTlsOptions, httpGet, tcpRoundTrip } from '../support/sidecar.js';
import { writeIdentityDir } from '../support/pki-fixtures.js';
import { waitFor } from '../support/poll.js';
import { runningSidecar } from '../support/running-sidecar.js';

const rig = runningSidecar('tcp', { writeIdentity: false, ready: false });

test('503 with the reason while identity.dir is empty; /healthz is 200', async () => {
  const r = await rig.sidecar.readyz();
  assert.equal(r.status, 503);
  assert.equal(r.body.ready, false);
  assert.match(r.body.reason ?? '', /waiting for credentials in .*identity/);
  assert.equal((await httpGet(`${rig.sidecar.adminUrl}/healthz`)).status, 200);
  assert.equal(rig.sidecar.logs.some((l) => l.event === 'inbound_listening'), false);
});

test('an expired certificate is not usable: 503 says why', async () => {
  writeIdentityDir(rig.scenario.identityDir, rig.scenario.pki.leaf({ shape: 'expired', spiffeId: 'spiffe://example.org/ns/shop/sa/orders' }), rig.scenario.pki);
  await waitFor('/readyz to explain the expired certificate', async () => {
    const r = await rig.sidecar.readyz();
    return r.status === 503 && /expired/.test(r.body.reason ?? '') ? true : undefined;
  });
});

test('200 once valid credentials appear, and the inbound listener serves', async () => {
  writeFileSync(join(rig.scenario.identityDir, 'tls.key'), ''); // a moment of inconsistency, as a careless writer would cause
  writeIdentityDir(rig.scenario.identityDir, rig.scenario.server, rig.scenario.pki);
  await rig.sidecar.waitUntilReady();
  const port = await rig.sidecar.waitForInbound();
  const r = await tcpRoundTrip(clientTlsOptions(rig.scenario.pki, rig.scenario.pki.leaf({ spiffeId: FRONTEND_ID }), port), 'ready');
  assert.equal(r.result, 'echoed');
});
