// Http1Upstream with a body held whole (an HMAC route's, read before the check): the app gets the head and
// the framed body (Content-Length, or chunked with the trailer section) exactly, and when a reused keep-alive
// connection turns out closed before any answer, a PUT is sent once more on a fresh connection, as a request
// without a body is; a POST or PATCH never (RFC 9110 §9.2.2). A streamed body is not (it is gone), and neither
// is a second failure.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Http1Upstream, type BodyKind, type WholeBody } from '../../../src/sidecar/http/upstream-http1.js';
import type { UpstreamResponse } from '../../../src/sidecar/http/upstream-response.js';

/**
 * A raw app: keeps every request it read, byte for byte, with the connection it came on. `drop` says, per
 * request, whether to close that connection instead of answering (the race with an app closing an idle one).
 */
class RawApp {
  readonly server: net.Server;
  connections = 0;
  readonly requests: { connection: number; bytes: Buffer }[] = [];
  drop: (connection: number) => boolean = () => false;

  constructor() {
    this.server = net.createServer((socket) => {
      const connection = this.connections++;
      let buffered = Buffer.alloc(0);
      socket.on('data', (d: Buffer) => {
        buffered = Buffer.concat([buffered, d]);
        for (let end = requestEnd(buffered.toString('latin1')); end > 0; end = requestEnd(buffered.toString('latin1'))) {
          if (this.drop(connection)) {
            socket.destroy();
            return;
          }
          this.requests.push({ connection, bytes: buffered.subarray(0, end) });
          buffered = buffered.subarray(end);
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        }
      });
      socket.on('error', () => {});
    });
  }
}

/** Where the first request in `text` ends (Content-Length or chunked framing), or -1 while it is incomplete. */
function requestEnd(text: string): number {
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd < 0) return -1;
  const head = text.slice(0, headEnd);
  let at = headEnd + 4;
  const length = /content-length: (\d+)/i.exec(head);
  if (length !== null) return text.length >= at + Number(length[1]) ? at + Number(length[1]) : -1;
  if (!/transfer-encoding: chunked/i.test(head)) return at;
  for (;;) {
    const eol = text.indexOf('\r\n', at);
    if (eol < 0) return -1;
    const size = parseInt(text.slice(at, eol), 16);
    at = eol + 2;
    if (size > 0) {
      at += size + 2;
      continue;
    }
    for (;;) {
      const lineEnd = text.indexOf('\r\n', at);
      if (lineEnd < 0) return -1;
      if (lineEnd === at) return at + 2;
      at = lineEnd + 2;
    }
  }
}

function send(pool: Http1Upstream, kind: BodyKind, headers: string[], whole?: WholeBody, streamed?: Buffer, method = 'POST'): Promise<{ status: number } | { error: string }> {
  return new Promise((resolve) => {
    const ex = pool.request(method, '/p', ['host', 'app', ...headers], kind, (res: UpstreamResponse) => {
      resolve({ status: res.statusCode });
      if (res.body === undefined) res.resume();
    }, (err) => resolve({ error: err.message }), whole);
    if (streamed !== undefined) ex.body!.end(streamed);
  });
}

describe('Http1Upstream with a body held whole', () => {
  const app = new RawApp();
  let pool: Http1Upstream;
  before(async () => {
    await new Promise<void>((r) => app.server.listen(0, '127.0.0.1', r));
    pool = new Http1Upstream(new URL(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`));
  });
  after(async () => {
    pool.close();
    await new Promise<void>((r) => app.server.close(() => r()));
  });

  const last = (): string => app.requests.at(-1)!.bytes.toString('latin1');

  it('sends head and Content-Length body as the app reads them, small and large', async () => {
    for (const size of [1024, 100 * 1024]) {
      const body = randomBytes(size);
      assert.deepEqual(await send(pool, 'length', ['content-length', String(size)], { body, trailers: [] }), { status: 200 });
      assert.equal(last().slice(0, -size), `POST /p HTTP/1.1\r\nhost: app\r\ncontent-length: ${size}\r\n\r\n`);
      assert.deepEqual(app.requests.at(-1)!.bytes.subarray(-size), body);
    }
  });

  it('frames a chunked body with its trailer section, and an empty one as the last chunk alone', async () => {
    const body = Buffer.from('hello world');
    assert.deepEqual(await send(pool, 'chunked', ['transfer-encoding', 'chunked'], { body, trailers: ['x-checksum', 'abc', 'X-Cost', '7'] }), { status: 200 });
    assert.equal(last(), 'POST /p HTTP/1.1\r\nhost: app\r\ntransfer-encoding: chunked\r\n\r\nb\r\nhello world\r\n0\r\nx-checksum: abc\r\nX-Cost: 7\r\n\r\n');
    assert.deepEqual(await send(pool, 'chunked', ['transfer-encoding', 'chunked'], { body: Buffer.alloc(0), trailers: [] }), { status: 200 });
    assert.equal(last(), 'POST /p HTTP/1.1\r\nhost: app\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n');
  });

  it('sends a whole body of a PUT again on a fresh connection when the reused one closes before any answer', async () => {
    const body = randomBytes(2048);
    assert.deepEqual(await send(pool, 'length', ['content-length', '2048'], { body, trailers: [] }, undefined, 'PUT'), { status: 200 });
    const reused = app.requests.at(-1)!.connection;
    app.drop = (connection) => connection === reused;
    try {
      assert.deepEqual(await send(pool, 'length', ['content-length', '2048'], { body, trailers: [] }, undefined, 'PUT'), { status: 200 });
      assert.equal(app.requests.at(-1)!.connection, app.connections - 1, 'answered on a fresh connection');
      assert.notEqual(app.requests.at(-1)!.connection, reused);
      assert.deepEqual(app.requests.at(-1)!.bytes.subarray(-2048), body);
    } finally {
      app.drop = () => false;
    }
  });

  it('never sends a POST or PATCH twice, with a whole body or none (RFC 9110 §9.2.2)', async () => {
    const body = randomBytes(256);
    for (const [method, kind, headers, whole] of [
      ['POST', 'length', ['content-length', '256'], { body, trailers: [] }],
      ['PATCH', 'length', ['content-length', '256'], { body, trailers: [] }],
      ['POST', 'none', [], undefined],
    ] as const) {
      assert.deepEqual(await send(pool, 'none', [], undefined, undefined, 'GET'), { status: 200 });
      const reused = app.requests.at(-1)!.connection;
      const connections = app.connections;
      const requests = app.requests.length;
      app.drop = (connection) => connection === reused;
      try {
        const outcome = await send(pool, kind, [...headers], whole, undefined, method);
        assert.ok('error' in outcome, `${method} ${kind}: ${JSON.stringify(outcome)}`);
        assert.equal(app.connections, connections, `${method} ${kind}: no second connection`);
        assert.equal(app.requests.length, requests, `${method} ${kind}: nothing answered`);
      } finally {
        app.drop = () => false;
      }
    }
  });

  it('does not send a streamed body again, nor a whole body a second time', async () => {
    const body = randomBytes(512);
    assert.deepEqual(await send(pool, 'length', ['content-length', '512'], undefined, body), { status: 200 });
    const reused = app.requests.at(-1)!.connection;
    let connections = app.connections;
    app.drop = (connection) => connection === reused;
    try {
      const streamed = await send(pool, 'length', ['content-length', '512'], undefined, body);
      assert.ok('error' in streamed, JSON.stringify(streamed));
      assert.equal(app.connections, connections, 'no second connection');
    } finally {
      app.drop = () => false;
    }
    assert.deepEqual(await send(pool, 'length', ['content-length', '512'], { body, trailers: [] }, undefined, 'PUT'), { status: 200 });
    connections = app.connections;
    const requests = app.requests.length;
    app.drop = () => true; // the fresh connection fails too
    try {
      const twice = await send(pool, 'length', ['content-length', '512'], { body, trailers: [] }, undefined, 'PUT');
      assert.ok('error' in twice, JSON.stringify(twice));
      assert.equal(app.connections, connections + 1, 'one retry, no more');
      assert.equal(app.requests.length, requests);
    } finally {
      app.drop = () => false;
    }
  });
});
