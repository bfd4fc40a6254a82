// The JWT issuer settings refuse what would weaken verification, with the field named: an empty audience
// list (Envoy's jwt_authn skips the aud check then), `none` in any case, HS* (HMAC against a JWKS of public
// keys), unknown algorithms, an empty issuer, the same issuer twice.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MeshwardError } from '../../src/errors.js';
import { JwtVerifier, type JwtIssuerConfig } from '../../src/auth/jwt.js';

const ok: JwtIssuerConfig = { issuer: 'https://auth.example.com', audiences: ['orders-api'], algorithms: ['ES256'] };

describe('JWT issuer configuration', () => {
  const cases: [string, JwtIssuerConfig[], RegExp][] = [
    ['no audiences', [{ ...ok, audiences: [] }], /jwt\[0\]\.audiences: must list at least one audience/],
    ['an empty audience', [{ ...ok, audiences: [''] }], /jwt\[0\]\.audiences\[0\]/],
    ['alg none', [{ ...ok, algorithms: ['none'] }], /"none" is never allowed/],
    ['alg NONE', [{ ...ok, algorithms: ['ES256', 'NONE'] }], /algorithms\[1\]: "none" is never allowed/],
    ['HS256', [{ ...ok, algorithms: ['HS256'] }], /HS256 is never allowed/],
    ['hs512', [{ ...ok, algorithms: ['hs512'] }], /hs512 is never allowed/],
    ['an unknown algorithm', [{ ...ok, algorithms: ['ES257'] }], /"ES257" is not one of RS256/],
    ['no algorithms', [{ ...ok, algorithms: [] }], /algorithms: must list/],
    ['an empty issuer', [{ ...ok, issuer: '' }], /jwt\[0\]\.issuer/],
    ['an issuer with a space', [{ ...ok, issuer: 'https://a b' }], /jwt\[0\]\.issuer/],
    ['the same issuer twice', [ok, ok], /jwt\[1\]\.issuer: https:\/\/auth\.example\.com is configured twice/],
    ['an empty scope claim', [{ ...ok, scopeClaim: '' }], /scopeClaim/],
  ];
  for (const [name, issuers, message] of cases) {
    it(name, () => {
      assert.throws(() => new JwtVerifier(issuers), (err: unknown) => err instanceof MeshwardError && err.code === 'invalid_argument' && message.test(err.message));
    });
  }

  it('a sound configuration is accepted; setKeys for an unknown issuer is refused', () => {
    const v = new JwtVerifier([ok, { ...ok, issuer: 'https://b.example.com', algorithms: ['RS256', 'PS256', 'EdDSA'], scopeClaim: 'scp', requireCertBound: true }]);
    assert.throws(() => v.setKeys('https://c.example.com', { byKid: new Map(), all: [] }), /no JWT issuer/);
  });
});
