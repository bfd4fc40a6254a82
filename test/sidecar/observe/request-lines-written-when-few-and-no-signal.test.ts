// A quiet sidecar still writes its request lines: with a few requests and no signal, the lines (far
// below a write chunk) reach stdout on their own within the flush interval, all of them and in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'node:https';
import { echoAppScenarios, startLoggingSidecar, statusOf } from '../../support/echo-app-scenarios.js';
import { FRONTEND_ID, clientTlsOptions } from '../../support/sidecar.js';
import { waitFor } from '../../support/poll.js';

const apps = echoAppScenarios();

test('30 requests, then nothing: their lines are written without a signal, all and in order', async () => {
  const { scenario, sidecar, port } = await startLoggingSidecar(apps);
  try {
    const agent = new Agent({ ...clientTlsOptions(scenario.pki, scenario.pki.leaf({ spiffeId: FRONTEND_ID }), port), keepAlive: true, maxSockets: 1 });
    const paths = Array.from({ length: 30 }, (_, i) => `/orders/quiet-${i}`);
    try {
      for (const p of paths) assert.equal(await statusOf(agent, port, p), 200);
    } finally {
      agent.destroy();
    }
    // No signal, no load: the few lines below a chunk are written by the periodic flush on their own.
    const lines = await waitFor('the 30 request lines', () => {
      const got = sidecar.logs.filter((l) => l.event === 'request' && String(l.path).startsWith('/orders/quiet-'));
      return got.length === paths.length ? got : undefined;
    }, { timeoutMs: 10_000 });
    assert.deepEqual(lines.map((l) => l.path), paths);
  } finally {
    await sidecar.stop('SIGKILL');
  }
});
