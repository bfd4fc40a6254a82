// WebSocket / Upgrade for http:// apps over HTTP/1.1: after the policy check the sidecar opens a
// connection to the app, sends the request head with the identity headers, and tunnels bytes both ways.
// A caller without the scope gets a 403 and the app never sees the upgrade.
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { describe, it } from 'node:test';
import { BILLING_ID, firstStatus, rawExchange, useRecordingHarness } from './harness.js';

const UPGRADE = (path: string): string =>
  `GET ${path} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Mesh-Client-Id: spoofed\r\n\r\n`;

describe('WebSocket upgrade passes through to http:// apps', () => {
  const rig = useRecordingHarness();

  it('an allowed upgrade round-trips bytes, and the app saw the identity headers', async () => {
    const socket = tls.connect({ host: '127.0.0.1', port: rig.h.port, ...rig.h.clients.billing!.tls, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
    try {
      let received = '';
      const waitFor = (text: string): Promise<void> =>
        new Promise((resolve, reject) => {
          const check = (): void => {
            if (received.includes(text)) {
              socket.off('data', onData);
              resolve();
            }
          };
          const onData = (d: Buffer): void => {
            received += d.toString('latin1');
            check();
          };
          socket.on('data', onData);
          socket.once('close', () => reject(new Error(`closed before ${JSON.stringify(text)}; got ${JSON.stringify(received)}`)));
          check();
        });
      socket.write(UPGRADE('/ws'));
      await waitFor('\r\n\r\n');
      assert.equal(firstStatus(received), 101, received);
      assert.match(received, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/);
      socket.write('ping-1');
      await waitFor('ping-1');
      socket.write('ping-2');
      await waitFor('ping-2');
      const seen = rig.app.seen.at(-1)!;
      assert.equal(seen.url, '/ws');
      assert.equal(seen.headers['x-mesh-client-id'], BILLING_ID);
      assert.equal(seen.headers.upgrade, 'websocket');
      assert.equal(seen.headers['sec-websocket-key'], 'dGhlIHNhbXBsZSBub25jZQ==');
    } finally {
      socket.destroy();
    }
  });

  it('an upgrade to a route the caller lacks gets 403 and never reaches the app', async () => {
    const before = rig.app.seen.length;
    const raw = await rawExchange(rig.h, 'billing', UPGRADE('/admin'));
    assert.equal(firstStatus(raw), 403);
    assert.match(raw, /"rule":"routes\[4\]"/);
    assert.equal(rig.app.seen.length, before);
  });
});
