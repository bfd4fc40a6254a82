// The mesh path end to end with two real sidecars: frontend app → frontend sidecar (outbound, plaintext
// in, mTLS out with the frontend's certificate) → orders sidecar (inbound) → orders app. The orders app
// sees the frontend's identity; the orders policy is enforced on calls that arrive this way; an upstream
// that proves another SPIFFE ID is refused (502, and the log names what it presented); HTTP/2 with prior
// knowledge and raw TCP are carried too; a certificate reload on the frontend is followed by new calls.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { connect as http2Connect } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { request as httpRequest } from 'node:http';
import { FRONTEND_ID, SERVER_ID, makeScenario, startEchoHttpApp, startSidecarProcess, startTcpEchoApp, writeKubernetesIdentity, writeSidecarConfig } from '../support/sidecar.js';
import type { EchoHttpApp, Scenario, SidecarProcess, TcpEchoApp } from '../support/sidecar.js';
import type { TestLeaf } from '../support/pki-fixtures.js';
import { waitFor } from '../support/poll.js';

let app: EchoHttpApp;
let tcpApp: TcpEchoApp;
let orders: Scenario;
let ordersSidecar: SidecarProcess;
let ordersTcpSidecar: SidecarProcess;
let frontend: SidecarProcess;
let frontendLeaf: TestLeaf;
let frontendIdentityDir: string;
/** Outbound ports of the frontend sidecar, in config order: good http, wrong identity, tcp. */
let ports: number[] = [];

function outboundPorts(sidecar: SidecarProcess): number[] {
  return sidecar.logs.filter((l) => l.event === 'outbound_listening').map((l) => Number(String(l.address).split(':').pop()));
}

function call(port: number, method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, timeout: 10_000, headers: { 'x-mesh-client-id': 'spoofed' } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

before(async () => {
  app = await startEchoHttpApp();
  tcpApp = await startTcpEchoApp();
  orders = makeScenario({ app: app.url });
  ordersSidecar = await startSidecarProcess(orders.configPath);
  const ordersPort = await ordersSidecar.waitForInbound();
  await ordersSidecar.waitUntilReady();

  // A second orders-side sidecar in front of a TCP echo app, same PKI and identity.
  const tcpConfig = writeSidecarConfig(
    orders.tmp,
    {
      identity: { dir: './identity' },
      inbound: { listen: '127.0.0.1:0', app: `tcp://127.0.0.1:${tcpApp.port}` },
      policy: './policy.yaml',
      admin: { listen: '127.0.0.1:0' },
    },
    'tcp-sidecar.yaml',
  );
  ordersTcpSidecar = await startSidecarProcess(tcpConfig);
  const ordersTcpPort = await ordersTcpSidecar.waitForInbound();

  frontendIdentityDir = join(orders.tmp, 'frontend-identity');
  mkdirSync(frontendIdentityDir);
  frontendLeaf = orders.pki.leaf({ spiffeId: FRONTEND_ID });
  writeKubernetesIdentity(frontendIdentityDir, frontendLeaf, orders.pki);
  const frontendConfig = writeSidecarConfig(
    orders.tmp,
    {
      identity: { dir: './frontend-identity' },
      outbound: [
        { listen: '127.0.0.1:0', upstream: `127.0.0.1:${ordersPort}`, identity: 'spiffe://example.org/ns/shop/sa/*' },
        { listen: '127.0.0.1:0', upstream: `127.0.0.1:${ordersPort}`, identity: 'spiffe://example.org/ns/payments/sa/ledger' },
        { listen: '127.0.0.1:0', upstream: `127.0.0.1:${ordersTcpPort}`, identity: SERVER_ID, protocol: 'tcp' },
      ],
      admin: { listen: '127.0.0.1:0' },
      log: { level: 'debug' },
    },
    'frontend.yaml',
  );
  frontend = await startSidecarProcess(frontendConfig);
  await frontend.waitUntilReady();
  // /readyz can answer before the outbound_listening lines reach us on a loaded machine: poll for them.
  ports = await waitFor('three outbound listeners logged', () => (outboundPorts(frontend).length >= 3 ? outboundPorts(frontend) : undefined));
  assert.equal(ports.length, 3);
});

after(async () => {
  await Promise.all([frontend?.stop(), ordersSidecar?.stop(), ordersTcpSidecar?.stop()]);
  await app?.close();
  await tcpApp?.close();
  orders?.cleanup();
});

test('the orders app sees the frontend identity on a call made through both sidecars', async () => {
  const r = await call(ports[0]!, 'GET', '/orders/42?expand=items');
  assert.equal(r.status, 200, r.body);
  const seen = JSON.parse(r.body) as { url: string; headers: Record<string, string> };
  assert.equal(seen.url, '/orders/42?expand=items');
  assert.equal(seen.headers['x-mesh-client-id'], FRONTEND_ID);
  assert.match(seen.headers['x-forwarded-client-cert']!, new RegExp(`^By=${SERVER_ID};Hash=${frontendLeaf.cert.fingerprintSha256};`));
});

test('the orders policy is enforced on calls that arrive through the outbound sidecar', async () => {
  const seenBefore = app.seen.length;
  const r = await call(ports[0]!, 'DELETE', '/orders/42');
  assert.equal(r.status, 403, r.body);
  const body = JSON.parse(r.body) as { error: string; rule: string; identity: string };
  assert.equal(body.error, 'forbidden');
  assert.equal(body.rule, 'no-route');
  assert.equal(body.identity, FRONTEND_ID);
  const post = await call(ports[0]!, 'POST', '/orders', '{"sku":"tea"}');
  assert.equal(post.status, 200, post.body);
  assert.equal((JSON.parse(post.body) as { body: string }).body, '{"sku":"tea"}');
  assert.equal(app.seen.length, seenBefore + 1, 'only the allowed call reached the app');
});

test('an upstream proving another SPIFFE ID is refused with 502 and the log says what it presented', async () => {
  const seenBefore = app.seen.length;
  const r = await call(ports[1]!, 'GET', '/orders/1');
  assert.equal(r.status, 502, r.body);
  const body = JSON.parse(r.body) as { error: string; reason: string };
  assert.equal(body.error, 'bad_gateway');
  assert.match(body.reason, new RegExp(`presented ${SERVER_ID}, expected spiffe://example.org/ns/payments/sa/ledger`));
  const line = await frontend.waitForLog((l) => l.event === 'outbound_upstream_error', 'the upstream error log line');
  assert.equal(line.presented, SERVER_ID);
  assert.equal(app.seen.length, seenBefore, 'nothing reached the app');
});

test('HTTP/2 with prior knowledge is carried end to end', async () => {
  const session = http2Connect(`http://127.0.0.1:${ports[0]}`);
  try {
    const result = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const stream = session.request({ ':path': '/orders/7', ':method': 'GET' });
      let status = 0;
      let data = '';
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => (data += c));
      stream.on('end', () => resolve({ status, body: data }));
      stream.on('error', reject);
      stream.end();
    });
    assert.equal(result.status, 200, result.body);
    assert.equal((JSON.parse(result.body) as { headers: Record<string, string> }).headers['x-mesh-client-id'], FRONTEND_ID);
  } finally {
    session.close();
  }
});

test('gRPC: a trailers-only denial from the orders sidecar stays trailers-only (grpc-status 7 in ending headers)', async () => {
  const session = http2Connect(`http://127.0.0.1:${ports[0]}`);
  try {
    const result = await new Promise<{ headers: Record<string, unknown>; ended: boolean }>((resolve, reject) => {
      const stream = session.request({ ':path': '/shop.v1.Admin/Drop', ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers' });
      stream.on('response', (headers, flags) => resolve({ headers, ended: (flags & 0x1) !== 0 }));
      stream.on('error', reject);
      stream.end(Buffer.alloc(5));
    });
    assert.equal(result.headers['grpc-status'], '7');
    assert.match(decodeURIComponent(String(result.headers['grpc-message'])), /no route/);
    assert.equal(result.ended, true, 'the headers end the stream, as gRPC clients require for trailers-only');
  } finally {
    session.close();
  }
});

test('HTTP/1.1: a chunked body on a GET keeps its framing, so the next request on the pooled connection is intact', async () => {
  const responses = await new Promise<string>((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port: ports[0]! });
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (data += c));
    // The second request asks the outbound listener to close afterwards: 'end' means both were answered.
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error(`timeout; got ${data}`)));
    socket.write(
      'GET /orders/1 HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' +
        'GET /orders/2 HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n',
    );
  });
  const statuses = [...responses.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
  assert.deepEqual(statuses, ['200', '200'], responses);
  const bodies = app.seen.slice(-2).map((r) => r.url);
  assert.deepEqual(bodies, ['/orders/1', '/orders/2']);
});

test('TCP: bytes round-trip through both sidecars, with half-close', async () => {
  const received = await new Promise<string>((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port: ports[2]!, allowHalfOpen: true });
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (data += c));
    socket.on('end', () => {
      socket.end();
      resolve(data);
    });
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error('timeout')));
    socket.end('PING over the mesh\n');
  });
  assert.equal(received, 'PING over the mesh\n');
});

test('the outbound side follows a certificate reload of the frontend', async () => {
  const next = orders.pki.leaf({ spiffeId: FRONTEND_ID });
  writeKubernetesIdentity(frontendIdentityDir, next, orders.pki);
  await waitFor('the orders app sees the new frontend certificate', async () => {
    const r = await call(ports[0]!, 'GET', '/orders/1');
    if (r.status !== 200) return undefined;
    const xfcc = (JSON.parse(r.body) as { headers: Record<string, string> }).headers['x-forwarded-client-cert']!;
    return xfcc.includes(`Hash=${next.cert.fingerprintSha256}`) ? true : undefined;
  });
});
