// The sidecar's pool of connections to an http:// app reuses an idle one only until 1 s before the app said
// it would close it (`Keep-Alive: timeout=N`, which node's http server sends: 5 s by default, and it closes at
// 5 s). Reusing it later races the app's close: the request fails, and a POST cannot be sent again
// (RFC 9110 §9.2.2), so the client would get 502. Without the header the pool keeps its own 30 s.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Http1Upstream, reusableUntil } from '../../../src/sidecar/http/upstream-http1.js';
import { parseResponseHead, type UpstreamResponse } from '../../../src/sidecar/http/upstream-response.js';

describe('the app\'s Keep-Alive timeout', () => {
  it('is read from the response head, in any case and order, and ignored when malformed', () => {
    const timeoutOf = (line: string) => {
      const head = parseResponseHead(`HTTP/1.1 200 OK\r\ncontent-length: 0\r\n${line}`, 'GET');
      assert.ok(typeof head !== 'string', String(head));
      return head.keepAliveTimeoutMs;
    };
    assert.equal(timeoutOf('Keep-Alive: timeout=5'), 5000);
    assert.equal(timeoutOf('keep-alive: max=100, timeout=7'), 7000);
    assert.equal(timeoutOf('KEEP-ALIVE: Timeout = 2 , max=5'), 2000);
    assert.equal(timeoutOf('Keep-Alive: timeout=abc'), -1);
    assert.equal(timeoutOf('Keep-Alive: mytimeout=5'), -1);
    assert.equal(timeoutOf('Keep-Alive: timeout=99999999999'), -1);
    assert.equal(timeoutOf('X-Other: timeout=5'), -1);
  });

  it('leaves a 1 s margin (half of a shorter timeout) and never more than the pool\'s own 30 s', () => {
    assert.equal(reusableUntil(1000, 5000), 5000);
    assert.equal(reusableUntil(1000, 1000), 1500);
    assert.equal(reusableUntil(1000, 0), 1000);
    assert.equal(reusableUntil(1000, 600_000), 31_000);
    assert.equal(reusableUntil(1000, -1), 31_000);
  });
});

describe('Http1Upstream against a node app that closes idle connections after 1 s', () => {
  let app: http.Server;
  let connections = 0;
  let pool: Http1Upstream;
  before(async () => {
    app = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    app.keepAliveTimeout = 1000; // node answers `Keep-Alive: timeout=1`
    app.on('connection', () => connections++);
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    pool = new Http1Upstream(new URL(`http://127.0.0.1:${(app.address() as AddressInfo).port}`));
  });
  after(async () => {
    pool.close();
    app.closeAllConnections();
    await new Promise<void>((r) => app.close(() => r()));
  });

  const post = () => new Promise<number>((resolve, reject) => {
    const ex = pool.request('POST', '/orders', ['host', 'app', 'content-length', '2'], 'length', (res: UpstreamResponse) => {
      res.resume();
      resolve(res.statusCode);
    }, reject);
    ex.body!.end('{}');
  });

  it('reuses the connection at once, and not once half the app\'s timeout has passed', async () => {
    assert.equal(await post(), 200);
    assert.equal(await post(), 200);
    assert.equal(connections, 1, 'back to back: one connection');
    // Past the 500 ms the pool allows for a 1 s timeout (and, on a slow machine, possibly past the app's close:
    // either way the POST must go on a fresh connection and succeed).
    await sleep(700);
    assert.equal(await post(), 200);
    assert.equal(connections, 2, 'a fresh connection after the reuse window');
  });
});
