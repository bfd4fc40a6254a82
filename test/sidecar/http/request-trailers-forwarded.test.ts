// HTTP/1.1 request trailers (a chunked body's trailer section) reach an http:// app (issue 14, item 9), and so
// do an HTTP/2 client's trailers (as the last chunk's trailer section),
// except fields a trailer must not carry or the sidecar alone sets: the identity headers, framing and
// routing fields, credentials. A request without trailers still ends with the plain last chunk.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { firstStatus, http2PostWithTrailers, rawBody, rawExchange, startHarness, type Harness } from './harness.js';

interface Received {
  body: string;
  trailers: string[];
  identity: string | undefined;
}

let app: http.Server;
let h: Harness;
const received: Received[] = [];

before(async () => {
  app = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      received.push({ body, trailers: req.rawTrailers, identity: req.headers['x-mesh-client-id'] as string | undefined });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  h = await startHarness({ app: `http://127.0.0.1:${(app.address() as AddressInfo).port}` });
});

after(async () => {
  await h?.close();
  await new Promise<void>((r) => (app ? app.close(() => r()) : r()));
});

const chunked = (trailerLines: string) =>
  `POST /orders HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: x-checksum\r\nConnection: close\r\n\r\n` +
  `5\r\nhello\r\n6\r\n world\r\n0\r\n${trailerLines}\r\n`;

test('trailer fields go on to the app after the body', async () => {
  const raw = await rawExchange(h, 'frontend', chunked('X-Checksum: sha256=abc\r\nX-Request-Cost: 7\r\n'));
  assert.equal(firstStatus(raw), 200);
  assert.equal(rawBody(raw), 'ok');
  const got = received.at(-1)!;
  assert.equal(got.body, 'hello world');
  assert.deepEqual(got.trailers, ['X-Checksum', 'sha256=abc', 'X-Request-Cost', '7']);
});

test('identity, framing, routing and credential fields in trailers are dropped', async () => {
  const smuggled = [
    'X-Mesh-Client-Id: spiffe://example.org/ns/admin/sa/root',
    'X-Mesh-Scopes: admin',
    'X-Forwarded-Client-Cert: By=x;URI=spiffe://evil',
    'Host: elsewhere',
    'Authorization: Bearer stolen',
    'X-Kept: yes',
  ];
  const raw = await rawExchange(h, 'frontend', chunked(smuggled.map((l) => `${l}\r\n`).join('')));
  assert.equal(firstStatus(raw), 200);
  const got = received.at(-1)!;
  assert.deepEqual(got.trailers, ['X-Kept', 'yes']);
  assert.match(got.identity ?? '', /frontend$/, 'the identity header is the one the sidecar set');
});

test('Content-Length in a trailer section (llhttp refuses it after Transfer-Encoding): 400, the app sees no complete request', async () => {
  const before = received.length;
  const raw = await rawExchange(h, 'frontend', chunked('Content-Length: 3\r\n'));
  assert.equal(firstStatus(raw), 400);
  assert.equal(received.length, before);
});

test('no trailers: the body ends with the plain last chunk', async () => {
  const raw = await rawExchange(h, 'frontend', chunked(''));
  assert.equal(firstStatus(raw), 200);
  assert.deepEqual(received.at(-1)!.trailers, []);
  assert.equal(received.at(-1)!.body, 'hello world');
});

test('an HTTP/2 client\'s trailers go on as the last chunk\'s trailer section, filtered the same way', async () => {
  const sent = {
    'x-mesh-client-id': 'spiffe://example.org/ns/admin/sa/root',
    'x-forwarded-client-cert': 'By=x;URI=spiffe://evil',
    authorization: 'Bearer stolen',
    'x-checksum': 'sha256=abc',
  };
  assert.equal(await http2PostWithTrailers(h, sent), 200);
  const got = received.at(-1)!;
  assert.equal(got.body, 'hello world');
  assert.deepEqual(got.trailers, ['x-checksum', 'sha256=abc']);
  assert.match(got.identity ?? '', /frontend$/);
});
