// The key file and the JWKS file are hot-reloaded like the policy: `meshward apikey revoke` takes effect
// without a restart, a broken key file or JWKS keeps the last good one (the reason is logged), and a JWKS
// with a new key lets that key's tokens in. Files are swapped with a rename, as editors and tools do.
import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { after, before, it } from 'node:test';
import { runCli } from '../../support/cli.js';
import { createKey, curl, makeIssuer, startCredentialSidecar, writeJson, type CreatedKey, type CredentialSidecar, type Issuer } from './harness.js';
import { waitFor } from '../../support/poll.js';

let t: CredentialSidecar;
let issuer: Issuer;
let a: CreatedKey;
let b: CreatedKey;

before(async () => {
  issuer = await makeIssuer('k1');
  t = await startCredentialSidecar({
    issuer,
    async prepareKeys(file) {
      a = await createKey(file, ['--name', 'a', '--scopes', 'orders:read']);
      b = await createKey(file, ['--name', 'b', '--scopes', 'orders:read']);
    },
  });
});
after(() => t?.close());

const status = async (key: string) => (await curl(t, undefined, 'GET', '/keyed/1', ['-H', `x-api-key: ${key}`])).status;
const tokenStatus = async (token: string) => (await curl(t, undefined, 'GET', '/token/1', ['-H', `authorization: Bearer ${token}`])).status;

function swap(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

it('a revoked key is refused after the reload; a broken key file keeps the last good one', async () => {
  assert.equal(await status(a.key), 200);
  assert.equal((await runCli(['apikey', 'revoke', '--file', t.keyFile, '--id', a.id])).code, 0);
  await waitFor('the revoked key refused', async () => ((await status(a.key)) === 401 ? true : undefined));
  swap(t.keyFile, 'version: 1\nkeys:\n  nonsense: {}\n');
  const failed = await t.sidecar.waitForLog((l) => l.event === 'api_keys_reload_failed', 'the failed reload');
  assert.match(String(failed.reason), /apikeys\.yaml: keys\.nonsense: is not a key id/, 'the config-file loader\'s FILE: field: sentence');
  assert.equal(await status(b.key), 200, 'the last good key file is still in force');
  assert.equal(await status(a.key), 401);
});

it('a JWKS with a new key admits its tokens; a broken JWKS keeps the keys', async () => {
  const next = await makeIssuer('k2');
  const token = await next.sign({});
  assert.equal(await tokenStatus(token), 401);
  writeJson(`${t.jwksFile}.tmp`, { keys: [...issuer.jwks.keys, ...next.jwks.keys] });
  renameSync(`${t.jwksFile}.tmp`, t.jwksFile);
  await waitFor('the k2 token accepted', async () => ((await tokenStatus(token)) === 200 ? true : undefined));
  swap(t.jwksFile, '{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}');
  const failed = await t.sidecar.waitForLog((l) => l.event === 'jwks_reload_failed', 'the failed JWKS reload');
  assert.match(String(failed.reason), /symmetric key/);
  assert.equal(await tokenStatus(await next.sign({})), 200);
});
