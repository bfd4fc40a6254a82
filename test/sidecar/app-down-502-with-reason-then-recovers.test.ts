// The app behind the sidecar goes down and comes back on the same port: while it is down callers get
// 502 with a reason naming the app (over HTTP/1.1 and HTTP/2, counted as upstream_error), and once it
// listens again the same sidecar process serves them without a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { FRONTEND_ID, metricValue } from '../support/sidecar.js';
import { h2Get, h2SessionAs, http1Get, openAs } from '../support/connection-ends.js';
import { runningSidecar } from '../support/running-sidecar.js';
import { waitFor } from '../support/poll.js';

const r = runningSidecar('http');

test('app down: 502 naming the app, then served again when it is back', async () => {
  const appPort = Number(new URL(String(r.sidecar.logs.find((l) => l.event === 'inbound_listening')!.app)).port);
  const leaf = r.scenario.pki.leaf({ spiffeId: FRONTEND_ID });
  const get = async () => {
    const s = await openAs(r, leaf, ['http/1.1']);
    try {
      return await http1Get(s, '/orders/1');
    } finally {
      s.destroy();
    }
  };
  assert.equal((await get()).status, 200);

  // Take the echo app down: its port now refuses connections.
  await r.stopApp();
  const down = await get();
  assert.equal(down.status, 502);
  assert.match(JSON.parse(down.body).reason, /the app is unreachable: .*ECONNREFUSED/);
  const session = await h2SessionAs(r, leaf);
  try {
    assert.equal(await h2Get(session, '/orders/2'), 502);
  } finally {
    session.destroy();
  }
  assert.ok(metricValue(await r.sidecar.metrics(), 'meshward_requests_total', { decision: 'upstream_error', route: 'routes[0]', identity: FRONTEND_ID }) >= 2);

  // The app returns on the same port.
  const back = createServer((_req, res) => res.end('back'));
  await new Promise<void>((resolve) => back.listen(appPort, '127.0.0.1', resolve));
  try {
    const again = await waitFor('the app to be served again', async () => {
      const a = await get();
      return a.status === 200 ? a : undefined;
    });
    assert.equal(again.body, 'back');
  } finally {
    back.closeAllConnections();
    await new Promise<void>((resolve) => back.close(() => resolve()));
  }
});
