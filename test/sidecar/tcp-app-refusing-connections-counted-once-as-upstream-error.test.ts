// A tcp:// app whose port refuses connections: a caller the policy lets through is counted once, as
// upstream_error (route "tcp"), not also as allow, the way an HTTP request answered 502 is counted once.
// When an app listens on that port again, the next connection counts as allow, and the refused one is
// still counted only once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { FRONTEND_ID, clientTlsOptions, makeScenario, metricValue, startSidecarProcess, tcpRoundTrip } from '../support/sidecar.js';
import { waitFor } from '../support/poll.js';
import type { Scenario, SidecarProcess } from '../support/sidecar.js';

/** A port on 127.0.0.1 that nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

let appPort: number;
let scenario: Scenario;
let sidecar: SidecarProcess;
let port: number;
const sockets = new Set<Socket>();
const app = createServer({ allowHalfOpen: true }, (socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
});

before(async () => {
  appPort = await closedPort();
  scenario = makeScenario({ app: `tcp://127.0.0.1:${appPort}` });
  sidecar = await startSidecarProcess(scenario.configPath);
  port = await sidecar.waitForInbound();
  await sidecar.waitUntilReady();
});

after(async () => {
  await sidecar?.stop();
  for (const s of sockets) s.destroy();
  if (app.listening) await new Promise<void>((resolve) => app.close(() => resolve()));
  scenario?.cleanup();
});

const count = (metrics: string, decision: string) => metricValue(metrics, 'meshward_requests_total', { decision, route: 'tcp', identity: FRONTEND_ID });

test('a connection the app refuses counts once, as upstream_error, and never as allow', async () => {
  const frontend = scenario.pki.leaf({ spiffeId: FRONTEND_ID });
  const r = await tcpRoundTrip(clientTlsOptions(scenario.pki, frontend, port), 'hello');
  assert.equal(r.result, 'refused');
  assert.equal(r.received, '');
  const logged = await sidecar.waitForLog((l) => l.event === 'tcp_error' && l.side === 'app', 'the unreachable-app line');
  assert.match(String(logged.msg), /unreachable/);
  const metrics = await waitFor('the upstream_error count', async () => {
    const text = await sidecar.metrics();
    return count(text, 'upstream_error') === 1 ? text : undefined;
  });
  assert.equal(count(metrics, 'allow'), 0, 'the refused connection is not also counted as allow');
  assert.equal(count(metrics, 'audit_deny'), 0);
});

test('once an app listens on the port, a connection counts as allow, and the refused one stays counted once', async () => {
  await new Promise<void>((resolve) => app.listen(appPort, '127.0.0.1', resolve));
  const frontend = scenario.pki.leaf({ spiffeId: FRONTEND_ID });
  const r = await tcpRoundTrip(clientTlsOptions(scenario.pki, frontend, port), 'hello again');
  assert.equal(r.result, 'echoed');
  const metrics = await waitFor('the allow count', async () => {
    const text = await sidecar.metrics();
    return count(text, 'allow') === 1 ? text : undefined;
  });
  assert.equal(count(metrics, 'upstream_error'), 1);
});
