// What the sidecar hands the replay cache besides the replay key: the signature's `created`, read back from
// Signature-Input. For the plain shape every client sends it is the number the RFC 8941 parser (the
// verifier's) finds, a `;created=` inside a string value included; for anything else it is undefined (the
// cache then keeps the signature for 2·maxSkew) and never a different number (property against the parser).
// A worker passes it to the primary; the store keeps each signature until created + maxSkew (+ its grace).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { signRequest } from '../../../src/auth/http-signature.js';
import { parseDictionary } from '../../../src/auth/structured-fields.js';
import type { AuthRequest } from '../../../src/auth/verdict.js';
import { IpcReplayStore, LocalReplayStore, LOCAL_REPLAY_GRACE_MS, signatureCreated, type ReplayQuestion } from '../../../src/sidecar/auth/replay.js';

const withInput = (input: string | string[]): AuthRequest => ({ method: 'GET', scheme: 'https', authority: 'a.example', path: '/', headers: { 'signature-input': input } });

/** The `created` the verifier's parser sees, or undefined when it refuses the text or has none. */
function parsedCreated(input: string): number | undefined {
  try {
    const dict = parseDictionary(input);
    if (dict.size !== 1) return undefined;
    const member = [...dict.values()][0]!;
    const created = member.params.find(([k]) => k === 'created')?.[1];
    return created?.type === 'integer' ? created.value : undefined;
  } catch {
    return undefined;
  }
}

describe('signatureCreated', () => {
  it('reads created from what signRequest and the docs write', () => {
    const req: AuthRequest = { method: 'POST', scheme: 'https', authority: 'a.example', path: '/p', query: 'x=1', headers: { 'content-digest': 'sha-256=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:' }, body: { sha256: Buffer.alloc(32) } };
    const signed = signRequest(req, { keyId: 'AbCdEfGhIjKl', secret: Buffer.alloc(32, 1), created: 1_733_300_000, expires: 1_733_300_060, nonce: 'n-1' });
    assert.equal(signatureCreated(withInput(signed['signature-input'])), 1_733_300_000);
    assert.equal(signatureCreated(withInput('sig1=("@method" "@authority" "@path" "content-digest");created=1733300000;keyid="AbCdEfGhIjKl"')), 1_733_300_000);
    assert.equal(signatureCreated(withInput('sig1=();created=-5;keyid="k"')), -5);
  });

  it('a ";created=" inside a string parameter is not the parameter', () => {
    const input = 'sig1=("@method");nonce=";created=1";created=1733300000;keyid="k"';
    assert.equal(parsedCreated(input), 1_733_300_000);
    assert.equal(signatureCreated(withInput(input)), 1_733_300_000);
    assert.equal(signatureCreated(withInput('sig1=("@method;created=1");created=1733300000')), 1_733_300_000);
  });

  it('undefined for every other shape (the cache keeps those the longest time instead)', () => {
    for (const input of [
      'sig1=("@method");keyid="k"', // no created
      'sig1=("@method");created="1733300000";keyid="k"', // a string, not an integer
      'sig1=("@method");created=1733300000.5;keyid="k"', // a decimal
      'sig1=("@method");created=1234567890123456;keyid="k"', // 16 digits: RFC 8941 refuses
      'sig1=( "@method" );created=1733300000;keyid="k"', // optional spaces
      'sig1=("@method"  "@path");created=1733300000;keyid="k"',
      'sig1=("@method");created=1733300000; keyid="k"',
      ' sig1=("@method");created=1733300000;keyid="k"',
      'sig1=("@method");created=1733300000;keyid="k\\"x"', // an escape
      'sig1=("@query-param";name="a");created=1733300000;keyid="k"', // component parameters
      'sig1=("@method");created=1733300000;keyid="k", sig2=("@path");created=1;keyid="k"', // two members
      'sig1=("@method");created=1733300000;flag;keyid="k"', // a boolean parameter
      'sig1=("@method");created=1733300000;alg=hmac-sha256', // a token value
    ]) {
      assert.equal(signatureCreated(withInput(input)), undefined, input);
    }
    // Two field lines (joined with ", " by the verifier): not the plain shape either.
    assert.equal(signatureCreated(withInput(['sig1=("@method");created=1733300000;keyid="k"', 'x=1'])), undefined);
    assert.equal(signatureCreated({ method: 'GET', scheme: 'https', authority: 'a', path: '/', headers: {} }), undefined);
  });

  it('never a number the parser would not find (property, hostile pieces)', () => {
    const piece = fc.constantFrom('sig1', '=', '(', ')', ' ', '"@method"', '"@path"', '";created=9"', ';', 'created', '=', '1733300000', '-1', '9', '"', '\\', ',', 'keyid', '"k"', 'nonce', ';created=1', '.5', '?1', ':AAAA:');
    fc.assert(fc.property(fc.array(piece, { maxLength: 30 }), (pieces) => {
      const input = pieces.join('');
      const got = signatureCreated(withInput(input));
      if (got !== undefined) assert.equal(got, parsedCreated(input), input);
    }), { numRuns: 5000 });
    // And the plain shape, generated: always found, always the parser's.
    const str = fc.stringMatching(/^[ -!#-[\]-~]{0,12}$/).map((s) => `"${s}"`);
    const key = fc.stringMatching(/^[a-z][a-z0-9_.*-]{0,6}$/).filter((k) => k !== 'created');
    fc.assert(fc.property(fc.array(str, { maxLength: 5 }), fc.array(fc.tuple(key, fc.oneof(str, fc.integer({ min: -1e9, max: 1e9 }).map(String))), { maxLength: 4 }), fc.integer({ min: 0, max: 2e9 }), fc.nat(4),
      (components, others, created, at) => {
        const unique = [...new Map(others).entries()];
        const params = unique.map(([k, v]) => `;${k}=${v}`);
        params.splice(Math.min(at, params.length), 0, `;created=${created}`);
        const input = `sig1=(${components.join(' ')})${params.join('')}`;
        assert.equal(parsedCreated(input), created, input);
        assert.equal(signatureCreated(withInput(input)), created, input);
      }), { numRuns: 1000 });
  });
});

describe('replay stores', () => {
  it('a worker sends created to the primary, and nothing when it is unknown', () => {
    const sent: ReplayQuestion[] = [];
    const store = new IpcReplayStore((m) => sent.push(m));
    void store.remember('k1', 1_733_300_000);
    void store.remember('k2');
    assert.equal(sent[0]!.created, 1_733_300_000);
    assert.equal('created' in sent[1]!, false);
    // Answer both so no timer is left behind.
    for (const q of sent) store.onMessage({ type: 'meshward:replay-answer', id: q.id, outcome: 'fresh' });
  });

  it('the local store remembers on the wall clock, with a grace of a second', () => {
    const store = new LocalReplayStore(300_000);
    const nowS = Math.floor(Date.now() / 1000);
    assert.equal(store.remember('a', nowS), 'fresh');
    assert.equal(store.remember('a', nowS), 'replay');
    assert.equal(store.remember('b', nowS), 'fresh');
    assert.equal(store.cache.size, 2);
    assert.equal(LOCAL_REPLAY_GRACE_MS, 1_000);
  });
});
