// SIGTERM under load: the sidecar stops accepting, lets every in-flight request finish (HTTP/1.1 app
// behind it, requests that take a while), answers /readyz 503 while draining, and exits 0. A tcp://
// connection that is still open at the signal keeps flowing until its caller closes it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { Agent } from 'node:https';
import { FRONTEND_ID, clientTlsOptions, exchange, makeScenario, startEchoHttpApp, startSidecarProcess, startTcpEchoApp, tlsOpen } from '../support/sidecar.js';
import type { EchoHttpApp, Scenario, TcpEchoApp } from '../support/sidecar.js';

let httpApp: EchoHttpApp;
let tcpApp: TcpEchoApp;
const scenarios: Scenario[] = [];

before(async () => {
  httpApp = await startEchoHttpApp();
  tcpApp = await startTcpEchoApp();
});

after(async () => {
  await httpApp?.close();
  await tcpApp?.close();
  for (const s of scenarios) s.cleanup();
});

function get(agent: Agent, port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, servername: 'localhost', timeout: 30_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

test('HTTP: 20 concurrent slow requests in flight at SIGTERM all complete, exit 0', async () => {
  const scenario = makeScenario({ app: httpApp.url });
  scenarios.push(scenario);
  const sidecar = await startSidecarProcess(scenario.configPath);
  try {
    const port = await sidecar.waitForInbound();
    await sidecar.waitUntilReady();
    const leaf = scenario.pki.leaf({ spiffeId: FRONTEND_ID });
    const agent = new Agent({ ...clientTlsOptions(scenario.pki, leaf, port), keepAlive: true, maxSockets: 20 });
    try {
      assert.equal((await get(agent, port, '/orders/1')).status, 200);
      const seenBefore = httpApp.seen.length;
      const inFlight = Array.from({ length: 20 }, () => get(agent, port, '/slow?ms=1500'));
      // Signal only once every request has reached the app: they are truly in flight.
      for (let i = 0; i < 300 && httpApp.seen.length < seenBefore + 20; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(httpApp.seen.length, seenBefore + 20);
      const exit = sidecar.stop('SIGTERM');
      const results = await Promise.all(inFlight);
      assert.deepEqual(results.map((r) => r.status), Array(20).fill(200));
      assert.equal(await exit, 0);
      assert.ok(sidecar.logs.some((l) => l.event === 'draining'));
    } finally {
      agent.destroy();
    }
  } finally {
    await sidecar.stop('SIGKILL');
  }
});

test('tcp: an open connection keeps flowing during the drain, then the sidecar exits 0', async () => {
  const scenario = makeScenario({ app: `tcp://127.0.0.1:${tcpApp.port}` });
  scenarios.push(scenario);
  const sidecar = await startSidecarProcess(scenario.configPath);
  try {
    const port = await sidecar.waitForInbound();
    await sidecar.waitUntilReady();
    const socket = await tlsOpen(clientTlsOptions(scenario.pki, scenario.pki.leaf({ spiffeId: FRONTEND_ID }), port));
    assert.equal(await exchange(socket, 'before'), 'before');
    const exit = sidecar.stop('SIGTERM');
    await sidecar.waitForLog((l) => l.event === 'draining', 'the drain to start');
    assert.equal((await sidecar.readyz()).status, 503);
    assert.equal(await exchange(socket, 'during'), 'during');
    socket.end();
    assert.equal(await exit, 0);
    socket.destroy();
  } finally {
    await sidecar.stop('SIGKILL');
  }
});
