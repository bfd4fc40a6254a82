// A JWKS is compiled once per load: public signature keys indexed by kid; a set holding a private or a
// symmetric key is refused whole (a leaked secret, or the wrong file), as are RSA keys under 2048 bits and
// malformed keys; encryption keys and keys for other algorithms are skipped. A kid is only a map key. The
// refetch gate lets an unknown kid trigger at most one fetch per interval.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { MeshwardError } from '../../src/errors.js';
import { candidateKeys, keySetFromJwks, RefetchGate } from '../../src/auth/jwks.js';

const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const ecPublic = { ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec-1' };
const rsaSmall = generateKeyPairSync('rsa', { modulusLength: 1024 });

describe('JWKS loading', () => {
  it('indexes signature keys by kid and finds them only by exact kid and fitting algorithm', () => {
    const ed = generateKeyPairSync('ed25519');
    const set = keySetFromJwks({ keys: [ecPublic, { ...ed.publicKey.export({ format: 'jwk' }), kid: 'ed-1', use: 'sig' }] }, 'jwks.json');
    assert.equal(set.all.length, 2);
    assert.equal(candidateKeys(set, 'ec-1', 'ES256').length, 1);
    assert.equal(candidateKeys(set, 'ec-1', 'ES384').length, 0, 'a P-256 key does not fit ES384');
    assert.equal(candidateKeys(set, 'ec-1', 'RS256').length, 0);
    assert.equal(candidateKeys(set, 'ed-1', 'EdDSA').length, 1);
    for (const kid of ['EC-1', 'ec-1 ', '__proto__', 'constructor', '../ec-1', 'x'.repeat(100_000)]) {
      assert.equal(candidateKeys(set, kid, 'ES256').length, 0, kid.slice(0, 20));
    }
    assert.equal(candidateKeys(set, undefined, 'ES256').length, 1);
  });

  it('skips encryption keys, keys without verify in key_ops, keys for other algorithms and X25519', () => {
    const x = generateKeyPairSync('x25519');
    const set = keySetFromJwks({ keys: [
      { ...ecPublic, kid: 'enc', use: 'enc' },
      { ...ecPublic, kid: 'ops', key_ops: ['encrypt'] },
      { ...ecPublic, kid: 'alg', alg: 'ECDH-ES' },
      { ...x.publicKey.export({ format: 'jwk' }), kid: 'x' },
      ecPublic,
    ] }, 'jwks.json');
    assert.deepEqual(set.all.map((k) => k.kid), ['ec-1']);
  });

  const refused: [string, unknown, RegExp][] = [
    ['not an object', [], /not a JSON Web Key Set/],
    ['no keys array', { key: [] }, /no "keys" array/],
    ['a private EC key', { keys: [{ ...ec.privateKey.export({ format: 'jwk' }), kid: 'p' }] }, /keys\[0\]: holds private key material \("d"\)/],
    ['a symmetric key', { keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'h' }] }, /symmetric key \(kty oct\)/],
    ['an RSA key of 1024 bits', { keys: [{ ...rsaSmall.publicKey.export({ format: 'jwk' }), kid: 'r' }] }, /1024 bits is too small/],
    ['a broken EC key', { keys: [{ ...ecPublic, x: 'AAAA' }] }, /keys\[0\]: not a valid EC public key/],
    ['a kid that is not a string', { keys: [{ ...ecPublic, kid: 5 }] }, /kid must be a string/],
    ['a 300-character kid', { keys: [{ ...ecPublic, kid: 'k'.repeat(300) }] }, /at most 256 characters/],
    ['a key without kty', { keys: [{ kid: 'a' }] }, /not a JWK/],
  ];
  for (const [name, doc, message] of refused) {
    it(`refuses ${name}`, () => {
      assert.throws(() => keySetFromJwks(doc, 'jwks.json'), (err: unknown) => err instanceof MeshwardError && /^jwks\.json: /.test(err.message) && message.test(err.message));
    });
  }
});

describe('refetch gate', () => {
  it('allows one fetch per interval, whatever the number of unknown kids', () => {
    const gate = new RefetchGate(30_000);
    assert.equal(gate.tryAcquire(0), true);
    assert.equal(gate.tryAcquire(1), false);
    assert.equal(gate.tryAcquire(29_999), false);
    assert.equal(gate.tryAcquire(30_000), true);
    assert.equal(gate.tryAcquire(30_001), false);
  });

  it('a clock that went backwards does not block fetching forever', () => {
    const gate = new RefetchGate(30_000);
    gate.tryAcquire(1_000_000);
    assert.equal(gate.tryAcquire(5_000), true);
  });
});
