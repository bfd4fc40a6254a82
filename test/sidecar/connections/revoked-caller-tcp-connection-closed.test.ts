// A caller revoked while its tcp:// connection is open: once the sidecar has loaded the new crl.pem the
// connection is closed (TLS close_notify and FIN toward the caller, FIN toward the app), while the
// connection of a caller the CRL does not list keeps echoing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FRONTEND_ID, exchange, metricValue } from '../../support/sidecar.js';
import { closed, openAs, revokeAndWaitForReload } from '../../support/connection-ends.js';
import { runningSidecar } from '../../support/running-sidecar.js';

const r = runningSidecar('tcp', { crl: true });

test('revoking a caller closes its open tcp:// connection and spares others', async () => {
  const revoked = r.scenario.pki.leaf({ spiffeId: FRONTEND_ID });
  const other = r.scenario.pki.leaf({ spiffeId: FRONTEND_ID });
  const conn = await openAs(r, revoked);
  const bystander = await openAs(r, other);
  try {
    assert.equal(await exchange(conn, 'before'), 'before');
    assert.equal(await exchange(bystander, 'before'), 'before');
    let ended = false;
    conn.once('end', () => (ended = true));

    await revokeAndWaitForReload(r.scenario, r.sidecar, [revoked]);
    await closed(conn, 'the revoked caller’s tcp connection');
    assert.ok(ended, 'the sidecar ended the connection with a FIN (graceful), not a reset');

    assert.equal(await exchange(bystander, 'after'), 'after', 'a caller the CRL does not list keeps its connection');
    assert.equal(metricValue(await r.sidecar.metrics(), 'meshward_connections_ended_total', { reason: 'revoked' }), 1);
  } finally {
    conn.destroy();
    bystander.destroy();
  }
});
