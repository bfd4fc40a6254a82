// Readiness is judged at request time: a sidecar whose own leaf expires (its agent stopped renewing)
// turns /readyz 503 with the reason, without any event, so Kubernetes takes it out of rotation.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeScenario, serverLeaf, startSidecarProcess, startTcpEchoApp } from '../support/sidecar.js';
import type { Scenario, SidecarProcess, TcpEchoApp } from '../support/sidecar.js';
import { writeIdentityDir } from '../support/pki-fixtures.js';
import { waitFor } from '../support/poll.js';

let app: TcpEchoApp;
let scenario: Scenario;
let sidecar: SidecarProcess;

before(async () => {
  app = await startTcpEchoApp();
  scenario = makeScenario({ app: `tcp://127.0.0.1:${app.port}`, writeIdentity: false });
  sidecar = await startSidecarProcess(scenario.configPath);
});

after(async () => {
  await sidecar?.stop();
  await app?.close();
  scenario?.cleanup();
});

test('200 while the leaf is valid, 503 naming the expiry once it has passed', async () => {
  const shortLived = serverLeaf(scenario.pki, { notAfter: new Date(Date.now() + 8_000) });
  writeIdentityDir(scenario.identityDir, shortLived, scenario.pki);
  await sidecar.waitUntilReady();
  await waitFor(
    '/readyz to report the expiry',
    async () => {
      const r = await sidecar.readyz();
      return r.status === 503 ? r : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250 },
  ).then((r) => {
    assert.equal(r.body.ready, false);
    assert.match(r.body.reason ?? '', /expired at/);
  });
});
