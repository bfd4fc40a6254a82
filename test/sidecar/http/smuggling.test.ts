// HTTP/1.1 request smuggling shapes: each is refused with 400 (431 for oversized headers), logged, and
// never forwarded: the app sees nothing, and nothing pipelined behind it is answered either.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { counterValue, firstStatus, rawBody, rawExchange, useRecordingHarness } from './harness.js';

const SMUGGLED = 'GET /orders/smuggled HTTP/1.1\r\nHost: a\r\n\r\n';

const CASES: [string, string, number][] = [
  ['Content-Length with Transfer-Encoding', `POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`, 400],
  ['Transfer-Encoding with Content-Length', `POST /orders HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n${SMUGGLED}`, 400],
  ['two different Content-Length', `POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 48\r\n\r\nabcd${SMUGGLED}`, 400],
  ['two equal Content-Length', `POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd`, 400],
  ['Content-Length list', `POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 4\r\n\r\nabcd`, 400],
  ['signed Content-Length', `POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\nabcd`, 400],
  ['bad chunk size', `POST /orders HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`, 400],
  ['overflowing chunk size', `POST /orders HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n`, 400],
  ['chunk size ended by a bare LF', `POST /orders HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n`, 400],
  ['Transfer-Encoding gzip, chunked', `POST /orders HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding chunked, gzip', `POST /orders HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n`, 400],
  ['two Transfer-Encoding', `POST /orders HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['Transfer-Encoding xchunked', `POST /orders HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`, 400],
  ['space before the colon', `POST /orders HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n`, 400],
  ['obs-fold header', `GET /orders HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n`, 400],
  ['obs-fold Transfer-Encoding', `POST /orders HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n`, 400],
  ['absolute-form target', `GET http://127.0.0.1/orders HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
  ['asterisk-form target', `OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
  ['NUL in the path', `GET /orders/a\x00b HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
  ['control byte in the path', `GET /orders/a\x01b HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
  ['DEL in the path', `GET /orders/a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
  ['tab in the path', `GET /orders/a\tb HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
  ['two Host headers', `GET /orders HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`, 400],
  ['no Host header', `GET /orders HTTP/1.1\r\n\r\n`, 400],
  ['HTTP/0.9 request line', `GET /orders\r\n\r\n`, 400],
  ['bare LF line ends', `GET /orders HTTP/1.1\nHost: a\n\n`, 400],
  ['bare CR in a header value', `GET /orders HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n`, 400],
  ['oversized headers', `GET /orders HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
];

describe('HTTP/1.1 request smuggling shapes are refused and never forwarded', () => {
  const rig = useRecordingHarness();

  for (const [name, bytes, status] of CASES) {
    it(`${name}: ${status}, logged, the app sees nothing`, async () => {
      const seenBefore = rig.app.seen.length;
      const logsBefore = rig.h.logs.filter((l) => l.event === 'bad_request').length;
      const raw = await rawExchange(rig.h, 'frontend', bytes);
      assert.equal(firstStatus(raw), status, JSON.stringify(raw.slice(0, 300)));
      assert.equal(raw.match(/HTTP\/1\.1 \d{3}/g)?.length, 1, 'exactly one response, the connection is closed after it');
      assert.match(raw, /\r\nConnection: close\r\n/i);
      const body = JSON.parse(rawBody(raw)) as Record<string, string>;
      assert.ok(body.error === 'bad_request' || body.error === 'headers_too_large', body.error);
      assert.ok(body.reason!.length > 0);
      assert.equal(rig.app.seen.length, seenBefore, `the app saw ${JSON.stringify(rig.app.seen.at(-1)?.url)}`);
      assert.equal(rig.h.logs.filter((l) => l.event === 'bad_request').length, logsBefore + 1, 'one log line');
    });
  }

  it('refusals are counted as bad_request', async () => {
    assert.ok((await counterValue(rig.h.metrics, 'meshward_requests_total', { decision: 'bad_request', route: 'protocol' })) >= CASES.length);
  });

  it('a well-formed chunked request with a chunk extension still goes through', async () => {
    const raw = await rawExchange(rig.h, 'frontend', 'POST /orders HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;x=y\r\nabc\r\n0\r\n\r\n');
    assert.equal(firstStatus(raw), 200, raw.slice(0, 200));
    assert.equal(rig.app.seen.at(-1)!.bytes, 3);
    assert.equal(rig.app.seen.at(-1)!.headers['transfer-encoding'], 'chunked');
  });
});
