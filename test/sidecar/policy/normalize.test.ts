// Request-target normalization: the table of what is rewritten and what is refused (400), and properties
// over random targets (idempotence, no dot or empty segments, no encoded slashes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { normalizeTarget } from '../../../src/sidecar/policy/normalize.js';

const accepted: [raw: string, path: string, query: string][] = [
  ['/', '/', ''],
  ['/orders', '/orders', ''],
  ['/orders/', '/orders/', ''],
  ['/orders/../admin', '/admin', ''],
  ['/orders/%2e%2e/admin', '/admin', ''],
  ['/orders/%2E%2E/admin', '/admin', ''],
  ['/orders/.%2e/admin', '/admin', ''],
  ['//admin', '/admin', ''],
  ['/a//b///c', '/a/b/c', ''],
  ['/a/./b', '/a/b', ''],
  ['/a/.', '/a/', ''],
  ['/a/b/..', '/a/', ''],
  ['/a/..', '/', ''],
  ['/a/%41', '/a/A', ''],
  ['/%7Euser/%2D%2e%5F', '/~user/-._', ''],
  ['/a/%3f', '/a/%3F', ''],
  ['/a/%c3%a9', '/a/%C3%A9', ''],
  ['/a/%25', '/a/%25', ''],
  ['/a/%252e%252e', '/a/%252e%252e', ''],
  ['/a//..', '/a/', ''],
  ['/a//../b', '/a/b', ''],
  ['//..', '/', ''],
  ['/a/%3Bx', '/a/%3Bx', ''],
  ['/orders?x=1', '/orders', '?x=1'],
  ['/orders/../admin?next=/../etc;x', '/admin', '?next=/../etc;x'],
  ['/orders?', '/orders', '?'],
  ['/shop.v1.Orders/Get', '/shop.v1.Orders/Get', ''],
  ['/a/*', '/a/*', ''],
  ['/a/{x}|y', '/a/{x}|y', ''],
  ['/...', '/...', ''],
  ['/a/.../b', '/a/.../b', ''],
];

for (const [raw, path, query] of accepted) {
  test(`normalizes ${JSON.stringify(raw)} to ${JSON.stringify(path + query)}`, () => {
    assert.deepEqual(normalizeTarget(raw), { ok: true, path, query });
  });
}

const refused: [raw: string, reason: string][] = [
  ['', 'empty target'],
  ['*', 'asterisk-form target'],
  ['http://x/admin', 'absolute-form target'],
  ['HTTPS://x/admin', 'absolute-form target'],
  ['admin', "target does not start with '/'"],
  ['?x=1', "target does not start with '/'"],
  ['/orders/..%2fadmin', "encoded '/'"],
  ['/orders%2F..%2Fadmin', "encoded '/'"],
  ['/a%5c..%5cadmin', "encoded '\\'"],
  ['/a\\..\\admin', 'backslash'],
  ['/admin;x', "';' path parameter"],
  ['/orders/..;/admin', "';' path parameter"],
  ['/%00', 'encoded NUL'],
  ['/a%00.txt', 'encoded NUL'],
  ['/a%0d%0aX: y', 'encoded control character'],
  ['/a%7f', 'encoded control character'],
  ['/a\u0000', 'NUL byte'],
  ['/a\r\nX: y', 'control character'],
  ['/a\u007f', 'control character'],
  ['/a b', 'space'],
  ['/café', 'non-ASCII character (percent-encode it)'],
  ['/a#frag', "'#' fragment"],
  ['/..', "'..' above the root"],
  ['/a/../..', "'..' above the root"],
  ['//../..', "'..' above the root"],
  ['/%2e%2e/etc/passwd', "'..' above the root"],
  ['/a%', 'malformed percent escape'],
  ['/a%4', 'malformed percent escape'],
  ['/a%zz', 'malformed percent escape'],
  ['/a%4/b', 'malformed percent escape'],
  ['/a/%FF', 'percent escapes that are not UTF-8'],
  ['/a/%C3', 'percent escapes that are not UTF-8'],
  ['/a/%ED%A0%80', 'percent escapes that are not UTF-8'],
  ['/a?x=\u0000', 'NUL byte'],
  ['/a?x= y', 'space'],
  ['/a?x=é', 'non-ASCII character (percent-encode it)'],
  ['/a?x#y', "'#' fragment"],
];

for (const [raw, reason] of refused) {
  test(`refuses ${JSON.stringify(raw)}: ${reason}`, () => {
    assert.deepEqual(normalizeTarget(raw), { ok: false, reason });
  });
}

/** Targets built from the pieces that matter for normalization. */
const pieces = [
  'a', 'B', 'admin', 'orders', '.', '..', '%2e', '%2E', '.%2e', '%2e%2E', '%2F', '%2f', '%5C', '\\', '/', '//', ';',
  '%3B', '~', '%7E', '%7e', '%41', '%61', '%25', '%252e', '%C3%A9', '%c3%a9', '%FF', '%00', '%1f', '%20', ' ', 'é',
  '%', '%4', '%zz', '*', '?', '?x=1', '#', '{', '|', '-', '_', '\u0000',
];
const targetArb = fc
  .tuple(fc.constantFrom('/', '/', '/', '//', '', 'http://h/', '*'), fc.array(fc.constantFrom(...pieces), { maxLength: 12 }))
  .map(([prefix, parts]) => prefix + parts.join(''));

test('property: normalization is idempotent and yields only clean segments', () => {
  let accepted = 0;
  fc.assert(
    fc.property(targetArb, (raw) => {
      const first = normalizeTarget(raw);
      if (!first.ok) return;
      accepted++;
      const again = normalizeTarget(first.path + first.query);
      assert.deepEqual(again, first, `not idempotent for ${JSON.stringify(raw)}`);
      assert.ok(first.path.startsWith('/'));
      assert.ok(first.query === '' || first.query.startsWith('?'));
      assert.equal(raw.endsWith(first.query), true);
      // Segments: no '.', '..', no empty one except a single trailing '/' (and the root).
      const inner = first.path.slice(1, first.path.endsWith('/') && first.path !== '/' ? -1 : undefined);
      if (inner !== '') {
        for (const segment of inner.split('/')) {
          assert.notEqual(segment, '');
          assert.notEqual(segment, '.');
          assert.notEqual(segment, '..');
        }
      }
      assert.doesNotMatch(first.path, /%2f|%5c|%00|\\|;|[^\x21-\x7e]/i);
      // Escapes left are upper-case and never of an unreserved character.
      for (const [, hex] of first.path.matchAll(/%(..)/g)) {
        assert.equal(hex, hex!.toUpperCase());
        assert.doesNotMatch(String.fromCharCode(Number.parseInt(hex!, 16)), /[A-Za-z0-9._~-]/);
      }
    }),
    { numRuns: 3000 },
  );
  assert.ok(accepted > 300, `only ${accepted} accepted targets: the generator is too narrow`);
});

test('property: what is accepted decodes to the same segments as a WHATWG URL parser resolving the raw target', () => {
  fc.assert(
    fc.property(targetArb, (raw) => {
      const result = normalizeTarget(raw);
      if (!result.ok) return;
      const whatwg = new URL(`http://h${raw}`).pathname;
      const decode = (p: string) => p.split('/').filter((s) => s !== '').map(decodeURIComponent);
      assert.deepEqual(decode(result.path), decode(whatwg), `${JSON.stringify(raw)} -> ${result.path} vs ${whatwg}`);
    }),
    { numRuns: 3000 },
  );
});
