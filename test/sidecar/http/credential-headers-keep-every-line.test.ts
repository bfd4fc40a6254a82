// credentialHeaders (src/sidecar/http/headers.ts) hands a field sent once as its string and a field sent on
// several lines as an array of every line, by lower-case name; the checks read both shapes (headerValues).
// A repeated authorization or x-api-key line must stay visible (it is refused as ambiguous), HTTP/2
// pseudo-headers are no fields, and without `all` only authorization and x-api-key are kept.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { headerValues } from '../../../src/auth/verdict.js';
import { credentialHeaders } from '../../../src/sidecar/http/headers.js';

describe('credentialHeaders', () => {
  it('one line as a string, several lines as an array in order, names lower-cased', () => {
    const out = credentialHeaders(['Host', 'a', 'Authorization', 'Bearer 1', 'authorization', 'Bearer 2', 'Signature', 's', ':path', '/x'], true);
    assert.deepEqual({ ...out }, { host: 'a', authorization: ['Bearer 1', 'Bearer 2'], signature: 's' });
  });

  it('without all, only authorization and x-api-key', () => {
    const out = credentialHeaders(['Host', 'a', 'X-Api-Key', 'k', 'signature', 's', 'AUTHORIZATION', 'Basic x'], false);
    assert.deepEqual({ ...out }, { 'x-api-key': 'k', authorization: 'Basic x' });
  });

  it('on random raw headers, headerValues of each name gives exactly its lines in order', () => {
    const name = fc.constantFrom('Host', 'host', 'Authorization', 'authorization', 'X-API-KEY', 'signature', 'Content-Digest', ':authority');
    fc.assert(fc.property(fc.array(fc.tuple(name, fc.string({ maxLength: 5 })), { maxLength: 10 }), fc.boolean(), (lines, all) => {
      const out = credentialHeaders(lines.flat(), all);
      const kept = lines.filter(([n]) => !n.startsWith(':') && (all || ['authorization', 'x-api-key'].includes(n.toLowerCase())));
      const names = new Set(kept.map(([n]) => n.toLowerCase()));
      assert.deepEqual(Object.keys(out).sort(), [...names].sort());
      for (const n of names) assert.deepEqual(headerValues(out, n), kept.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v));
    }), { numRuns: 300 });
  });
});
