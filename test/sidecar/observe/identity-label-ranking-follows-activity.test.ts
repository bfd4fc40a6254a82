// The ranking behind the bounded identity label (src/sidecar/observe/identity-labels.ts), on a real
// metrics registry: a caller counted under `other` that becomes more active than a labelled one
// takes its place at the next window, and the evicted caller's series leave /metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SidecarMetrics } from '../../../src/sidecar/observe/metrics.js';
import { IdentityLabels } from '../../../src/sidecar/observe/identity-labels.js';

async function identityValues(m: SidecarMetrics): Promise<string[]> {
  const values = (await m.requests.snapshot()).series.map((v) => v.labels.identity!);
  return [...new Set(values)].sort();
}

test('a busier caller under other replaces the least active labelled one at the next window', async () => {
  const m = new SidecarMetrics({ processMetrics: false, identityLabels: 2 });
  const count = (id: string, n: number) => {
    for (let i = 0; i < n; i++) m.requestCounter('allow', 'routes[0]', id).inc();
  };
  count('a', 5);
  count('b', 1);
  count('c', 9);
  assert.deepEqual(await identityValues(m), ['a', 'b', 'other']);
  const before = m.identities.generation;
  m.identities.rerank();
  assert.notEqual(m.identities.generation, before, 'labels changed: cached counters must be looked up again');
  assert.deepEqual(m.identities.labelled().sort(), ['a', 'c']);
  count('c', 1);
  count('b', 1);
  // b's series is gone (removed, not left to grow the label set); its new request is under other.
  assert.deepEqual(await identityValues(m), ['a', 'c', 'other']);
  const other = (await m.requests.snapshot()).series.find((v) => v.labels.identity === 'other');
  assert.equal(other?.value, 9 + 1);
});

test('equal traffic keeps the labelled callers; a quiet window changes nothing', () => {
  let now = 0;
  const evicted: string[] = [];
  const labels = new IdentityLabels(1, (id) => evicted.push(id), 1000, () => now);
  assert.equal(labels.label('a'), 'a');
  assert.equal(labels.label('b'), 'other');
  now = 1000;
  assert.equal(labels.label('a'), 'a', 'a tie keeps the labelled caller');
  assert.deepEqual(evicted, []);
  now = 2000;
  labels.label('z');
  assert.deepEqual(labels.labelled(), ['a']);
});

test('limit 0: every caller is other', () => {
  const labels = new IdentityLabels(0, () => undefined);
  assert.equal(labels.label('a'), 'other');
  labels.rerank();
  assert.deepEqual(labels.labelled(), []);
});
