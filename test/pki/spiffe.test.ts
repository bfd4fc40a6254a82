// SPIFFE ID validation and identity patterns: property tests (fast-check) generated from the SPIFFE-ID
// grammar, one property per rule, plus tables of named examples.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MeshwardError } from '../../src/errors.js';
import { compileSpiffePattern, isSpiffeId, matchesSpiffePattern, parseSpiffeId, parseWorkloadSpiffeId } from '../../src/pki/spiffe.js';

const RUNS = { numRuns: 200 };

const trustDomain = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,30}$/);
const segment = fc.stringMatching(/^[a-zA-Z0-9._-]{1,16}$/).filter((s) => s !== '.' && s !== '..');
const segments = fc.array(segment, { minLength: 1, maxLength: 6 });
const validId = fc.tuple(trustDomain, segments).map(([td, segs]) => `spiffe://${td}/${segs.join('/')}`);

function refusedWith(text: string, rule: RegExp): boolean {
  try {
    parseSpiffeId(text);
    return false;
  } catch (err) {
    return err instanceof MeshwardError && err.code === 'invalid_argument' && rule.test(err.message);
  }
}

/** Inserts `insert` at a position in `s` chosen by `at` (0..1). */
const insertAt = (s: string, insert: string, at: number): string => {
  const i = Math.floor(at * (s.length + 1));
  return s.slice(0, i) + insert + s.slice(i);
};
const position = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });

describe('SPIFFE ID validation (properties)', () => {
  it('accepts every ID generated from the grammar and splits it into trust domain and path', () => {
    fc.assert(
      fc.property(trustDomain, segments, (td, segs) => {
        const id = `spiffe://${td}/${segs.join('/')}`;
        const parsed = parseSpiffeId(id);
        assert.deepEqual(parsed, { id, trustDomain: td, path: `/${segs.join('/')}` });
        assert.ok(isSpiffeId(id));
      }),
      RUNS,
    );
  });

  it('accepts the bare trust-domain ID, but not as a workload ID', () => {
    fc.assert(
      fc.property(trustDomain, (td) => {
        assert.deepEqual(parseSpiffeId(`spiffe://${td}`), { id: `spiffe://${td}`, trustDomain: td, path: '' });
        assert.throws(() => parseWorkloadSpiffeId(`spiffe://${td}`), /needs a path/);
      }),
      RUNS,
    );
  });

  it('refuses an uppercase letter in the trust domain', () => {
    fc.assert(
      fc.property(trustDomain, segments, fc.constantFrom(...'ABCXYZ'), position, (td, segs, upper, at) =>
        refusedWith(`spiffe://${insertAt(td, upper, at)}/${segs.join('/')}`, /trust domain must be lowercase/),
      ),
      RUNS,
    );
  });

  it('refuses ".", ".." and empty path segments', () => {
    fc.assert(
      fc.property(trustDomain, segments, fc.constantFrom('.', '..', ''), fc.nat(), (td, segs, bad, k) => {
        const i = k % (segs.length + 1);
        const withBad = [...segs.slice(0, i), bad, ...segs.slice(i)];
        const id = `spiffe://${td}/${withBad.join('/')}`;
        const rule = bad === '' ? /empty segment|must not end with "\/"/ : new RegExp(`must not contain a "${bad.replace(/\./g, '\\.')}" segment`);
        return refusedWith(id, rule);
      }),
      RUNS,
    );
  });

  it('refuses a trailing "/"', () => {
    fc.assert(fc.property(validId, (id) => refusedWith(`${id}/`, /must not end with "\/"/)), RUNS);
  });

  it('refuses a port', () => {
    fc.assert(
      fc.property(trustDomain, segments, fc.integer({ min: 0, max: 65535 }), (td, segs, port) =>
        refusedWith(`spiffe://${td}:${port}/${segs.join('/')}`, /must not contain a port/),
      ),
      RUNS,
    );
  });

  it('refuses user info', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9]{1,10}(:[a-z0-9]{1,10})?$/), trustDomain, segments, (user, td, segs) =>
        refusedWith(`spiffe://${user}@${td}/${segs.join('/')}`, /user info|port/),
      ),
      RUNS,
    );
  });

  it('refuses percent-encoding anywhere', () => {
    fc.assert(
      fc.property(validId, fc.stringMatching(/^%[0-9A-Fa-f]{2}$/), position, (id, pct, at) => {
        const head = 'spiffe://'.length;
        return refusedWith(id.slice(0, head) + insertAt(id.slice(head), pct, at), /percent-encoding is not allowed/) &&
          refusedWith(`${id}${pct}`, /percent-encoding is not allowed/);
      }),
      RUNS,
    );
  });

  it('refuses a query or a fragment', () => {
    fc.assert(
      fc.property(validId, fc.constantFrom('?', '#'), fc.stringMatching(/^[a-z=&]{0,10}$/), (id, mark, rest) =>
        refusedWith(`${id}${mark}${rest}`, /query or fragment is not allowed/),
      ),
      RUNS,
    );
  });

  it('refuses IDs over 2048 bytes and accepts them at exactly 2048', () => {
    fc.assert(
      fc.property(trustDomain, fc.integer({ min: 1, max: 300 }), (td, extra) => {
        const prefix = `spiffe://${td}/`;
        const atLimit = prefix + 'a'.repeat(2048 - prefix.length);
        assert.ok(isSpiffeId(atLimit));
        return refusedWith(atLimit + 'a'.repeat(extra), /at most 2048 bytes/);
      }),
      { numRuns: 50 },
    );
  });

  it('refuses any other scheme', () => {
    fc.assert(
      fc.property(fc.constantFrom('https://', 'SPIFFE://', 'Spiffe://', 'spiffe:/', 'spiffe:', 'spife://', '', '//'), trustDomain, segments, (scheme, td, segs) =>
        refusedWith(`${scheme}${td}/${segs.join('/')}`, /scheme must be "spiffe:\/\/"/),
      ),
      RUNS,
    );
  });

  it('refuses characters outside the grammar in the path, naming the character', () => {
    fc.assert(
      fc.property(validId, fc.constantFrom('*', ' ', '~', '!', '$', '+', ',', ';', '=', ':', '@', 'é', '\u0000'), position, (id, ch, at) => {
        const lastSlash = id.lastIndexOf('/');
        const bad = id.slice(0, lastSlash + 1) + insertAt(id.slice(lastSlash + 1), ch, at);
        return refusedWith(bad, /the path contains/);
      }),
      RUNS,
    );
  });
});

describe('SPIFFE ID validation (table)', () => {
  const accepted = [
    'spiffe://example.org/ns/shop/sa/orders',
    'spiffe://example.org',
    'spiffe://a/b',
    'spiffe://my-domain_1.example.org/Upper/Case.Path/x-y_z',
    'spiffe://example.org/...',
  ];
  for (const id of accepted) it(`accepts ${id}`, () => assert.equal(parseSpiffeId(id).id, id));

  const refused: [string, RegExp][] = [
    ['spiffe://Example.org/x', /trust domain must be lowercase/],
    ['spiffe://example.org/a/../b', /"\.\." segment/],
    ['spiffe://example.org/a/./b', /"\." segment/],
    ['spiffe://example.org/a//b', /empty segment/],
    ['spiffe://example.org/a/', /must not end with "\/"/],
    ['spiffe://example.org/', /must not end with "\/"/],
    ['spiffe://example.org:8443/a', /port/],
    ['spiffe://user@example.org/a', /user info/],
    ['spiffe://example.org/a%2Fb', /percent-encoding/],
    ['spiffe://ex%41mple.org/a', /percent-encoding/],
    ['spiffe://example.org/a?x=1', /query or fragment/],
    ['spiffe://example.org/a#frag', /query or fragment/],
    [`spiffe://example.org/${'x'.repeat(2040)}`, /2048 bytes/],
    ['https://example.org/a', /scheme/],
    ['SPIFFE://example.org/a', /scheme/],
    ['spiffe:///a', /trust domain is missing/],
    ['', /must not be empty/],
    ['spiffe://example.org/a b', /the path contains ' '/],
  ];
  for (const [id, rule] of refused) {
    it(`refuses ${id.length > 60 ? id.slice(0, 40) + '…' : JSON.stringify(id)}`, () => {
      assert.throws(() => parseSpiffeId(id), (err: unknown) => err instanceof MeshwardError && err.code === 'invalid_argument' && rule.test(err.message));
      assert.equal(isSpiffeId(id), false);
    });
  }
});

describe('SPIFFE ID patterns (properties)', () => {
  const idParts = fc.tuple(trustDomain, segments);

  it('a pattern without wildcards matches exactly its own ID', () => {
    fc.assert(
      fc.property(validId, validId, (a, b) => {
        assert.equal(matchesSpiffePattern(a, a), true);
        assert.equal(matchesSpiffePattern(a, b), a === b);
      }),
      RUNS,
    );
  });

  it('matching is case-sensitive', () => {
    fc.assert(
      fc.property(idParts, ([td, segs]) => {
        const id = `spiffe://${td}/${segs.join('/')}`;
        const swapped = `spiffe://${td}/${segs.join('/').replace(/[a-zA-Z]/, (c) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()))}`;
        fc.pre(swapped !== id);
        return !matchesSpiffePattern(id, swapped) && !matchesSpiffePattern(swapped, id);
      }),
      RUNS,
    );
  });

  it('"*" matches exactly one segment, any value, at its position', () => {
    fc.assert(
      fc.property(idParts, fc.nat(), segment, ([td, segs], k, other) => {
        const i = k % segs.length;
        const pattern = `spiffe://${td}/${segs.map((s, j) => (j === i ? '*' : s)).join('/')}`;
        const match = compileSpiffePattern(pattern);
        const replaced = segs.map((s, j) => (j === i ? other : s));
        assert.equal(match(`spiffe://${td}/${segs.join('/')}`), true);
        assert.equal(match(`spiffe://${td}/${replaced.join('/')}`), true);
        assert.equal(match(`spiffe://${td}/${[...segs, other].join('/')}`), false, 'one extra segment');
        assert.equal(match(`spiffe://${td}/${segs.filter((_, j) => j !== i).join('/')}`), false, 'segment missing');
        assert.equal(match(`spiffe://${td}x/${segs.join('/')}`), false, 'other trust domain');
      }),
      RUNS,
    );
  });

  it('"**" as the last segment matches one or more remaining segments', () => {
    fc.assert(
      fc.property(trustDomain, fc.array(segment, { maxLength: 4 }), segments, (td, prefix, rest) => {
        const pattern = `spiffe://${td}/${[...prefix, '**'].join('/')}`;
        const match = compileSpiffePattern(pattern);
        assert.equal(match(`spiffe://${td}/${[...prefix, ...rest].join('/')}`), true);
        if (prefix.length > 0) assert.equal(match(`spiffe://${td}/${prefix.join('/')}`), false, 'nothing after the prefix');
        assert.equal(match(`spiffe://${td}x/${[...prefix, ...rest].join('/')}`), false, 'other trust domain');
        assert.equal(match(`spiffe://${td}/${[...prefix, ...rest].join('/')}/`), false, 'not a valid ID');
      }),
      RUNS,
    );
  });

  it('"**" anywhere but last is refused', () => {
    fc.assert(
      fc.property(trustDomain, fc.array(segment, { maxLength: 3 }), segments, (td, before, afterSegs) => {
        assert.throws(
          () => compileSpiffePattern(`spiffe://${td}/${[...before, '**', ...afterSegs].join('/')}`),
          (err: unknown) => err instanceof MeshwardError && /only as the last path segment/.test(err.message),
        );
      }),
      RUNS,
    );
  });
});

describe('SPIFFE ID patterns (table)', () => {
  const table: [string, string, boolean][] = [
    ['spiffe://example.org/ns/billing/**', 'spiffe://example.org/ns/billing/sa/invoices', true],
    ['spiffe://example.org/ns/billing/**', 'spiffe://example.org/ns/billing', false],
    ['spiffe://example.org/ns/billing/**', 'spiffe://example.org/ns/billingx/sa/a', false],
    ['spiffe://example.org/ns/*/sa/orders', 'spiffe://example.org/ns/shop/sa/orders', true],
    ['spiffe://example.org/ns/*/sa/orders', 'spiffe://example.org/ns/shop/eu/sa/orders', false],
    ['spiffe://example.org/ns/*', 'spiffe://example.org/ns', false],
    ['spiffe://example.org/*/*', 'spiffe://example.org/a/b', true],
    ['spiffe://example.org/**', 'spiffe://other.org/a', false],
    ['spiffe://example.org/a', 'spiffe://example.org/A', false],
    ['spiffe://example.org/a', 'spiffe://example.org/a', true],
    ['spiffe://example.org/*', 'spiffe://example.org/..', false],
    ['spiffe://example.org/*', 'not a spiffe id', false],
  ];
  for (const [pattern, id, expected] of table) {
    it(`${pattern} ${expected ? 'matches' : 'does not match'} ${id}`, () => assert.equal(matchesSpiffePattern(pattern, id), expected));
  }

  const badPatterns: [string, RegExp][] = [
    ['spiffe://example.org/a*', /whole path segment/],
    ['spiffe://example.org/**/a', /only as the last/],
    ['spiffe://*.example.org/a', /trust domain contains '\*'/],
    ['https://example.org/*', /scheme/],
    ['spiffe://Example.org/*', /lowercase/],
    ['spiffe://example.org/a/', /must not end/],
  ];
  for (const [pattern, rule] of badPatterns) {
    it(`refuses the pattern ${pattern}`, () => {
      assert.throws(() => compileSpiffePattern(pattern), (err: unknown) => err instanceof MeshwardError && err.code === 'invalid_argument' && rule.test(err.message));
    });
  }
});
