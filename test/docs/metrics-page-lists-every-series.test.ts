// docs/metrics.md lists every meshward_* series a real sidecar exports, with its labels and their values.
// Two real sidecars are started (one process, and `workers: 2`, whose cluster primary adds its own series),
// traffic that moves every label is sent (allowed, denied, malformed path, a client without a certificate,
// a policy reload), /metrics is scraped, and every family, label name and label value seen must appear in
// the page's section for that series. A series added to the code without a line in the page fails here.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { DEFAULT_POLICY, clientTlsOptions, makeScenario, metricValue, startEchoHttpApp, startSidecarProcess, tlsOpen } from '../support/sidecar.js';
import type { EchoHttpApp, Scenario, SidecarProcess } from '../support/sidecar.js';
import { frontendLeaf, makeWorkersScenario, mtlsGet, startedWorkers } from '../support/workers.js';
import { METRICS_PAGE as PAGE, omissions, parseExposition } from '../support/metrics-page.js';
import { waitFor } from '../support/poll.js';

let app: EchoHttpApp;
let single: Scenario;
let workers: Scenario;
let workersPort: number;
const sidecars: SidecarProcess[] = [];

before(async () => {
  app = await startEchoHttpApp();
  single = makeScenario({ app: app.url });
  ({ scenario: workers, port: workersPort } = await makeWorkersScenario(app.url, 2));
});

after(async () => {
  await Promise.all(sidecars.map((s) => s.stop()));
  await app?.close();
  single?.cleanup();
  workers?.cleanup();
});

test('docs/metrics.md names every meshward_* series, label and label value a sidecar and a cluster primary export', async () => {
  const page = readFileSync(PAGE, 'utf8');

  // One process: every outcome the inbound side counts.
  const one = await startSidecarProcess(single.configPath);
  sidecars.push(one);
  await one.waitUntilReady(30_000);
  const port = await one.waitForInbound();
  const client = frontendLeaf(single.pki);
  assert.equal((await mtlsGet(single.pki, client, port, '/orders/1')).status, 200);
  assert.equal((await mtlsGet(single.pki, client, port, '/orders/1', 'DELETE')).status, 403);
  assert.equal((await mtlsGet(single.pki, client, port, '/orders/a%2Fb')).status, 400);
  // No client certificate: under TLS 1.3 the client's side completes first; the sidecar then closes it.
  const anonymous = await tlsOpen(clientTlsOptions(single.pki, undefined, port)).catch(() => undefined);
  if (anonymous !== undefined) {
    await new Promise((resolve) => {
      anonymous.on('error', () => undefined);
      anonymous.once('close', resolve);
      anonymous.resume();
    });
  }
  writeFileSync(single.policyPath, stringify({ ...DEFAULT_POLICY, mode: 'audit' }));
  const text = await waitFor(
    'the refused handshake and the policy reload in /metrics',
    async () => {
      const t = await one.metrics();
      return metricValue(t, 'meshward_handshake_failures_total', { reason: 'no_certificate' }) >= 1 &&
        metricValue(t, 'meshward_reloads_total', { kind: 'policy', result: 'success' }) >= 1
        ? t
        : undefined;
    }, { timeoutMs: 30_000 },
  );

  // Two workers: the cluster primary's own series on top of the summed workers'.
  const two = await startSidecarProcess(workers.configPath);
  sidecars.push(two);
  await two.waitUntilReady(30_000);
  assert.equal((await mtlsGet(workers.pki, frontendLeaf(workers.pki), workersPort, '/orders/2')).status, 200);
  // A worker that dies is re-forked and counted by worker number.
  const worker2 = await waitFor('worker 2 started', () => startedWorkers(two).get(2));
  process.kill(worker2, 'SIGKILL');
  const clusterText = await waitFor(
    'the restart of worker 2 in /metrics',
    async () => {
      const t = await two.metrics();
      return metricValue(t, 'meshward_worker_restarts_total', { worker: '2' }) >= 1 ? t : undefined;
    }, { timeoutMs: 30_000 },
  );

  const scraped = parseExposition(text);
  for (const [family, labels] of parseExposition(clusterText)) {
    const known = scraped.get(family) ?? new Map<string, Set<string>>();
    for (const [label, values] of labels) known.set(label, new Set([...(known.get(label) ?? []), ...values]));
    scraped.set(family, known);
  }
  // The scrape itself must have worked, or an empty page would pass.
  for (const family of ['meshward_requests_total', 'meshward_handshake_failures_total', 'meshward_workers']) {
    assert.ok(scraped.has(family), `${family} is exported (scraped: ${[...scraped.keys()].join(', ')})`);
  }
  assert.deepEqual(
    [...(scraped.get('meshward_requests_total')!.get('decision') ?? [])].sort(),
    ['allow', 'bad_request', 'deny'],
    'the traffic above moved allow, deny and bad_request',
  );

  const missing = omissions(page, scraped);
  if (missing.length > 0) assert.fail(`docs/metrics.md does not cover what /metrics exports:\n  ${missing.join('\n  ')}`);
});
