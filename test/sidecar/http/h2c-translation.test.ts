// An h2c:// app that is not gRPC: HTTP/1.1 clients are translated to HTTP/2 streams (Host becomes
// :authority), HTTP/2 clients go end to end, bodies and trailers pass, identity headers are set.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { FRONTEND_ID, curl, firstStatus, rawBody, rawExchange, startHarness, type Harness } from './harness.js';

describe('HTTP/1.1 and HTTP/2 clients to an h2c app', () => {
  let app: http2.Http2Server;
  let h: Harness;
  before(async () => {
    app = http2.createServer();
    app.on('stream', (stream, headers) => {
      let bytes = 0;
      stream.on('data', (c: Buffer) => {
        bytes += c.length;
      });
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'application/json' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'x-checksum': String(bytes) }));
        const h: Record<string, unknown> = {};
        for (const k of Object.keys(headers)) h[k] = headers[k];
        stream.end(JSON.stringify({ headers: h, bytes }));
      });
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    h = await startHarness({ app: `h2c://127.0.0.1:${(app.address() as AddressInfo).port}` });
  });
  after(async () => {
    await h?.close();
    await new Promise<void>((r) => (app ? app.close(() => r()) : r()));
  });

  for (const proto of ['--http1.1', '--http2']) {
    it(`curl ${proto} POST reaches the app as HTTP/2 with identity headers`, async () => {
      const r = await curl(h, 'frontend', [proto, '-X', 'POST', '--data-binary', 'hello world', '-H', 'x-mesh-scopes: admin', `${h.url}/orders/7`]);
      assert.equal(r.status, 200);
      const got = JSON.parse(r.body) as { headers: Record<string, string>; bytes: number };
      assert.equal(got.bytes, 11);
      assert.equal(got.headers[':path'], '/orders/7');
      assert.equal(got.headers[':method'], 'POST');
      assert.equal(got.headers[':authority'], `127.0.0.1:${h.port}`);
      assert.equal(got.headers['x-mesh-client-id'], FRONTEND_ID);
      assert.equal(got.headers['x-mesh-scopes'], 'orders:read orders:write');
    });
  }

  it('the app trailers reach an HTTP/1.1 client as chunked trailers', async () => {
    const raw = await rawExchange(h, 'frontend', 'GET /orders HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nConnection: close\r\n\r\n');
    assert.equal(firstStatus(raw), 200);
    assert.match(raw, /\r\n0\r\nx-checksum: 0\r\n\r\n$/i);
    assert.equal((JSON.parse(rawBody(raw)) as { headers: Record<string, string> }).headers[':path'], '/orders');
  });

  it('the app trailers reach an HTTP/2 client', async () => {
    const c = h.clients.frontend!.tls;
    const session = http2.connect(h.url, { ...c, servername: 'localhost' });
    try {
      const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        const s = session.request({ ':path': '/orders/1', ':method': 'POST', te: 'trailers' });
        s.on('trailers', resolve);
        s.on('error', reject);
        s.resume();
        s.end('abc');
      });
      assert.equal(trailers['x-checksum'], '3');
    } finally {
      session.close();
    }
  });
});
