// Path tricks that try to reach a route the caller lacks (/admin needs scope admin, which billing does
// not hold): none gets through, over exact bytes on raw TLS and over curl --path-as-is (HTTP/1.1 and
// HTTP/2); and what the app receives is the normalized path the policy matched.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { curl, firstStatus, rawBody, rawExchange, useRecordingHarness, type Seen } from './harness.js';

const ATTACKS = [
  '/orders/../admin',
  '/orders/%2e%2e/admin',
  '/orders/%2E%2E/admin',
  '//admin',
  '/orders/..%2fadmin',
  '/orders/..%2Fadmin',
  '/orders/..%5cadmin',
  '/orders/..\\admin',
  '/admin;x',
  '/orders;/../admin',
  '/orders/./../../admin',
  '/%61dmin',
  '/orders/%00/../../admin',
  'http://127.0.0.1/admin',
  'https://127.0.0.1/orders/../admin',
  '*',
];

describe('path attacks never reach a route the caller lacks', () => {
  const rig = useRecordingHarness();

  for (const target of ATTACKS) {
    it(`raw request-target ${JSON.stringify(target)} is refused`, async () => {
      const before = rig.app.seen.length;
      const raw = await rawExchange(rig.h, 'billing', `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      const status = firstStatus(raw);
      assert.ok(status === 400 || status === 403, `status ${status} for ${target}: ${raw.slice(0, 200)}`);
      assert.equal(rig.app.seen.length, before, `the app saw ${JSON.stringify(rig.app.seen.at(-1))}`);
    });
  }

  for (const proto of ['--http1.1', '--http2']) {
    for (const target of ['/orders/../admin', '/orders/%2e%2e/admin', '//admin', '/orders/..%2fadmin', '/admin;x']) {
      it(`curl --path-as-is ${proto} ${target} is refused`, async () => {
        const before = rig.app.seen.length;
        const r = await curl(rig.h, 'billing', [proto, '--path-as-is', `${rig.h.url}${target}`]);
        assert.ok(r.status === 400 || r.status === 403, `status ${r.status}`);
        const body = JSON.parse(r.body) as Record<string, string>;
        assert.ok(body.error === 'bad_request' || body.error === 'forbidden');
        assert.ok(body.reason !== undefined && body.reason.length > 0);
        assert.equal(rig.app.seen.length, before);
      });
    }
  }

  it('the admin route itself is denied for billing and allowed for ops', async () => {
    const denied = await curl(rig.h, 'billing', [`${rig.h.url}/admin`]);
    assert.equal(denied.status, 403);
  });

  for (const [sent, received] of [
    ['/orders/a/./b/../c?q=1&r=%2F', '/orders/a/c?q=1&r=%2F'],
    ['/orders/%7Euser/%41', '/orders/~user/A'],
    ['/orders/x/..', '/orders/'],
  ] as const) {
    it(`the app receives the normalized path: ${sent} -> ${received}`, async () => {
      const raw = await rawExchange(rig.h, 'billing', `GET ${sent} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      assert.equal(firstStatus(raw), 200, raw.slice(0, 300));
      const seen = JSON.parse(rawBody(raw)) as Seen;
      assert.equal(seen.url, received);
      assert.equal(rig.app.seen.at(-1)!.url, received);
    });
  }
});
