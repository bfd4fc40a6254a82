// Every way an HMAC-signed request is refused, each with its reason code: body changed, digest mismatch,
// replay, created outside ±maxSkew, expired, body or @query not covered, unknown keyid, wrong secret,
// malformed structured fields, and the key's own state (revoked, expired, bound, rotated). A correctly signed
// request passes, so every refusal below is caused by the one thing each row changes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { replayRefusal, signRequest, verifyHttpSignature, type SignOptions } from '../../src/auth/http-signature.js';
import { ReplayCache } from '../../src/auth/replay-cache.js';
import type { AuthRequest, AuthVerdict, RefusalReason } from '../../src/auth/verdict.js';
import { DAY, expectRefused, keySet, makeKey, NOW, NOW_S, request, withBody } from './helpers.js';

const POLICY = { maxSkewMs: 300_000 };
const { key, record } = makeKey();
const KEYS = keySet(record);

function sign(req: AuthRequest, over: Partial<SignOptions> = {}): AuthRequest {
  const headers = signRequest(req, { keyId: key.id, secret: key.hmacSecret, created: NOW_S, ...over });
  return { ...req, headers: { ...req.headers, ...headers } };
}

const post = () => withBody(request({ method: 'POST', path: '/payments', query: 'currency=EUR' }), '{"amount":100}');
const verifyAt = (req: AuthRequest, now = NOW, keys = KEYS) => verifyHttpSignature(req, keys, now, POLICY);
/** The signed request with its Signature-Input edited (the signature no longer matters: parsing refuses first). */
const replaceInInput = (req: AuthRequest, from: string | RegExp, to: string): AuthRequest => ({
  ...req, headers: { ...req.headers, 'signature-input': String(req.headers['signature-input']).replace(from, to) },
});
const setHeader = (req: AuthRequest, name: string, value: string | string[]): AuthRequest => ({ ...req, headers: { ...req.headers, [name]: value } });

describe('HMAC signatures: accepted', () => {
  it('a POST with query and body, signed over what must be covered, is accepted with the key\'s principal and scopes', () => {
    const v = verifyAt(sign(post()));
    assert.ok(v.ok, !v.ok ? v.message : '');
    assert.equal(v.kind, 'hmac');
    assert.equal(v.principal, `apikey:${key.id}`);
    assert.deepEqual(v.scopes, ['orders:read', 'orders:write']);
    assert.equal(v.replayKey?.startsWith(`${key.id}:`), true);
  });

  it('one authorization line (the app\'s, not a credential of this route) does not stand in the way', () => {
    const v = verifyAt(setHeader(sign(post()), 'authorization', 'Bearer app-token'));
    assert.ok(v.ok, !v.ok ? v.message : '');
    assert.ok(verifyAt(setHeader(sign(post()), 'authorization', ['Bearer app-token'])).ok, 'one line given as an array (headersDistinct shape)');
  });

  it('@target-uri covers authority, path and query; @request-target covers path and query', () => {
    assert.ok(verifyAt(sign(post(), { components: ['@method', '@target-uri', 'content-digest'] })).ok);
    assert.ok(verifyAt(sign(post(), { components: ['@method', '@authority', '@request-target', 'content-digest'] })).ok);
  });
});

describe('HMAC signatures: refusals', () => {
  const cases: [string, () => AuthVerdict, RefusalReason][] = [
    ['no signature at all', () => verifyAt(post()), 'missing'],
    ['two authorization lines beside a valid signature', () => verifyAt(setHeader(sign(post()), 'authorization', ['Bearer app-1', 'Bearer app-2'])), 'ambiguous'],
    ['two authorization lines and no signature', () => verifyAt(setHeader(post(), 'authorization', ['Basic dXNlcjpwdw==', 'Basic dXNlcjpwdw=='])), 'ambiguous'],
    ['the body changed after signing (digest header kept)', () => {
      const signed = sign(post());
      return verifyAt({ ...signed, body: { sha256: withBody(request(), '{"amount":1000}').body!.sha256 } });
    }, 'digest_mismatch'],
    ['the body and its Content-Digest both changed after signing', () => {
      const signed = sign(post());
      const changed = withBody(request(), '{"amount":1000}');
      return verifyAt({ ...signed, body: changed.body!, headers: { ...signed.headers, 'content-digest': changed.headers['content-digest'] } });
    }, 'bad_secret'],
    ['Content-Digest without sha-256', () => {
      const req = setHeader(post(), 'content-digest', 'sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:');
      return verifyAt(sign(req));
    }, 'digest_mismatch'],
    ['Content-Digest not a structured field', () => verifyAt(sign(setHeader(post(), 'content-digest', 'sha-256=abc'))), 'digest_mismatch'],
    ['created 301 s in the past', () => verifyAt(sign(post(), { created: NOW_S - 301 })), 'clock_skew'],
    ['created 301 s in the future', () => verifyAt(sign(post(), { created: NOW_S + 301 })), 'clock_skew'],
    ['expires in the past', () => verifyAt(sign(post(), { expires: NOW_S - 1 })), 'expired'],
    ['body not covered', () => verifyAt(sign(post(), { components: ['@method', '@authority', '@path', '@query'] })), 'not_covered'],
    ['@query not covered while there is a query', () => verifyAt(sign(post(), { components: ['@method', '@authority', '@path', 'content-digest'] })), 'not_covered'],
    ['@method not covered', () => verifyAt(sign(request(), { components: ['@authority', '@path'] })), 'not_covered'],
    ['@authority not covered', () => verifyAt(sign(request(), { components: ['@method', '@path'] })), 'not_covered'],
    ['a query added after signing', () => {
      const signed = sign(request());
      return verifyAt({ ...signed, query: 'admin=true' });
    }, 'not_covered'],
    ['the path changed after signing', () => verifyAt({ ...sign(post()), path: '/payments/other' }), 'bad_secret'],
    ['the method changed after signing', () => verifyAt({ ...sign(post()), method: 'PUT' }), 'bad_secret'],
    ['the authority changed after signing', () => verifyAt({ ...sign(post()), authority: 'evil.example.com' }), 'bad_secret'],
    ['the query changed after signing', () => verifyAt({ ...sign(post()), query: 'currency=USD' }), 'bad_secret'],
    ['unknown keyid', () => verifyAt(sign(post(), { keyId: 'AAAAAAAAAAAA' })), 'unknown_key'],
    ['a hostile keyid', () => verifyAt(sign(post(), { keyId: '../../etc/passwd' })), 'unknown_key'],
    ['the key exists but has no HMAC secret', () => {
      const plain = makeKey({ hmacSecrets: undefined });
      return verifyAt(sign(post(), { keyId: plain.record.id }), NOW, keySet(record, plain.record));
    }, 'unknown_key'],
    ['wrong secret', () => verifyAt(sign(post(), { secret: randomBytes(32) })), 'bad_secret'],
    ['alg other than hmac-sha256', () => verifyAt(replaceInInput(sign(post()), 'hmac-sha256', 'rsa-pss-sha512')), 'algorithm'],
    ['a component with parameters (;sf)', () => verifyAt(replaceInInput(sign(post()), '"@path"', '"@path";sf')), 'malformed'],
    ['an unknown signature parameter', () => verifyAt(replaceInInput(sign(post()), /$/, ';foo=1')), 'malformed'],
    ['no created parameter', () => verifyAt(replaceInInput(sign(post()), /;created=\d+/, '')), 'malformed'],
    ['no keyid parameter', () => verifyAt(replaceInInput(sign(post()), /;keyid="[^"]*"/, '')), 'malformed'],
    ['Signature-Input without Signature', () => {
      const signed = sign(post());
      return verifyAt({ ...signed, headers: { ...signed.headers, signature: undefined } });
    }, 'malformed'],
    ['Signature label differs from Signature-Input', () => {
      const signed = sign(post());
      return verifyAt(setHeader(signed, 'signature', String(signed.headers.signature).replace('sig1=', 'sig2=')));
    }, 'malformed'],
    ['two signatures in one request', () => {
      const signed = sign(post());
      const again = signRequest(post(), { keyId: key.id, secret: key.hmacSecret, created: NOW_S, label: 'sig2' });
      return verifyAt({ ...signed, headers: { ...signed.headers, 'signature-input': [String(signed.headers['signature-input']), again['signature-input']], signature: [String(signed.headers.signature), again.signature] } });
    }, 'ambiguous'],
    ['a component covered twice', () => verifyAt(replaceInInput(sign(request()), '"@path"', '"@path" "@path"')), 'malformed'],
    ['a covered header the request does not have', () => {
      const signed = sign(setHeader(request(), 'x-date', 'today'), { components: ['@method', '@authority', '@path', 'x-date'] });
      return verifyAt({ ...signed, headers: { ...signed.headers, 'x-date': undefined } });
    }, 'malformed'],
    ['an uppercase header name in the covered list', () => verifyAt(replaceInInput(sign(setHeader(request(), 'x-date', 'today')), '"@path"', '"@path" "X-Date"')), 'malformed'],
    ['@status (a response component)', () => verifyAt(replaceInInput(sign(request()), '"@path"', '"@path" "@status"')), 'malformed'],
    ['a signature of 31 bytes', () => verifyAt(setHeader(sign(post()), 'signature', `sig1=:${randomBytes(31).toString('base64')}:`)), 'bad_secret'],
  ];
  for (const [name, run, reason] of cases) {
    it(`${name} → ${reason}`, () => {
      const refused = expectRefused(run(), reason);
      assert.equal(refused.kind, 'hmac');
      assert.match(refused.wwwAuthenticate, reason === 'missing' ? /^Signature realm="meshward"$/ : /^Signature realm="meshward", error="invalid_signature", error_description="[^"\\]+"$/);
    });
  }

  const malformed = [
    'sig1=("@method" "@path"', // unterminated inner list
    'sig1=("@method""@path");created=1', // no space between items
    'sig1=("@method");created=1, ', // trailing comma
    'Sig1=("@method");created=1', // uppercase key
    'sig1=("@method");created=1, sig1=("@path");created=1', // repeated key
    'sig1=("@method");created=1;created=2', // repeated parameter
    'sig1=("@méthod");created=1', // non-ASCII in a string
    'sig1=("@method");created=1234567890123456', // integer of 16 digits
    'sig1=(@method);created=1', // token where a string is needed
    'sig1=("@method");keyid="a\\b"', // escape other than \" or \\
  ];
  for (const input of malformed) {
    it(`malformed Signature-Input ${JSON.stringify(input)} → malformed`, () => {
      const signed = sign(post());
      expectRefused(verifyAt(setHeader(signed, 'signature-input', input)), 'malformed');
    });
  }
  for (const sig of ['sig1=:not base64!:', 'sig1=:YWJj', 'sig1="abc"', 'sig1=:YWJjZA:']) {
    it(`malformed Signature ${JSON.stringify(sig)} → malformed`, () => {
      expectRefused(verifyAt(setHeader(sign(post()), 'signature', sig)), 'malformed');
    });
  }
});

describe('HMAC signatures: the key\'s state', () => {
  it('a keyid that is not a key id is never echoed into the verdict (audit lines)', () => {
    const refused = expectRefused(verifyAt(sign(post(), { keyId: `../${'x'.repeat(5000)}` })), 'unknown_key');
    assert.equal(refused.keyId, undefined);
    assert.ok(refused.message.length < 200);
    assert.equal(expectRefused(verifyAt(sign(post(), { keyId: 'AAAAAAAAAAAA' })), 'unknown_key').keyId, 'AAAAAAAAAAAA');
  });

  it('a revoked key, an expired key, a key bound to another identity', () => {
    const revoked = makeKey({ revoked: new Date(NOW - 1000) });
    const expired = makeKey({ expires: new Date(NOW - 1000) });
    const bound = makeKey({ boundTo: 'spiffe://example.org/ns/partner/**' });
    const keys = keySet(revoked.record, expired.record, bound.record);
    const signWith = (k: typeof revoked, req: AuthRequest) => ({ ...req, headers: { ...req.headers, ...signRequest(req, { keyId: k.record.id, secret: k.key.hmacSecret, created: NOW_S }) } });
    expectRefused(verifyAt(signWith(revoked, post()), NOW, keys), 'revoked');
    expectRefused(verifyAt(signWith(expired, post()), NOW, keys), 'expired');
    expectRefused(verifyAt(signWith(bound, post()), NOW, keys), 'binding');
    expectRefused(verifyAt({ ...signWith(bound, post()), peer: { spiffeId: 'spiffe://example.org/ns/other/sa/x' } }, NOW, keys), 'binding');
    assert.ok(verifyAt({ ...signWith(bound, post()), peer: { spiffeId: 'spiffe://example.org/ns/partner/sa/x' } }, NOW, keys).ok);
  });

  it('after a rotation the old HMAC secret works until the grace ends, then is refused as rotated', () => {
    const fresh = randomBytes(32);
    const until = new Date(NOW + DAY);
    const rotated = makeKey();
    rotated.record.hmacSecrets = [{ secret: fresh }, { secret: rotated.key.hmacSecret, until }];
    rotated.record.secretHashes = [{ sha256: randomBytes(32) }, { sha256: rotated.record.secretHashes[0]!.sha256, until }];
    const keys = keySet(rotated.record);
    const signWith = (secret: Buffer, created: number) => {
      const req = post();
      return { ...req, headers: { ...req.headers, ...signRequest(req, { keyId: rotated.record.id, secret, created }) } };
    };
    assert.ok(verifyAt(signWith(rotated.key.hmacSecret, NOW_S), NOW, keys).ok);
    assert.ok(verifyAt(signWith(fresh, NOW_S), NOW, keys).ok);
    const later = until.getTime() + 1000;
    expectRefused(verifyAt(signWith(rotated.key.hmacSecret, later / 1000), later, keys), 'rotated');
    assert.ok(verifyAt(signWith(fresh, later / 1000), later, keys).ok);
  });
});

describe('HMAC signatures: replay', () => {
  it('the same signed request a second time (e.g. on another worker sharing the cache) is a replay', () => {
    const cache = new ReplayCache(POLICY.maxSkewMs);
    const signed = sign(post());
    const first = verifyAt(signed);
    assert.ok(first.ok && first.replayKey);
    assert.equal(cache.remember(first.replayKey, NOW), 'fresh');
    const second = verifyAt(signed, NOW + 5000);
    assert.ok(second.ok && second.replayKey);
    assert.equal(cache.remember(second.replayKey, NOW + 5000), 'replay');
    expectRefused(replayRefusal(key.id, 'replay'), 'replay');
    // A fresh signature of the same request is not a replay.
    const again = verifyAt(sign(post(), { created: NOW_S + 1 }), NOW + 1000);
    assert.ok(again.ok && again.replayKey);
    assert.equal(cache.remember(again.replayKey, NOW + 1000), 'fresh');
  });
});
