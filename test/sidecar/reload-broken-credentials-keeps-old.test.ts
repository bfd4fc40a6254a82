// A broken credential update never replaces working credentials: a half-written certificate or a key
// that does not match the certificate is refused, counted as reloads{kind=credentials,result=failure},
// logged with the reason, /readyz stays 200, and new connections keep getting the old certificate.
// A good update afterwards is picked up (the watcher did not give up).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FRONTEND_ID, clientTlsOptions, metricValue, presentedSerial, serverLeaf, tcpRoundTrip } from '../support/sidecar.js';
import { writeIdentityDir } from '../support/pki-fixtures.js';
import { waitFor } from '../support/poll.js';
import { runningSidecar } from '../support/running-sidecar.js';

const rig = runningSidecar('tcp');

async function failures(): Promise<number> {
  return metricValue(await rig.sidecar.metrics(), 'meshward_reloads_total', { kind: 'credentials', result: 'failure' });
}

async function assertStillServingOld(options: ReturnType<typeof clientTlsOptions>, serial: string): Promise<void> {
  assert.equal(await presentedSerial(options), serial);
  assert.equal((await tcpRoundTrip(options, 'still here')).result, 'echoed');
  const r = await rig.sidecar.readyz();
  assert.equal(r.status, 200);
  assert.equal(r.body.ready, true);
}

test('a half-written certificate (in-place rewrite) keeps the old credentials', async () => {
  const options = clientTlsOptions(rig.scenario.pki, rig.scenario.pki.leaf({ spiffeId: FRONTEND_ID }), rig.port);
  const before = await failures();
  const next = serverLeaf(rig.scenario.pki);
  writeFileSync(join(rig.scenario.identityDir, 'tls.crt'), next.chainPem.slice(0, Math.floor(next.chainPem.length / 2)));
  await waitFor('the failed reload to be counted', async () => ((await failures()) > before ? true : undefined));
  const line = await rig.sidecar.waitForLog((l) => l.event === 'credentials_reload_failed', 'the reload failure log line');
  assert.match(String(line.reason), /tls\.crt/);
  await assertStillServingOld(options, rig.scenario.server.cert.serialHex);
});

test('a key that does not match the certificate keeps the old credentials', async () => {
  const options = clientTlsOptions(rig.scenario.pki, rig.scenario.pki.leaf({ spiffeId: FRONTEND_ID }), rig.port);
  const before = await failures();
  const next = serverLeaf(rig.scenario.pki);
  const otherKey = serverLeaf(rig.scenario.pki).keyPem;
  writeFileSync(join(rig.scenario.identityDir, 'tls.crt'), next.chainPem);
  writeFileSync(join(rig.scenario.identityDir, 'tls.key'), otherKey);
  await waitFor('the failed reload to be counted', async () => ((await failures()) > before ? true : undefined));
  await waitFor('the mismatch to be logged', () =>
    rig.sidecar.logs.some((l) => l.event === 'credentials_reload_failed' && /does not match/.test(String(l.reason))) ? true : undefined,
  );
  await assertStillServingOld(options, rig.scenario.server.cert.serialHex);
});

test('a good update after the broken ones is picked up', async () => {
  const options = clientTlsOptions(rig.scenario.pki, rig.scenario.pki.leaf({ spiffeId: FRONTEND_ID }), rig.port);
  const next = serverLeaf(rig.scenario.pki);
  writeIdentityDir(rig.scenario.identityDir, next, rig.scenario.pki);
  await waitFor('the new certificate to be served', async () => ((await presentedSerial(options)) === next.cert.serialHex ? true : undefined));
  assert.equal((await rig.sidecar.readyz()).status, 200);
});
