// A caller whose certificate expires while its connections are open: the handshake checked the
// certificate once, so without more the connection would outlive it. At the leaf's notAfter the sidecar
// ends the caller's idle HTTP/1.1 connection and sends GOAWAY on its HTTP/2 session, never before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { FRONTEND_ID, metricValue } from '../../support/sidecar.js';
import { closed, goawayOf, h2Get, h2SessionAs, http1Get, openAs } from '../../support/connection-ends.js';
import { runningSidecar } from '../../support/running-sidecar.js';

const r = runningSidecar('http');

test('connections of a caller end when its certificate expires', async () => {
  // Long enough for two handshakes on a loaded machine; X.509 times have whole seconds.
  const leaf = r.scenario.pki.leaf({ spiffeId: FRONTEND_ID, notAfter: new Date(Date.now() + 8000) });
  const notAfter = leaf.cert.notAfter.getTime();
  const h1 = await openAs(r, leaf, ['http/1.1']);
  const h2 = await h2SessionAs(r, leaf);
  try {
    const goaway = goawayOf(h2);
    const h2Closed = new Promise<void>((resolve) => h2.once('close', () => resolve()));
    assert.equal((await http1Get(h1, '/orders/1')).status, 200);
    assert.equal(await h2Get(h2, '/orders/1'), 200);

    await closed(h1, 'the expired caller’s HTTP/1.1 connection', 30_000);
    assert.ok(Date.now() >= notAfter, 'the connection was not ended before the certificate expired');
    assert.equal(await goaway, http2.constants.NGHTTP2_NO_ERROR);
    await h2Closed;
    assert.equal(metricValue(await r.sidecar.metrics(), 'meshward_connections_ended_total', { reason: 'expired' }), 2);
  } finally {
    h1.destroy();
    h2.destroy();
  }
});
