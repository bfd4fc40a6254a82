// Request trailers reach an h2c:// app whatever the client speaks: an HTTP/1.1 chunked body's trailer section
// and an HTTP/2 client's trailers. The same fields are dropped as for an http:// app (request-trailers-
// forwarded.test.ts, which also covers HTTP/2 clients there): the identity headers only the sidecar sets,
// credentials, framing and routing fields.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { firstStatus, http2PostWithTrailers, rawBody, rawExchange, startHarness, type Harness } from './harness.js';

interface Received { body: string; trailers: Record<string, string | string[]>; identity: string | undefined }

const SMUGGLED: Record<string, string> = {
  'x-mesh-client-id': 'spiffe://example.org/ns/admin/sa/root',
  'x-mesh-scopes': 'admin',
  'x-forwarded-client-cert': 'By=x;URI=spiffe://evil',
  authorization: 'Bearer stolen',
  'x-checksum': 'sha256=abc',
};
const KEPT = { 'x-checksum': 'sha256=abc' };

const chunked = (trailerLines: string): string =>
  `POST /orders HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: x-checksum\r\nConnection: close\r\n\r\n` +
  `5\r\nhello\r\n6\r\n world\r\n0\r\n${trailerLines}\r\n`;

describe('an h2c:// app', () => {
  let app: http2.Http2Server;
  let h: Harness;
  const received: Received[] = [];
  before(async () => {
    app = http2.createServer();
    app.on('stream', (stream, headers) => {
      let body = '';
      stream.setEncoding('latin1');
      stream.on('data', (c: string) => (body += c));
      let trailers: Record<string, string | string[]> = {};
      stream.on('trailers', (t) => {
        trailers = Object.fromEntries(Object.entries(t).filter(([k]) => !k.startsWith(':'))) as Record<string, string | string[]>;
      });
      stream.on('end', () => {
        received.push({ body, trailers, identity: headers['x-mesh-client-id'] as string | undefined });
        stream.respond({ ':status': 200 });
        stream.end('ok');
      });
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    h = await startHarness({ app: `h2c://127.0.0.1:${(app.address() as AddressInfo).port}` });
  });
  after(async () => {
    await h?.close();
    await new Promise<void>((r) => (app ? app.close(() => r()) : r()));
  });

  it('gets an HTTP/1.1 chunked body\'s trailers, filtered', async () => {
    const lines = Object.entries(SMUGGLED).map(([k, v]) => `${k}: ${v}\r\n`).join('') + 'X-Request-Cost: 7\r\n';
    const raw = await rawExchange(h, 'frontend', chunked(lines));
    assert.equal(firstStatus(raw), 200);
    assert.equal(rawBody(raw), 'ok');
    const got = received.at(-1)!;
    assert.equal(got.body, 'hello world');
    assert.deepEqual(got.trailers, { ...KEPT, 'x-request-cost': '7' });
    assert.match(got.identity ?? '', /frontend$/);
  });

  it('gets no trailer fields when the HTTP/1.1 body has none', async () => {
    const raw = await rawExchange(h, 'frontend', chunked(''));
    assert.equal(firstStatus(raw), 200);
    assert.deepEqual(received.at(-1)!.trailers, {});
    assert.equal(received.at(-1)!.body, 'hello world');
  });

  it('gets an HTTP/2 client\'s trailers, filtered', async () => {
    assert.equal(await http2PostWithTrailers(h, SMUGGLED), 200);
    const got = received.at(-1)!;
    assert.equal(got.body, 'hello world');
    assert.deepEqual(got.trailers, KEPT);
    assert.match(got.identity ?? '', /frontend$/);
  });
});
