// Keys: generation per type, PKCS#8 / SEC1 / PKCS#1 / SPKI round-trips, type detection (RSA < 2048 refused),
// publicKeyMatches.
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { MeshwardError } from '../../src/errors.js';
import {
  exportPrivateKeyPem,
  exportSpkiDer,
  generateKeyPair,
  importPrivateKeyPem,
  importSpkiDer,
  KEY_TYPES,
  keyTypeOf,
  parseKeyType,
  publicKeyMatches,
} from '../../src/pki/keys.js';
import { encodePem } from '../../src/pki/pem.js';

const isInvalid = (pattern: RegExp) => (err: unknown) =>
  err instanceof MeshwardError && err.code === 'invalid_argument' && pattern.test(err.message);

describe('key types', () => {
  it('parses every key type name and refuses others', () => {
    for (const t of KEY_TYPES) assert.equal(parseKeyType(t), t);
    assert.throws(() => parseKeyType('rsa-1024'), isInvalid(/Unknown key type "rsa-1024": use one of ec-p256/));
    assert.throws(() => parseKeyType('EC-P256'), isInvalid(/Unknown key type/));
  });

  it('generates ec-p256 by default', () => {
    const k = generateKeyPair();
    assert.equal(k.type, 'ec-p256');
    assert.equal(keyTypeOf(k.publicKey), 'ec-p256');
  });

  for (const type of KEY_TYPES) {
    it(`${type}: PKCS#8 PEM and SPKI DER round-trip, type detected from either half`, () => {
      const k = generateKeyPair(type);
      assert.equal(k.type, type);
      assert.equal(keyTypeOf(k.privateKey), type);
      assert.equal(keyTypeOf(k.publicKey), type);
      const pem = exportPrivateKeyPem(k.privateKey);
      assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
      const back = importPrivateKeyPem(pem);
      assert.ok(publicKeyMatches(back, k.publicKey));
      assert.equal(keyTypeOf(back), type);
      const spki = exportSpkiDer(k.publicKey);
      assert.ok(spki.equals(exportSpkiDer(k.privateKey)), 'SPKI from the private key equals SPKI of the public key');
      const pub = importSpkiDer(spki);
      assert.ok(exportSpkiDer(pub).equals(spki));
      assert.ok(publicKeyMatches(k.privateKey, pub));
      assert.equal(publicKeyMatches(k.privateKey, generateKeyPair(type).publicKey), false);
    });
  }

  it('exportSpkiDer builds exactly the DER node:crypto exports, for keys of every type and coordinate size', () => {
    for (const type of KEY_TYPES) {
      const count = type.startsWith('rsa') ? 2 : 40; // 40 EC keys: some have coordinates with leading zero bytes
      for (let i = 0; i < count; i++) {
        const k = generateKeyPair(type);
        const expected = k.publicKey.export({ type: 'spki', format: 'der' });
        assert.ok(exportSpkiDer(k.publicKey).equals(expected), `${type} public`);
        assert.ok(exportSpkiDer(k.privateKey).equals(expected), `${type} private`);
      }
    }
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
    assert.ok(exportSpkiDer(k1.publicKey).equals(k1.publicKey.export({ type: 'spki', format: 'der' })), 'other curves fall back to DER export');
  });

  it('imports SEC1 (EC PRIVATE KEY) and PKCS#1 (RSA PRIVATE KEY) PEM', () => {
    const ec = generateKeyPair('ec-p384');
    const sec1 = ec.privateKey.export({ type: 'sec1', format: 'pem' }).toString();
    assert.match(sec1, /BEGIN EC PRIVATE KEY/);
    assert.ok(publicKeyMatches(importPrivateKeyPem(sec1), ec.publicKey));
    const rsa = generateKeyPair('rsa-2048');
    const pkcs1 = rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    assert.match(pkcs1, /BEGIN RSA PRIVATE KEY/);
    assert.ok(publicKeyMatches(importPrivateKeyPem(Buffer.from(pkcs1)), rsa.publicKey));
  });

  it('finds the key after other PEM blocks', () => {
    const k = generateKeyPair();
    const text = encodePem('CERTIFICATE', Buffer.from([0x30, 0])) + exportPrivateKeyPem(k.privateKey);
    assert.ok(publicKeyMatches(importPrivateKeyPem(text), k.publicKey));
  });

  it('refuses RSA keys under 2048 bits, odd RSA sizes and other curves, saying what to use', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    assert.throws(() => keyTypeOf(small.publicKey), isInvalid(/1024 bits are too weak: use at least 2048 bits/));
    assert.throws(() => keyTypeOf(small.privateKey), isInvalid(/too weak/));
    const odd = generateKeyPairSync('rsa', { modulusLength: 2304 });
    assert.throws(() => keyTypeOf(odd.publicKey), isInvalid(/2304 bits are not supported/));
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
    assert.throws(() => keyTypeOf(k1.publicKey), isInvalid(/curve secp256k1 are not supported/));
    const x25519 = generateKeyPairSync('x25519');
    assert.throws(() => keyTypeOf(x25519.publicKey), isInvalid(/x25519 keys are not supported/));
  });

  it('refuses junk, encrypted keys, empty input and a public key where a private key is expected', () => {
    assert.throws(() => importPrivateKeyPem('hello'), isInvalid(/No PEM block/));
    assert.throws(() => importPrivateKeyPem(''), isInvalid(/No PEM block/));
    assert.throws(() => importPrivateKeyPem(encodePem('PRIVATE KEY', Buffer.from('not a key'))), isInvalid(/not a readable private key/));
    const k = generateKeyPair();
    const encrypted = k.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }).toString();
    assert.throws(() => importPrivateKeyPem(encrypted), isInvalid(/encrypted/));
    assert.throws(() => importPrivateKeyPem(encodePem('PUBLIC KEY', exportSpkiDer(k.publicKey))), isInvalid(/No private key found/));
    assert.throws(() => importSpkiDer(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00])), isInvalid(/not a readable SubjectPublicKeyInfo/));
    assert.throws(() => importSpkiDer(Buffer.alloc(0)), isInvalid(/empty/));
    assert.throws(() => exportPrivateKeyPem(k.publicKey), isInvalid(/Only a private key/));
  });

  it('keeps private key material out of refusals', () => {
    const k = generateKeyPair();
    const pem = exportPrivateKeyPem(k.privateKey);
    const damaged = pem.replace(/-----END PRIVATE KEY-----\n$/, '');
    try {
      importPrivateKeyPem(damaged);
      assert.fail('expected a refusal');
    } catch (err) {
      assert.ok(err instanceof MeshwardError);
      assert.match(err.message, /truncated/);
      for (const line of pem.split('\n').slice(1, -2)) assert.ok(!err.message.includes(line));
    }
  });

  it('publicKeyMatches is false for mismatched types and never throws', () => {
    const ec = generateKeyPair('ec-p256');
    const ed = generateKeyPair('ed25519');
    assert.equal(publicKeyMatches(ec.privateKey, ed.publicKey), false);
    assert.equal(publicKeyMatches(createPrivateKey(exportPrivateKeyPem(ed.privateKey)), createPublicKey(ed.privateKey)), true);
  });
});
