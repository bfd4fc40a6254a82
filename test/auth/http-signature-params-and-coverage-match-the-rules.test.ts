// The HMAC verifier reads the signature parameters and the coverage in one pass each (src/auth/http-signature.ts,
// signatureParams and checkCoverage). These properties hold it to the rules as they were written before, kept
// here as a reference: every parameter known (the first unknown one named), then alg, keyid, created, expires,
// nonce, tag, each checked in that order; @method, @authority (or @target-uri), @path (or @target-uri,
// @request-target), @query when there is one (or @target-uri, @request-target), content-digest when there is a
// body, the missing ones named in that order. Same verdict reason, same message, on random inputs.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { signRequest, verifyHttpSignature } from '../../src/auth/http-signature.js';
import type { AuthRequest } from '../../src/auth/verdict.js';
import { keySet, makeKey, NOW, NOW_S, request, withBody } from './helpers.js';

const POLICY = { maxSkewMs: 300_000 };
const { key, record } = makeKey();
const KEYS = keySet(record);
const PARAMS = ['created', 'expires', 'nonce', 'alg', 'keyid', 'tag'];

type Param = [string, string | number];

/** The parameter rules as the verifier had them (a closure and an indexOf per name). */
function paramsRefusal(params: Param[]): { reason: string; message: string } | undefined {
  const keys = params.map(([k]) => k);
  const at = (k: string) => keys.indexOf(k);
  const isString = (i: number) => typeof params[i]![1] === 'string';
  for (const k of keys) if (!PARAMS.includes(k)) return { reason: 'malformed', message: `Signature-Input: unknown parameter "${k}" (known: ${PARAMS.join(', ')})` };
  const alg = at('alg');
  if (alg >= 0 && !(isString(alg) && params[alg]![1] === 'hmac-sha256')) return { reason: 'algorithm', message: 'Signature-Input: alg must be "hmac-sha256"' };
  const keyId = at('keyid');
  if (keyId < 0 || !isString(keyId)) return { reason: 'malformed', message: 'Signature-Input: keyid="<API key id>" is required' };
  const created = at('created');
  if (created < 0 || isString(created)) return { reason: 'malformed', message: 'Signature-Input: created=<unix seconds> is required' };
  const expires = at('expires');
  if (expires >= 0 && isString(expires)) return { reason: 'malformed', message: 'Signature-Input: expires must be unix seconds' };
  for (const k of ['nonce', 'tag']) {
    const i = at(k);
    if (i >= 0 && !isString(i)) return { reason: 'malformed', message: `Signature-Input: ${k} must be a string` };
  }
  return undefined;
}

/** The coverage rule as the verifier had it (includes() over each list of alternatives). */
function coverageRefusal(req: AuthRequest, names: string[]): string | undefined {
  const covers = (alternatives: string[]) => alternatives.some((n) => names.includes(n));
  const query = req.query !== undefined && req.query !== '';
  const missing: string[] = [];
  if (!covers(['@method'])) missing.push('@method');
  if (!covers(['@authority', '@target-uri'])) missing.push('@authority');
  if (!covers(['@path', '@target-uri', '@request-target'])) missing.push('@path');
  if (query && !covers(['@query', '@target-uri', '@request-target'])) missing.push('@query');
  if (req.body !== undefined && !covers(['content-digest'])) missing.push('content-digest');
  return missing.length === 0 ? undefined : `the signature must cover ${missing.join(', ')}`;
}

const param: fc.Arbitrary<Param> = fc.tuple(
  fc.constantFrom(...PARAMS, 'foo', 'sig'),
  fc.oneof(fc.constantFrom('hmac-sha256', 'rsa-pss-sha512', key.id, 'n1', ''), fc.integer({ min: 0, max: 2_000_000_000 })),
);

describe('HMAC signature parameters: the one-pass reader keeps the rules', () => {
  it('random parameter lists (known, unknown, wrong types, any order) get the reference verdict and message', () => {
    fc.assert(fc.property(fc.uniqueArray(param, { selector: ([k]) => k, maxLength: 7 }), (params) => {
      const text = params.map(([k, v]) => `;${k}=${typeof v === 'string' ? `"${v}"` : v}`).join('');
      const req = request({ headers: { 'signature-input': `sig1=("@method" "@authority" "@path")${text}`, signature: `sig1=:${randomBytes(32).toString('base64')}:` } });
      const v = verifyHttpSignature(req, KEYS, NOW, POLICY);
      const expected = paramsRefusal(params);
      if (expected !== undefined) {
        assert.equal(v.ok, false);
        assert.deepEqual({ reason: !v.ok && v.reason, message: !v.ok && v.message }, expected);
      } else {
        // Past the parameters: a random signature never matches, or the key or clock refuses first.
        assert.equal(v.ok, false);
        assert.ok(!v.ok && ['unknown_key', 'bad_secret'].includes(v.reason), !v.ok ? `${v.reason}: ${v.message}` : '');
      }
    }), { numRuns: 500 });
  });
});

describe('HMAC coverage: the one-pass check keeps the rules', () => {
  const component = fc.constantFrom('@method', '@authority', '@path', '@query', 'content-digest', '@target-uri', '@request-target', '@scheme');
  it('random covered lists on requests with and without query and body: accepted exactly when the reference says so, same message otherwise', () => {
    fc.assert(fc.property(fc.uniqueArray(component, { maxLength: 8 }), fc.boolean(), fc.boolean(), (names, withQuery, hasBody) => {
      let req = request({ method: 'POST', path: '/payments', ...(withQuery ? { query: 'currency=EUR' } : {}) });
      // content-digest covered without a body: the header is still sent (digest of nothing), as a signer would.
      req = hasBody ? withBody(req, '{"amount":100}') : names.includes('content-digest') ? { ...req, headers: { ...req.headers, 'content-digest': 'sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:' } } : req;
      const signed = { ...req, headers: { ...req.headers, ...signRequest(req, { keyId: key.id, secret: key.hmacSecret, created: NOW_S, components: names }) } };
      const v = verifyHttpSignature(signed, KEYS, NOW, POLICY);
      const expected = coverageRefusal(req, names);
      if (expected === undefined) assert.ok(v.ok, !v.ok ? `${names.join(' ')}: ${v.reason}: ${v.message}` : '');
      else assert.deepEqual(!v.ok && { reason: v.reason, message: v.message }, { reason: 'not_covered', message: expected });
    }), { numRuns: 500 });
  });
});
