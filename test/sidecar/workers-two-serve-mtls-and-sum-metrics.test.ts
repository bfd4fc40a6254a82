// workers: 2 — two worker processes (children of the primary, which serves no traffic) share the inbound
// port; mTLS requests over many connections succeed; /readyz is 200; /metrics adds both workers'
// meshward_requests_total up to exactly the requests made. Round-robin scheduling is forced here
// (NODE_CLUSTER_SCHED_POLICY=rr, which the primary respects) so both workers certainly serve some.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { metricValue } from '../support/sidecar.js';
import { frontendLeaf, mtlsGet, parentPid, startedWorkers } from '../support/workers.js';
import { waitFor } from '../support/poll.js';
import { runningSidecar } from '../support/running-sidecar.js';

const rig = runningSidecar('http', { workers: 2, env: { NODE_CLUSTER_SCHED_POLICY: 'rr' } });

test('two workers, children of the primary, serve mTLS; /metrics sums their requests', async () => {
  const s = rig.sidecar!;
  const primaryPid = s.child.pid!;
  const workers = await waitFor('two started workers', () => (startedWorkers(s).size === 2 ? startedWorkers(s) : undefined));
  const pids = [...workers.values()];
  assert.equal(new Set(pids).size, 2, 'two distinct worker pids');
  for (const pid of pids) {
    assert.notEqual(pid, primaryPid);
    assert.equal(parentPid(pid), primaryPid, `worker ${pid} is a child of the primary`);
  }
  assert.ok(s.logs.some((l) => l.event === 'workers_starting' && l.scheduling === 'rr'), 'the user-set scheduling policy is kept');
  assert.equal((await s.readyz()).status, 200);

  const client = frontendLeaf(rig.scenario.pki);
  const requests = 30;
  for (let i = 0; i < requests; i++) {
    const r = await mtlsGet(rig.scenario.pki, client, rig.port, `/orders/${i}`);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.serverSerial, rig.scenario.server.cert.serialHex);
    assert.equal((JSON.parse(r.body) as { url: string }).url, `/orders/${i}`);
  }
  // Which worker served each request, from the workers' own log lines (they carry `worker`).
  const served = await waitFor('a log line per request', () => {
    const lines = s.logs.filter((l) => l.event === 'request');
    return lines.length >= requests ? lines : undefined;
  });
  const perWorker = new Map<number, number>();
  for (const l of served) perWorker.set(Number(l.worker), (perWorker.get(Number(l.worker)) ?? 0) + 1);
  assert.deepEqual([...perWorker.keys()].sort(), [1, 2], `both workers served requests: ${JSON.stringify([...perWorker])}`);

  const metrics = await s.metrics();
  assert.equal(metricValue(metrics, 'meshward_requests_total', { decision: 'allow' }), requests, 'summed over both workers');
  assert.equal(metricValue(metrics, 'meshward_request_duration_seconds_count', { decision: 'allow' }), requests);
  assert.equal(metricValue(metrics, 'meshward_workers'), 2);
  assert.equal(metricValue(metrics, 'meshward_reloads_total', { kind: 'credentials', result: 'success' }), 2, 'each worker loaded the credentials once');
  assert.ok(metricValue(metrics, 'meshward_certificate_not_after_seconds') > Date.now() / 1000);
});
