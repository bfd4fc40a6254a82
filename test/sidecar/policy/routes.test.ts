// Route matching: pattern tables (`*`, `**`, exact, case-sensitive, trailing slash, decoded segments),
// methods, and first-match-wins compared with a brute-force scan over random route lists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RouteTable, methodBucket, methodMask, parsePathPattern, type PatternSegment } from '../../../src/sidecar/policy/routes.js';
import { normalizeTarget } from '../../../src/sidecar/policy/normalize.js';

function table(specs: [pattern: string, methods?: string[]][]): RouteTable {
  return new RouteTable(
    specs.map(([pattern, methods]) => {
      const segments = parsePathPattern(pattern);
      if (typeof segments === 'string') throw new Error(segments);
      return { segments, methods: methodMask(methods) };
    }),
  );
}

/** Route index for a raw target through the real normalizer. */
function lookup(t: RouteTable, method: string, target: string): number {
  const n = normalizeTarget(target);
  assert.ok(n.ok, `${target} refused`);
  const segments = n.path.split('/').filter((s) => s !== '').map(decodeURIComponent);
  return t.match(segments, segments.length, methodBucket(method));
}

const matches: [pattern: string, path: string, expected: boolean][] = [
  ['/orders', '/orders', true],
  ['/orders', '/orders/', true],
  ['/orders', '/Orders', false],
  ['/orders', '/orders/1', false],
  ['/orders', '/order', false],
  ['/orders/*', '/orders/1', true],
  ['/orders/*', '/orders', false],
  ['/orders/*', '/orders/1/items', false],
  ['/orders/*/items', '/orders/1/items', true],
  ['/orders/*/items', '/orders/1/2/items', false],
  ['/orders/**', '/orders', true],
  ['/orders/**', '/orders/', true],
  ['/orders/**', '/orders/1', true],
  ['/orders/**', '/orders/1/items', true],
  ['/orders/**', '/ordersx', false],
  ['/orders/**', '/', false],
  ['/**', '/', true],
  ['/**', '/anything/at/all', true],
  ['/', '/', true],
  ['/', '/a', false],
  ['/*', '/', false],
  ['/*', '/a', true],
  ['/shop.v1.Orders/*', '/shop.v1.Orders/Get', true],
  ['/shop.v1.Orders/*', '/shop.v1.orders/Get', false],
  ['/a%20b', '/a%20b', true],
  ['/a b', '/a%20b', true],
  ['/caf%C3%A9', '/caf%c3%a9', true],
  ['/café', '/caf%C3%A9', true],
  ['/%2A', '/*', true],
  ['/%2A', '/x', false],
  ['/A', '/%41', true],
  ['/a%3Bb', '/a%3bb', true],
  ['/**', '/orders/../admin', true],
];

for (const [pattern, path, expected] of matches) {
  test(`${pattern} ${expected ? 'matches' : 'does not match'} ${path}`, () => {
    assert.equal(lookup(table([[pattern]]), 'GET', path), expected ? 0 : -1);
  });
}

test('methods: listed ones only; a route without methods takes any method, unknown ones included', () => {
  const t = table([['/x', ['GET', 'HEAD']], ['/y']]);
  assert.equal(lookup(t, 'GET', '/x'), 0);
  assert.equal(lookup(t, 'HEAD', '/x'), 0);
  assert.equal(lookup(t, 'POST', '/x'), -1);
  assert.equal(lookup(t, 'get', '/x'), -1);
  assert.equal(lookup(t, 'PROPFIND', '/y'), 1);
  assert.equal(lookup(t, 'BREW', '/y'), 1);
  assert.equal(lookup(t, 'BREW', '/x'), -1);
});

test('first match wins across wildcard and literal branches', () => {
  const t = table([
    ['/orders/*/items', ['POST']],
    ['/orders/**', ['GET']],
    ['/orders/special', ['GET', 'POST']],
    ['/*/special'],
    ['/**'],
  ]);
  assert.equal(lookup(t, 'POST', '/orders/1/items'), 0);
  assert.equal(lookup(t, 'GET', '/orders/1/items'), 1);
  assert.equal(lookup(t, 'GET', '/orders/special'), 1);
  assert.equal(lookup(t, 'POST', '/orders/special'), 2);
  assert.equal(lookup(t, 'DELETE', '/orders/special'), 3);
  assert.equal(lookup(t, 'DELETE', '/users/special'), 3);
  assert.equal(lookup(t, 'DELETE', '/users/1'), 4);
  assert.equal(lookup(t, 'GET', '/'), 4);
});

test('reports routes that can never match, naming the route that answers instead', () => {
  const t = table([['/orders/**', ['GET']], ['/orders/special', ['GET']], ['/orders/special', ['GET', 'POST']], ['/*', ['PUT']], ['/a', ['PUT']]]);
  assert.deepEqual([...t.shadowedBy], [-1, 0, -1, -1, 3]);
});

// Brute force: a direct recursive matcher over the route list, lowest index first.
function bruteMatches(pattern: readonly PatternSegment[], segments: readonly string[]): boolean {
  if (pattern.length === 0) return segments.length === 0;
  const [head, ...rest] = pattern;
  if (head === '**') return true;
  if (segments.length === 0) return false;
  if (head === '*' || head!.literal === segments[0]) return bruteMatches(rest, segments.slice(1));
  return false;
}

test('property: the compiled table agrees with a brute-force first-match scan', () => {
  const segmentArb = fc.constantFrom('a', 'b', 'c');
  const patternArb = fc
    .tuple(fc.array(fc.constantFrom('a', 'b', '*'), { maxLength: 4 }), fc.boolean())
    .map(([parts, glob]) => '/' + [...parts, ...(glob ? ['**'] : [])].join('/'))
    .map((p) => (p === '/' ? '/' : p.replace(/\/$/, '')));
  const methodsArb = fc.option(fc.subarray(['GET', 'POST', 'DELETE'], { minLength: 1 }), { nil: undefined });
  fc.assert(
    fc.property(
      fc.array(fc.tuple(patternArb, methodsArb), { minLength: 1, maxLength: 8 }),
      fc.array(fc.tuple(fc.array(segmentArb, { maxLength: 5 }), fc.constantFrom('GET', 'POST', 'DELETE', 'PATCH'))),
      (specs, requests) => {
        const parsed = specs.map(([p, m]) => ({ segments: parsePathPattern(p) as PatternSegment[], methods: m }));
        const t = new RouteTable(parsed.map((r) => ({ segments: r.segments, methods: methodMask(r.methods) })));
        for (const [segments, method] of requests) {
          const expected = parsed.findIndex((r) => (r.methods === undefined || r.methods.includes(method)) && bruteMatches(r.segments, segments));
          assert.equal(t.match(segments, segments.length, methodBucket(method)), expected);
        }
        // A route is reported unreachable exactly when no request in a covering sample reaches it.
        const sample: string[][] = [[]];
        for (let depth = 0; depth < 6; depth++) {
          for (const s of [...sample]) if (s.length === depth) for (const x of ['a', 'b', 'z']) sample.push([...s, x]);
        }
        const winners = new Set<number>();
        for (const s of sample) for (const m of ['GET', 'POST', 'DELETE', 'PATCH']) winners.add(t.match(s, s.length, methodBucket(m)));
        t.shadowedBy.forEach((winner, r) => assert.equal(winner === -1, winners.has(r), `route ${r} ${specs[r]}`));
      },
    ),
    { numRuns: 500 },
  );
});
