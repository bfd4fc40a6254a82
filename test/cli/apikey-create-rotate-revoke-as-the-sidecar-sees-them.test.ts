// `meshward apikey create|list|rotate|revoke` through the real binary, checked the way the sidecar will use
// the file: keys printed once verify against the key set compiled from the written file; the file is mode
// 0600 and holds no key or API secret in clear; --hmac secrets sign requests that verify; list never prints
// a secret; rotate keeps the old key working through the grace (or not, with --grace 0s); revoke refuses
// the key; bad flags are usage errors (exit 2) and unknown ids are refusals (exit 1).
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { checkApiKey } from '../../src/auth/api-key.js';
import { signRequest, verifyHttpSignature } from '../../src/auth/http-signature.js';
import { parseApiKeyFile } from '../../src/auth/key-file.js';
import { ApiKeySet } from '../../src/auth/key-set.js';
import type { AuthRequest, AuthVerdict } from '../../src/auth/verdict.js';
import { runCli } from '../support/cli.js';
import { tempDir } from '../support/temp-dir.js';

const { dir, cleanup } = tempDir('meshward-apikey-');
const file = join(dir, 'apikeys.yaml');
after(cleanup);

const keys = () => ApiKeySet.fromFile(parseApiKeyFile(readFileSync(file, 'utf8'), file));
const withKey = (key: string, peer?: AuthRequest['peer']): AuthRequest => ({
  method: 'GET', scheme: 'https', authority: 'api.example.com', path: '/x', headers: { 'x-api-key': key }, ...(peer ? { peer } : {}),
});
const checkKey = (key: string, peer?: AuthRequest['peer']): AuthVerdict => checkApiKey(withKey(key, peer), keys(), Date.now());

async function cli(args: string[], expectCode = 0) {
  const r = await runCli(['apikey', ...args]);
  assert.equal(r.code, expectCode, `meshward apikey ${args.join(' ')}\n${r.stdout}${r.stderr}`);
  return r;
}

describe('meshward apikey', () => {
  let plainKey = '';
  let hmac: { id: string; name: string; key: string; secret: string };

  it('create prints the key alone on stdout and writes only its hash, mode 0600', async () => {
    const r = await cli(['create', '--file', file, '--name', 'partner-acme', '--scopes', 'orders:read, orders:write']);
    plainKey = r.stdout.trim();
    assert.match(plainKey, /^mwk_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}$/);
    assert.match(r.stderr, /shown only now/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const text = readFileSync(file, 'utf8');
    assert.ok(!text.includes(plainKey) && !text.includes(plainKey.slice(17, 49)), 'the key or its secret is in the file');
    const v = checkKey(plainKey);
    assert.ok(v.ok, v.ok ? '' : v.message);
    assert.deepEqual(v.scopes, ['orders:read', 'orders:write']);
  });

  it('create --hmac --json prints {id,name,key,secret}; the secret signs requests that verify', async () => {
    const r = await cli(['create', '--file', file, '--name', 'signer', '--scopes', 'payments:write', '--hmac', '--json', '--ttl', '30d']);
    hmac = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(hmac), ['id', 'name', 'key', 'secret']);
    assert.equal(Buffer.from(hmac.secret, 'base64').length, 32);
    assert.ok(hmac.key.startsWith(`mwk_${hmac.id}_`));
    const req: AuthRequest = { method: 'POST', scheme: 'https', authority: 'api.example.com', path: '/payments', headers: {} };
    const signed = { ...req, headers: signRequest(req, { keyId: hmac.id, secret: Buffer.from(hmac.secret, 'base64'), created: Math.floor(Date.now() / 1000) }) };
    const v = verifyHttpSignature(signed, keys(), Date.now(), { maxSkewMs: 300_000 });
    assert.ok(v.ok && v.principal === `apikey:${hmac.id}`, v.ok ? '' : v.message);
    assert.ok(checkKey(hmac.key).ok, 'an HMAC key is an API key too');
    // The first key is still there.
    assert.ok(checkKey(plainKey).ok);
  });

  it('create --bound-to --rps --burst: the key works only from a matching identity, with its own limit; list shows it, never a secret', async () => {
    const r = await cli(['create', '--file', file, '--name', 'batch', '--scopes', 'reports:read', '--bound-to', 'spiffe://example.org/ns/batch/*', '--rps', '2.5', '--burst', '5', '--ttl', '1h']);
    const key = r.stdout.trim();
    assert.equal((checkKey(key) as { reason?: string }).reason, 'binding');
    const v = checkKey(key, { spiffeId: 'spiffe://example.org/ns/batch/job' });
    assert.ok(v.ok && v.limit?.rps === 2.5 && v.limit.burst === 5);
    const list = JSON.parse((await cli(['list', '--file', file, '--json'])).stdout) as Record<string, unknown>[];
    assert.equal(list.length, 3);
    const batch = list.find((k) => k.name === 'batch')!;
    assert.equal(batch.boundTo, 'spiffe://example.org/ns/batch/*');
    assert.equal(batch.status, 'active');
    assert.ok(Math.abs(Date.parse(String(batch.expires)) - Date.parse(String(batch.created)) - 3_600_000) < 1000);
    const text = (await cli(['list', '--file', file])).stdout;
    assert.match(text, /^ID +NAME +SCOPES +STATUS/);
    for (const out of [text, JSON.stringify(list)]) {
      assert.ok(!out.includes(hmac.secret) && !out.includes(plainKey.slice(17, 49)) && !out.includes('sha256'), 'list printed a secret');
    }
  });

  it('rotate: same id, new key; the old key keeps working through the grace; --grace 0s ends it at once', async () => {
    const r = await cli(['rotate', '--file', file, '--id', hmac.id, '--json']);
    const rotated = JSON.parse(r.stdout) as typeof hmac & { previousKeyValidUntil: string };
    assert.equal(rotated.id, hmac.id);
    assert.notEqual(rotated.key, hmac.key);
    assert.notEqual(rotated.secret, hmac.secret);
    assert.ok(Date.parse(rotated.previousKeyValidUntil) > Date.now() + 23 * 3_600_000);
    assert.ok(checkKey(hmac.key).ok, 'old key during the grace');
    assert.ok(checkKey(rotated.key).ok, 'new key');
    await cli(['rotate', '--file', file, '--id', hmac.id, '--grace', '0s']);
    assert.equal((checkKey(rotated.key) as { reason?: string }).reason, 'bad_secret');
  });

  it('revoke: the key is refused from now on; the other keys keep working; revoking again is exit 1', async () => {
    const id = plainKey.slice(4, 16);
    const r = await cli(['revoke', '--file', file, '--id', id]);
    assert.match(r.stdout, new RegExp(`revoked API key ${id} \\(partner-acme\\)`));
    assert.equal((checkKey(plainKey) as { reason?: string }).reason, 'revoked');
    assert.equal(parseApiKeyFile(readFileSync(file, 'utf8'), file).keys.length, 3);
    const again = await cli(['revoke', '--file', file, '--id', id], 1);
    assert.match(again.stderr, /^meshward: error: API key .* is already revoked since/);
  });

  const usage: [string, string[], number, RegExp][] = [
    ['no --scopes', ['create', '--file', 'F', '--name', 'n'], 2, /scopes/],
    ['empty --scopes', ['create', '--file', 'F', '--name', 'n', '--scopes', ','], 2, /at least one scope/],
    ['a scope with a quote', ['create', '--file', 'F', '--name', 'n', '--scopes', 'a"b'], 2, /not a scope name/],
    ['a bad --ttl', ['create', '--file', 'F', '--name', 'n', '--scopes', 'a', '--ttl', '3 weeks'], 2, /--ttl "3 weeks" is not a duration/],
    ['--ttl 0s', ['create', '--file', 'F', '--name', 'n', '--scopes', 'a', '--ttl', '0s'], 2, /more than zero/],
    ['a bad --bound-to', ['create', '--file', 'F', '--name', 'n', '--scopes', 'a', '--bound-to', 'spiffe://EX/a'], 2, /--bound-to: Invalid SPIFFE ID pattern/],
    ['--burst without --rps', ['create', '--file', 'F', '--name', 'n', '--scopes', 'a', '--burst', '3'], 2, /--burst needs --rps/],
    ['an unknown flag', ['create', '--file', 'F', '--name', 'n', '--scopes', 'a', '--scope', 'b'], 2, /Unknown argument/],
    ['rotate an unknown id', ['rotate', '--file', 'FILE', '--id', 'AAAAAAAAAAAA'], 1, /no API key with id AAAAAAAAAAAA/],
    ['revoke an unknown id', ['revoke', '--file', 'FILE', '--id', 'AAAAAAAAAAAA'], 1, /no API key with id AAAAAAAAAAAA/],
    ['list a missing file', ['list', '--file', 'MISSING'], 1, /cannot read the API key file \(--file\) \(ENOENT\): no such file; meshward apikey create --file .* makes it/],
  ];
  for (const [name, args, code, message] of usage) {
    it(`${name} → exit ${code}, one line, the file unchanged`, async () => {
      const before = readFileSync(file);
      const r = await cli(args.map((a) => (a === 'F' ? join(dir, 'never.yaml') : a === 'FILE' ? file : a === 'MISSING' ? join(dir, 'missing.yaml') : a)), code);
      assert.match(r.stderr, /^meshward: error: /);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, message);
      assert.deepEqual(readFileSync(file), before);
      assert.throws(() => statSync(join(dir, 'never.yaml')), /ENOENT/);
    });
  }
});
