// istio#61075's failure, the other way round: a crl.pem whose nextUpdate passes while the sidecar runs
// (the CA or the agent stopped delivering) is NOT dropped. Its revoked caller stays refused, everyone
// else gets in, and the sidecar says so: a warning log line when it goes stale, a line in /readyz's detail
// (still ready: refusing every caller would be the outage), and the CRL's nextUpdate as a gauge.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { FRONTEND_ID } from '../support/sidecar.js';
import { startCrlSidecar, type CrlSidecar } from '../support/crl-sidecar.js';

let s: CrlSidecar;
const nextUpdate = new Date(Date.now() + 6_000);

before(async () => {
  s = await startCrlSidecar(({ pki }, revoked) => pki.crlFor(pki.root, [], { nextUpdate }) + pki.crlFor(pki.intermediate, [revoked], { nextUpdate }));
});
after(async () => {
  await s?.close();
});

test('a CRL past its nextUpdate keeps refusing its revoked caller, and is reported', async () => {
  assert.equal(await s.metric('meshward_crl_next_update_timestamp_seconds'), Math.floor(nextUpdate.getTime() / 1000), 'the gauge holds the nextUpdate');
  const stale = await s.sidecar.waitForLog((l) => l.event === 'crl_stale', 'the stale-CRL warning', 60_000);
  assert.equal(stale.level, 40, 'a warning');
  assert.match(stale.msg, /past its nextUpdate .* still enforced/);

  const before = await s.metric('meshward_handshake_failures_total', { reason: 'revoked' });
  assert.equal(await s.call(s.revokedLeaf), 'refused', 'the revoked caller is still refused');
  assert.ok(await s.metric('meshward_handshake_failures_total', { reason: 'revoked' }) > before, 'counted as revoked');
  assert.equal(await s.call(s.scenario.pki.leaf({ spiffeId: FRONTEND_ID })), 'echoed', 'a caller that is not revoked gets in');

  const ready = await s.readyz();
  assert.equal(ready.status, 200, 'still ready');
  assert.ok(ready.body.detail?.some((d) => /crl\.pem is past its nextUpdate/.test(d)), JSON.stringify(ready.body));
});
