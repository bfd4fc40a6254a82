// hmacSha256 (two crypto.hash calls over precomputed pads, src/auth/hmac-sha256.ts) gives exactly node's
// createHmac('sha256') result: for keys shorter than, equal to and longer than the 64-byte block, for
// messages with non-ASCII characters (UTF-8, as Hmac#update encodes strings), and for messages too long for
// the scratch buffer (createHmac then). RFC 4231 test case 2 pins it to the standard too.
import assert from 'node:assert/strict';
import { createHmac, createSecretKey } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { hmacSha256 } from '../../src/auth/hmac-sha256.js';

describe('hmacSha256', () => {
  it('equals createHmac for random keys (1–100 bytes) and messages, one key object used many times', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 100 }), fc.array(fc.string({ unit: 'binary', maxLength: 300 }), { minLength: 1, maxLength: 4 }), (raw, messages) => {
      const secret = Buffer.from(raw);
      const key = createSecretKey(secret);
      for (const m of messages) assert.deepEqual(hmacSha256(key, m), createHmac('sha256', secret).update(m).digest());
    }), { numRuns: 300 });
  });

  it('equals createHmac for messages longer than the scratch buffer and for the empty message', () => {
    const secret = Buffer.alloc(32, 9);
    const key = createSecretKey(secret);
    for (const m of ['', 'x'.repeat(5461), 'x'.repeat(5462), '\u00e9'.repeat(20_000), 'y'.repeat(100_000)]) {
      assert.deepEqual(hmacSha256(key, m), createHmac('sha256', secret).update(m).digest(), `length ${m.length}`);
    }
  });

  it('reproduces RFC 4231 test case 2 (key "Jefe")', () => {
    const mac = hmacSha256(createSecretKey(Buffer.from('Jefe')), 'what do ya want for nothing?');
    assert.equal(mac.toString('hex'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  });

  it('a different key or message gives a different result', () => {
    const a = createSecretKey(Buffer.alloc(32, 1));
    const b = createSecretKey(Buffer.alloc(32, 2));
    assert.notDeepEqual(hmacSha256(a, 'm'), hmacSha256(b, 'm'));
    assert.notDeepEqual(hmacSha256(a, 'm'), hmacSha256(a, 'n'));
  });
});
