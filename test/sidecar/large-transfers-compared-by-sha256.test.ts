// Large bodies through the sidecar compared by content, not length: 48 MiB of pseudo-random bytes
// uploaded (the app answers with the SHA-256 of what it received) and downloaded (the client hashes what
// it got), over HTTP/1.1 and HTTP/2. A proxy that dropped, repeated or reordered a chunk would keep the
// length and change the hash.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import http2 from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { FRONTEND_ID, makeScenario, startSidecarProcess } from '../support/sidecar.js';
import type { Scenario, SidecarProcess } from '../support/sidecar.js';
import type { TestLeaf } from '../support/pki-fixtures.js';

const SIZE = 48 * 1024 * 1024;
const content = randomBytes(SIZE);
const contentHash = createHash('sha256').update(content).digest('hex');
let app: Server;
let scenario: Scenario;
let sidecar: SidecarProcess;
let port: number;
let leaf: TestLeaf;

before(async () => {
  // GET /orders/blob: the content; POST /orders: the SHA-256 of the body received.
  app = createServer((req, res) => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-length': String(SIZE) }).end(content);
      return;
    }
    const hash = createHash('sha256');
    req.on('data', (c: Buffer) => hash.update(c));
    req.on('end', () => res.end(hash.digest('hex')));
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  scenario = makeScenario({ app: `http://127.0.0.1:${(app.address() as AddressInfo).port}`, config: { log: { level: 'info', allowed: 'silent' } } });
  sidecar = await startSidecarProcess(scenario.configPath);
  port = await sidecar.waitForInbound();
  await sidecar.waitUntilReady();
  leaf = scenario.pki.leaf({ spiffeId: FRONTEND_ID });
});

after(async () => {
  await sidecar?.stop();
  app?.closeAllConnections();
  await new Promise<void>((r) => (app ? app.close(() => r()) : r()));
  scenario?.cleanup();
});

const tls = () => ({ ca: scenario.pki.bundlePem, cert: leaf.chainPem, key: leaf.keyPem, servername: 'localhost' });

function http1(method: string, path: string, body?: Buffer): Promise<{ status: number; hash: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, method, path, agent: false, timeout: 120_000, ...tls() }, (res) => {
      const hash = createHash('sha256');
      let text = '';
      res.on('data', (c: Buffer) => {
        hash.update(c);
        if (text.length < 200) text += c.toString('latin1');
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, hash: hash.digest('hex'), text }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.end(body);
  });
}

function h2(method: string, path: string, body?: Buffer): Promise<{ status: number; hash: string; text: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, tls());
    session.on('error', reject);
    const s = session.request({ ':method': method, ':path': path });
    const hash = createHash('sha256');
    let text = '';
    let status = 0;
    s.on('response', (h) => (status = Number(h[':status'])));
    s.on('data', (c: Buffer) => {
      hash.update(c);
      if (text.length < 200) text += c.toString('latin1');
    });
    s.on('end', () => {
      session.close();
      resolve({ status, hash: hash.digest('hex'), text });
    });
    s.on('error', reject);
    s.end(body);
  });
}

for (const [name, call] of [['HTTP/1.1', http1], ['HTTP/2', h2]] as const) {
  test(`${name}: a 48 MiB download arrives byte for byte`, async () => {
    const r = await call('GET', '/orders/blob');
    assert.equal(r.status, 200);
    assert.equal(r.hash, contentHash);
  });

  test(`${name}: a 48 MiB upload reaches the app byte for byte`, async () => {
    const r = await call('POST', '/orders', content);
    assert.equal(r.status, 200);
    assert.equal(r.text, contentHash);
  });
}
