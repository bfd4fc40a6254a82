// `meshward policy check` driven as a user runs it: the real binary, exit codes, text and JSON output,
// callers named by SPIFFE ID or by certificate, and broken policy files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTestPki } from '../../support/pki-fixtures.js';
import { FRONTEND_GRANT, LEGACY_BATCH_GRANT, ORDERS_ROUTES, PUBLIC_HEALTHZ_ROUTE, policyDocument } from '../../support/policy-documents.js';
import { tempDir } from '../../support/temp-dir.js';

// dist/test/sidecar/policy -> repo root
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const BIN = path.join(ROOT, 'bin', 'meshward.js');

const POLICY = policyDocument({ grants: [FRONTEND_GRANT, LEGACY_BATCH_GRANT], routes: [ORDERS_ROUTES, PUBLIC_HEALTHZ_ROUTE] });
const FRONTEND = 'spiffe://example.org/ns/shop/sa/frontend';

let dir = '';
let removeDir = (): void => {};
let policyFile = '';

before(() => {
  ({ dir: dir, cleanup: removeDir } = tempDir());
  policyFile = path.join(dir, 'policy.yaml');
  fs.writeFileSync(policyFile, POLICY);
});

after(() => {
  removeDir();
});

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BIN, 'policy', 'check', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('ALLOW: exit 0, the rule, the reason, the identity, its scopes and what the app gets', () => {
  const r = run('--policy', policyFile, '--spiffe-id', FRONTEND, '--method', 'GET', '--path', '/orders/../orders/1?x=1');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(
    r.stdout,
    [
      'ALLOW  GET /orders/../orders/1?x=1',
      '  rule:     routes[0]',
      '  reason:   scope orders:read granted',
      `  identity: ${FRONTEND}`,
      '  scopes:   orders:read orders:write',
      '  app gets: /orders/1?x=1',
      '',
    ].join('\n'),
  );
});

test('DENY: exit 1 with the rule and the missing scope, or no-route', () => {
  const missing = run('--policy', policyFile, '--spiffe-id', 'spiffe://example.org/ns/other/sa/x', '--method', 'post', '--path', '/orders');
  assert.equal(missing.status, 1);
  assert.match(missing.stdout, /^DENY \(403\)  POST \/orders\n  rule:     routes\[1\]\n  reason:   missing scope orders:write\n/);
  assert.match(missing.stdout, /scopes:   \(none\)/);
  assert.equal(missing.stderr, '');
  const noRoute = run('--policy', policyFile, '--spiffe-id', FRONTEND, '--method', 'DELETE', '--path', '/orders/1');
  assert.equal(noRoute.status, 1);
  assert.match(noRoute.stdout, /rule:     no-route\n  reason:   no route matches DELETE \/orders\/1/);
});

test('BAD REQUEST: an unsafe path is exit 1 with the reason', () => {
  const r = run('--policy', policyFile, '--spiffe-id', FRONTEND, '--method', 'GET', '--path', '/orders/..%2fadmin');
  assert.equal(r.status, 1);
  assert.match(r.stdout, /^BAD REQUEST \(400\)  GET \/orders\/\.\.%2fadmin\n  rule:     path\n  reason:   path rejected: encoded '\/'/);
});

test('--json prints the whole decision', () => {
  const r = run('--policy', policyFile, '--spiffe-id', FRONTEND, '--method', 'GET', '--path', '/admin;x', '--json');
  assert.equal(r.status, 1);
  assert.deepEqual(JSON.parse(r.stdout), {
    decision: 'bad_request', mode: 'enforce', allow: false, status: 400, wouldDeny: true,
    reason: "path rejected: ';' path parameter", rule: 'path', target: '', method: 'GET', path: '/admin;x',
    identity: FRONTEND, scopes: ['orders:read', 'orders:write'],
  });
});

test('--cert: the caller from a certificate (SPIFFE ID, or CN/OU without one)', () => {
  const pki = makeTestPki();
  const withId = path.join(dir, 'frontend.crt');
  fs.writeFileSync(withId, pki.leaf({ spiffeId: FRONTEND }).chainPem);
  const a = run('--policy', policyFile, '--cert', withId, '--method', 'POST', '--path', '/orders', '--json');
  assert.equal(a.status, 0, a.stderr);
  assert.equal(JSON.parse(a.stdout).identity, FRONTEND);
  const legacy = path.join(dir, 'legacy.crt');
  fs.writeFileSync(legacy, pki.leaf({ shape: 'no-uri' }).pem);
  const b = run('--policy', policyFile, '--cert', legacy, '--method', 'GET', '--path', '/orders');
  assert.equal(b.status, 0, b.stderr);
  assert.match(b.stdout, /identity: CN=legacy-batch/);
  assert.match(b.stdout, /scopes:   orders:read\n/);
  const c = run('--policy', policyFile, '--cert', legacy, '--method', 'POST', '--path', '/orders');
  assert.equal(c.status, 1);
  const junk = path.join(dir, 'junk.crt');
  fs.writeFileSync(junk, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  const d = run('--policy', policyFile, '--cert', junk, '--method', 'GET', '--path', '/orders');
  assert.equal(d.status, 1);
  assert.equal(d.stdout, '');
  assert.equal(d.stderr.trim().split("\n").length, 1, d.stderr);
});

test('audit mode: would-be denials are let through (exit 0) and say so', () => {
  const audit = path.join(dir, 'audit.yaml');
  fs.writeFileSync(audit, `mode: audit\n${POLICY}`);
  const r = run('--policy', audit, '--spiffe-id', 'spiffe://example.org/x', '--method', 'POST', '--path', '/orders');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^ALLOW \(audit mode: enforce would DENY \(403\)\)  POST \/orders\n/);
});

test('a broken policy file: one line naming the file and the field, exit 2 (a config error, as for the sidecar)', () => {
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(bad, 'routes:\n  - match: {methods: [GTE], path: /x}\n    public: true\n');
  const r = run('--policy', bad, '--spiffe-id', FRONTEND, '--method', 'GET', '--path', '/x');
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, `meshward: error: ${bad}: routes[0].match.methods[0]: "GTE" is not an HTTP method\n`);
  const yaml = path.join(dir, 'yaml.yaml');
  fs.writeFileSync(yaml, 'routes: [\n');
  const y = run('--policy', yaml, '--spiffe-id', FRONTEND, '--method', 'GET', '--path', '/x');
  assert.equal(y.status, 2);
  assert.match(y.stderr, /^meshward: error: .*yaml\.yaml:2: not valid YAML: [^\n]+\n$/);
  const missing = run('--policy', path.join(dir, 'nope.yaml'), '--spiffe-id', FRONTEND, '--method', 'GET', '--path', '/x');
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /nope\.yaml: cannot read the policy file \(ENOENT\): no such file\n$/);
});

test('usage errors exit 2', () => {
  const cases: string[][] = [
    ['--policy', policyFile, '--method', 'GET', '--path', '/x'],
    ['--policy', policyFile, '--spiffe-id', FRONTEND, '--cert', 'x.crt', '--method', 'GET', '--path', '/x'],
    ['--policy', policyFile, '--spiffe-id', 'not-a-spiffe-id', '--method', 'GET', '--path', '/x'],
    ['--policy', policyFile, '--spiffe-id', FRONTEND, '--path', '/x'],
    ['--policy', policyFile, '--spiffe-id', FRONTEND, '--method', 'G T', '--path', '/x'],
  ];
  for (const args of cases) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^meshward: error: /);
  }
});
