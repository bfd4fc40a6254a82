// The HMAC replay cache resizes incrementally: a growth or a shrink keeps the old table beside the new one
// and moves a few slots per call, so no call pays for a whole table. Proved here: every answer during a move
// is the one a plain Map model gives (entries not moved yet, moved, swept, expired in either table; growth,
// shrink, 'full', a clock going backwards), the slots one call reads stay under a bound that does not grow
// with the table (counted, not timed), and the memory is the two tables during a move and one after it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ReplayCache, type ReplayOutcome } from '../../src/auth/replay-cache.js';

const T0 = 1_733_300_000_000; // ms, a whole second
const T0_S = T0 / 1000;

/** What the cache must answer, kept the plain way: key → the last ms it is a replay. */
class ReplayModel {
  private readonly until = new Map<string, number>();
  /** Keys by their last ms, to forget whole seconds at once. */
  private readonly byMs = new Map<number, string[]>();
  private clock = -Infinity;

  constructor(private readonly skewMs: number, private readonly graceS: number, private readonly maxEntries: number) {}

  get size(): number {
    return this.until.size;
  }

  remember(key: string, now: number, createdS: number | undefined): ReplayOutcome {
    if (now > this.clock) {
      this.clock = now; // the cache's clock never goes back either
      for (const [ms, keys] of this.byMs) {
        if (ms >= this.clock) continue;
        for (const k of keys) if (this.until.get(k) === ms) this.until.delete(k);
        this.byMs.delete(ms);
      }
    }
    if (this.until.has(key)) return 'replay';
    if (this.until.size >= this.maxEntries) return 'full';
    const created = createdS ?? Math.ceil(now / 1000) + this.skewMs / 1000;
    const ms = Math.max(Math.ceil(this.clock / 1000), created + this.skewMs / 1000 + this.graceS) * 1000;
    this.until.set(key, ms);
    const keys = this.byMs.get(ms);
    if (keys) keys.push(key);
    else this.byMs.set(ms, [key]);
    return 'fresh';
  }
}

describe('replay cache: incremental resizing', () => {
  it('answers as a Map model at every call, during growth and shrink moves too (model property)', () => {
    // Segments of traffic at one rate each: bursts (0-1 ms apart: thousands live, growth), slow stretches
    // (live falls below 1/8 of the table: shrink moves), pauses longer than the window (everything expires at
    // once), and now and then a clock stepped back. A quarter of the calls repeat an earlier key (a replay
    // while it is live); a ninth have no `created`.
    const segment = fc.record({
      calls: fc.integer({ min: 20, max: 3_000 }),
      maxStep: fc.oneof({ arbitrary: fc.constant(1), weight: 4 }, { arbitrary: fc.integer({ min: 5, max: 200 }), weight: 3 }, { arbitrary: fc.constant(4_000), weight: 1 }),
      back: fc.oneof({ arbitrary: fc.constant(0), weight: 6 }, { arbitrary: fc.integer({ min: 1, max: 3_000 }), weight: 1 }),
    });
    const call = fc.record({ step: fc.nat(), repeat: fc.nat({ max: 3 }).map((r) => r === 0), pick: fc.nat(), offset: fc.option(fc.integer({ min: -2, max: 2 }), { freq: 8 }) });
    let callsDuringMove = 0;
    let growthMoves = 0;
    let shrinkMoves = 0;
    fc.assert(fc.property(
      fc.array(segment, { minLength: 3, maxLength: 12 }),
      fc.array(call, { minLength: 2_000, maxLength: 2_000 }),
      fc.integer({ min: 300, max: 6_000 }),
      fc.integer({ min: 0, max: 2_000 }),
      (segments, calls, maxEntries, graceMs) => {
        const skewMs = 2_000;
        const cache = new ReplayCache(skewMs, { maxEntries, graceMs });
        const model = new ReplayModel(skewMs, Math.ceil(graceMs / 1000), maxEntries);
        const seen: string[] = [];
        let now = T0;
        let n = 0;
        for (const seg of segments) {
          now -= seg.back;
          for (let c = 0; c < seg.calls; c++, n++) {
            const o = calls[n % calls.length]!;
            now += o.step % (seg.maxStep + 1);
            const key = o.repeat && seen.length > 0 ? seen[seen.length - 1 - (o.pick % Math.min(seen.length, 3_000))]! : `sig-${n}`;
            if (key === `sig-${n}`) seen.push(key);
            const created = o.offset === null ? undefined : Math.floor(now / 1000) + o.offset;
            const moving = cache.resizing;
            const before = cache.capacity;
            const expected = model.remember(key, now, created);
            assert.equal(cache.remember(key, now, created), expected, `call ${n} (${moving ? 'during a move' : 'no move'})`);
            assert.equal(cache.size, model.size, `live count after call ${n}`);
            if (moving) callsDuringMove++;
            if (!moving && cache.resizing) {
              if (cache.capacity > before) growthMoves++;
              else if (cache.capacity < before) shrinkMoves++;
            }
          }
        }
      }), { numRuns: 150 });
    // The runs did exercise what they are for.
    assert.ok(growthMoves > 100, `${growthMoves} growth moves`);
    assert.ok(shrinkMoves > 40, `${shrinkMoves} shrink moves`);
    assert.ok(callsDuringMove > 3_000, `${callsDuringMove} calls answered during a move`);
  });

  it('during a growth move, every remembered key is a replay whichever table holds it; unseen and expired keys are not', () => {
    const cache = new ReplayCache(10_000);
    // Expiring first (created 9 s ago: live through T0 + 1 s), then live for the whole test.
    for (let i = 0; i < 300; i++) assert.equal(cache.remember(`early-${i}`, T0, T0_S - 9), 'fresh');
    let k = 0;
    while (!cache.resizing) {
      assert.equal(cache.remember(`k${k++}`, T0 + 2_000, T0_S + 2), 'fresh');
      assert.ok(k < 1_000, 'a 1024-slot table grows before 769 entries');
    }
    assert.equal(cache.capacity, 2048);
    assert.equal(cache.resizing, true);
    let answeredDuringMove = 0;
    for (let i = 0; i < k; i++) {
      if (cache.resizing) answeredDuringMove++;
      assert.equal(cache.remember(`k${i}`, T0 + 2_000, T0_S + 2), 'replay', `k${i}`);
    }
    // Up to 64 entries a call, from at least 64 of the 1024 old slots: a few calls, at most 16.
    assert.ok(answeredDuringMove >= 2 && answeredDuringMove <= 1024 / 64, `${answeredDuringMove} calls during the move`);
    assert.equal(cache.resizing, false);
    // Expired before the move: not carried over, so a fresh signature now (the verifier refuses it as old anyway).
    assert.equal(cache.remember('early-0', T0 + 2_000, T0_S + 2), 'fresh');
    assert.equal(cache.remember('never-seen', T0 + 2_000, T0_S + 2), 'fresh');
  });

  it('an entry waiting in the old table is a replay through the last second of its window; the old table goes after it', () => {
    const cache = new ReplayCache(10_000);
    let k = 0;
    while (cache.capacity < 65_536) {
      assert.equal(cache.remember(`k${k++}`, T0, T0_S), 'fresh');
      assert.ok(k < 50_000, 'grows to 65 536 slots before 50 000 entries');
    }
    assert.equal(cache.resizing, true, 'the growth move has just started: every entry is still in the old table');
    // The last ms of their window (created + maxSkew): the old table may not be dropped as expired yet.
    const last = T0 + 10_000;
    let answeredDuringMove = 0;
    for (let i = 0; i < k; i++) {
      if (cache.resizing) answeredDuringMove++;
      assert.equal(cache.remember(`k${i}`, last, T0_S), 'replay', `k${i}`);
    }
    assert.ok(answeredDuringMove > 100, `${answeredDuringMove} answers during the move`);
    // 1 ms later every one has expired: both tables go at once.
    assert.equal(cache.remember('k0', last + 1, T0_S), 'fresh');
    assert.equal(cache.resizing, false);
    assert.equal(cache.capacity, 1024);
  });

  it('the slots one call reads stay bounded while the table grows to 2^19 slots and shrinks back (counted, not timed)', () => {
    // 10 s skew; 250 000 signatures inside 10 s (growth through every doubling to 524 288 slots), then one
    // call every 20 ms for 25 s: the live count falls second by second (shrink moves) to nothing.
    const cache = new ReplayCache(10_000);
    let worst = 0;
    let total = 0;
    let calls = 0;
    let peakCapacity = 0;
    let shrinks = 0;
    const call = (key: string, now: number) => {
      const before = cache.slotsVisited;
      const capacity = cache.capacity;
      cache.remember(key, now, Math.floor(now / 1000));
      const visited = cache.slotsVisited - before;
      worst = Math.max(worst, visited);
      total += visited;
      calls++;
      if (cache.capacity < capacity && cache.size > 0) shrinks++;
      peakCapacity = Math.max(peakCapacity, cache.capacity);
      // Memory: the new table, plus the old one during a move (at most twice the new one's size when growing).
      assert.ok(cache.bytes <= 12 * (cache.capacity + (cache.resizing ? peakCapacity : 0)) + 4096, `${cache.bytes} bytes`);
    };
    for (let i = 0; i < 250_000; i++) call(`g${i}`, T0 + Math.floor(i / 25));
    assert.equal(peakCapacity, 2 ** 19);
    for (let t = 0; t < 25_000; t += 20) call(`s${t}`, T0 + 10_000 + t);
    assert.ok(shrinks >= 2, `${shrinks} shrinks with entries still live`);
    assert.ok(cache.capacity <= 2048, `capacity ${cache.capacity} at the end`);
    assert.equal(cache.resizing, false);
    // A whole-table rebuild would read 2^18 slots in one call here. The bound holds the move (512 old slots
    // at most, 64 entries moved and their probes), the sweep (8 and its backward shifts) and two lookups; it
    // does not depend on the table's size (about 600 is seen).
    assert.ok(worst <= 1_500, `worst call read ${worst} slots`);
    assert.ok(total / calls < 40, `mean ${total / calls} slots per call`);
  });

  it('a sweep and a move in the same call never lose a live entry: steady load on a shrinking table (model)', () => {
    // The rate falls in steps, so shrink moves happen while the sweep deletes expired entries of the new
    // table and new entries arrive; every third call repeats a recent key.
    const cache = new ReplayCache(3_000);
    const model = new ReplayModel(3_000, 0, 1e9);
    let now = T0;
    const recent: string[] = [];
    let moves = 0;
    for (const gap of [1, 1, 2, 3, 5, 8, 13, 21, 34]) {
      for (let i = 0; i < 6_000 / gap; i++) {
        now += gap;
        const key = i % 3 === 0 && recent.length > 0 ? recent[(i * 7919) % recent.length]! : `g${gap}-${i}`;
        if (!recent.includes(key)) recent.push(key), recent.length > 500 && recent.shift();
        if (cache.resizing) moves++;
        assert.equal(cache.remember(key, now, Math.floor(now / 1000)), model.remember(key, now, Math.floor(now / 1000)), key);
        assert.equal(cache.size, model.size);
      }
    }
    assert.ok(moves > 0, 'some calls came during a move');
  });
});
