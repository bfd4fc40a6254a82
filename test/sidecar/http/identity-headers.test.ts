// curl over HTTP/1.1 and HTTP/2 through the frontend to an http:// app: a granted caller reaches the app,
// which sees the identity headers (and never the spoofed ones); a caller without the scope gets a 403
// whose reason names the rule and the missing scope, and the app never sees that request.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BILLING_ID, counterValue, curl, FRONTEND_ID, useRecordingHarness, type Seen } from './harness.js';

describe('identity headers and denials over curl', () => {
  const rig = useRecordingHarness();

  for (const proto of ['--http1.1', '--http2'] as const) {
    it(`a granted caller reaches the app with identity headers (${proto})`, async () => {
      const r = await curl(rig.h, 'frontend', [proto, `${rig.h.url}/orders/42?x=1`]);
      assert.equal(r.status, 200);
      const seen = JSON.parse(r.body) as Seen;
      assert.equal(seen.url, '/orders/42?x=1');
      assert.equal(seen.headers['x-mesh-client-id'], FRONTEND_ID);
      assert.equal(seen.headers['x-mesh-scopes'], 'orders:read orders:write');
      assert.equal(seen.headers['x-forwarded-proto'], 'https');
      const xfcc = String(seen.headers['x-forwarded-client-cert']);
      assert.match(xfcc, /Hash=[0-9a-f]{64}/);
      assert.ok(xfcc.includes(`URI=${FRONTEND_ID}`), xfcc);
      assert.equal(seen.headers.host, `127.0.0.1:${rig.h.port}`);
      if (proto === '--http2') assert.match(r.headers, /^HTTP\/2 200/);
      assert.match(r.headers, /x-app: recording/i);
    });

    it(`spoofed x-forwarded-client-cert / x-mesh-* headers never reach the app (${proto})`, async () => {
      const before = rig.app.seen.length;
      const r = await curl(rig.h, 'billing', [
        proto,
        '-H', 'X-Forwarded-Client-Cert: By=evil;Hash=00;URI=spiffe://example.org/ns/shop/sa/frontend',
        '-H', 'x-mesh-client-id: spiffe://example.org/ns/shop/sa/frontend',
        '-H', 'X-MESH-SCOPES: admin orders:write',
        '-H', 'x-mesh-anything: 1',
        '-H', 'X-Forwarded-Proto: http',
        `${rig.h.url}/orders`,
      ]);
      assert.equal(r.status, 200);
      assert.equal(rig.app.seen.length, before + 1);
      const seen = rig.app.seen.at(-1)!;
      assert.equal(seen.headers['x-mesh-client-id'], BILLING_ID);
      assert.equal(seen.headers['x-mesh-scopes'], 'orders:read');
      assert.equal(seen.headers['x-mesh-anything'], undefined);
      assert.equal(seen.headers['x-forwarded-proto'], 'https');
      assert.ok(!String(seen.headers['x-forwarded-client-cert']).includes('evil'));
      assert.ok(String(seen.headers['x-forwarded-client-cert']).includes(`URI=${BILLING_ID}`));
      // Every x-mesh-* header the app got is one the sidecar set.
      assert.deepEqual(Object.keys(seen.headers).filter((k) => k.startsWith('x-mesh-')).sort(), ['x-mesh-client-id', 'x-mesh-scopes']);
    });

    it(`a caller without the scope gets 403 naming the rule and the scope (${proto})`, async () => {
      const before = rig.app.seen.length;
      const r = await curl(rig.h, 'billing', [proto, '-X', 'POST', '--data', 'x=1', `${rig.h.url}/orders`]);
      assert.equal(r.status, 403);
      const body = JSON.parse(r.body) as Record<string, string>;
      assert.equal(body.error, 'forbidden');
      assert.equal(body.rule, 'routes[2]');
      assert.match(body.reason!, /orders:write/);
      assert.equal(body.identity, BILLING_ID);
      assert.equal(rig.app.seen.length, before, 'the app never sees a denied request');
    });
  }

  it('Expect: 100-continue is answered after the policy: allowed gets through, denied gets 403', async () => {
    const allowed = await curl(rig.h, 'frontend', ['--http1.1', '-H', 'Expect: 100-continue', '--data-binary', 'body', `${rig.h.url}/orders`]);
    assert.equal(allowed.status, 200);
    const seen = JSON.parse(allowed.body) as Seen;
    assert.equal(seen.bytes, 4);
    assert.equal(seen.headers.expect, undefined);
    const denied = await curl(rig.h, 'billing', ['--http1.1', '-H', 'Expect: 100-continue', '--data-binary', 'body', `${rig.h.url}/orders`]);
    assert.equal(denied.status, 403);
    assert.doesNotMatch(denied.headers, /100 Continue/);
  });

  it('hop-by-hop headers and the headers Connection names are not forwarded', async () => {
    const r = await curl(rig.h, 'frontend', ['--http1.1', '-H', 'Connection: x-secret', '-H', 'X-Secret: 1', '-H', 'Keep-Alive: timeout=5', '-H', 'Proxy-Authorization: Basic eA==', '-H', 'TE: trailers', `${rig.h.url}/orders`]);
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as Seen;
    for (const name of ['x-secret', 'keep-alive', 'proxy-authorization', 'te']) assert.equal(seen.headers[name], undefined, name);
  });

  it('denials are logged with an audit line and counted', async () => {
    const line = rig.h.logs.find((l) => l.event === 'request_denied' && l.identity === BILLING_ID);
    assert.ok(line, 'an audit line for the denial');
    assert.equal(line.method, 'POST');
    assert.equal(line.path, '/orders');
    assert.equal(line.rule, 'routes[2]');
    assert.match(String(line.reason), /orders:write/);
    assert.equal(await counterValue(rig.h.metrics, 'meshward_requests_total', { decision: 'deny', identity: BILLING_ID }), 3);
    assert.ok((await counterValue(rig.h.metrics, 'meshward_requests_total', { decision: 'allow', identity: FRONTEND_ID })) >= 3);
  });
});
