// A caller revoked while its HTTP/1.1 keep-alive connections are open: once the sidecar has loaded the
// new crl.pem, an idle connection of that caller is closed, a request in flight on another of its
// connections still gets its answer but with `Connection: close` and the connection then ends, and a
// connection of a caller the CRL does not list keeps working. The ends are counted by reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FRONTEND_ID, metricValue } from '../../support/sidecar.js';
import { closed, http1Get, openAs, revokeAndWaitForReload } from '../../support/connection-ends.js';
import { runningSidecar } from '../../support/running-sidecar.js';
import { sleep } from '../../support/poll.js';

const r = runningSidecar('http', { crl: true });

test('revoking a caller ends its open HTTP/1.1 connections gracefully and leaves others alone', async () => {
  const revoked = r.scenario.pki.leaf({ spiffeId: FRONTEND_ID });
  const other = r.scenario.pki.leaf({ spiffeId: FRONTEND_ID });
  const idle = await openAs(r, revoked, ['http/1.1']);
  const busy = await openAs(r, revoked, ['http/1.1']);
  const bystander = await openAs(r, other, ['http/1.1']);
  try {
    for (const s of [idle, busy, bystander]) assert.equal((await http1Get(s, '/orders/1')).status, 200);
    assert.equal((await http1Get(busy, '/orders/1')).headers.connection, 'keep-alive');

    // The slow request is in the app when the CRL changes: its answer must still arrive.
    const inFlight = http1Get(busy, '/slow?ms=4000');
    await sleep(500);
    await revokeAndWaitForReload(r.scenario, r.sidecar, [revoked]);

    await closed(idle, 'the revoked caller’s idle connection');
    const answer = await inFlight;
    assert.equal(answer.status, 200, 'the request in flight finished');
    assert.equal(answer.headers.connection, 'close', 'and told the client the connection ends');
    await closed(busy, 'the revoked caller’s busy connection after its last answer');

    const still = await http1Get(bystander, '/orders/2');
    assert.equal(still.status, 200);
    assert.equal(still.headers.connection, 'keep-alive', 'a caller the CRL does not list keeps its connection');

    assert.equal(metricValue(await r.sidecar.metrics(), 'meshward_connections_ended_total', { reason: 'revoked' }), 2);
    assert.equal(r.sidecar.logs.find((l) => l.event === 'connection_ended')?.reason, 'revoked');
  } finally {
    for (const s of [idle, busy, bystander]) s.destroy();
  }
});
