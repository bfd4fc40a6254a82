// workers: 2 — a worker killed with SIGKILL is replaced: the primary logs the exit with its signal, forks
// a new worker in the same place (new pid, again a child of the primary), counts the restart, requests
// keep succeeding throughout, and /readyz returns to 200. The summed request counter does not go down
// when the killed worker's own count goes with it (Prometheus would read a drop as a counter reset).
// Round-robin scheduling is forced so that worker 2 certainly served some of the first requests.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { metricValue } from '../support/sidecar.js';
import { frontendLeaf, mtlsGet, parentPid, startedWorkers } from '../support/workers.js';
import { waitFor } from '../support/poll.js';
import { runningSidecar } from '../support/running-sidecar.js';

const pidsSeen = new Set<number>();
const rig = runningSidecar('http', { workers: 2, env: { NODE_CLUSTER_SCHED_POLICY: 'rr' } });

after(() => {
  // Belt and braces: no worker outlives the test even if the primary misbehaved.
  for (const pid of pidsSeen) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Sum of meshward_requests_total over all its series. */
function requestsTotal(metrics: string): number {
  let sum = 0;
  for (const m of metrics.matchAll(/^meshward_requests_total\{[^}]*\} (\d+)$/gm)) sum += Number(m[1]);
  return sum;
}

test('SIGKILL of worker 2: logged, re-forked, requests keep succeeding, /readyz back to 200', async () => {
  const s = rig.sidecar!;
  const client = frontendLeaf(rig.scenario.pki);
  const before = await waitFor('two started workers', () => (startedWorkers(s).size === 2 ? startedWorkers(s) : undefined));
  for (const pid of before.values()) pidsSeen.add(pid);
  const victim = before.get(2)!;
  for (let i = 0; i < 10; i++) assert.equal((await mtlsGet(rig.scenario.pki, client, rig.port, `/orders/before/${i}`)).status, 200);
  const servedBefore = requestsTotal(await s.metrics());
  assert.equal(servedBefore, 10);

  process.kill(victim, 'SIGKILL');
  const exit = await s.waitForLog((l) => l.event === 'worker_exited' && l.pid === victim, 'the primary to log the exit');
  assert.equal(exit.worker, 2);
  assert.equal(exit.signal, 'SIGKILL');
  assert.equal(exit.level, 40, 'logged as a warning');

  // The surviving worker serves alone until the replacement is up.
  for (let i = 0; i < 10; i++) assert.equal((await mtlsGet(rig.scenario.pki, client, rig.port, `/orders/${i}`)).status, 200);

  const replacement = await waitFor('a new worker 2', () => {
    const pid = startedWorkers(s).get(2);
    return pid !== undefined && pid !== victim ? pid : undefined;
  }, { timeoutMs: 30_000 });
  pidsSeen.add(replacement);
  assert.equal(parentPid(replacement), s.child.pid, 'the replacement is a child of the primary');
  assert.equal(startedWorkers(s).get(1), before.get(1), 'worker 1 was left alone');
  await s.waitUntilReady(30_000);
  for (let i = 0; i < 10; i++) assert.equal((await mtlsGet(rig.scenario.pki, client, rig.port, `/orders/after/${i}`)).status, 200);

  const metrics = await s.metrics();
  assert.equal(requestsTotal(metrics), servedBefore + 20, 'the killed worker\'s requests are still in the sum');
  assert.equal(metricValue(metrics, 'meshward_worker_restarts_total', { worker: '2' }), 1);
  assert.equal(metricValue(metrics, 'meshward_workers'), 2);
});
