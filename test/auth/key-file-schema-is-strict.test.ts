// The key file's one strict schema, read through the config-file loader: what `apikey` writes reads back the
// same (property), and every malformed file is refused as `FILE: field.path: sentence` (unknown keys, bad
// hashes, bad times, a rotation's "until" in the wrong place, bad patterns, bad rates), so a typo never
// silently changes who gets in.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MeshwardError } from '../../src/errors.js';
import { addKey, formatApiKeyFile, keyStatus, parseApiKeyFile, revokeKey, rotateKey } from '../../src/auth/key-file.js';
import { DAY, makeKey, NOW } from './helpers.js';

const valid = (id = 'AbCdEf012345') => `version: 1
keys:
  ${id}:
    name: partner
    scopes: [orders:read]
    created: 2025-06-01T10:00:00Z
    secretHashes:
      - sha256: ${'ab'.repeat(32)}
`;

describe('key file: round trip', () => {
  it('format then parse gives every record back (property over options)', () => {
    fc.assert(fc.property(fc.boolean(), fc.boolean(), fc.boolean(), fc.option(fc.integer({ min: 1, max: 1000 })), (hmac, bound, revoked, rps) => {
      const { record } = makeKey({
        ...(hmac ? {} : { hmacSecrets: undefined }),
        ...(bound ? { boundTo: 'spiffe://example.org/ns/a/**' } : {}),
        ...(revoked ? { revoked: new Date(NOW) } : {}),
        ...(rps !== null ? { rps, burst: rps * 2 } : {}),
      });
      const file = { keys: [record, makeKey().record] };
      const back = parseApiKeyFile(formatApiKeyFile(file), 'apikeys.yaml');
      // Records as written: options left out are absent, not undefined.
      const written = file.keys.map((k) => Object.fromEntries(Object.entries(k).filter(([, v]) => v !== undefined)));
      assert.deepEqual(back.keys, written);
      assert.equal(formatApiKeyFile(back), formatApiKeyFile(file));
    }), { numRuns: 50 });
  });

  it('an empty file holds no keys; a written file starts with a comment saying what it holds', () => {
    assert.deepEqual(parseApiKeyFile('', 'apikeys.yaml'), { keys: [] });
    assert.match(formatApiKeyFile({ keys: [] }), /^# meshward API keys.*\n# .*mode 0600/);
  });

  it('ids that YAML would read as numbers are written quoted and read back as text', () => {
    const { record } = makeKey();
    for (const id of ['0x1234567ABC', '123456789012', '1234567890e1']) {
      const back = parseApiKeyFile(formatApiKeyFile({ keys: [{ ...record, id }] }), 'apikeys.yaml');
      assert.equal(back.keys[0]!.id, id);
    }
  });
});

describe('key file: refused', () => {
  const cases: [string, string, RegExp][] = [
    ['not YAML', 'version: 1\nkeys: [', /apikeys\.yaml:\d+: not valid YAML/],
    ['a list at the top', '- a\n', /must be a YAML mapping \(fields: version, keys\), got a list/],
    ['no version', valid().replace('version: 1\n', ''), /version: /],
    ['version 2', valid().replace('version: 1', 'version: 2'), /version: must be 1/],
    ['an unknown top-level key', `${valid()}extra: 1\n`, /extra: unknown field; valid fields here: version, keys/],
    ['an unknown key in a record (typo)', valid().replace('scopes:', 'scope:'), /keys\.AbCdEf012345\.scope: unknown field \(did you mean "scopes"\?\); valid fields here: name, scopes/],
    ['a misspelled record key', valid().replace('    name: partner\n', '    name: partner\n    boundto: x\n'), /keys\.AbCdEf012345\.boundto: unknown field \(did you mean "boundTo"\?\); valid fields here: name, scopes/],
    ['an unknown key in a hash entry', valid().replace(`sha256: ${'ab'.repeat(32)}`, `sha256: ${'ab'.repeat(32)}\n        salt: x`), /secretHashes\[0\]\.salt: unknown field; valid fields here: sha256, until/],
    ['an id that is not 12 base62 characters', valid('short'), /keys\.short: is not a key id/],
    ['a duplicated id', valid() + valid().split('\n').slice(2).join('\n'), /not valid YAML: Map keys must be unique/],
    ['no scopes', valid().replace('scopes: [orders:read]', 'scopes: []'), /scopes: must list at least one scope/],
    ['a scope with a space', valid().replace('[orders:read]', '["orders read"]'), /scopes\[0\]: is not a scope name/],
    ['a scope twice', valid().replace('[orders:read]', '[a, a]'), /scopes: a scope is listed twice/],
    ['a date without a time', valid().replace('2025-06-01T10:00:00Z', '2025-06-01'), /created: must be an RFC 3339 time/],
    ['an impossible date', valid().replace('2025-06-01T10:00:00Z', '2025-13-45T10:00:00Z'), /created: is not a real date/],
    ['a hash that is not hex', valid().replace('ab'.repeat(32), 'zz'.repeat(32)), /sha256: must be 64 lowercase hex digits/],
    ['three hashes', valid().replace(/(      - sha256: .*\n)/, `$1$1$1`), /at most two hashes/],
    ['until on the current hash', valid().replace(/(      - sha256: .*)\n/, '$1\n        until: 2025-06-02T00:00:00Z\n'), /secretHashes\[0\]: the current entry has no "until"/],
    ['a previous hash without until', valid().replace(/(      - sha256: .*\n)/, '$1$1'), /secretHashes\[1\]: the previous entry needs "until"/],
    ['an HMAC secret of 16 bytes', valid().replace('    secretHashes:', '    hmacSecrets:\n      - secret: AAAAAAAAAAAAAAAAAAAAAA==\n    secretHashes:'), /hmacSecrets\[0\]\.secret: must be 32 bytes in base64/],
    ['a boundTo that is not a SPIFFE pattern', valid().replace('    name: partner\n', '    name: partner\n    boundTo: https://x\n'), /boundTo: Invalid SPIFFE ID pattern/],
    ['rps 0', valid().replace('    name: partner\n', '    name: partner\n    rps: 0\n'), /rps: must be greater than 0/],
    ['burst without rps', valid().replace('    name: partner\n', '    name: partner\n    burst: 3\n'), /burst: needs rps too/],
    ['a fractional burst', valid().replace('    name: partner\n', '    name: partner\n    rps: 1\n    burst: 1.5\n'), /burst: must be a whole number/],
    ['a __proto__ id', valid('__proto__'), /keys\.__proto__: is not a name meshward accepts/],
  ];
  for (const [name, text, message] of cases) {
    it(name, () => {
      assert.throws(() => parseApiKeyFile(text, 'apikeys.yaml'), (err: unknown) => {
        assert.ok(err instanceof MeshwardError, String(err));
        assert.equal(err.code, 'invalid_argument');
        assert.match(err.message, /^apikeys\.yaml(:\d+)?: /); // a YAML error names the line too
        assert.match(err.message, message);
        return true;
      });
    });
  }
});

describe('key file: changes', () => {
  it('revoke marks one key and keeps every other record; revoking twice is refused', () => {
    const a = makeKey().record;
    const b = makeKey().record;
    const file = revokeKey({ keys: [a, b] }, a.id, new Date(NOW));
    assert.deepEqual(file.keys[1], b);
    assert.equal(keyStatus(file.keys[0]!, new Date(NOW)), 'revoked');
    assert.throws(() => revokeKey(file, a.id, new Date(NOW)), /already revoked/);
    assert.throws(() => revokeKey(file, 'AAAAAAAAAAAA', new Date(NOW)), (e: unknown) => e instanceof MeshwardError && e.code === 'not_found');
  });

  it('rotate keeps the previous secret until the grace ends, drops an older one, refuses revoked and expired keys', () => {
    const a = makeKey().record;
    const first = rotateKey({ keys: [a] }, a.id, { sha256: Buffer.alloc(32, 1), hmacSecret: Buffer.alloc(32, 2) }, new Date(NOW), DAY);
    assert.equal(first.keys[0]!.secretHashes.length, 2);
    assert.equal(keyStatus(first.keys[0]!, new Date(NOW)), 'rotating');
    assert.equal(keyStatus(first.keys[0]!, new Date(NOW + DAY)), 'active');
    const second = rotateKey(first, a.id, { sha256: Buffer.alloc(32, 3), hmacSecret: Buffer.alloc(32, 4) }, new Date(NOW + 1), 0);
    assert.deepEqual(second.keys[0]!.secretHashes, [{ sha256: Buffer.alloc(32, 3) }]);
    assert.deepEqual(second.keys[0]!.hmacSecrets, [{ secret: Buffer.alloc(32, 4) }]);
    assert.throws(() => rotateKey(revokeKey(second, a.id, new Date(NOW)), a.id, { sha256: Buffer.alloc(32) }, new Date(NOW), 0), /revoked: create a new key/);
    const old = makeKey({ expires: new Date(NOW - 1) }).record;
    assert.throws(() => rotateKey({ keys: [old] }, old.id, { sha256: Buffer.alloc(32) }, new Date(NOW), 0), /expired at/);
  });

  it('add refuses an id that is already there', () => {
    const a = makeKey().record;
    assert.throws(() => addKey({ keys: [a] }, a), (e: unknown) => e instanceof MeshwardError && e.code === 'already_exists');
  });
});
