// workers: 2 — SIGTERM sent to the primary while its workers are still starting: every worker drains
// and exits by itself (none is killed after the drain timeout) and the primary exits 0. A drain message
// sent before a worker listens for messages would be lost; the primary signals those workers instead.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEchoHttpApp, startSidecarProcess } from '../support/sidecar.js';
import type { EchoHttpApp, Scenario } from '../support/sidecar.js';
import { makeWorkersScenario, processExists } from '../support/workers.js';

let app: EchoHttpApp;
let scenario: Scenario;

before(async () => {
  app = await startEchoHttpApp();
  ({ scenario } = await makeWorkersScenario(app.url, 2));
});

after(async () => {
  await app?.close();
  scenario?.cleanup();
});

test('SIGTERM right after the workers are forked: no worker is killed, the primary exits 0', async () => {
  const s = await startSidecarProcess(scenario.configPath, { timeoutMs: 60_000 }).catch((err: Error) => {
    throw new Error(`the sidecar did not start: ${err.message}`);
  });
  // startSidecarProcess resolves once the process runs; stop it as soon as both workers are forked.
  await s.waitForLog((l) => l.event === 'worker_forked' && l.worker === 2, 'worker 2 to be forked');
  s.child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => {
    if (s.child.exitCode !== null) resolve(s.child.exitCode);
    else s.child.once('exit', (c) => resolve(c));
  });
  assert.equal(code, 0);
  assert.equal(s.logs.filter((l) => l.event === 'worker_killed').length, 0, 'no worker had to be killed');
  for (const l of s.logs.filter((x) => x.event === 'worker_forked')) {
    assert.equal(processExists(Number(l.pid)), false, `worker ${l.pid} is gone`);
  }
});
