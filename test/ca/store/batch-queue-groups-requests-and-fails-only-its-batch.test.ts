// The store's batching queue (src/ca/store/batches.ts): requests made in one turn of the event loop go to
// the database as one batch, each caller gets its own result, requests made while a batch runs go into the
// next one, a failed batch fails its own callers and no others, and batches never exceed their limit.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BatchQueue } from '../../../src/ca/store/batches.js';

/** A queue whose batches are recorded and answered once released (each batch waits for `release()`). */
function recordingQueue(max?: number, fail?: (items: number[]) => boolean) {
  const batches: number[][] = [];
  const waiting: (() => void)[] = [];
  const queue = new BatchQueue<number, string>(async (items) => {
    batches.push(items);
    await new Promise<void>((resolve) => waiting.push(resolve));
    if (fail?.(items)) throw new Error(`batch ${items.join(',')} failed`);
    return items.map((n) => `r${n}`);
  }, max);
  const release = async () => {
    while (waiting.length === 0) await new Promise((resolve) => setImmediate(resolve));
    waiting.shift()!();
  };
  return { queue, batches, release };
}

describe('BatchQueue', () => {
  it('puts the requests of one turn in one batch and gives each caller its own result', async () => {
    const { queue, batches, release } = recordingQueue();
    const results = Promise.all([1, 2, 3].map((n) => queue.push(n)));
    await release();
    assert.deepEqual(await results, ['r1', 'r2', 'r3']);
    assert.deepEqual(batches, [[1, 2, 3]]);
  });

  it('sends requests made while a batch runs in the next batch, together', async () => {
    const { queue, batches, release } = recordingQueue();
    const first = queue.push(1);
    await new Promise((resolve) => setImmediate(resolve)); // the first batch has started
    const later = [queue.push(2), queue.push(3)];
    assert.deepEqual(batches, [[1]]);
    await release();
    assert.equal(await first, 'r1');
    await release();
    assert.deepEqual(await Promise.all(later), ['r2', 'r3']);
    assert.deepEqual(batches, [[1], [2, 3]]);
  });

  it('fails every caller of a failed batch with its error, and the next batch still runs', async () => {
    const { queue, batches, release } = recordingQueue(undefined, (items) => items.includes(1));
    const failing = [queue.push(1), queue.push(2)];
    await new Promise((resolve) => setImmediate(resolve));
    const next = queue.push(3);
    await release();
    for (const p of failing) await assert.rejects(p, /batch 1,2 failed/);
    await release();
    assert.equal(await next, 'r3');
    assert.deepEqual(batches, [[1, 2], [3]]);
  });

  it('splits more requests than the limit into batches of at most the limit', async () => {
    const { queue, batches, release } = recordingQueue(2);
    const results = Promise.all([1, 2, 3, 4, 5].map((n) => queue.push(n)));
    for (let i = 0; i < 3; i++) await release();
    assert.deepEqual(await results, ['r1', 'r2', 'r3', 'r4', 'r5']);
    assert.deepEqual(batches, [[1, 2], [3, 4], [5]]);
  });

  it('refuses a batch that answers with the wrong number of results, failing its callers', async () => {
    const queue = new BatchQueue<number, number>(async (items) => items.slice(1));
    await assert.rejects(Promise.all([queue.push(1), queue.push(2)]), /a batch of 2 returned 1 results/);
  });
});
