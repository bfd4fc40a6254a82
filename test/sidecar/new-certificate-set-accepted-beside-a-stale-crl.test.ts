// A stale CRL must never block rotation: the sidecar starts with a crl.pem that expired an hour ago, then
// receives a new server certificate beside that same stale CRL (a Kubernetes ..data swap). Both sets are
// loaded; the CRL's revoked caller is refused throughout.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { FRONTEND_ID } from '../support/sidecar.js';
import { startCrlSidecar, type CrlSidecar } from '../support/crl-sidecar.js';

let s: CrlSidecar;
let stalePem: string;
const HOUR = 3_600_000;

before(async () => {
  s = await startCrlSidecar(({ pki }, revoked) => {
    const old = { now: new Date(Date.now() - 2 * HOUR), nextUpdate: new Date(Date.now() - HOUR) };
    stalePem = pki.crlFor(pki.root, [], old) + pki.crlFor(pki.intermediate, [revoked], old);
    return stalePem;
  });
});
after(async () => {
  await s?.close();
});

test('a new certificate set beside a stale CRL is loaded, and the CRL still enforced', async () => {
  assert.equal(await s.call(s.revokedLeaf), 'refused', 'the stale CRL is enforced from the start');
  const loaded = await s.metric('meshward_reloads_total', { kind: 'credentials', result: 'success' });
  await s.rotate(stalePem);
  assert.ok(await s.metric('meshward_reloads_total', { kind: 'credentials', result: 'success' }) > loaded, 'the new set counted as a successful reload');
  assert.equal(await s.metric('meshward_reloads_total', { kind: 'credentials', result: 'failure' }), 0, 'nothing refused');
  assert.equal(await s.call(s.revokedLeaf), 'refused', 'the revoked caller is still refused after the rotation');
  assert.equal(await s.call(s.scenario.pki.leaf({ spiffeId: FRONTEND_ID })), 'echoed');
  assert.equal((await s.readyz()).status, 200);
});
