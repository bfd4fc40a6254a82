// workers: 2 — SIGTERM to the primary: every worker drains (a slow request in flight at the signal still
// completes), the primary exits 0, and no worker process is left behind.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEchoHttpApp, startSidecarProcess } from '../support/sidecar.js';
import type { EchoHttpApp, Scenario, SidecarProcess } from '../support/sidecar.js';
import { frontendLeaf, makeWorkersScenario, mtlsGet, processExists, startedWorkers } from '../support/workers.js';
import { waitFor } from '../support/poll.js';

let app: EchoHttpApp;
let scenario: Scenario;
let port: number;
let sidecar: SidecarProcess | undefined;
let workerPids: number[] = [];

before(async () => {
  app = await startEchoHttpApp();
  ({ scenario, port } = await makeWorkersScenario(app.url, 2));
  sidecar = await startSidecarProcess(scenario.configPath);
  await sidecar.waitUntilReady(30_000);
});

after(async () => {
  await sidecar?.stop('SIGKILL');
  for (const pid of workerPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone, as it should be
    }
  }
  await app?.close();
  scenario?.cleanup();
});

test('SIGTERM: in-flight requests finish, every worker exits, the primary exits 0', async () => {
  const s = sidecar!;
  const client = frontendLeaf(scenario.pki);
  workerPids = [...(await waitFor('two started workers', () => (startedWorkers(s).size === 2 ? startedWorkers(s) : undefined))).values()];

  const seen = app.seen.length;
  const inFlight = Array.from({ length: 4 }, () => mtlsGet(scenario.pki, client, port, '/slow?ms=1500'));
  await waitFor('the slow requests to reach the app', () => (app.seen.length >= seen + 4 ? true : undefined));
  s.child.kill('SIGTERM');

  for (const r of await Promise.all(inFlight)) assert.equal(r.status, 200, r.body);
  assert.equal(await s.exited, 0, `primary exit status; stderr: ${s.stderr()}`);
  for (const pid of workerPids) assert.equal(processExists(pid), false, `worker ${pid} is gone`);
  const drained = s.logs.filter((l) => l.event === 'stopped' && l.worker !== undefined).map((l) => Number(l.worker));
  assert.deepEqual(drained.sort(), [1, 2], 'both workers ran their drain to the end');
  assert.ok(s.logs.some((l) => l.event === 'stopped' && l.role === 'primary'), 'the primary logged its stop');
  assert.equal(s.logs.filter((l) => l.event === 'worker_killed').length, 0, 'no worker needed killing');
});
