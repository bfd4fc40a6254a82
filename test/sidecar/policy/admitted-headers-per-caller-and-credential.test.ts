// authorize() remembers the x-mesh-principal / x-mesh-scopes / keyId of an admitted alternative per
// (alternative, caller, proofs), so a client repeating its key or token does not rebuild the strings. The
// remembered values must never leak from one caller, key, token, key-file load or policy load to another:
// every row here is asked twice, interleaved with the others, and must give its own answer both times.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Accepted } from '../../../src/auth/verdict.js';
import { compilePolicy, type Decision, type Policy, type Subject, type Verdicts } from '../../../src/sidecar/policy/policy.js';

const FRONTEND: Subject = Object.freeze({ id: 'spiffe://example.org/ns/shop/sa/frontend', spiffeId: 'spiffe://example.org/ns/shop/sa/frontend', ou: [] });
const BATCH: Subject = Object.freeze({ id: 'spiffe://example.org/ns/shop/sa/batch', spiffeId: 'spiffe://example.org/ns/shop/sa/batch', ou: [] });

function policy(frontendScopes: string[]): Policy {
  return compilePolicy({
    grants: [
      { identities: [FRONTEND.id], scopes: frontendScopes },
      { identities: [BATCH.id], scopes: ['orders:read'] },
    ],
    routes: [
      { match: { path: '/both/**' }, scope: 'orders:read', require: ['mtls', 'apikey'] },
      { match: { path: '/either/**' }, scope: 'orders:read', require: { anyOf: [['jwt'], ['apikey']] } },
    ],
  }, 'policy.yaml');
}

function key(id: string, scopes: string[]): Accepted {
  return Object.freeze({ ok: true, kind: 'apikey', principal: `apikey:${id}`, scopes: Object.freeze([...scopes]), keyId: id });
}

function token(sub: string, scopes: string[]): Accepted {
  return Object.freeze({ ok: true, kind: 'jwt', principal: `jwt:https://auth.example.test#${sub}`, scopes: Object.freeze([...scopes]) });
}

function admit(p: Policy, subject: Subject, path: string, verdicts: Verdicts): Pick<Decision, 'allow' | 'principals' | 'scopes' | 'keyId'> {
  const principal = p.principal(subject);
  const pending = p.decide(principal, 'GET', path, 0);
  assert.ok(pending.pending !== undefined, `${path} requires credentials`);
  const d = p.authorize(pending, principal, verdicts, 0);
  return { allow: d.allow, principals: d.principals, scopes: d.scopes, keyId: d.keyId };
}

test('principals, scopes and key id are those of each caller and credential, however often they repeat', () => {
  const p = policy(['orders:read', 'orders:write', 'reports:read']);
  const reader = key('3kTz9QpLm2Xa', ['orders:read', 'reports:read']);
  const writer = key('7QbN2cVx8mKw', ['orders:write', 'orders:read']);
  const alice = token('alice', ['orders:read']);
  const bob = token('bob', ['orders:read', 'reports:read']);
  const NONE_MISSING = { ok: false, kind: 'jwt', reason: 'missing', message: 'no token', wwwAuthenticate: 'Bearer realm="meshward"' } as const;
  const rows: [string, Subject, string, Verdicts, ReturnType<typeof admit>][] = [
    ['frontend + reader', FRONTEND, '/both/1', { apikey: reader }, { allow: true, principals: `${FRONTEND.id} apikey:3kTz9QpLm2Xa`, scopes: 'orders:read reports:read', keyId: '3kTz9QpLm2Xa' }],
    ['frontend + writer', FRONTEND, '/both/1', { apikey: writer }, { allow: true, principals: `${FRONTEND.id} apikey:7QbN2cVx8mKw`, scopes: 'orders:read orders:write', keyId: '7QbN2cVx8mKw' }],
    ['batch + reader (scopes intersect with the caller\'s)', BATCH, '/both/1', { apikey: reader }, { allow: true, principals: `${BATCH.id} apikey:3kTz9QpLm2Xa`, scopes: 'orders:read', keyId: '3kTz9QpLm2Xa' }],
    ['batch + writer', BATCH, '/both/1', { apikey: writer }, { allow: true, principals: `${BATCH.id} apikey:7QbN2cVx8mKw`, scopes: 'orders:read', keyId: '7QbN2cVx8mKw' }],
    ['alice\'s token', FRONTEND, '/either/1', { jwt: alice, apikey: { ...NONE_MISSING, kind: 'apikey', wwwAuthenticate: 'ApiKey realm="meshward"' } }, { allow: true, principals: 'jwt:https://auth.example.test#alice', scopes: 'orders:read', keyId: undefined }],
    ['bob\'s token', FRONTEND, '/either/1', { jwt: bob, apikey: { ...NONE_MISSING, kind: 'apikey', wwwAuthenticate: 'ApiKey realm="meshward"' } }, { allow: true, principals: 'jwt:https://auth.example.test#bob', scopes: 'orders:read reports:read', keyId: undefined }],
    ['the reader key on the other alternative (no caller scopes in it)', BATCH, '/either/1', { jwt: NONE_MISSING, apikey: reader }, { allow: true, principals: 'apikey:3kTz9QpLm2Xa', scopes: 'orders:read reports:read', keyId: '3kTz9QpLm2Xa' }],
  ];
  for (let round = 0; round < 2; round++) {
    for (const [what, subject, path, verdicts, expected] of round === 0 ? rows : [...rows].reverse()) {
      assert.deepEqual(admit(p, subject, path, verdicts), expected, `${what} (round ${round + 1})`);
    }
  }
});

test('a key reloaded with other scopes, and a policy reloaded with other grants, give the new headers', () => {
  const before = policy(['orders:read', 'orders:write']);
  const loaded = key('3kTz9QpLm2Xa', ['orders:read', 'orders:write']);
  assert.equal(admit(before, FRONTEND, '/both/1', { apikey: loaded }).scopes, 'orders:read orders:write');
  // The key file now gives the same key fewer scopes: a new verdict (the key set builds one per load).
  const reloaded = key('3kTz9QpLm2Xa', ['orders:read']);
  assert.equal(admit(before, FRONTEND, '/both/1', { apikey: reloaded }).scopes, 'orders:read');
  assert.equal(admit(before, FRONTEND, '/both/1', { apikey: loaded }).scopes, 'orders:read orders:write', 'the old verdict still gives its own');
  // The policy now grants frontend only orders:read: the caller's principal is computed afresh.
  const after = policy(['orders:read']);
  after.carryRateLimitsFrom(before);
  assert.equal(admit(after, FRONTEND, '/both/1', { apikey: loaded }).scopes, 'orders:read');
  assert.equal(admit(before, FRONTEND, '/both/1', { apikey: loaded }).scopes, 'orders:read orders:write', 'the replaced policy is unchanged');
});

test('a key whose own rate limit is used up stays limited across a policy reload', () => {
  const before = policy(['orders:read']);
  const limited: Accepted = Object.freeze({ ...key('3kTz9QpLm2Xa', ['orders:read']), limit: Object.freeze({ rps: 0.001, burst: 1 }) });
  assert.equal(admit(before, FRONTEND, '/both/1', { apikey: limited }).allow, true);
  assert.equal(admit(before, FRONTEND, '/both/1', { apikey: limited }).allow, false, 'the burst of 1 is used up');
  const after = policy(['orders:read', 'reports:read']);
  after.carryRateLimitsFrom(before);
  assert.equal(admit(after, FRONTEND, '/both/1', { apikey: limited }).allow, false, 'still limited after the reload');
  // Without carrying over (a sidecar's first policy), the key starts full: the check above is not vacuous.
  assert.equal(admit(policy(['orders:read']), FRONTEND, '/both/1', { apikey: limited }).allow, true);
});
