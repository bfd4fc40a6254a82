// Under a bounded load loop (20 concurrent clients: half on keep-alive connections, half opening a new
// connection, so a full handshake, for every request) across 20 certificate rotations written the
// Kubernetes way, not one request fails and the last certificate is the one new connections get.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:https';
import { FRONTEND_ID, clientTlsOptions, metricValue, presentedSerial, serverLeaf, writeKubernetesIdentity } from '../support/sidecar.js';
import type { TestLeaf } from '../support/pki-fixtures.js';
import { sleep, waitFor } from '../support/poll.js';
import { runningSidecar } from '../support/running-sidecar.js';

const CLIENTS = 20;
const ROTATIONS = 20;

const rig = runningSidecar('http', { layout: 'kubernetes', config: { log: { level: 'info', allowed: 'silent' } } });

function get(agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: rig.port, path: '/orders/1', agent, servername: 'localhost', timeout: 15_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

test(`${CLIENTS} concurrent clients across ${ROTATIONS} certificate rotations: zero failed requests`, async () => {
  const client = rig.scenario.pki.leaf({ spiffeId: FRONTEND_ID });
  const options = clientTlsOptions(rig.scenario.pki, client, rig.port);
  let ok = 0;
  const failures: string[] = [];
  let running = true;
  const worker = async (i: number) => {
    // Even workers keep one connection alive; odd ones never reuse a connection (a handshake each time).
    const agent = new Agent({ ...options, keepAlive: i % 2 === 0, maxSockets: 1 });
    try {
      while (running) {
        try {
          const status = await get(agent);
          if (status === 200) ok++;
          else failures.push(`status ${status}`);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    } finally {
      agent.destroy();
    }
  };
  const workers = Array.from({ length: CLIENTS }, (_, i) => worker(i));

  let last: TestLeaf | undefined;
  try {
    for (let r = 0; r < ROTATIONS; r++) {
      await sleep(300);
      last = serverLeaf(rig.scenario.pki);
      writeKubernetesIdentity(rig.scenario.identityDir, last, rig.scenario.pki);
    }
    const expected = last!.cert.serialHex;
    await waitFor('new connections to present the last certificate', async () =>
      (await presentedSerial(clientTlsOptions(rig.scenario.pki, client, rig.port))) === expected ? true : undefined,
    );
    await sleep(300);
  } finally {
    running = false;
    await Promise.all(workers);
  }
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} failed requests`);
  assert.ok(ok > ROTATIONS, `requests were served throughout (${ok})`);
  const metrics = await rig.sidecar.metrics();
  // Swaps closer together than the watcher's debounce may be taken as one; most are seen one by one.
  const reloads = metricValue(metrics, 'meshward_reloads_total', { kind: 'credentials', result: 'success' });
  assert.ok(reloads >= ROTATIONS / 2, `credential reloads counted: ${reloads}`);
  assert.equal(metricValue(metrics, 'meshward_reloads_total', { kind: 'credentials', result: 'failure' }), 0);
});
