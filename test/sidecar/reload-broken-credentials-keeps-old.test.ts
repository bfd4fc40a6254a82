// A broken credential update never replaces working credentials: a half-written certificate or a key
// that does not match the certificate is refused, counted as reloads{kind=credentials,result=failure},
// logged with the reason, /readyz stays 200, and new connections keep getting the old certificate.
// A good update afterwards is picked up (the watcher did not give up).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FRONTEND_ID, clientTlsOptions, makeScenario, metricValue, presentedSerial, serverLeaf, startSidecarProcess, startTcpEchoApp, tcpRoundTrip } from '../support/sidecar.js';
import type { Scenario, SidecarProcess, TcpEchoApp } from '../support/sidecar.js';
import { writeIdentityDir } from '../support/pki-fixtures.js';
import { waitFor } from '../support/poll.js';

let app: TcpEchoApp;
let scenario: Scenario;
let sidecar: SidecarProcess;
let port: number;

before(async () => {
  app = await startTcpEchoApp();
  scenario = makeScenario({ app: `tcp://127.0.0.1:${app.port}` });
  sidecar = await startSidecarProcess(scenario.configPath);
  port = await sidecar.waitForInbound();
  await sidecar.waitUntilReady();
});

after(async () => {
  await sidecar?.stop();
  await app?.close();
  scenario?.cleanup();
});

async function failures(): Promise<number> {
  return metricValue(await sidecar.metrics(), 'meshward_reloads_total', { kind: 'credentials', result: 'failure' });
}

async function assertStillServingOld(options: ReturnType<typeof clientTlsOptions>, serial: string): Promise<void> {
  assert.equal(await presentedSerial(options), serial);
  assert.equal((await tcpRoundTrip(options, 'still here')).result, 'echoed');
  const r = await sidecar.readyz();
  assert.equal(r.status, 200);
  assert.equal(r.body.ready, true);
}

test('a half-written certificate (in-place rewrite) keeps the old credentials', async () => {
  const options = clientTlsOptions(scenario.pki, scenario.pki.leaf({ spiffeId: FRONTEND_ID }), port);
  const before = await failures();
  const next = serverLeaf(scenario.pki);
  writeFileSync(join(scenario.identityDir, 'tls.crt'), next.chainPem.slice(0, Math.floor(next.chainPem.length / 2)));
  await waitFor('the failed reload to be counted', async () => ((await failures()) > before ? true : undefined));
  const line = await sidecar.waitForLog((l) => l.event === 'credentials_reload_failed', 'the reload failure log line');
  assert.match(String(line.reason), /tls\.crt/);
  await assertStillServingOld(options, scenario.server.cert.serialHex);
});

test('a key that does not match the certificate keeps the old credentials', async () => {
  const options = clientTlsOptions(scenario.pki, scenario.pki.leaf({ spiffeId: FRONTEND_ID }), port);
  const before = await failures();
  const next = serverLeaf(scenario.pki);
  const otherKey = serverLeaf(scenario.pki).keyPem;
  writeFileSync(join(scenario.identityDir, 'tls.crt'), next.chainPem);
  writeFileSync(join(scenario.identityDir, 'tls.key'), otherKey);
  await waitFor('the failed reload to be counted', async () => ((await failures()) > before ? true : undefined));
  await waitFor('the mismatch to be logged', () =>
    sidecar.logs.some((l) => l.event === 'credentials_reload_failed' && /does not match/.test(String(l.reason))) ? true : undefined,
  );
  await assertStillServingOld(options, scenario.server.cert.serialHex);
});

test('a good update after the broken ones is picked up', async () => {
  const options = clientTlsOptions(scenario.pki, scenario.pki.leaf({ spiffeId: FRONTEND_ID }), port);
  const next = serverLeaf(scenario.pki);
  writeIdentityDir(scenario.identityDir, next, scenario.pki);
  await waitFor('the new certificate to be served', async () => ((await presentedSerial(options)) === next.cert.serialHex ? true : undefined));
  assert.equal((await sidecar.readyz()).status, 200);
});
