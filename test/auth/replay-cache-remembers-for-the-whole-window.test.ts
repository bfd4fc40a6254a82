// The HMAC replay cache: a signature is a replay for at least 2·maxSkew after it was first seen (the longest
// time a signature can be accepted), is forgotten after that, the cache never grows past its bound (it says
// 'full' instead of forgetting early), and a clock that goes backwards forgets nothing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ReplayCache } from '../../src/auth/replay-cache.js';

const SKEW = 300_000;

describe('replay cache', () => {
  it('a key is a replay for the whole window, whenever in a generation it was added (property)', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 5_000 }), { minLength: 1, maxLength: 40 }), fc.integer({ min: 0, max: 2 * SKEW - 1 }), (steps, probe) => {
      const cache = new ReplayCache(SKEW);
      let now = 0;
      // Other traffic ages the cache at arbitrary times before and after.
      for (const s of steps) cache.remember(`other-${now += s * 100}`, now);
      const addedAt = now;
      assert.equal(cache.remember('sig', addedAt), 'fresh');
      for (const s of steps) cache.remember(`later-${s}-${now}`, now = Math.min(addedAt + probe, now + s * 100));
      assert.equal(cache.remember('sig', addedAt + probe), 'replay');
    }), { numRuns: 300 });
  });

  it('forgets a key once two generations have passed, in one sweep (no per-entry work)', () => {
    const cache = new ReplayCache(SKEW);
    cache.remember('a', 0);
    cache.remember('b', 2 * SKEW); // rotates: a moves to the previous generation
    assert.equal(cache.remember('a', 2 * SKEW + 1), 'replay');
    assert.equal(cache.remember('c', 4 * SKEW), 'fresh'); // rotates again: a is dropped
    assert.equal(cache.remember('a', 4 * SKEW + 1), 'fresh');
  });

  it('after a long quiet period everything is forgotten at once', () => {
    const cache = new ReplayCache(SKEW);
    for (let i = 0; i < 100; i++) cache.remember(`k${i}`, i);
    cache.remember('x', 10 * SKEW);
    assert.equal(cache.size, 1);
  });

  it('says full at its bound instead of forgetting a key still inside the window', () => {
    const cache = new ReplayCache(SKEW, 3);
    assert.equal(cache.remember('a', 0), 'fresh');
    assert.equal(cache.remember('b', 1), 'fresh');
    assert.equal(cache.remember('c', 2), 'fresh');
    assert.equal(cache.remember('d', 3), 'full');
    assert.equal(cache.remember('a', 4), 'replay');
    assert.equal(cache.size, 3);
  });

  it('a clock that goes backwards forgets nothing', () => {
    const cache = new ReplayCache(SKEW);
    cache.remember('a', 1_000_000);
    assert.equal(cache.remember('a', 0), 'replay');
    assert.equal(cache.remember('a', 1_000_000 + 2 * SKEW - 1), 'replay');
  });
});
