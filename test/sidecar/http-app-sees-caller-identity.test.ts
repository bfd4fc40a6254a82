// End to end through the real binary with curl (HTTP/1.1 and --http2): a granted caller reaches the
// HTTP/1.1 app, which receives the caller's identity in x-forwarded-client-cert (Envoy format),
// x-mesh-client-id and x-mesh-scopes, never the spoofed values the caller sent; a caller without the
// scope gets 403 naming the rule and the missing scope.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { FRONTEND_ID, SERVER_ID, STRANGER_ID } from '../support/sidecar.js';
import { runningSidecar } from '../support/running-sidecar.js';

const rig = runningSidecar('http');

function curl(args: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '--max-time', '15', '-w', '\n%{http_code}', ...args], (err, stdout, stderr) => {
      if (err) return reject(new Error(`curl failed: ${stderr}`));
      const at = stdout.lastIndexOf('\n');
      resolve({ status: Number(stdout.slice(at + 1)), body: stdout.slice(0, at) });
    });
  });
}

for (const version of ['--http1.1', '--http2']) {
  test(`curl ${version}: the app sees the caller's identity, not the spoofed headers`, async () => {
    const leaf = rig.scenario.pki.leaf({ spiffeId: FRONTEND_ID, dns: ['frontend.shop.svc'] });
    const files = rig.scenario.clientFiles(leaf, 'frontend');
    const r = await curl([
      version,
      '--cacert', files.ca, '--cert', files.cert, '--key', files.key,
      '-H', 'x-forwarded-client-cert: By=spiffe://evil;URI=spiffe://example.org/ns/ops/sa/admin',
      '-H', 'x-mesh-client-id: spiffe://example.org/ns/ops/sa/admin',
      '-H', 'x-mesh-scopes: admin:all',
      `https://localhost:${rig.port}/orders/42`,
    ]);
    assert.equal(r.status, 200, r.body);
    const seen = JSON.parse(r.body) as { url: string; headers: Record<string, string> };
    assert.equal(seen.url, '/orders/42');
    assert.equal(seen.headers['x-mesh-client-id'], FRONTEND_ID);
    assert.equal(seen.headers['x-mesh-scopes'], 'orders:read orders:write redis:connect');
    assert.equal(
      seen.headers['x-forwarded-client-cert'],
      `By=${SERVER_ID};Hash=${leaf.cert.fingerprintSha256};Subject="";URI=${FRONTEND_ID};DNS=frontend.shop.svc`,
    );
  });
}

test('a caller without the scope gets 403 naming the rule and the missing scope', async () => {
  const files = rig.scenario.clientFiles(rig.scenario.pki.leaf({ spiffeId: STRANGER_ID }), 'stranger');
  const seenBefore = rig.app.seen.length;
  const r = await curl(['--cacert', files.ca, '--cert', files.cert, '--key', files.key, `https://localhost:${rig.port}/orders/42`]);
  assert.equal(r.status, 403);
  const body = JSON.parse(r.body) as { error: string; reason: string; rule: string; identity: string };
  assert.equal(body.error, 'forbidden');
  assert.equal(body.identity, STRANGER_ID);
  assert.equal(body.rule, 'routes[0]');
  assert.match(body.reason, /orders:read/);
  assert.equal(rig.app.seen.length, seenBefore, 'a denied request never reaches the app');
});
