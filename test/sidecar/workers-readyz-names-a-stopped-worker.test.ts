// workers: 2 — /readyz asks every worker over IPC with a bounded wait: a worker that cannot answer (here
// stopped with SIGSTOP) makes /readyz 503 with a reason naming that worker, /healthz stays 200 and
// /metrics still answers from the others; after SIGCONT /readyz is 200 again.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { httpGet, metricValue } from '../support/sidecar.js';
import { startedWorkers } from '../support/workers.js';
import { waitFor } from '../support/poll.js';
import { runningSidecar } from '../support/running-sidecar.js';

let stopped: number | undefined;
// Registered before the rig's hooks, so a stopped worker is continued before the sidecar is stopped.
after(() => {
  if (stopped !== undefined) {
    try {
      process.kill(stopped, 'SIGCONT');
    } catch {
      // gone
    }
  }
});
const rig = runningSidecar('http', { workers: 2 });

test('a worker that does not answer makes /readyz 503 and /metrics 500 naming it; both recover once it answers', async () => {
  const s = rig.sidecar!;
  const workers = await waitFor('two started workers', () => (startedWorkers(s).size === 2 ? startedWorkers(s) : undefined));
  stopped = workers.get(1)!;
  process.kill(stopped, 'SIGSTOP');

  const r = await s.readyz();
  assert.equal(r.status, 503);
  assert.match(r.body.reason ?? '', new RegExp(`^worker 1 \\(pid ${stopped}\\) did not answer within \\d+ ms$`));
  assert.equal((await httpGet(`${s.adminUrl}/healthz`)).status, 200, '/healthz: the primary lives');
  // A sum without the silent worker would make the summed counters drop, which Prometheus reads as a
  // counter reset: the scrape fails instead, and says whose metrics are missing.
  const scrape = await httpGet(`${s.adminUrl}/metrics`, 10_000);
  assert.equal(scrape.status, 500);
  assert.match(scrape.body, new RegExp(`worker 1 \\(pid ${stopped}\\) did not answer`));
  await s.waitForLog((l) => l.event === 'worker_metrics_missing' && l.worker === 1, 'the primary to say whose metrics are missing');

  process.kill(stopped, 'SIGCONT');
  stopped = undefined;
  await s.waitUntilReady(30_000);
  const metrics = await s.metrics();
  assert.ok(metricValue(metrics, 'meshward_certificate_not_after_seconds') > Date.now() / 1000, 'both workers report again');
  assert.equal(metricValue(metrics, 'meshward_workers'), 2);
});
