// The policy engine end to end: grants by SPIFFE pattern and by cn/ou, decide() for every outcome, audit
// mode, rate limits, tcp connect, principals from another policy, and the Must-show path tricks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadPolicyFile, parsePolicy, type Subject } from '../../../src/sidecar/policy/policy.js';
import { isMeshwardError } from '../../../src/errors.js';
import { BILLING_GRANT, GRPC_ORDERS_ROUTE, LEGACY_BATCH_GRANT, ORDERS_ROUTES, PUBLIC_HEALTHZ_ROUTE, policyDocument } from '../../support/policy-documents.js';
import { tempDir } from '../../support/temp-dir.js';

const DOC = policyDocument({
  grants: [
    // The frontend's scopes written out of order: the grants test expects them sorted.
    '  - identities: ["spiffe://example.org/ns/shop/sa/frontend"]\n    scopes: [orders:write, orders:read]\n',
    BILLING_GRANT,
    '  - identities: ["spiffe://example.org/ns/*/sa/admin"]\n    scopes: [admin]\n',
    LEGACY_BATCH_GRANT,
    '  - subjects: [{ou: ops}]\n    scopes: [admin, redis:connect]\n',
  ],
  routes: [ORDERS_ROUTES, GRPC_ORDERS_ROUTE, '  - match: {path: /admin/**}\n    scope: admin\n', PUBLIC_HEALTHZ_ROUTE],
  rest: `tcp: {scope: redis:connect}
limits:
  - identities: ["spiffe://example.org/ns/billing/**"]
    rps: 1
    burst: 2
  - subjects: [{ou: ops}]
    rps: 100
`,
});

const spiffe = (id: string): Subject => ({ spiffeId: id, ou: [], id });
const FRONTEND = spiffe('spiffe://example.org/ns/shop/sa/frontend');
const BILLING = spiffe('spiffe://example.org/ns/billing/sa/invoices');
const ADMIN = spiffe('spiffe://example.org/ns/tools/sa/admin');
const STRANGER = spiffe('spiffe://example.org/ns/shop/sa/other');
const LEGACY: Subject = { cn: 'legacy-batch', ou: ['payments', 'batch'], id: 'CN=legacy-batch,OU=payments,OU=batch' };
const OPS: Subject = { cn: 'pager', ou: ['ops'], id: 'CN=pager,OU=ops' };

test('grants: scopes by SPIFFE pattern and by cn/ou, sorted, once per connection', () => {
  const policy = parsePolicy(DOC, 'policy.yaml');
  const cases: [Subject, string][] = [
    [FRONTEND, 'orders:read orders:write'],
    [BILLING, 'orders:read'],
    [spiffe('spiffe://example.org/ns/billing'), ''],
    [spiffe('spiffe://example.org/ns/billing/a/b/c'), 'orders:read'],
    [ADMIN, 'admin'],
    [spiffe('spiffe://example.org/ns/tools/sa/admin/x'), ''],
    [spiffe('spiffe://other.org/ns/shop/sa/frontend'), ''],
    [STRANGER, ''],
    [LEGACY, 'orders:read'],
    [{ cn: 'legacy-batch', ou: ['billing'], id: 'CN=legacy-batch,OU=billing' }, ''],
    [{ cn: 'legacy-batch', ou: [], id: 'CN=legacy-batch' }, ''],
    [OPS, 'admin redis:connect'],
    // Subject grants are for certificates without a SPIFFE ID only.
    [{ ...FRONTEND, cn: 'legacy-batch', ou: ['payments'] }, 'orders:read orders:write'],
    [{ ...STRANGER, cn: 'legacy-batch', ou: ['payments'] }, ''],
  ];
  for (const [subject, scopes] of cases) {
    const p = policy.principal(subject);
    assert.equal(p.scopeHeader, scopes, subject.id);
    assert.deepEqual([...p.scopes], scopes === '' ? [] : scopes.split(' '));
    assert.equal(p.id, subject.id);
  }
  assert.deepEqual(JSON.parse(JSON.stringify(policy.principal(FRONTEND))), {
    id: FRONTEND.id,
    scopes: {},
    scopeHeader: 'orders:read orders:write',
  });
});

test('decide: allow, missing scope, no route, public, gRPC paths', () => {
  const policy = parsePolicy(DOC, 'policy.yaml');
  const frontend = policy.principal(FRONTEND);
  const stranger = policy.principal(STRANGER);
  assert.deepEqual(policy.decide(frontend, 'GET', '/orders/1?expand=items', 0), {
    allow: true, status: 200, wouldDeny: false, reason: 'scope orders:read granted', rule: 'routes[0]',
    target: '/orders/1?expand=items', scope: 'orders:read',
  });
  assert.deepEqual(policy.decide(stranger, 'POST', '/orders', 0), {
    allow: false, status: 403, wouldDeny: true, reason: 'missing scope orders:write', rule: 'routes[1]',
    target: '/orders', scope: 'orders:write',
  });
  assert.deepEqual(policy.decide(frontend, 'DELETE', '/orders/1', 0), {
    allow: false, status: 403, wouldDeny: true, reason: 'no route matches DELETE /orders/1', rule: 'no-route', target: '/orders/1',
  });
  assert.deepEqual(policy.decide(stranger, 'GET', '/healthz', 0), {
    allow: true, status: 200, wouldDeny: false, reason: 'public route', rule: 'routes[4]', target: '/healthz',
  });
  assert.equal(policy.decide(frontend, 'POST', '/shop.v1.Orders/GetOrder', 0).rule, 'routes[2]');
  assert.equal(policy.decide(stranger, 'POST', '/shop.v1.Orders/GetOrder', 0).reason, 'missing scope orders:read');
  assert.equal(policy.decide(frontend, 'POST', '/shop.v1.Orders/Get/Extra', 0).rule, 'no-route');
});

test('decide: none of the Must-show tricks reaches a route the caller lacks; the app gets the normalized path', () => {
  const policy = parsePolicy(DOC, 'policy.yaml');
  const frontend = policy.principal(FRONTEND);
  const tricks: [target: string, status: number, rule: string, target: string][] = [
    ['/orders/../admin', 403, 'routes[3]', '/admin'],
    ['/orders/%2e%2e/admin', 403, 'routes[3]', '/admin'],
    ['/orders/%2E./admin/x', 403, 'routes[3]', '/admin/x'],
    ['//admin', 403, 'routes[3]', '/admin'],
    // '..' removes the empty segment, as RFC 3986 and WHATWG URL do: the app gets an orders path, not /admin.
    ['/orders//../admin', 200, 'routes[0]', '/orders/admin'],
    ['/orders/..%2fadmin', 400, 'path', ''],
    ['/admin;x', 400, 'path', ''],
    ['/orders;x/../admin', 400, 'path', ''],
    ['/orders/..\\admin', 400, 'path', ''],
    ['http://x/admin', 400, 'path', ''],
    ['/admin%00', 400, 'path', ''],
    ['/%2e%2e/admin', 400, 'path', ''],
    ['/%61dmin', 403, 'routes[3]', '/admin'],
    ['/ADMIN', 403, 'no-route', '/ADMIN'],
  ];
  for (const [target, status, rule, forwarded] of tricks) {
    const d = policy.decide(frontend, 'GET', target, 0);
    assert.equal(d.status, status, target);
    assert.equal(d.rule, rule, target);
    assert.equal(d.target, forwarded, target);
    assert.equal(d.allow, status === 200, target);
  }
  const bad = policy.decide(frontend, 'GET', '/orders/..%2fadmin', 0);
  assert.equal(bad.reason, "path rejected: encoded '/'");
  assert.equal(bad.wouldDeny, true);
});

test('audit mode: would-be 403 and 429 are let through and marked; 400 stays 400', () => {
  const policy = parsePolicy(`mode: audit\n${DOC}`, 'policy.yaml');
  const stranger = policy.principal(STRANGER);
  const denied = policy.decide(stranger, 'POST', '/orders', 0);
  assert.deepEqual(denied, {
    allow: true, status: 403, wouldDeny: true, reason: 'missing scope orders:write', rule: 'routes[1]', target: '/orders', scope: 'orders:write',
  });
  assert.deepEqual(
    [policy.decide(stranger, 'GET', '/nowhere', 0).allow, policy.decide(stranger, 'GET', '/nowhere', 0).status],
    [true, 403],
  );
  const bad = policy.decide(stranger, 'GET', '/a/..%2f..', 0);
  assert.deepEqual([bad.allow, bad.status, bad.target], [false, 400, '']);
  const billing = policy.principal(BILLING);
  const statuses = [0, 1, 2].map(() => policy.decide(billing, 'GET', '/orders', 0));
  assert.deepEqual(statuses.map((d) => [d.allow, d.status, d.wouldDeny]), [[true, 200, false], [true, 200, false], [true, 429, true]]);
  assert.equal(statuses[2]!.rule, 'limits[0]');
  assert.equal(policy.connect(stranger, 0).allow, true);
  assert.equal(policy.connect(stranger, 0).wouldDeny, true);
});

test('rate limits: first matching entry, per identity, after the scope check, with injected time', () => {
  const policy = parsePolicy(DOC, 'policy.yaml');
  const billing = policy.principal(BILLING);
  const other = policy.principal(spiffe('spiffe://example.org/ns/billing/sa/other'));
  assert.equal(policy.decide(billing, 'GET', '/orders', 1000).status, 200);
  assert.equal(policy.decide(billing, 'POST', '/orders', 1000).status, 403, 'denied requests take no token');
  assert.equal(policy.decide(billing, 'GET', '/orders', 1000).status, 200);
  const limited = policy.decide(billing, 'GET', '/orders/1', 1000);
  assert.deepEqual(limited, {
    allow: false, status: 429, wouldDeny: true, reason: 'rate limit 1 rps exceeded', rule: 'limits[0]', target: '/orders/1', scope: 'orders:read',
  });
  assert.equal(policy.decide(other, 'GET', '/orders', 1000).status, 200, 'another identity has its own bucket');
  assert.equal(policy.decide(billing, 'GET', '/healthz', 1500).status, 429, 'public routes count too');
  assert.equal(policy.decide(billing, 'GET', '/orders', 2000).status, 200, 'refilled after 1 s');
  const frontend = policy.principal(FRONTEND);
  for (let i = 0; i < 50; i++) assert.equal(policy.decide(frontend, 'GET', '/orders', 1000).status, 200, 'no limit entry: unlimited');
  const ops = policy.principal(OPS);
  let allowed = 0;
  for (let i = 0; i < 150; i++) if (policy.decide(ops, 'GET', '/admin/x', 5000).status === 200) allowed++;
  assert.equal(allowed, 100, 'limits[1] by subject: burst defaults to rps');
});

test('connect: the tcp scope, then limits; a policy without tcp denies', () => {
  const policy = parsePolicy(DOC, 'policy.yaml');
  assert.deepEqual(policy.connect(policy.principal(OPS), 0), {
    allow: true, status: 200, wouldDeny: false, reason: 'scope redis:connect granted', rule: 'tcp', target: '', scope: 'redis:connect',
  });
  assert.deepEqual(policy.connect(policy.principal(FRONTEND), 0), {
    allow: false, status: 403, wouldDeny: true, reason: 'missing scope redis:connect', rule: 'tcp', target: '', scope: 'redis:connect',
  });
  const noTcp = parsePolicy('routes:\n  - match: {path: /**}\n    public: true\n', 'p.yaml');
  assert.deepEqual(noTcp.connect(noTcp.principal(OPS), 0), {
    allow: false, status: 403, wouldDeny: true, reason: 'policy has no tcp scope', rule: 'tcp', target: '',
  });
});

test('a principal from an earlier policy is re-derived from its scopes and id', () => {
  const before = parsePolicy(DOC, 'policy.yaml');
  const after = parsePolicy(DOC.replace('rps: 1\n    burst: 2', 'rps: 1\n    burst: 1'), 'policy.yaml');
  const old = before.principal(BILLING);
  assert.equal(after.decide(old, 'GET', '/orders', 0).status, 200);
  assert.equal(after.decide(old, 'GET', '/orders', 0).status, 429, "the new policy's limit applies");
  assert.equal(after.decide(old, 'POST', '/orders', 0).reason, 'missing scope orders:write');
});

test('loadPolicyFile reads YAML from disk and names the file in errors', () => {
  const { dir, cleanup: removeDir } = tempDir();
  try {
    const good = path.join(dir, 'policy.yaml');
    fs.writeFileSync(good, DOC);
    assert.equal(loadPolicyFile(good).source, good);
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, 'routes:\n  - match: {path: /x}\n    scope: nope\n');
    assert.throws(() => loadPolicyFile(bad), (err: Error) => err.message.startsWith(`${bad}: routes[0].scope: "nope" is not granted`));
    assert.throws(() => loadPolicyFile(path.join(dir, 'missing.yaml')), (err: unknown) => isMeshwardError(err) && err.code === 'not_found');
  } finally {
    removeDir();
  }
});
