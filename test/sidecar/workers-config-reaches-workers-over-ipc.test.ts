// workers: 2 — the workers get the configuration from the primary over IPC, not through their
// environment: a configuration larger than one environment variable may hold (128 KiB) still starts, and
// its text (which may hold an inline bootstrap token) is not in any worker's /proc/<pid>/environ.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync } from 'node:fs';
import { frontendLeaf, mtlsGet, startedWorkers } from '../support/workers.js';
import { runningSidecar } from '../support/running-sidecar.js';

const MARKER = 'meshward-config-marker-5f1c';

const rig = runningSidecar('http', {
  workers: 2,
  // 140 KiB of YAML comments, with a marker to look for.
  prepare: (scenario) => appendFileSync(scenario.configPath, `# ${MARKER}\n${'# padding to make the file larger than 128 KiB\n'.repeat(3000)}`),
});

test('a 140 KiB configuration starts two workers, and no worker environment holds its text', async () => {
  const workers = startedWorkers(rig.sidecar!);
  assert.equal(workers.size, 2);
  assert.equal((await mtlsGet(rig.scenario.pki, frontendLeaf(rig.scenario.pki), rig.port, '/orders/1')).status, 200);
  for (const pid of workers.values()) {
    const environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
    assert.ok(environ.includes('MESHWARD_WORKER_SLOT='), `worker ${pid}: environment readable`);
    assert.ok(!environ.includes(MARKER), `worker ${pid}: the configuration is not in its environment`);
  }
});
