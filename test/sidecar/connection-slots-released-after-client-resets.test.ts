// limits.maxConnections counts open inbound connections; a caller that resets its connections (TCP RST,
// no TLS close_notify) must give the slots back, or a few rude clients would lock everyone out. With
// maxConnections: 5, five connections reset after a request, then five new ones are all served and the
// open-connections gauge returns to zero.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { FRONTEND_ID, clientTlsOptions, metricValue, tlsOpen } from '../support/sidecar.js';
import { http1Get } from '../support/connection-ends.js';
import { runningSidecar } from '../support/running-sidecar.js';
import { waitFor } from '../support/poll.js';

const r = runningSidecar('http', { config: { limits: { maxConnections: 5 } } });

/** Five connections served one request each; returns their TCP sockets (a TLS socket cannot be reset: node 20 refuses resetAndDestroy on its TLSWrap handle). */
async function fiveServed(): Promise<Socket[]> {
  const leaf = r.scenario.pki.leaf({ spiffeId: FRONTEND_ID });
  const sockets: Socket[] = [];
  for (let i = 0; i < 5; i++) {
    const tcp = connect(r.port, '127.0.0.1');
    tcp.on('error', () => undefined);
    const s = await tlsOpen({ ...clientTlsOptions(r.scenario.pki, leaf, r.port, { ALPNProtocols: ['http/1.1'] }), socket: tcp });
    s.on('error', () => undefined);
    sockets.push(tcp);
    assert.equal((await http1Get(s, `/orders/${i}`)).status, 200);
  }
  return sockets;
}

const open = async () => metricValue(await r.sidecar.metrics(), 'meshward_open_connections');

test('slots of connections the client reset are released', async () => {
  for (let round = 0; round < 3; round++) {
    const sockets = await fiveServed();
    assert.equal(await open(), 5);
    for (const s of sockets) s.resetAndDestroy();
    await waitFor(`round ${round}: the gauge back to 0`, async () => ((await open()) === 0 ? true : undefined));
  }
});
