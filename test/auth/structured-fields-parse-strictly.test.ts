// The RFC 8941 subset parser: dictionaries of inner lists and items with parameters as RFC 9421 uses them,
// each bare item type, serialization that round-trips, and a table of malformed inputs that are refused
// (with the position) instead of being guessed at.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseDictionary, serializeInnerList, StructuredFieldError, type InnerList } from '../../src/auth/structured-fields.js';

describe('structured fields: accepted', () => {
  it('a Signature-Input dictionary with an inner list and parameters', () => {
    const d = parseDictionary('sig1=("@method" "@path" "content-digest");created=1618884473;keyid="k 1";alg="hmac-sha256"');
    const m = d.get('sig1') as InnerList;
    assert.equal(m.kind, 'innerList');
    assert.deepEqual(m.items.map((i) => i.value), [
      { type: 'string', value: '@method' }, { type: 'string', value: '@path' }, { type: 'string', value: 'content-digest' },
    ]);
    assert.deepEqual(m.params, [
      ['created', { type: 'integer', value: 1618884473 }], ['keyid', { type: 'string', value: 'k 1' }], ['alg', { type: 'string', value: 'hmac-sha256' }],
    ]);
    assert.equal(serializeInnerList(m), '("@method" "@path" "content-digest");created=1618884473;keyid="k 1";alg="hmac-sha256"');
  });

  it('every bare item type, bare keys as true, OWS around commas, leading and trailing spaces', () => {
    const d = parseDictionary('  a=1, b=-2.5,\tc="x\\"y\\\\", d=tok/en:1, e=:aGVsbG8=:, f=?0, g, h;p=?1;q=abc  ');
    const v = (k: string) => { const m = d.get(k); return m?.kind === 'item' ? m.value : undefined; };
    assert.deepEqual(v('a'), { type: 'integer', value: 1 });
    assert.deepEqual(v('b'), { type: 'decimal', value: -2.5 });
    assert.deepEqual(v('c'), { type: 'string', value: 'x"y\\' });
    assert.deepEqual(v('d'), { type: 'token', value: 'tok/en:1' });
    assert.equal(v('e')?.type === 'bytes' && v('e')!.value.toString(), 'hello');
    assert.deepEqual(v('f'), { type: 'boolean', value: false });
    assert.deepEqual(v('g'), { type: 'boolean', value: true });
    assert.deepEqual(d.get('h')?.params, [['p', { type: 'boolean', value: true }], ['q', { type: 'token', value: 'abc' }]]);
  });

  it('an empty inner list and an empty field', () => {
    assert.deepEqual((parseDictionary('s=();created=1').get('s') as InnerList).items, []);
    assert.equal(parseDictionary('').size, 0);
  });

  it('serializing a parsed inner list and parsing it again gives the same list (property)', () => {
    const str = fc.stringMatching(/^[ -!#-[\]-~]{0,12}$/);
    fc.assert(fc.property(fc.array(str, { maxLength: 6 }), fc.integer({ min: 0, max: 2 ** 40 }), str, (items, created, keyid) => {
      const text = `s=(${items.map((i) => JSON.stringify(i)).join(' ')});created=${created};keyid=${JSON.stringify(keyid)}`;
      const list = parseDictionary(text).get('s') as InnerList;
      assert.deepEqual(parseDictionary(`s=${serializeInnerList(list)}`).get('s'), list);
    }), { numRuns: 300 });
  });
});

describe('structured fields: refused', () => {
  const cases: [string, string][] = [
    ['unterminated inner list', 's=("a" "b"'],
    ['items not separated by a space', 's=("a""b")'],
    ['trailing comma', 's=1, '],
    ['comma without a member', 's=1,,t=2'],
    ['uppercase key', 'Sig=1'],
    ['key starting with a digit', '1s=1'],
    ['repeated dictionary key', 's=1, s=2'],
    ['repeated parameter', 's=1;a=1;a=2'],
    ['non-ASCII in a string', 's="é"'],
    ['control character in a string', 's="a\tb"'],
    ['bad escape in a string', 's="a\\n"'],
    ['unterminated string', 's="abc'],
    ['integer of 16 digits', 's=1234567890123456'],
    ['decimal with 4 fractional digits', 's=1.2345'],
    ['unterminated byte sequence', 's=:aGVsbG8='],
    ['byte sequence not base64', 's=:aGVs*G8=:'],
    ['byte sequence without padding', 's=:aGVsbG8:'],
    ['non-canonical base64', 's=:aGVsbG9=:'],
    ['boolean other than ?0/?1', 's=?2'],
    ['garbage after a member', 's=1 x'],
    ['a member value starting with "="', 's==1'],
    ['parameter key uppercase', 's=1;A=1'],
  ];
  for (const [name, text] of cases) {
    it(`${name}: ${JSON.stringify(text)}`, () => {
      assert.throws(() => parseDictionary(text), (err: unknown) => err instanceof StructuredFieldError && /at character \d+/.test(err.message));
    });
  }
});
