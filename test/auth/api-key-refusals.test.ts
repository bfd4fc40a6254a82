// Every way an API key is refused, each with its reason code and an `ApiKey` challenge: checksum, format,
// unknown id, wrong secret, expiry, revocation, rotation grace (before and after), binding to a certificate
// identity, a key in the query string, Basic with a password, several keys in one request. The three ways
// of sending a key are accepted, with the key's principal, scopes and rate limit.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkApiKey, formatApiKey, generateApiKey, hashSecret } from '../../src/auth/api-key.js';
import { ApiKeySet, keyEntry } from '../../src/auth/key-set.js';
import type { AuthRequest, AuthVerdict, RefusalReason } from '../../src/auth/verdict.js';
import { DAY, expectRefused, keySet, makeKey, NOW, request } from './helpers.js';

const { key, record } = makeKey({ rps: 5, burst: 10 });
const revoked = makeKey({ revoked: new Date(NOW - DAY) });
const expired = makeKey({ expires: new Date(NOW - 1) });
const bound = makeKey({ boundTo: 'spiffe://example.org/ns/partner/*' });
const KEYS = keySet(record, revoked.record, expired.record, bound.record);

const bearer = (k: string): AuthRequest => request({ headers: { authorization: `Bearer ${k}` } });
const basic = (user: string, pass: string | null): AuthRequest => request({
  headers: { authorization: `Basic ${Buffer.from(pass === null ? user : `${user}:${pass}`).toString('base64')}` },
});
const check = (req: AuthRequest, now = NOW, keys = KEYS) => checkApiKey(req, keys, now);

describe('API keys: accepted', () => {
  for (const [how, req] of [
    ['authorization: Bearer', bearer(key.key)],
    ['authorization: bearer (scheme case-insensitive)', request({ headers: { authorization: `bearer ${key.key}` } })],
    ['x-api-key', request({ headers: { 'x-api-key': key.key } })],
    ['Basic username with an empty password (curl -u key:)', basic(key.key, '')],
  ] as const) {
    it(how, () => {
      const v = check(req);
      assert.ok(v.ok, v.ok ? '' : v.message);
      assert.equal(v.kind, 'apikey');
      assert.equal(v.principal, `apikey:${key.id}`);
      assert.equal(v.keyId, key.id);
      assert.deepEqual(v.scopes, ['orders:read', 'orders:write']);
      assert.deepEqual(v.limit, { rps: 5, burst: 10 });
    });
  }

  it('a bearer token that is not an API key (a JWT) is not an API key: missing', () => {
    expectRefused(check(request({ headers: { authorization: 'Bearer eyJhbGciOiJFUzI1NiJ9.e30.sig' } })), 'missing');
  });
});

describe('API keys: refusals', () => {
  const typo = key.key.slice(0, 20) + (key.key[20] === 'a' ? 'b' : 'a') + key.key.slice(21);
  const other = generateApiKey();
  const cases: [string, () => AuthVerdict, RefusalReason][] = [
    ['no key', () => check(request()), 'missing'],
    ['a typo (checksum fails)', () => check(bearer(typo)), 'checksum'],
    ['a truncated key', () => check(bearer(key.key.slice(0, -1))), 'malformed'],
    ['x-api-key with something else', () => check(request({ headers: { 'x-api-key': 'hunter2' } })), 'malformed'],
    ['an unknown id (valid checksum)', () => check(bearer(other.key)), 'unknown_key'],
    ['the right id with another secret', () => check(bearer(formatApiKey(key.id, other.secret))), 'bad_secret'],
    ['a revoked key', () => check(bearer(revoked.key.key)), 'revoked'],
    ['an expired key', () => check(bearer(expired.key.key)), 'expired'],
    ['a bound key without an mTLS identity', () => check(bearer(bound.key.key)), 'binding'],
    ['a bound key from a non-matching identity', () => check({ ...bearer(bound.key.key), peer: { spiffeId: 'spiffe://example.org/ns/other/sa' } }), 'binding'],
    ['a key in the query string (and in the header)', () => check({ ...bearer(key.key), query: `api_key=${key.key}` }), 'in_query'],
    ['a key percent-encoded in the query string', () => check({ ...request(), query: `k=${encodeURIComponent(key.key).replace(/_/g, '%5F')}` }), 'in_query'],
    ['a mistyped key in the query string (leaked all the same)', () => check({ ...request(), query: `k=${typo}` }), 'in_query'],
    ['Basic with a password', () => check(basic(key.key, 'secret')), 'basic_password'],
    ['Basic with a key and no colon', () => check(basic(key.key, null)), 'basic_password'],
    ['Basic with a username that is not a key', () => check(basic('admin', '')), 'basic_password'],
    ['Bearer and x-api-key together', () => check(request({ headers: { authorization: `Bearer ${key.key}`, 'x-api-key': key.key } })), 'ambiguous'],
    ['two x-api-key lines', () => check(request({ headers: { 'x-api-key': [key.key, other.key] } })), 'ambiguous'],
    ['two authorization lines', () => check(request({ headers: { authorization: [`Bearer ${key.key}`, `Bearer ${other.key}`] } })), 'ambiguous'],
    ['a Bearer key and a second authorization line of another scheme', () => check(request({ headers: { authorization: [`Bearer ${key.key}`, 'Signature keyId="k"'] } })), 'ambiguous'],
    ['two keys joined in one x-api-key line', () => check(request({ headers: { 'x-api-key': `${key.key}, ${other.key}` } })), 'malformed'],
  ];
  for (const [name, run, reason] of cases) {
    it(`${name} → ${reason}`, () => {
      const refused = expectRefused(run(), reason);
      assert.equal(refused.kind, 'apikey');
      assert.ok(!refused.message.includes(key.secret) && !refused.message.includes(key.key), 'the message must not hold the key');
      if (reason === 'missing') assert.equal(refused.wwwAuthenticate, 'ApiKey realm="meshward"');
      else assert.match(refused.wwwAuthenticate, /^ApiKey realm="meshward", error="invalid_(key|request)", error_description="[^"\\]+"$/);
    });
  }

  it('status is told only to whoever proves the secret: a revoked key with a wrong secret is just a wrong secret', () => {
    expectRefused(check(bearer(formatApiKey(revoked.key.id, other.secret))), 'bad_secret');
  });
});

describe('API keys: rotation grace', () => {
  const fresh = generateApiKey();
  const until = new Date(NOW + DAY);
  const rotating = makeKey({ hmacSecrets: undefined });
  rotating.record.secretHashes = [{ sha256: hashSecret(fresh.secret) }, { sha256: rotating.record.secretHashes[0]!.sha256, until }];
  const keys = keySet(rotating.record);
  const newKey = formatApiKey(rotating.key.id, fresh.secret);

  it('before the grace ends both the old and the new key are accepted', () => {
    assert.ok(check(bearer(rotating.key.key), NOW, keys).ok);
    assert.ok(check(bearer(newKey), NOW, keys).ok);
    assert.ok(check(bearer(rotating.key.key), until.getTime() - 1, keys).ok);
  });

  it('from the end of the grace the old key is refused as rotated; the new one still works', () => {
    const refused = expectRefused(check(bearer(rotating.key.key), until.getTime(), keys), 'rotated');
    assert.match(refused.message, /rotated/);
    assert.ok(check(bearer(newKey), until.getTime(), keys).ok);
  });
});

describe('API keys: a repeated key (remembered after its first check)', () => {
  it('is still refused once it expires, from another identity, and after its grace; remembering is bounded', () => {
    const k = makeKey({ expires: new Date(NOW + 1000), boundTo: 'spiffe://example.org/ns/partner/*', hmacSecrets: undefined });
    const keys = keySet(k.record);
    const partner = { spiffeId: 'spiffe://example.org/ns/partner/a' };
    assert.ok(check({ ...bearer(k.key.key), peer: partner }, NOW, keys).ok);
    assert.ok(check({ ...bearer(k.key.key), peer: partner }, NOW + 1, keys).ok);
    expectRefused(check({ ...bearer(k.key.key), peer: { spiffeId: 'spiffe://example.org/ns/other/a' } }, NOW + 2, keys), 'binding');
    expectRefused(check({ ...bearer(k.key.key), peer: partner }, NOW + 1000, keys), 'expired');
    // A wrong secret for a remembered id is still a wrong secret.
    expectRefused(check({ ...bearer(formatApiKey(k.key.id, generateApiKey().secret)), peer: partner }, NOW, keys), 'bad_secret');
    assert.equal(keys.provenKeys, 1);
    const many = [makeKey(), makeKey(), makeKey()];
    const small = new ApiKeySet(many.map((m) => keyEntry(m.record)), 2);
    for (const m of many) assert.ok(check(bearer(m.key.key), NOW, small).ok);
    assert.equal(small.provenKeys, 2);
    assert.ok(check(bearer(many[0]!.key.key), NOW, small).ok, 'a forgotten key is checked again, not refused');
  });
});
