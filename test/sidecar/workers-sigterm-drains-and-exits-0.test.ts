// workers: 2 — SIGTERM to the primary: every worker drains (a slow request in flight at the signal still
// completes), the primary exits 0, and no worker process is left behind.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { frontendLeaf, mtlsGet, processExists, startedWorkers } from '../support/workers.js';
import { waitFor } from '../support/poll.js';
import { runningSidecar } from '../support/running-sidecar.js';

let workerPids: number[] = [];
const rig = runningSidecar('http', { workers: 2, stopSignal: 'SIGKILL' });

after(() => {
  for (const pid of workerPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone, as it should be
    }
  }
});

test('SIGTERM: in-flight requests finish, every worker exits, the primary exits 0', async () => {
  const s = rig.sidecar!;
  const client = frontendLeaf(rig.scenario.pki);
  workerPids = [...(await waitFor('two started workers', () => (startedWorkers(s).size === 2 ? startedWorkers(s) : undefined))).values()];

  const seen = rig.app.seen.length;
  const inFlight = Array.from({ length: 4 }, () => mtlsGet(rig.scenario.pki, client, rig.port, '/slow?ms=1500'));
  await waitFor('the slow requests to reach the app', () => (rig.app.seen.length >= seen + 4 ? true : undefined));
  s.child.kill('SIGTERM');

  for (const r of await Promise.all(inFlight)) assert.equal(r.status, 200, r.body);
  assert.equal(await s.exited, 0, `primary exit status; stderr: ${s.stderr()}`);
  for (const pid of workerPids) assert.equal(processExists(pid), false, `worker ${pid} is gone`);
  const drained = s.logs.filter((l) => l.event === 'stopped' && l.worker !== undefined).map((l) => Number(l.worker));
  assert.deepEqual(drained.sort(), [1, 2], 'both workers ran their drain to the end');
  assert.ok(s.logs.some((l) => l.event === 'stopped' && l.role === 'primary'), 'the primary logged its stop');
  assert.equal(s.logs.filter((l) => l.event === 'worker_killed').length, 0, 'no worker needed killing');
});
