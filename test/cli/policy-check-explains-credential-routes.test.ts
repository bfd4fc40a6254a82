// `meshward policy check` on routes with `require`: an API key id (with its key file), JWT claims and a
// SPIFFE ID stand for the credentials a request carries; the answer names the principal and scopes the app
// would get, or which proof is missing (401) or lacks the scope (403). Exit 0 / 1 as for mTLS-only checks.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { runCli } from '../support/cli.js';
import { tempDir } from '../support/temp-dir.js';

const { dir, cleanup } = tempDir('meshward-policy-creds-');
after(cleanup);
const policy = join(dir, 'policy.yaml');
writeFileSync(policy, `grants:
  - identities: ["spiffe://example.org/ns/shop/sa/frontend"]
    scopes: [reports:read, payments:write]
routes:
  - match: {path: /reports/**}
    scope: reports:read
    require: {anyOf: [[jwt], [apikey]]}
  - match: {methods: [POST], path: /payments/**}
    scope: payments:write
    require: [mtls, apikey]
`);
const keys = join(dir, 'apikeys.yaml');
const claims = join(dir, 'claims.json');
writeFileSync(claims, JSON.stringify({ iss: 'https://auth.example.com', sub: 'svc-reports', scope: 'reports:read' }));

it('explains credential routes: principal and scopes, 401 for a missing proof, 403 for a missing scope', async () => {
  const created = await runCli(['apikey', 'create', '--file', keys, '--name', 'reader', '--scopes', 'reports:read', '--json']);
  assert.equal(created.code, 0, created.stderr);
  const { id } = JSON.parse(created.stdout) as { id: string };
  const check = (...args: string[]) => runCli(['policy', 'check', '--policy', policy, ...args]);

  const byKey = await check('--api-keys', keys, '--api-key-id', id, '--method', 'GET', '--path', '/reports/daily');
  assert.equal(byKey.code, 0, byKey.stdout + byKey.stderr);
  assert.match(byKey.stdout, new RegExp(`principal: apikey:${id}`));
  assert.match(byKey.stdout, /x-mesh-scopes: reports:read/);

  const byJwt = await check('--jwt-claims', claims, '--method', 'GET', '--path', '/reports/daily');
  assert.equal(byJwt.code, 0);
  assert.match(byJwt.stdout, /principal: jwt:https:\/\/auth.example.com#svc-reports/);

  const nothing = await check('--jwt-claims', claims, '--method', 'POST', '--path', '/payments/1');
  assert.equal(nothing.code, 1);
  assert.match(nothing.stdout, /^DENY \(401\)/);

  const lacking = await check('--spiffe-id', 'spiffe://example.org/ns/shop/sa/frontend', '--api-keys', keys, '--api-key-id', id, '--method', 'POST', '--path', '/payments/1');
  assert.equal(lacking.code, 1);
  assert.match(lacking.stdout, new RegExp(`DENY \\(403\\)[\\s\\S]*API key ${id} lacks scope payments:write`));

  const noFile = await check('--api-key-id', id, '--method', 'GET', '--path', '/reports/daily');
  assert.equal(noFile.code, 2, 'an API key id without the key file is a usage error');
});
