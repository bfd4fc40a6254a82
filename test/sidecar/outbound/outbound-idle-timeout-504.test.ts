// An outbound upstream that accepts the request and then sends nothing: after the listener's
// idleTimeout the app gets 504 naming it, and the failure is counted as idle_timeout; an upstream that
// answers within it is unaffected.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SERVER_ID, serverLeaf } from '../../support/sidecar.js';
import { makeTestPki } from '../../support/pki-fixtures.js';
import { appCall, httpsUpstream, startOutboundRig, type OutboundRig, type Upstream } from '../../support/outbound.js';

const pki = makeTestPki();
let rig: OutboundRig;
let upstream: Upstream;

before(async () => {
  // /hang is never answered; anything else at once.
  upstream = await httpsUpstream(pki, serverLeaf(pki), (req, res) => {
    if (req.url !== '/hang') res.end('fast');
  });
  rig = await startOutboundRig(() => [{ listen: '127.0.0.1:0', upstream: `127.0.0.1:${upstream.port}`, identity: SERVER_ID, idleTimeout: '1s' }], { pki });
});

after(async () => {
  await rig?.close();
  await upstream?.close();
});

test('an upstream silent for idleTimeout gets the app a 504 naming it; a quick one is served', async () => {
  const name = `127.0.0.1:${upstream.port}`;
  const r = await appCall(rig.ports[0]!, '/hang');
  assert.equal(r.status, 504, r.body);
  assert.deepEqual(JSON.parse(r.body), { error: 'gateway_timeout', reason: `upstream ${name} sent nothing for 1000 ms (idleTimeout)` });
  assert.equal(await rig.metric('meshward_outbound_failures_total', { upstream: name, reason: 'idle_timeout' }), 1);

  const ok = await appCall(rig.ports[0]!, '/quick');
  assert.equal(ok.status, 200);
  assert.equal(ok.body, 'fast');
  assert.equal(await rig.metric('meshward_outbound_requests_total', { upstream: name }), 2);
});
