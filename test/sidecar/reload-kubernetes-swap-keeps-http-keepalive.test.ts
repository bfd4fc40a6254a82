// The same `..data` rotation with an HTTP/1.1 app: a keep-alive connection opened before the swap
// keeps carrying requests on the same socket after it, while new connections get the new certificate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { FRONTEND_ID, clientTlsOptions, presentedSerial, serverLeaf, writeKubernetesIdentity } from '../support/sidecar.js';
import { waitFor } from '../support/poll.js';
import { runningSidecar } from '../support/running-sidecar.js';

const rig = runningSidecar('http', { layout: 'kubernetes' });

function get(agent: Agent, path: string): Promise<{ status: number; socket: TLSSocket; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: rig.port, path, agent, servername: 'localhost', timeout: 15_000 }, (res) => {
      const socket = res.socket as TLSSocket; // captured now: after 'end' it is back in the agent's pool
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, socket, reused: req.reusedSocket }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

test('a keep-alive HTTP connection survives the swap; new connections present the new certificate', async () => {
  const options = clientTlsOptions(rig.scenario.pki, rig.scenario.pki.leaf({ spiffeId: FRONTEND_ID }), rig.port);
  const agent = new Agent({ ...options, keepAlive: true, maxSockets: 1 });
  try {
    const first = await get(agent, '/orders/1');
    assert.equal(first.status, 200);
    const next = serverLeaf(rig.scenario.pki);
    writeKubernetesIdentity(rig.scenario.identityDir, next, rig.scenario.pki);
    await waitFor('new connections to present the new certificate', async () =>
      (await presentedSerial(options)) === next.cert.serialHex ? true : undefined,
    );
    const second = await get(agent, '/orders/2');
    assert.equal(second.status, 200);
    assert.equal(second.reused, true, 'the request went over the connection opened before the swap');
    assert.equal(second.socket, first.socket);
    assert.equal(second.socket.getPeerCertificate().serialNumber.toLowerCase().replace(/^(00)+/, ''), rig.scenario.server.cert.serialHex);
  } finally {
    agent.destroy();
  }
});
