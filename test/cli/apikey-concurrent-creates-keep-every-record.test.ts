// Ten `meshward apikey create` processes started at once on one key file: each read-modify-write happens
// under the lock, so the file ends with ten records, every printed key verifies against it, and no lock
// file is left behind.
// (Ten, not more: on a loaded 2-core machine twenty Node start-ups queued on one lock could outwait the
// lock's 30 s default, which is a property of the machine, not of the lock.)
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { checkApiKey } from '../../src/auth/api-key.js';
import { parseApiKeyFile } from '../../src/auth/key-file.js';
import { ApiKeySet } from '../../src/auth/key-set.js';
import { runCli } from '../support/cli.js';
import { tempDir } from '../support/temp-dir.js';

const { dir, cleanup } = tempDir('meshward-apikey-race-');
after(cleanup);

describe('concurrent apikey create', () => {
  it('10 parallel creates leave 10 records, all keys valid, no lock behind', async () => {
    const file = join(dir, 'apikeys.yaml');
    const runs = await Promise.all(Array.from({ length: 10 }, (_, i) =>
      runCli(['apikey', 'create', '--file', file, '--name', `client-${i}`, '--scopes', `s${i}`, '--json'], { timeoutMs: 180_000 })));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const created = runs.map((r) => JSON.parse(r.stdout) as { id: string; name: string; key: string });
    const parsed = parseApiKeyFile(readFileSync(file, 'utf8'), file);
    assert.equal(parsed.keys.length, 10);
    assert.deepEqual(new Set(parsed.keys.map((k) => k.name)), new Set(created.map((c) => c.name)));
    const keys = ApiKeySet.fromFile(parsed);
    for (const c of created) {
      const v = checkApiKey({ method: 'GET', scheme: 'https', authority: 'a', path: '/', headers: { 'x-api-key': c.key } }, keys, Date.now());
      assert.ok(v.ok && v.scopes[0] === `s${c.name.slice('client-'.length)}`, c.name);
    }
    assert.deepEqual(readdirSync(dir), ['apikeys.yaml']);
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });
});
