// workers: 2 — a worker that cannot start makes the whole sidecar fail the way one process would: the
// inbound port already taken is exit 1 with one line naming inbound.listen; a policy file that is not
// valid is exit 2 naming the file. Nothing is left running either way.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { runSidecarToExit, startEchoHttpApp } from '../support/sidecar.js';
import type { EchoHttpApp, Scenario } from '../support/sidecar.js';
import { makeWorkersScenario, processExists } from '../support/workers.js';

/** Pids of the workers the primary forked, from its log on stdout. */
function forkedPids(stdout: string): number[] {
  return stdout
    .split('\n')
    .filter((l) => l.includes('"event":"worker_forked"'))
    .map((l) => Number((JSON.parse(l) as { pid: number }).pid));
}

let app: EchoHttpApp;
let squatter: Server | undefined;
const scenarios: Scenario[] = [];

before(async () => {
  app = await startEchoHttpApp();
});

after(async () => {
  await new Promise<void>((r) => (squatter ? squatter.close(() => r()) : r()));
  await app?.close();
  for (const s of scenarios) s.cleanup();
});

test('the inbound port taken by another process: exit 1, one line naming inbound.listen', async () => {
  const { scenario, port } = await makeWorkersScenario(app.url, 2);
  scenarios.push(scenario);
  squatter = createServer();
  await new Promise<void>((r) => squatter!.listen(port, '127.0.0.1', r));
  const r = await runSidecarToExit(scenario.configPath, 60_000);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^meshward: error: inbound\\.listen 127\\.0\\.0\\.1:${port}: .*EADDRINUSE.*\\n$`));
  assert.ok(r.stdout.includes('"event":"worker_start_failed"'), 'the primary logged which worker failed');
  const pids = forkedPids(r.stdout);
  assert.equal(pids.length, 2);
  for (const pid of pids) assert.equal(processExists(pid), false, `worker ${pid} is gone`);
});

test('an invalid policy file: exit 2, one line naming the file', async () => {
  const { scenario } = await makeWorkersScenario(app.url, 2);
  scenarios.push(scenario);
  writeFileSync(scenario.policyPath, 'grantz: []\n');
  const r = await runSidecarToExit(scenario.configPath, 60_000);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^meshward: error: .*policy\.yaml.*grantz.*\n$/);
  assert.equal(r.stderr.split('\n').length, 2, `one line: ${r.stderr}`);
  for (const pid of forkedPids(r.stdout)) assert.equal(processExists(pid), false, `worker ${pid} is gone`);
});
