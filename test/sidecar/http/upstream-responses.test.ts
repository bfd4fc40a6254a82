// What an http:// app may answer, through the pooled HTTP/1.1 upstream and its response parser: chunked
// bodies with trailers, close-delimited bodies, 204, 1xx before the real answer, keep-alive reuse, an
// app closing idle connections; and malformed answers (conflicting lengths, obs-fold, bad chunk size)
// become a 502, never a guess.
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { curl, firstStatus, rawBody, rawExchange, startHarness, type Harness } from './harness.js';

const ANSWERS: Record<string, string> = {
  '/orders/chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-sum: 11\r\n\r\n',
  '/orders/no-content': 'HTTP/1.1 204 No Content\r\nX-Done: yes\r\n\r\n',
  '/orders/early-hints': 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/orders/keep': 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nkept',
  '/orders/two-lengths': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
  '/orders/obs-fold': 'HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok',
  '/orders/bad-chunk': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
  '/orders/garbage': 'HTTP/9 200 OK\r\n\r\n',
};

describe('answers from an http:// app', () => {
  let app: net.Server;
  let h: Harness;
  let connections = 0;
  const sockets = new Set<net.Socket>();
  before(async () => {
    app = net.createServer((socket) => {
      connections++;
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      let buf = '';
      socket.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        for (let end = buf.indexOf('\r\n\r\n'); end !== -1; end = buf.indexOf('\r\n\r\n')) {
          const head = buf.slice(0, end);
          buf = buf.slice(end + 4);
          const path = head.split(' ')[1]!;
          if (path === '/orders/close-delimited') {
            socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end');
            return;
          }
          if (path === '/orders/then-close') {
            socket.end('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nclosed');
            return;
          }
          socket.write(ANSWERS[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
        }
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    h = await startHarness({ app: `http://127.0.0.1:${(app.address() as AddressInfo).port}` });
  });
  after(async () => {
    await h?.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => (app ? app.close(() => r()) : r()));
  });

  const get = (path: string): Promise<string> => rawExchange(h, 'frontend', `GET ${path} HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nConnection: close\r\n\r\n`);

  it('a chunked body with trailers reaches the client with its trailers', async () => {
    const raw = await get('/orders/chunked');
    assert.equal(firstStatus(raw), 200);
    assert.equal(rawBody(raw), 'hello world');
    assert.match(raw, /\r\n0\r\nx-sum: 11\r\n\r\n$/);
  });

  it('a close-delimited body is passed on whole', async () => {
    const raw = await get('/orders/close-delimited');
    assert.equal(firstStatus(raw), 200);
    assert.equal(rawBody(raw), 'until the end');
  });

  it('204 has no body, 1xx before the answer is skipped', async () => {
    const nc = await curl(h, 'frontend', [`${h.url}/orders/no-content`]);
    assert.equal(nc.status, 204);
    assert.match(nc.headers, /x-done: yes/i);
    const eh = await curl(h, 'frontend', [`${h.url}/orders/early-hints`]);
    assert.equal(eh.status, 200);
    assert.equal(eh.body, 'ok');
  });

  it('keep-alive connections to the app are reused, and an app closing one is survived', async () => {
    const before = connections;
    for (let i = 0; i < 5; i++) assert.equal((await curl(h, 'frontend', [`${h.url}/orders/keep`])).body, 'kept');
    assert.ok(connections - before <= 1, 'at most one new app connection for five sequential requests');
    assert.equal((await curl(h, 'frontend', [`${h.url}/orders/then-close`])).body, 'closed');
    assert.equal((await curl(h, 'frontend', [`${h.url}/orders/keep`])).body, 'kept');
  });

  for (const path of ['/orders/two-lengths', '/orders/obs-fold', '/orders/bad-chunk', '/orders/garbage']) {
    it(`a malformed answer (${path}) becomes a 502 or a cut response, never a guess`, async () => {
      const r = await get(path);
      const status = firstStatus(r);
      if (status === 502) {
        assert.match(rawBody(r), /malformed response/);
      } else {
        // The head was already taken (bad chunk): the client's connection is cut, the response never completes.
        assert.ok(status === 0 || status === 200, `status ${status}`);
        assert.ok(!/\r\n0\r\n\r\n$/.test(r), 'the response is not terminated as if complete');
      }
    });
  }
});
