// Rate limits and audit mode through the frontend: after its burst a limited caller gets 429 (gRPC
// callers would get status 8); in audit mode a request enforce would deny is forwarded, logged with an
// audit line and counted as audit_deny.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BATCH_ID, BILLING_ID, counterValue, curl, SHOP_POLICY, useRecordingHarness } from './harness.js';

describe('rate limits and audit mode', () => {
  const rig = useRecordingHarness();

  it('429 after the burst, with a JSON reason naming the limit', async () => {
    const statuses: number[] = [];
    let last = '';
    for (let i = 0; i < 5; i++) {
      const r = await curl(rig.h, 'batch', [`${rig.h.url}/orders`]);
      statuses.push(r.status);
      last = r.body;
    }
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    const body = JSON.parse(last) as Record<string, string>;
    assert.equal(body.error, 'rate_limited');
    assert.equal(body.rule, 'limits[0]');
    assert.equal(body.identity, BATCH_ID);
    assert.equal(await counterValue(rig.h.metrics, 'meshward_requests_total', { decision: 'rate_limited', identity: BATCH_ID }), 2);
  });

  it('a gRPC-looking request over HTTP/2 gets grpc-status 8 when rate limited', async () => {
    const r = await curl(rig.h, 'batch', ['--http2', '-H', 'content-type: application/grpc', '-X', 'POST', `${rig.h.url}/shop.v1.Orders/Get`]);
    assert.equal(r.status, 200);
    assert.match(r.headers, /grpc-status: 8/);
    assert.match(r.headers, /grpc-message: rate limit/i);
  });

  it('audit mode forwards what enforce would deny, logs it and counts it', async () => {
    rig.h.setPolicy(SHOP_POLICY.replace('mode: enforce', 'mode: audit'));
    const before = rig.app.seen.length;
    const r = await curl(rig.h, 'billing', ['-X', 'POST', '--data', 'x', `${rig.h.url}/orders`]);
    assert.equal(r.status, 200);
    assert.equal(rig.app.seen.length, before + 1);
    const line = rig.h.logs.find((l) => l.event === 'audit_deny');
    assert.ok(line, 'an audit line');
    assert.equal(line.identity, BILLING_ID);
    assert.equal(line.rule, 'routes[2]');
    assert.match(String(line.reason), /orders:write/);
    assert.equal(await counterValue(rig.h.metrics, 'meshward_requests_total', { decision: 'audit_deny', identity: BILLING_ID }), 1);
    // A path that cannot be normalized is still refused in audit mode.
    const bad = await curl(rig.h, 'billing', ['--path-as-is', `${rig.h.url}/orders/..%2fadmin`]);
    assert.equal(bad.status, 400);
  });
});
