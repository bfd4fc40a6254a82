// The API key format (fast-check): every generated key has the documented shape, parses and checksums; any
// one-character change (substitution, deletion, insertion, swap of neighbours) is refused before any lookup,
// with the checksum or the format named; the scanner finds exactly the valid keys in surrounding text.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { API_KEY_LENGTH, BASE62, checksum62, findApiKeys, formatApiKey, generateApiKey, parseApiKey, randomBase62 } from '../../src/auth/api-key.js';

const RUNS = { numRuns: 500 };
const base62Char = fc.constantFrom(...BASE62.split(''));
const keyArb = fc.constant(null).map(() => generateApiKey());

describe('API key format (properties)', () => {
  it('every generated key is mwk_ + 12 + _ + 32 + 6 base62 characters, parses, and gives back its id and secret', () => {
    fc.assert(fc.property(keyArb, (g) => {
      assert.match(g.key, /^mwk_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}$/);
      assert.equal(g.key.length, API_KEY_LENGTH);
      assert.equal(g.key.slice(-6), checksum62(g.key.slice(0, -6)));
      assert.deepEqual(parseApiKey(g.key), { ok: true, id: g.id, secret: g.secret });
    }), RUNS);
  });

  it('a key from any random source (the generator takes one) is valid', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 256, maxLength: 256 }), (bytes) => {
      let offset = 0;
      const source = (n: number) => {
        const out = Buffer.alloc(n);
        for (let i = 0; i < n; i++) out[i] = bytes[(offset++) % bytes.length]! % 248; // never all rejected
        return out;
      };
      assert.ok(parseApiKey(generateApiKey(source).key).ok);
    }), { numRuns: 100 });
  });

  it('substituting any one character is refused', () => {
    fc.assert(fc.property(keyArb, fc.nat(), base62Char, (g, at, c) => {
      const i = at % g.key.length;
      fc.pre(g.key[i] !== c);
      const mutated = g.key.slice(0, i) + c + g.key.slice(i + 1);
      const parsed = parseApiKey(mutated);
      assert.equal(parsed.ok, false, `${mutated} accepted`);
      assert.ok(!parsed.ok && (parsed.reason === 'checksum' || parsed.reason === 'malformed'));
      if (i >= 4 && g.key[i] !== '_' && c !== '_') assert.equal(!parsed.ok && parsed.reason, 'checksum');
    }), RUNS);
  });

  it('deleting, inserting or swapping neighbouring characters is refused', () => {
    fc.assert(fc.property(keyArb, fc.nat(), base62Char, (g, at, c) => {
      const i = at % g.key.length;
      const deleted = g.key.slice(0, i) + g.key.slice(i + 1);
      const inserted = g.key.slice(0, i) + c + g.key.slice(i);
      assert.equal(parseApiKey(deleted).ok, false);
      assert.equal(parseApiKey(inserted).ok, false);
      const j = Math.min(i, g.key.length - 2);
      if (g.key[j] !== g.key[j + 1]) {
        const swapped = g.key.slice(0, j) + g.key[j + 1] + g.key[j] + g.key.slice(j + 2);
        assert.equal(parseApiKey(swapped).ok, false, `${swapped} accepted`);
      }
    }), RUNS);
  });

  it('the scanner finds the valid keys in any text and no look-alike', () => {
    const filler = fc.string({ maxLength: 40 }).map((s) => s.replace(/[0-9A-Za-z]$/, ' '));
    fc.assert(fc.property(fc.array(fc.tuple(filler, keyArb, fc.boolean()), { maxLength: 5 }), filler, (parts, tail) => {
      let text = '';
      const expected: string[] = [];
      for (const [before, g, valid] of parts) {
        text += `${before} `;
        if (valid) {
          expected.push(g.id);
          text += g.key;
        } else {
          text += `${g.key.slice(0, -1)}${g.key.endsWith('0') ? '1' : '0'}`; // checksum broken
        }
        text += ' ';
      }
      text += tail;
      assert.deepEqual(findApiKeys(text).map((f) => f.id), expected);
    }), RUNS);
  });
});

describe('API key format (examples)', () => {
  it('the checksum is base62 CRC32, zero-padded to 6 characters, most significant digit first', () => {
    assert.equal(checksum62(''), '000000'); // CRC32('') = 0
    // CRC32("123456789") = 0xCBF43926 (the standard check value) = 3421780262
    //   = 3·62^5 + 45·62^4 + 35·62^3 + 27·62^2 + 22·62 + 14 → digits 3 j Z R M E
    assert.equal(checksum62('123456789'), '3jZRME');
  });

  it('a key glued to other base62 characters is not found; one in quotes, JSON or a URL is', () => {
    const { key } = generateApiKey();
    assert.equal(findApiKeys(`x${key}`).length, 0);
    assert.equal(findApiKeys(`${key}x`).length, 0);
    for (const text of [`"${key}"`, `{"k":"${key}"}`, `https://a/?k=${key}&x=1`, `export KEY=${key}\n`, `Bearer ${key}`]) {
      assert.equal(findApiKeys(text).length, 1, text);
    }
  });

  it('format problems name the length; a checksum problem names the key id, never the secret', () => {
    const { key, id, secret } = generateApiKey();
    const short = parseApiKey(key.slice(0, -2));
    assert.ok(!short.ok && short.reason === 'malformed' && /has 53 characters where a meshward key has 55/.test(short.message));
    const typo = parseApiKey(formatApiKey(id, secret).slice(0, -6) + randomBase62(6, () => randomBytes(12)));
    if (!typo.ok) {
      assert.equal(typo.reason, 'checksum');
      assert.match(typo.message, new RegExp(id));
      assert.doesNotMatch(typo.message, new RegExp(secret));
    }
    const other = parseApiKey('sk_live_abc');
    assert.ok(!other.ok && other.reason === 'malformed');
  });
});
