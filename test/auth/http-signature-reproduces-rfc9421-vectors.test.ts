// The signature base builder reproduces RFC 9421's own examples byte for byte: appendix B.2.5 (hmac-sha256
// with the shared secret of B.1.5, signature pxcQw6…) and B.2.6 (Ed25519, deterministic, covering @method and
// @path), the derived component values of RFC 9421 §2.2, and the Content-Digest of RFC 9530's example body.
import assert from 'node:assert/strict';
import { createHmac, createPublicKey, verify } from 'node:crypto';
import { describe, it } from 'node:test';
import { contentDigest, signatureBase, verifyHttpSignature } from '../../src/auth/http-signature.js';
import { ApiKeySet, keyEntry } from '../../src/auth/key-set.js';
import { parseDictionary, type InnerList } from '../../src/auth/structured-fields.js';
import type { AuthRequest } from '../../src/auth/verdict.js';
import { expectRefused } from './helpers.js';

/** RFC 9421 appendix B.2's test-request: POST /foo?param=Value&Pet=dog with a JSON body. */
const BODY = '{"hello": "world"}';
const TEST_REQUEST: AuthRequest = {
  method: 'POST',
  scheme: 'https',
  authority: 'example.com',
  path: '/foo',
  query: 'param=Value&Pet=dog',
  headers: {
    host: 'example.com',
    date: 'Tue, 20 Apr 2021 02:07:55 GMT',
    'content-type': 'application/json',
    'content-digest': 'sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:',
    'content-length': '18',
  },
};

/** RFC 9421 B.1.5 "test-shared-secret", given in the RFC as base64. */
const SHARED_SECRET = Buffer.from('uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==', 'base64');
/** RFC 9421 B.1.4 "test-key-ed25519", public part. */
const ED25519_PUBLIC = 'MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=';

function innerList(signatureInput: string): InnerList {
  const [member] = [...parseDictionary(signatureInput).values()];
  assert.equal(member?.kind, 'innerList');
  return member as InnerList;
}

/**
 * The signature base of TEST_REQUEST for one Signature-Input member, checked against the component lines the RFC
 * prints; its last line, "@signature-params", is the member's value after its label, as the RFC prints it too.
 */
function rfcSignatureBase(signatureInput: string, componentLines: string[]): string {
  const base = signatureBase(TEST_REQUEST, innerList(signatureInput));
  const params = signatureInput.slice(signatureInput.indexOf('=') + 1);
  assert.equal(base, [...componentLines, `"@signature-params": ${params}`].join('\n'));
  return base;
}

describe('RFC 9421 appendix B', () => {
  it('B.2.5: the hmac-sha256 signature base and signature are exactly the RFC\'s', () => {
    const base = rfcSignatureBase('sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"', [
      '"date": Tue, 20 Apr 2021 02:07:55 GMT',
      '"@authority": example.com',
      '"content-type": application/json',
    ]);
    const signature = createHmac('sha256', SHARED_SECRET).update(base).digest('base64');
    assert.equal(signature, 'pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=');
    // The value in the RFC's Signature field is the same byte sequence.
    const sig = parseDictionary('sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:').get('sig-b25');
    assert.equal(sig?.kind === 'item' && sig.value.type === 'bytes' && sig.value.value.toString('base64'), signature);
  });

  it('B.2.5 as received: the signature is valid but meshward\'s policy refuses it (it leaves @method, @path, @query and the body unsigned)', () => {
    const keys = new ApiKeySet([keyEntry({
      id: 'test-shared-secret', name: 'rfc', scopes: ['x'], created: new Date(0),
      secretHashes: [{ sha256: Buffer.alloc(32) }], hmacSecrets: [{ secret: SHARED_SECRET }],
    })]);
    const req: AuthRequest = {
      ...TEST_REQUEST,
      body: { sha256: Buffer.alloc(32) },
      headers: {
        ...TEST_REQUEST.headers,
        'signature-input': 'sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"',
        signature: 'sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:',
      },
    };
    const refused = expectRefused(verifyHttpSignature(req, keys, 1618884473_000, { maxSkewMs: 300_000 }), 'not_covered');
    assert.match(refused.message, /@method, @path, @query, content-digest/);
  });

  it('B.2.6: the Ed25519 example\'s base (with @method and @path) verifies with the RFC\'s public key', () => {
    const base = rfcSignatureBase('sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"', [
      '"date": Tue, 20 Apr 2021 02:07:55 GMT',
      '"@method": POST',
      '"@path": /foo',
      '"@authority": example.com',
      '"content-type": application/json',
      '"content-length": 18',
    ]);
    const key = createPublicKey({ key: Buffer.from(ED25519_PUBLIC, 'base64'), format: 'der', type: 'spki' });
    const signature = Buffer.from('wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==', 'base64');
    assert.ok(verify(null, Buffer.from(base), key, signature));
  });

  it('§2.2: derived component values for POST /path?param=value&foo=bar&baz=bat%2Dtest on www.example.com', () => {
    const req: AuthRequest = { method: 'POST', scheme: 'https', authority: 'www.example.com', path: '/path', query: 'param=value&foo=bar&baz=bat%2Dtest', headers: {} };
    const cases: [string, string][] = [
      ['@method', 'POST'],
      ['@scheme', 'https'],
      ['@authority', 'www.example.com'],
      ['@path', '/path'],
      ['@query', '?param=value&foo=bar&baz=bat%2Dtest'],
      ['@request-target', '/path?param=value&foo=bar&baz=bat%2Dtest'],
      ['@target-uri', 'https://www.example.com/path?param=value&foo=bar&baz=bat%2Dtest'],
    ];
    for (const [name, value] of cases) {
      const base = signatureBase(req, innerList(`s=("${name}");created=1`));
      assert.equal(base.split('\n')[0], `"${name}": ${value}`, name);
    }
  });

  it('§2.2: @query of a target without a query is "?", @path of an empty path is "/", the authority is lowercased without its default port', () => {
    const req: AuthRequest = { method: 'GET', scheme: 'HTTPS', authority: 'WWW.Example.COM:443', path: '', headers: {} };
    const first = (name: string) => signatureBase(req, innerList(`s=("${name}");created=1`)).split('\n')[0];
    assert.equal(first('@query'), '"@query": ?');
    assert.equal(first('@path'), '"@path": /');
    assert.equal(first('@authority'), '"@authority": www.example.com');
    assert.equal(first('@target-uri'), '"@target-uri": https://www.example.com/');
  });

  it('RFC 9530 example: Content-Digest of {"hello": "world"} with sha-256', () => {
    assert.equal(contentDigest(BODY), 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:');
  });

  it('§2.1: several field lines are trimmed and joined with ", "', () => {
    const req: AuthRequest = { ...TEST_REQUEST, headers: { 'x-list': ['  a ', 'b,c  '] } };
    assert.equal(signatureBase(req, innerList('s=("x-list");created=1')).split('\n')[0], '"x-list": a, b,c');
  });
});
