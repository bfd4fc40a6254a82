// Allowed requests are logged through a buffer (issue 14: logging at near-zero cost): the lines of the
// requests answered just before SIGTERM or SIGINT still reach stdout, each once and in order, before
// the sidecar's last line, and each carries the connection's identity and address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'node:https';
import { echoAppScenarios, statusOf } from '../../support/echo-app-scenarios.js';
import { FRONTEND_ID, clientTlsOptions, startSidecarProcess } from '../../support/sidecar.js';

const apps = echoAppScenarios();


for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal}: the lines of the last 40 requests are all written before the sidecar exits`, async () => {
    const scenario = apps.scenario({ config: { log: { level: 'info', allowed: 'info' } } });
    const sidecar = await startSidecarProcess(scenario.configPath);
    try {
      const port = await sidecar.waitForInbound();
      await sidecar.waitUntilReady();
      const agent = new Agent({ ...clientTlsOptions(scenario.pki, scenario.pki.leaf({ spiffeId: FRONTEND_ID }), port), keepAlive: true, maxSockets: 1 });
      const paths = Array.from({ length: 40 }, (_, i) => `/orders/${signal}-${i}`);
      try {
        // One after the other on one connection, then the signal at once: the lines are still in the
        // buffer (a few KiB, below its minimum write) when the signal arrives.
        for (const p of paths) assert.equal(await statusOf(agent, port, p), 200);
      } finally {
        agent.destroy();
      }
      assert.equal(await sidecar.stop(signal), 0);
      const requestLines = sidecar.logs.filter((l) => l.event === 'request');
      assert.deepEqual(requestLines.map((l) => l.path), paths, 'every request line, once, in order');
      for (const l of requestLines) {
        assert.equal(l.identity, FRONTEND_ID);
        assert.match(String(l.remote), /^127\.0\.0\.1/);
        assert.equal(l.status, 200);
        assert.equal(l.level, 30, 'allowed requests at info');
      }
      assert.equal(sidecar.logs.at(-1)?.event, 'stopped', 'the last line is the sidecar stopping');
    } finally {
      await sidecar.stop('SIGKILL');
    }
  });
}
