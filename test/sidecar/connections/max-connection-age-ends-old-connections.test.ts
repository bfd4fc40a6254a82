// limits.maxConnectionAge (Envoy's max_connection_duration): a connection older than it is ended
// gracefully whatever its certificate says: HTTP/2 gets GOAWAY, an idle HTTP/1.1 connection is closed,
// and a new connection of the same caller is served. Without it a long-lived connection could keep a
// caller on the sidecar past every policy and certificate change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { FRONTEND_ID, metricValue } from '../../support/sidecar.js';
import { closed, goawayOf, h2SessionAs, http1Get, openAs } from '../../support/connection-ends.js';
import { runningSidecar } from '../../support/running-sidecar.js';

const r = runningSidecar('http', { config: { limits: { maxConnectionAge: '3s' } } });

test('connections older than limits.maxConnectionAge are ended gracefully; new ones are served', async () => {
  const leaf = r.scenario.pki.leaf({ spiffeId: FRONTEND_ID });
  const opened = Date.now();
  const h1 = await openAs(r, leaf, ['http/1.1']);
  const h2 = await h2SessionAs(r, leaf);
  try {
    const goaway = goawayOf(h2);
    assert.equal((await http1Get(h1, '/orders/1')).status, 200);
    await closed(h1, 'the HTTP/1.1 connection past maxConnectionAge', 30_000);
    assert.ok(Date.now() - opened >= 3000, 'not ended before it reached the age');
    assert.equal(await goaway, http2.constants.NGHTTP2_NO_ERROR);

    const fresh = await openAs(r, leaf, ['http/1.1']);
    try {
      assert.equal((await http1Get(fresh, '/orders/2')).status, 200, 'a new connection of the same caller is served');
    } finally {
      fresh.destroy();
    }
    assert.ok(metricValue(await r.sidecar.metrics(), 'meshward_connections_ended_total', { reason: 'max_age' }) >= 2);
  } finally {
    h1.destroy();
    h2.destroy();
  }
});
