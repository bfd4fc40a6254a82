// A tcp:// app behind the sidecar: the caller holding the policy's tcp scope round-trips bytes (and its
// half-close reaches the app and comes back); a caller without the scope is refused before the app
// sees a connection, and the refusal is counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FRONTEND_ID, STRANGER_ID, clientTlsOptions, metricValue, tcpRoundTrip, tlsOpen } from '../support/sidecar.js';
import { runningSidecar } from '../support/running-sidecar.js';

const rig = runningSidecar('tcp');

test('the granted identity round-trips bytes, including a half-close', async () => {
  const frontend = rig.scenario.pki.leaf({ spiffeId: FRONTEND_ID });
  const payload = 'x'.repeat(100_000) + 'END';
  const r = await tcpRoundTrip(clientTlsOptions(rig.scenario.pki, frontend, rig.port), payload);
  assert.equal(r.result, 'echoed');
  assert.equal(r.received.length, payload.length);
});

test('the connection stays usable for several exchanges before the half-close', async () => {
  const frontend = rig.scenario.pki.leaf({ spiffeId: FRONTEND_ID });
  const socket = await tlsOpen(clientTlsOptions(rig.scenario.pki, frontend, rig.port));
  try {
    for (const word of ['one', 'two', 'three']) {
      const echoed = await new Promise<string>((resolve, reject) => {
        socket.once('data', (c: Buffer) => resolve(c.toString()));
        socket.once('error', reject);
        socket.write(word);
      });
      assert.equal(echoed, word);
    }
    const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
    socket.end();
    await ended; // the app saw our end, ended too, and that came back through the sidecar
  } finally {
    socket.destroy();
  }
});

test('an identity without the tcp scope is refused before reaching the app, and counted', async () => {
  const acceptedBefore = rig.app.accepted;
  const stranger = rig.scenario.pki.leaf({ spiffeId: STRANGER_ID });
  const r = await tcpRoundTrip(clientTlsOptions(rig.scenario.pki, stranger, rig.port), 'hello');
  assert.equal(r.result, 'refused');
  assert.equal(r.received, '');
  assert.equal(rig.app.accepted, acceptedBefore);
  const metrics = await rig.sidecar.metrics();
  assert.equal(metricValue(metrics, 'meshward_requests_total', { decision: 'deny', identity: STRANGER_ID }), 1);
  const denial = await rig.sidecar.waitForLog((l) => l.event === 'tcp_connect' && l.identity === STRANGER_ID, 'the audit line');
  assert.equal(denial.decision, 'deny');
  assert.equal(denial.rule, 'tcp');
});
