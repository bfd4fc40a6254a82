// Allowed requests are logged through a buffer (issue 14: logging at near-zero cost): the lines of the
// requests answered just before SIGTERM or SIGINT still reach stdout, each once and in order, before
// the sidecar's last line, and each carries the connection's identity and address.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:https';
import { FRONTEND_ID, clientTlsOptions, makeScenario, startEchoHttpApp, startSidecarProcess } from '../../helpers/sidecar.js';
import type { EchoHttpApp, Scenario } from '../../helpers/sidecar.js';

let app: EchoHttpApp;
const scenarios: Scenario[] = [];

before(async () => {
  app = await startEchoHttpApp();
});

after(async () => {
  await app?.close();
  for (const s of scenarios) s.cleanup();
});

function get(agent: Agent, port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, servername: 'localhost', timeout: 30_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal}: the lines of the last 40 requests are all written before the sidecar exits`, async () => {
    const scenario = makeScenario({ app: app.url, config: { log: { level: 'info', allowed: 'info' } } });
    scenarios.push(scenario);
    const sidecar = await startSidecarProcess(scenario.configPath);
    try {
      const port = await sidecar.waitForInbound();
      await sidecar.waitUntilReady();
      const agent = new Agent({ ...clientTlsOptions(scenario.pki, scenario.pki.leaf({ spiffeId: FRONTEND_ID }), port), keepAlive: true, maxSockets: 1 });
      const paths = Array.from({ length: 40 }, (_, i) => `/orders/${signal}-${i}`);
      try {
        // One after the other on one connection, then the signal at once: the lines are still in the
        // buffer (a few KiB, below its minimum write) when the signal arrives.
        for (const p of paths) assert.equal(await get(agent, port, p), 200);
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
