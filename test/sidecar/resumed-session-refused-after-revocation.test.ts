// A resumed TLS session skips chain and CRL checks. So when crl.pem changes (the caller's certificate
// is revoked), the sidecar re-keys its session tickets: the caller's saved session no longer resumes,
// the full handshake runs, and the revoked certificate is refused. Checked for TLS 1.3 and TLS 1.2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { FRONTEND_ID, clientTlsOptions, exchange, metricValue, tcpRoundTrip, tlsOpen } from '../support/sidecar.js';
import type { TestLeaf } from '../support/pki-fixtures.js';
import { waitFor } from '../support/poll.js';
import { runningSidecar } from '../support/running-sidecar.js';

const rig = runningSidecar('tcp', {
  prepare: (scenario) => writeFileSync(join(scenario.identityDir, 'crl.pem'), scenario.pki.crlFor(scenario.pki.root, []) + scenario.pki.crlFor(scenario.pki.intermediate, [])),
});

/**
 * Connects, exchanges a message and returns the session to resume. TLS 1.3 tickets arrive after the
 * handshake but before the echo (the server sends them first), so after one round trip both versions
 * have a resumable session.
 */
async function sessionFor(options: ConnectionOptions): Promise<Buffer> {
  const socket = await tlsOpen(options);
  try {
    assert.equal(await exchange(socket, 'hello'), 'hello');
    const session = socket.getSession();
    assert.ok(session, 'the server offered a resumable session');
    return session;
  } finally {
    socket.destroy();
  }
}

async function resumes(options: ConnectionOptions, session: Buffer): Promise<boolean> {
  const socket = await tlsOpen({ ...options, session });
  try {
    return socket.isSessionReused();
  } finally {
    socket.destroy();
  }
}

let crlNumber = 2n;

async function revoke(leaf: TestLeaf): Promise<void> {
  const before = metricValue(await rig.sidecar.metrics(), 'meshward_reloads_total', { kind: 'credentials', result: 'success' });
  writeFileSync(
    join(rig.scenario.identityDir, 'crl.pem'),
    rig.scenario.pki.crlFor(rig.scenario.pki.root, [], { crlNumber }) + rig.scenario.pki.crlFor(rig.scenario.pki.intermediate, [leaf], { crlNumber }),
  );
  crlNumber++;
  await waitFor('the new CRL to be loaded', async () =>
    metricValue(await rig.sidecar.metrics(), 'meshward_reloads_total', { kind: 'credentials', result: 'success' }) > before ? true : undefined,
  );
}

for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
  test(`${version}: a session that resumed before the revocation does not resume after it`, async () => {
    const leaf = rig.scenario.pki.leaf({ spiffeId: FRONTEND_ID });
    const options = clientTlsOptions(rig.scenario.pki, leaf, rig.port, { minVersion: version, maxVersion: version });
    const session = await sessionFor(options);
    assert.equal(await resumes(options, session), true, 'resumption works before the revocation (otherwise this test proves nothing)');

    const revokedBefore = metricValue(await rig.sidecar.metrics(), 'meshward_handshake_failures_total', { reason: 'revoked' });
    await revoke(leaf);

    const r = await tcpRoundTrip({ ...options, session }, 'after revocation');
    assert.equal(r.result, 'refused');
    await waitFor('the refusal to be counted as revoked', async () =>
      metricValue(await rig.sidecar.metrics(), 'meshward_handshake_failures_total', { reason: 'revoked' }) > revokedBefore ? true : undefined,
    );
    // Someone else, not revoked, still gets in (the CRL swap did not break the listener).
    const other = rig.scenario.pki.leaf({ spiffeId: FRONTEND_ID });
    assert.equal((await tcpRoundTrip(clientTlsOptions(rig.scenario.pki, other, rig.port, { maxVersion: version }), 'ok')).result, 'echoed');
  });
}
