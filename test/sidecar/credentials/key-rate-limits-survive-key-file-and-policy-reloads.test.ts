// An API key's own rate limit (key file rps/burst) keeps its bucket across reloads of the key file and of
// the policy (docs/api-credentials.md, "Rate limits"): a client that used its burst must not get a fresh one
// because someone ran `meshward apikey create` or edited an unrelated route. Only a change of the key's own
// rps or burst starts a full bucket (the negative case, which also shows the bucket can be seen refilling).
import assert from 'node:assert/strict';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { after, before, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { CREDENTIAL_POLICY, createKey, curl, makeIssuer, startCredentialSidecar, type CreatedKey, type CredentialSidecar } from './harness.js';

let t: CredentialSidecar;
let limited: CreatedKey;

before(async () => {
  const issuer = await makeIssuer('k1');
  t = await startCredentialSidecar({
    issuer,
    async prepareKeys(file) {
      // One token per 1000 s: nothing refills while the test runs.
      limited = await createKey(file, ['--name', 'limited', '--scopes', 'orders:read', '--rps', '0.001', '--burst', '2']);
    },
  });
});
after(() => t?.close());

const status = async () => (await curl(t, undefined, 'GET', '/keyed/1', ['-H', `x-api-key: ${limited.key}`])).status;

function swap(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

async function reloaded(event: string, change: () => void | Promise<unknown>): Promise<void> {
  const count = () => t.sidecar.logs.filter((l) => l.event === event).length;
  const before = count();
  await change();
  await t.sidecar.waitForLog(() => count() > before, event);
}

it('a key that used its burst stays limited after a key-file reload and a policy reload; a changed burst starts full', async () => {
  assert.deepEqual([await status(), await status(), await status()], [200, 200, 429], 'the burst of 2 is used up');

  // The key file changes (another key is added): the limited key's rate is the same, so is its bucket.
  await reloaded('api_keys_reloaded', () => createKey(t.keyFile, ['--name', 'other', '--scopes', 'orders:read']));
  assert.equal(await status(), 429, 'still limited after the key file reloaded');

  // An unrelated policy edit: a new route.
  const policy = { ...CREDENTIAL_POLICY, routes: [{ match: { path: '/status' }, public: true }, ...CREDENTIAL_POLICY.routes] };
  await reloaded('policy_reloaded', () => swap(t.scenario.policyPath, stringify(policy)));
  assert.equal(await status(), 429, 'still limited after the policy reloaded');
  const refused = await curl(t, undefined, 'GET', '/keyed/1', ['-H', `x-api-key: ${limited.key}`]);
  assert.equal(refused.json.rule, `apikey:${limited.id}`, 'limited by the key\'s own rule');

  // The key's own burst changes in the key file: that is a new limit, with a full bucket of 3.
  const doc = parse(readFileSync(t.keyFile, 'utf8')) as { keys: Record<string, { burst?: number }> };
  doc.keys[limited.id]!.burst = 3;
  await reloaded('api_keys_reloaded', () => swap(t.keyFile, stringify(doc)));
  assert.deepEqual([await status(), await status(), await status(), await status()], [200, 200, 200, 429]);
});
