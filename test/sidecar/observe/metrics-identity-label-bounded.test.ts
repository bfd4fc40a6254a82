// 300 distinct callers against a sidecar (issue 14, item 4): /metrics holds at most N+1 values of the
// `identity` label (N = metrics.identities, default 100; the rest under `other`), and no request is lost
// from the counts. A bad metrics.identities is refused at start with a one-line error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { echoAppScenarios } from '../../support/echo-app-scenarios.js';
import { runSidecarToExit, startSidecarProcess } from '../../support/sidecar.js';
import { mtlsGet } from '../../support/workers.js';

const apps = echoAppScenarios();

/** identity label value → summed meshward_requests_total. */
function requestsByIdentity(metrics: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of metrics.matchAll(/^meshward_requests_total\{[^}]*identity="([^"]*)"[^}]*\} (\S+)$/gm)) {
    out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]));
  }
  return out;
}

for (const [configured, limit] of [[undefined, 100], [10, 10]] as const) {
  test(`300 callers, metrics.identities ${configured ?? 'unset (default)'}: at most ${limit + 1} identity values`, async () => {
    const scenario = apps.scenario({ config: configured === undefined ? {} : { metrics: { identities: configured } } });
    const sidecar = await startSidecarProcess(scenario.configPath);
    try {
      const port = await sidecar.waitForInbound();
      await sidecar.waitUntilReady();
      const key = scenario.pki.leaf().keys;
      const callers = Array.from({ length: 300 }, (_, i) => scenario.pki.leaf({ spiffeId: `spiffe://example.org/ns/load/sa/caller-${i}`, key }));
      // 4 at a time: 300 full handshakes on a loaded machine.
      for (let i = 0; i < callers.length; i += 4) {
        const statuses = await Promise.all(callers.slice(i, i + 4).map((c) => mtlsGet(scenario.pki, c, port, '/orders/1')));
        for (const r of statuses) assert.equal(r.status, 403, 'callers without a grant are denied, and counted');
      }
      const byIdentity = requestsByIdentity(await sidecar.metrics());
      assert.ok(byIdentity.size <= limit + 1, `${byIdentity.size} identity values: ${[...byIdentity.keys()].slice(0, 5).join(', ')}…`);
      assert.equal(byIdentity.size, limit + 1, 'the first N callers, then other');
      assert.equal(byIdentity.get('other'), 300 - limit);
      assert.equal([...byIdentity.values()].reduce((a, b) => a + b, 0), 300, 'every request counted once');
    } finally {
      await sidecar.stop('SIGKILL');
    }
  });
}

test('metrics.identities must be a whole number from 0 to 10000', async () => {
  for (const bad of [-1, 1.5, 10_001, 'many']) {
    const scenario = apps.scenario({ config: { metrics: { identities: bad } } });
    const r = await runSidecarToExit(scenario.configPath);
    assert.equal(r.code, 2, `${bad}: exit 2`);
    assert.match(r.stderr, /sidecar\.yaml: metrics\.identities: must be a whole number from 0 to 10000/, String(bad));
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
});
