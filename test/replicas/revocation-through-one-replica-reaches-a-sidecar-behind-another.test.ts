// The whole revocation path across replicas, with real processes on one PostgreSQL: two `ca serve`
// replicas; the agent of a sidecar talks to the second only; the operator revokes a caller's certificate
// through the store (`meshward cert revoke`, which writes the CRL in the revocation's transaction and
// notifies every replica). The second replica pushes the new CRL on its WatchTrustBundle stream, the agent
// swaps crl.pem in, and the running sidecar refuses that caller's new handshakes (counted as revoked)
// while another caller of the same identity still gets through.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodePem } from '../../src/pki/pem.js';
import { parseCrl } from '../../src/pki/crl.js';
import { metricValue, tcpRoundTrip } from '../support/sidecar.js';
import { usePostgres } from '../support/postgres.js';
import { startRevocationMesh, type RevocationMesh } from '../support/revocation-mesh.js';
import { waitFor } from '../support/poll.js';

describe('a revocation reaches a sidecar whose agent talks to another replica', () => {
  const pg = usePostgres();
  let mesh: RevocationMesh;
  before(async () => {
    const dsn = await pg.cluster.createDatabase();
    mesh = await startRevocationMesh({ store: dsn, replicas: 2, agentCa: (addresses) => addresses[1]! });
  });
  after(async () => {
    await mesh?.close();
  });

  it('refuses the revoked caller and still admits the other one', async () => {
    const revoked = await mesh.caller();
    const other = await mesh.caller();
    assert.equal((await tcpRoundTrip(revoked.options, 'before')).result, 'echoed', 'the caller gets through before the revocation');
    const before = metricValue(await mesh.sidecar.metrics(), 'meshward_handshake_failures_total', { reason: 'revoked' });

    await mesh.revoke(revoked.serialHex);

    await waitFor('crl.pem in identity/ to list the revoked serial', () => {
      const blocks = decodePem(readFileSync(join(mesh.identityDir, 'crl.pem')));
      return blocks.some((b) => parseCrl(b.der).revoked.some((r) => r.serialHex === revoked.serialHex)) ? true : undefined;
    }, { timeoutMs: 60_000, intervalMs: 200 });
    // Each attempt is a new handshake, and only one counted as revoked ends the wait: on a loaded machine a
    // connection can fail for another reason (a timeout) before the sidecar has the new CRL.
    await waitFor('the sidecar to refuse the revoked caller, counted as revoked', async () => {
      if ((await tcpRoundTrip(revoked.options, 'after')).result !== 'refused') return undefined;
      return metricValue(await mesh.sidecar.metrics(), 'meshward_handshake_failures_total', { reason: 'revoked' }) > before ? true : undefined;
    }, { timeoutMs: 60_000, intervalMs: 200 });
    assert.equal((await tcpRoundTrip(other.options, 'still')).result, 'echoed', 'a caller that was not revoked still gets through');
    assert.match(mesh.agentOutput(), /new CRL; crl.pem rewritten/);
    assert.ok(mesh.replicas[0]!.child.exitCode === null && mesh.replicas[1]!.child.exitCode === null, 'both replicas still run');
  });
});
