// The verified-token cache: a token is verified once and then answered synchronously from the cache until
// its exp (+ leeway) or until the issuer's keys change; the certificate binding is still checked on every
// request; the cache is bounded in entries and in characters; concurrent first uses share one verification.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { keySetFromJwks } from '../../src/auth/jwks.js';
import { JWT_LEEWAY_S, JwtVerifier } from '../../src/auth/jwt.js';
import type { AuthRequest, Peer } from '../../src/auth/verdict.js';
import { AUDIENCE, expectRefused, ISSUER, makeIssuer, NOW, NOW_S, request, signToken } from './helpers.js';

const issuer = makeIssuer('ES256', 'k1');
const bearer = (token: string, peer?: Peer): AuthRequest => request({ headers: { authorization: `Bearer ${token}` }, ...(peer ? { peer } : {}) });

function verifier(options = {}): JwtVerifier {
  const v = new JwtVerifier([{ issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'] }], options);
  v.setKeys(ISSUER, keySetFromJwks(issuer.jwks, 'jwks.json'));
  return v;
}

describe('JWT cache', () => {
  it('the second use of a token is answered synchronously from the cache, with the same verdict', async () => {
    const v = verifier();
    const token = await signToken(issuer);
    const first = v.check(bearer(token), NOW);
    assert.ok(first instanceof Promise, 'the first use verifies (asynchronously)');
    const verdict = await first;
    assert.ok(verdict.ok);
    const second = v.check(bearer(token), NOW + 1000);
    assert.ok(!(second instanceof Promise), 'a cached token is answered without waiting');
    assert.equal(second, verdict);
    assert.equal(v.cachedTokens, 1);
  });

  it('a cached token stops working at exp + leeway, without being verified again', async () => {
    const v = verifier();
    const token = await signToken(issuer, { exp: NOW_S + 10 });
    assert.ok((await v.check(bearer(token), NOW)).ok);
    assert.ok((v.check(bearer(token), (NOW_S + 10 + JWT_LEEWAY_S) * 1000 - 1) as { ok: boolean }).ok);
    expectRefused(v.check(bearer(token), (NOW_S + 10 + JWT_LEEWAY_S) * 1000) as never, 'expired');
    assert.equal(v.cachedTokens, 0);
  });

  it('new keys for the issuer empty the cache: a token of a removed key is refused at once', async () => {
    const v = verifier();
    const token = await signToken(issuer);
    assert.ok((await v.check(bearer(token), NOW)).ok);
    v.setKeys(ISSUER, keySetFromJwks(makeIssuer('ES256', 'k2').jwks, 'jwks.json'));
    assert.equal(v.cachedTokens, 0);
    expectRefused(await v.check(bearer(token), NOW), 'unknown_key');
  });

  it('the certificate binding is checked on every use, cached or not', async () => {
    const v = verifier();
    const der = Buffer.from('certificate');
    const sha = createHash('sha256').update(der).digest();
    const token = await signToken(issuer, { cnf: { 'x5t#S256': sha.toString('base64url') } });
    assert.ok((await v.check(bearer(token, { certificateSha256: sha }), NOW)).ok);
    expectRefused(v.check(bearer(token, { certificateSha256: createHash('sha256').update('other').digest() }), NOW) as never, 'binding');
    expectRefused(v.check(bearer(token), NOW) as never, 'binding');
    assert.ok((v.check(bearer(token, { certificateSha256: sha }), NOW) as { ok: boolean }).ok);
  });

  it('refused tokens are not cached', async () => {
    const v = verifier();
    const token = await signToken(issuer, { aud: 'billing' });
    expectRefused(await v.check(bearer(token), NOW), 'audience');
    assert.equal(v.cachedTokens, 0);
  });

  it('is bounded in entries (oldest dropped first) and in characters', async () => {
    const v = verifier({ cacheEntries: 3 });
    const tokens = await Promise.all([1, 2, 3, 4].map((i) => signToken(issuer, { sub: `c${i}` })));
    for (const t of tokens) assert.ok((await v.check(bearer(t), NOW)).ok);
    assert.equal(v.cachedTokens, 3);
    assert.equal(v.cached(tokens[0]!, NOW, undefined), undefined, 'the oldest was dropped');
    assert.ok(v.cached(tokens[3]!, NOW, undefined)?.ok);
    const small = verifier({ cacheChars: tokens[0]!.length * 2 });
    for (const t of tokens) assert.ok((await small.check(bearer(t), NOW)).ok);
    assert.equal(small.cachedTokens, 2);
  });

  it('concurrent first uses of one token share one verification', async () => {
    const v = verifier();
    const token = await signToken(issuer);
    const verdicts = await Promise.all(Array.from({ length: 20 }, () => v.check(bearer(token), NOW)));
    assert.ok(verdicts.every((x) => x === verdicts[0] && x.ok));
  });
});
