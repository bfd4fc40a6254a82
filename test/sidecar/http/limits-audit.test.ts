// Rate limits and audit mode through the frontend: after its burst a limited caller gets 429 (gRPC
// callers would get status 8); in audit mode a request enforce would deny is forwarded, logged with an
// audit line and counted as audit_deny.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BATCH_ID, BILLING_ID, SHOP_POLICY, counterValue, curl, startHarness, startRecordingApp, type Harness, type RecordingApp } from './harness.js';

describe('rate limits and audit mode', () => {
  let app: RecordingApp;
  let h: Harness;
  before(async () => {
    app = await startRecordingApp();
    h = await startHarness({ app: app.url });
  });
  after(async () => {
    await h?.close();
    await app?.close();
  });

  it('429 after the burst, with a JSON reason naming the limit', async () => {
    const statuses: number[] = [];
    let last = '';
    for (let i = 0; i < 5; i++) {
      const r = await curl(h, 'batch', [`${h.url}/orders`]);
      statuses.push(r.status);
      last = r.body;
    }
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    const body = JSON.parse(last) as Record<string, string>;
    assert.equal(body.error, 'rate_limited');
    assert.equal(body.rule, 'limits[0]');
    assert.equal(body.identity, BATCH_ID);
    assert.equal(await counterValue(h.metrics, 'meshward_requests_total', { decision: 'rate_limited', identity: BATCH_ID }), 2);
  });

  it('a gRPC-looking request over HTTP/2 gets grpc-status 8 when rate limited', async () => {
    const r = await curl(h, 'batch', ['--http2', '-H', 'content-type: application/grpc', '-X', 'POST', `${h.url}/shop.v1.Orders/Get`]);
    assert.equal(r.status, 200);
    assert.match(r.headers, /grpc-status: 8/);
    assert.match(r.headers, /grpc-message: rate limit/i);
  });

  it('audit mode forwards what enforce would deny, logs it and counts it', async () => {
    h.setPolicy(SHOP_POLICY.replace('mode: enforce', 'mode: audit'));
    const before = app.seen.length;
    const r = await curl(h, 'billing', ['-X', 'POST', '--data', 'x', `${h.url}/orders`]);
    assert.equal(r.status, 200);
    assert.equal(app.seen.length, before + 1);
    const line = h.logs.find((l) => l.event === 'audit_deny');
    assert.ok(line, 'an audit line');
    assert.equal(line.identity, BILLING_ID);
    assert.equal(line.rule, 'routes[2]');
    assert.match(String(line.reason), /orders:write/);
    assert.equal(await counterValue(h.metrics, 'meshward_requests_total', { decision: 'audit_deny', identity: BILLING_ID }), 1);
    // A path that cannot be normalized is still refused in audit mode.
    const bad = await curl(h, 'billing', ['--path-as-is', `${h.url}/orders/..%2fadmin`]);
    assert.equal(bad.status, 400);
  });
});
