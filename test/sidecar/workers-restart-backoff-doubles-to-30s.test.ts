// A worker that keeps crashing is re-forked after 1 s, then 2 s, 4 s … never more than 30 s apart, so a
// crash loop costs little CPU while a one-off crash is repaired quickly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { restartDelayMs } from '../../src/sidecar/workers/cluster.js';

test('restart delays by consecutive unexpected exits', () => {
  const table: [number, number][] = [
    [1, 1_000],
    [2, 2_000],
    [3, 4_000],
    [5, 16_000],
    [6, 30_000],
    [7, 30_000],
    [1000, 30_000],
  ];
  for (const [exits, delay] of table) assert.equal(restartDelayMs(exits), delay, `after ${exits} exits`);
});
