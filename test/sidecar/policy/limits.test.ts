// Token buckets with injected time: burst, refill, per-identity isolation, clock steps backwards, and the
// memory bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBuckets } from '../../../src/sidecar/policy/limits.js';

function takeN(b: TokenBuckets, key: string, n: number, nowMs: number): number {
  let granted = 0;
  for (let i = 0; i < n; i++) if (b.take(key, nowMs)) granted++;
  return granted;
}

test('a full bucket allows a burst, then refills at rps', () => {
  const b = new TokenBuckets(10, 5);
  assert.equal(takeN(b, 'a', 8, 1000), 5);
  assert.equal(b.take('a', 1050), false, 'half a token after 50 ms');
  assert.equal(b.take('a', 1100), true, 'one token after 100 ms');
  assert.equal(b.take('a', 1100), false);
  assert.equal(takeN(b, 'a', 10, 1100 + 10_000), 5, 'never more than the burst, however long the pause');
});

test('fractional rates: 0.5 rps is one request every two seconds', () => {
  const b = new TokenBuckets(0.5, 1);
  assert.equal(b.take('a', 0), true);
  assert.equal(b.take('a', 1999), false);
  assert.equal(b.take('a', 2000), true);
});

test('identities have separate buckets', () => {
  const b = new TokenBuckets(1, 2);
  assert.equal(takeN(b, 'a', 3, 0), 2);
  assert.equal(takeN(b, 'b', 3, 0), 2);
  assert.equal(b.size, 2);
});

test('a clock that steps backwards neither adds nor removes tokens', () => {
  const b = new TokenBuckets(1, 2);
  assert.equal(takeN(b, 'a', 2, 10_000), 2);
  assert.equal(b.take('a', 5_000), false);
  assert.equal(b.take('a', 10_999), false, 'time measured from the latest reading');
  assert.equal(b.take('a', 11_000), true);
});

test('memory stays bounded: idle (full again) buckets are dropped first, then the oldest', () => {
  const b = new TokenBuckets(1, 1, 100);
  for (let i = 0; i < 100; i++) b.take(`idle-${i}`, 0);
  assert.equal(b.size, 100);
  // 10 s later every bucket is full again: making room drops them all.
  b.take('new', 10_000);
  assert.equal(b.size, 1);
  for (let i = 0; i < 1000; i++) b.take(`busy-${i}`, 10_000);
  assert.ok(b.size <= 100, `size ${b.size}`);
  // The most recent identities are still tracked (and still empty).
  assert.equal(b.take('busy-999', 10_000), false);
});
