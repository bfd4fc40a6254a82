// A malformed key file is refused by every apikey command with one clear line naming the file and the field
// (`FILE: field.path: sentence`, the config-file loader's form), exit 2 as for any malformed file the user
// named (the sidecar's --config too), and the file is left byte for byte as it was (no half-rewrite, no lock file left behind): a typo
// in a credential file must never be "repaired" into something that lets other callers in.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runCli, snapshotDir } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'meshward-apikey-bad-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const good = `version: 1
keys:
  AbCdEf012345:
    name: partner
    scopes: [orders:read]
    created: 2025-06-01T10:00:00Z
    secretHashes:
      - sha256: ${'ab'.repeat(32)}
`;
const FILES: [string, string, RegExp][] = [
  ['not YAML', `${good}  - [`, /not valid YAML/],
  ['an unknown key (typo)', good.replace('scopes:', 'scoeps:'), /keys\.AbCdEf012345\.scoeps: unknown field \(did you mean "scopes"\?\)/],
  ['a hash cut short', good.replace('ab'.repeat(32), 'ab'.repeat(31)), /keys\.AbCdEf012345\.secretHashes\[0\]\.sha256: must be 64 lowercase hex digits/],
  ['a plaintext key pasted as the hash', good.replace('ab'.repeat(32), 'mwk_AbCdEf012345_secret'), /sha256: must be 64 lowercase hex digits/],
  ['an unknown version', good.replace('version: 1', 'version: 3'), /version: must be 1/],
  ['a bad time', good.replace('2025-06-01T10:00:00Z', 'yesterday'), /created: must be an RFC 3339 time/],
  ['an id that is no key id', good.replace('AbCdEf012345', 'nonsense'), /keys\.nonsense: is not a key id/],
  ['a "__proto__" id', good.replace('AbCdEf012345', '__proto__'), /keys\.__proto__: is not a name meshward accepts/],
  ['a list, not a mapping', '- a\n', /must be a YAML mapping/],
];

describe('apikey commands on a malformed key file', () => {
  for (const [name, text, message] of FILES) {
    it(`${name}: create, rotate, revoke and list refuse it and change nothing`, async () => {
      const file = join(dir, 'apikeys.yaml');
      writeFileSync(file, text, { mode: 0o600 });
      const before = snapshotDir(dir);
      for (const args of [
        ['create', '--file', file, '--name', 'n', '--scopes', 'a'],
        ['rotate', '--file', file, '--id', 'AbCdEf012345'],
        ['revoke', '--file', file, '--id', 'AbCdEf012345'],
        ['list', '--file', file],
      ]) {
        const r = await runCli(['apikey', ...args]);
        assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
        assert.equal(r.stdout, '', `${args[0]} printed a key`);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.match(r.stderr, new RegExp(`^meshward: error: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(:\\d+)?: `)); // a YAML error names the line too
        assert.match(r.stderr, message);
        assert.deepEqual(snapshotDir(dir), before, `${args[0]} changed the directory`);
      }
      assert.deepEqual(readdirSync(dir), ['apikeys.yaml']);
    });
  }
});
