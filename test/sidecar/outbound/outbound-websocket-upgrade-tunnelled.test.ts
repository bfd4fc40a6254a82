// A WebSocket upgrade from the app through an outbound listener: the Upgrade request reaches the
// upstream over mTLS with its Connection/Upgrade headers, the 101 comes back to the app, and then bytes
// flow both ways through the tunnel. An upstream that declines the upgrade has its answer passed back.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { SERVER_ID, serverLeaf } from '../../support/sidecar.js';
import { makeTestPki } from '../../support/pki-fixtures.js';
import { httpsUpstream, startOutboundRig, type OutboundRig, type Upstream } from '../../support/outbound.js';

const pki = makeTestPki();
let rig: OutboundRig;
let upstream: Upstream;

before(async () => {
  upstream = await httpsUpstream(
    pki,
    serverLeaf(pki),
    (_req, res) => res.writeHead(426, { 'content-type': 'text/plain' }).end('upgrade required'),
    (req, socket) => {
      if (req.url !== '/chat' || req.headers.upgrade !== 'websocket') {
        socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno');
        return;
      }
      socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: test\r\n\r\n');
      socket.pipe(socket); // echo every frame byte back
    },
  );
  rig = await startOutboundRig(() => [{ listen: '127.0.0.1:0', upstream: `127.0.0.1:${upstream.port}`, identity: SERVER_ID }], { pki });
});

after(async () => {
  await rig?.close();
  await upstream?.close();
});

function readUntil(socket: Socket, pred: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no match in ${JSON.stringify(text)}`)), 15_000);
    const onData = (c: Buffer): void => {
      text += c.toString('latin1');
      if (pred(text)) {
        clearTimeout(timer);
        socket.off('data', onData);
        resolve(text);
      }
    };
    socket.on('data', onData);
  });
}

function upgradeRequest(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: orders\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
}

test('the upgrade is carried to the upstream and bytes flow both ways afterwards', async () => {
  const socket = connect(rig.ports[0]!, '127.0.0.1');
  socket.on('error', () => undefined);
  try {
    socket.write(upgradeRequest('/chat'));
    const head = await readUntil(socket, (t) => t.includes('\r\n\r\n'));
    assert.match(head, /^HTTP\/1\.1 101 /);
    assert.match(head, /upgrade: websocket/i);
    const frame = Buffer.from([0x81, 0x05, ...Buffer.from('hello')]);
    socket.write(frame);
    const echoed = await readUntil(socket, (t) => t.includes('hello'));
    assert.ok(echoed.includes('hello'));
  } finally {
    socket.destroy();
  }
});

test('an upgrade the upstream declines comes back as its answer', async () => {
  const socket = connect(rig.ports[0]!, '127.0.0.1');
  socket.on('error', () => undefined);
  try {
    socket.write(upgradeRequest('/elsewhere'));
    const answer = await readUntil(socket, (t) => t.includes('\r\n\r\n'));
    assert.match(answer, /^HTTP\/1\.1 403 /);
  } finally {
    socket.destroy();
  }
});
