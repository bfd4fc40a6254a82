// stripCredentials (src/sidecar/http/headers.ts) looks only at names as long as a credential header's
// (x-api-key and signature: 9, authorization: 13, signature-input: 15) and lower-cases only those. It must
// still remove every credential line in any letter case, keep every other line in order with its own
// spelling, and keep what the route's kinds do not cover (an app's own authorization on an HMAC route).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isCredentialHeader, stripCredentials } from '../../../src/sidecar/http/headers.js';

describe('stripCredentials', () => {
  it('removes credential lines in any letter case and keeps the rest in order', () => {
    const headers = [
      'Host', 'a.example', 'X-API-Key', 'mwk_x', 'Signature-Input', 'sig1=()', 'SIGNATURE', 'sig1=:AA==:',
      'Authorization', 'Bearer t', 'User-Agent', 'curl', 'x-signature', 'kept', 'Content-Length', '3',
    ];
    stripCredentials(headers, ['apikey', 'hmac', 'jwt']);
    assert.deepEqual(headers, ['Host', 'a.example', 'User-Agent', 'curl', 'x-signature', 'kept', 'Content-Length', '3']);
  });

  it('keeps the lines of kinds the route does not check (an app\'s Basic authorization on an HMAC route)', () => {
    const headers = ['Authorization', 'Basic dTpw', 'signature', 'sig1=:AA==:', 'x-api-key', 'mwk_y'];
    stripCredentials(headers, ['hmac']);
    assert.deepEqual(headers, ['Authorization', 'Basic dTpw', 'x-api-key', 'mwk_y']);
  });

  it('on random header lists, removes exactly the lines isCredentialHeader names (the check on every name)', () => {
    const name = fc.oneof(
      fc.constantFrom('x-api-key', 'X-Api-Key', 'signature', 'Signature', 'signature-input', 'SIGNATURE-INPUT', 'authorization', 'AUTHORIZATION', 'Host', 'signaturex', 'x-api-keys'),
      fc.stringMatching(/^[A-Za-z-]{1,16}$/),
    );
    const value = fc.constantFrom('Bearer abc', 'basic dTpw', 'Digest x', 'sig1=:AA==:', 'mwk_z');
    const kinds = fc.subarray(['apikey', 'hmac', 'jwt']);
    fc.assert(fc.property(fc.array(fc.tuple(name, value), { maxLength: 12 }), kinds, (lines, k) => {
      const headers = lines.flat();
      const expected = lines.filter(([n, v]) => !isCredentialHeader(n.toLowerCase(), v, k)).flat();
      stripCredentials(headers, k);
      assert.deepEqual(headers, expected);
    }), { numRuns: 500 });
  });
});
