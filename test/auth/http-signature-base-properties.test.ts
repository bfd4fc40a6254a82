// Properties of the RFC 9421 signature base and hmac-sha256 verification (fast-check): the base is a
// deterministic function of the request and the covered list; a request signed over its components verifies;
// changing any covered component (method, authority, path, query, a header, the body) changes the signature
// base and the request is refused.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { signRequest, signatureBase, verifyHttpSignature } from '../../src/auth/http-signature.js';
import { parseDictionary, type InnerList } from '../../src/auth/structured-fields.js';
import type { AuthRequest } from '../../src/auth/verdict.js';
import { keySet, makeKey, NOW, NOW_S, request, withBody } from './helpers.js';

const RUNS = { numRuns: 300 };
const { key, record } = makeKey();
const KEYS = keySet(record);

const token = fc.stringMatching(/^[A-Za-z0-9_.~-]{1,12}$/);
const method = fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD');
const host = fc.tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/), fc.constantFrom('', ':8443', ':9000')).map(([h, p]) => `${h}.example.com${p}`);
const path = fc.array(token, { minLength: 1, maxLength: 4 }).map((segs) => `/${segs.join('/')}`);
const query = fc.option(fc.array(fc.tuple(token, token), { minLength: 1, maxLength: 3 }).map((kv) => kv.map(([k, v]) => `${k}=${v}`).join('&')), { nil: undefined });
const headerValue = fc.stringMatching(/^[!-~]([ -~]{0,20}[!-~])?$/);
const body = fc.option(fc.string({ maxLength: 64 }), { nil: undefined });

const requestArb = fc.record({ method, host, path, query, tag: headerValue, body }).map(({ method: m, host: h, path: p, query: q, tag, body: b }) => {
  let req: AuthRequest = request({ method: m, authority: h, path: p, headers: { 'x-tag': tag } });
  if (q !== undefined) req = { ...req, query: q };
  if (b !== undefined) req = withBody(req, b);
  return req;
});

function sign(req: AuthRequest): AuthRequest {
  const components = ['@method', '@authority', '@path', 'x-tag', ...(req.query ? ['@query'] : []), ...(req.body ? ['content-digest'] : [])];
  return { ...req, headers: { ...req.headers, ...signRequest(req, { keyId: key.id, secret: key.hmacSecret, created: NOW_S, components }) } };
}

const listOf = (req: AuthRequest): InnerList => [...parseDictionary(String(req.headers['signature-input'])).values()][0] as InnerList;
const verify = (req: AuthRequest) => verifyHttpSignature(req, KEYS, NOW, { maxSkewMs: 300_000 });

/** One covered component changed; `changed` returns undefined when the change would be a no-op. */
const mutation = fc.constantFrom('method', 'authority', 'path', 'query', 'header', 'body');
function mutate(req: AuthRequest, what: string, salt: string): AuthRequest {
  switch (what) {
    case 'method': return { ...req, method: req.method === 'GET' ? 'POST' : 'GET' };
    case 'authority': return { ...req, authority: `x${salt}.${req.authority}` };
    case 'path': return { ...req, path: `${req.path}/${salt}` };
    case 'query': return { ...req, query: `${req.query ?? ''}&z=${salt}` };
    case 'header': return { ...req, headers: { ...req.headers, 'x-tag': `${String(req.headers['x-tag'])}${salt}` } };
    default: return { ...req, body: { sha256: randomBytes(32) } };
  }
}

describe('signature base (properties)', () => {
  it('is deterministic: the same request and list give the same base, every time', () => {
    fc.assert(fc.property(requestArb, (req) => {
      const signed = sign(req);
      const list = listOf(signed);
      assert.equal(signatureBase(signed, list), signatureBase(structuredClone(signed), list));
      assert.equal(sign(req).headers.signature, signed.headers.signature);
    }), RUNS);
  });

  it('a request signed over its components verifies', () => {
    fc.assert(fc.property(requestArb, (req) => {
      const v = verify(sign(req));
      assert.ok(v.ok, v.ok ? '' : v.message);
    }), RUNS);
  });

  it('changing any covered component changes the base and the request is refused', () => {
    fc.assert(fc.property(requestArb, mutation, token, (req, what, salt) => {
      const signed = sign(req);
      const changed = mutate(signed, what, salt);
      const v = verify(changed);
      assert.equal(v.ok, false, `${what} changed but accepted`);
      if (what !== 'body' && !(what === 'query' && signed.query === undefined)) {
        assert.notEqual(signatureBase(changed, listOf(signed)), signatureBase(signed, listOf(signed)));
      }
    }), RUNS);
  });

  it('a base never depends on headers it does not cover', () => {
    fc.assert(fc.property(requestArb, headerValue, (req, other) => {
      const signed = sign(req);
      const extra = { ...signed, headers: { ...signed.headers, 'x-unsigned': other } };
      assert.equal(signatureBase(extra, listOf(signed)), signatureBase(signed, listOf(signed)));
      assert.ok(verify(extra).ok);
    }), RUNS);
  });
});
