// The --workers override: `--workers 1` over a config saying `workers: 2` runs today's single process
// (no child process at all, yet it serves mTLS and drains on SIGTERM); `--workers auto` forks one
// worker per core (os.availableParallelism(); on a one-core machine that is again a single process).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { startEchoHttpApp, startSidecarProcess } from '../support/sidecar.js';
import type { EchoHttpApp, Scenario, SidecarProcess } from '../support/sidecar.js';
import { frontendLeaf, makeWorkersScenario, mtlsGet } from '../support/workers.js';

let app: EchoHttpApp;
const scenarios: Scenario[] = [];
const sidecars: SidecarProcess[] = [];

before(async () => {
  app = await startEchoHttpApp();
});

after(async () => {
  for (const s of sidecars) await s.stop('SIGKILL');
  await app?.close();
  for (const s of scenarios) s.cleanup();
});

/** `meshward sidecar --config F --workers W`, ready (its admin server answers /readyz 200). */
async function run(configPath: string, workers: string): Promise<SidecarProcess> {
  const sidecar = await startSidecarProcess(configPath, { args: ['--workers', workers], timeoutMs: 30_000 });
  sidecars.push(sidecar);
  await sidecar.waitUntilReady(30_000);
  return sidecar;
}

/** Direct children of `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}

test('--workers 1 overrides workers: 2 and runs one process with no children', async () => {
  const { scenario, port } = await makeWorkersScenario(app.url, 2);
  scenarios.push(scenario);
  const { child, logs, exited } = await run(scenario.configPath, '1');
  assert.equal((await mtlsGet(scenario.pki, frontendLeaf(scenario.pki), port, '/orders/1')).status, 200);
  assert.deepEqual(childrenOf(child.pid!), [], 'no worker processes');
  assert.equal(logs.filter((l) => l.event === 'worker_forked' || l.worker !== undefined).length, 0, 'no worker log lines');
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});

test('--workers auto forks one worker per core', async () => {
  const cores = availableParallelism();
  const { scenario, port } = await makeWorkersScenario(app.url, 1);
  scenarios.push(scenario);
  const { child, logs, exited } = await run(scenario.configPath, 'auto');
  assert.equal((await mtlsGet(scenario.pki, frontendLeaf(scenario.pki), port, '/orders/1')).status, 200);
  if (cores === 1) {
    assert.deepEqual(childrenOf(child.pid!), []);
  } else {
    assert.equal(logs.find((l) => l.event === 'workers_starting')?.workers, cores);
    const started = logs.filter((l) => l.event === 'worker_started').map((l) => Number(l.pid));
    assert.deepEqual(childrenOf(child.pid!).sort(), started.sort(), 'the children are exactly the started workers');
  }
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});
