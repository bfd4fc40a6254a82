// workers: 2 — a hot reload reaches every worker: after a Kubernetes-style credentials swap (new
// `..data` folder, one symlink rename) every worker logs the new serial and 20 new connections all get
// the new certificate; after a policy edit that allows a denied route, 20 new connections are all
// allowed. Round-robin scheduling is forced (NODE_CLUSTER_SCHED_POLICY=rr) so the new connections
// alternate between the two workers instead of possibly all landing on one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { DEFAULT_POLICY, serverLeaf, writeKubernetesIdentity } from '../support/sidecar.js';
import type { SidecarProcess } from '../support/sidecar.js';
import { frontendLeaf, mtlsGet } from '../support/workers.js';
import { waitFor } from '../support/poll.js';
import { runningSidecar } from '../support/running-sidecar.js';

const CONNECTIONS = 20;

const rig = runningSidecar('http', { workers: 2, layout: 'kubernetes', env: { NODE_CLUSTER_SCHED_POLICY: 'rr' } });

/** Worker numbers that logged `event` matching `pred`. */
function workersThatLogged(s: SidecarProcess, event: string, pred: (l: Record<string, unknown>) => boolean = () => true): number[] {
  return [...new Set(s.logs.filter((l) => l.event === event && pred(l)).map((l) => Number(l.worker)))].sort();
}

test('a ..data credentials swap reaches both workers: every new connection gets the new certificate', async () => {
  const s = rig.sidecar!;
  const client = frontendLeaf(rig.scenario.pki);
  assert.equal((await mtlsGet(rig.scenario.pki, client, rig.port, '/orders/1')).serverSerial, rig.scenario.server.cert.serialHex);

  const next = serverLeaf(rig.scenario.pki);
  writeKubernetesIdentity(rig.scenario.identityDir, next, rig.scenario.pki);
  await waitFor(
    'both workers to reload the new serial',
    () => (workersThatLogged(s, 'credentials_reloaded', (l) => l.serial === next.cert.serialHex).length === 2 ? true : undefined), { timeoutMs: 30_000 },
  );
  const serials = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const r = await mtlsGet(rig.scenario.pki, client, rig.port, `/orders/${i}`);
    assert.equal(r.status, 200, r.body);
    serials.push(r.serverSerial);
  }
  assert.deepEqual(new Set(serials), new Set([next.cert.serialHex]), 'all new connections present the new certificate');
});

test('a policy edit reaches both workers: a denied route becomes allowed on every new connection', async () => {
  const s = rig.sidecar!;
  const client = frontendLeaf(rig.scenario.pki);
  assert.equal((await mtlsGet(rig.scenario.pki, client, rig.port, '/reports/daily')).status, 403, 'no route: denied');

  const widened = { ...DEFAULT_POLICY, routes: [...DEFAULT_POLICY.routes, { match: { methods: ['GET'], path: '/reports/*' }, scope: 'orders:read' }] };
  const tmp = `${rig.scenario.policyPath}.tmp`;
  writeFileSync(tmp, stringify(widened));
  renameSync(tmp, rig.scenario.policyPath);
  await waitFor('both workers to reload the policy', () => (workersThatLogged(s, 'policy_reloaded').length === 2 ? true : undefined), { timeoutMs: 30_000 });
  for (let i = 0; i < CONNECTIONS; i++) {
    const r = await mtlsGet(rig.scenario.pki, client, rig.port, '/reports/daily');
    assert.equal(r.status, 200, `connection ${i}: ${r.body}`);
  }
});
