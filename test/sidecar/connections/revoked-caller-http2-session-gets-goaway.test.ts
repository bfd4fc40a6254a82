// A caller revoked while its HTTP/2 session is open: once the sidecar has loaded the new crl.pem, the
// session gets GOAWAY (NO_ERROR, a graceful end), the stream in flight still completes, and the session
// then closes; a session of a caller the CRL does not list keeps taking new streams.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { FRONTEND_ID, metricValue } from '../../support/sidecar.js';
import { goawayOf, h2Get, h2SessionAs, revokeAndWaitForReload } from '../../support/connection-ends.js';
import { runningSidecar } from '../../support/running-sidecar.js';
import { sleep } from '../../support/poll.js';

const r = runningSidecar('http', { crl: true });

test('revoking a caller sends GOAWAY on its HTTP/2 session, lets the open stream finish, and spares others', async () => {
  const revoked = r.scenario.pki.leaf({ spiffeId: FRONTEND_ID });
  const other = r.scenario.pki.leaf({ spiffeId: FRONTEND_ID });
  const session = await h2SessionAs(r, revoked);
  const bystander = await h2SessionAs(r, other);
  try {
    assert.equal(await h2Get(session, '/orders/1'), 200);
    assert.equal(await h2Get(bystander, '/orders/1'), 200);
    const goaway = goawayOf(session);
    const sessionClosed = new Promise<void>((resolve) => session.once('close', () => resolve()));

    const inFlight = h2Get(session, '/slow?ms=4000');
    await sleep(500);
    await revokeAndWaitForReload(r.scenario, r.sidecar, [revoked]);

    assert.equal(await goaway, http2.constants.NGHTTP2_NO_ERROR, 'a graceful GOAWAY');
    assert.equal(await inFlight, 200, 'the stream in flight completed');
    await sessionClosed;

    assert.equal(await h2Get(bystander, '/orders/2'), 200, 'a caller the CRL does not list keeps its session');
    assert.equal(metricValue(await r.sidecar.metrics(), 'meshward_connections_ended_total', { reason: 'revoked' }), 1);
  } finally {
    session.destroy();
    bystander.destroy();
  }
});
