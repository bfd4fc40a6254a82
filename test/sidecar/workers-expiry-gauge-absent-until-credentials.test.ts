// workers: 2 — while the workers wait for their first credentials, /metrics has no expiry value at all
// (prom-client reads an unset gauge as 0, and a summed-by-minimum 0 would fire every "certificate
// expires" alert); once the credentials appear, the expiry is the leaf's notAfter.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { metricValue, startEchoHttpApp, startSidecarProcess } from '../support/sidecar.js';
import type { EchoHttpApp, Scenario, SidecarProcess } from '../support/sidecar.js';
import { writeIdentityDir } from '../support/pki-fixtures.js';
import { makeWorkersScenario, startedWorkers } from '../support/workers.js';
import { waitFor } from '../support/poll.js';

let app: EchoHttpApp;
let scenario: Scenario;
let sidecar: SidecarProcess | undefined;

before(async () => {
  app = await startEchoHttpApp();
  ({ scenario } = await makeWorkersScenario(app.url, 2));
  for (const f of readdirSync(scenario.identityDir)) rmSync(join(scenario.identityDir, f), { recursive: true, force: true });
  sidecar = await startSidecarProcess(scenario.configPath);
});

after(async () => {
  await sidecar?.stop();
  await app?.close();
  scenario?.cleanup();
});

test('no expiry value while waiting for credentials; the leaf notAfter once they are written', async () => {
  const s = sidecar!;
  await waitFor('two started workers', () => (startedWorkers(s).size === 2 ? true : undefined), { timeoutMs: 30_000 });
  const waiting = await s.metrics();
  assert.doesNotMatch(waiting, /^meshward_certificate_not_after_seconds /m, 'no value while no worker has credentials');
  assert.match(waiting, /^# TYPE meshward_certificate_not_after_seconds gauge$/m);

  writeIdentityDir(scenario.identityDir, scenario.server, scenario.pki);
  await s.waitUntilReady(30_000);
  const notAfter = Math.floor(scenario.server.cert.notAfter.getTime() / 1000);
  const value = await waitFor('the expiry of the loaded leaf', async () => {
    const v = metricValue(await s.metrics(), 'meshward_certificate_not_after_seconds');
    return v === notAfter ? v : undefined;
  }, { timeoutMs: 30_000 });
  assert.equal(value, notAfter);
});
