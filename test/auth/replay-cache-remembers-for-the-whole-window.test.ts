// The HMAC replay cache: a signature is a replay until its created + maxSkew (the last moment the verifier
// would accept it) and forgotten right after, one held longer when its `created` is in the future, 2·maxSkew
// when `created` is unknown; at its bound it says 'full' (never forgets early) and recovers as entries expire;
// the table grows from a small start and shrinks back; a clock that goes backwards forgets nothing. A model
// property test compares it with a plain Map through reuse of expired slots, growth and shrinking.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ReplayCache } from '../../src/auth/replay-cache.js';

const SKEW = 300_000;
const T0 = 1_733_300_000_000; // ms, a whole second
const T0_S = T0 / 1000;

describe('replay cache: expiry by created + maxSkew', () => {
  it('a replay up to created + maxSkew exactly, fresh 1 ms later', () => {
    const cache = new ReplayCache(SKEW);
    assert.equal(cache.remember('sig', T0, T0_S), 'fresh');
    assert.equal(cache.remember('sig', T0 + SKEW, T0_S), 'replay');
    assert.equal(cache.remember('sig', T0 + SKEW + 1, T0_S), 'fresh');
  });

  it('a signature created in the past is forgotten sooner: only what is left of its window', () => {
    const cache = new ReplayCache(SKEW);
    assert.equal(cache.remember('old', T0, T0_S - 200), 'fresh'); // 100 s of its window left
    assert.equal(cache.remember('old', T0 + 100_000, T0_S - 200), 'replay');
    assert.equal(cache.remember('old', T0 + 100_001, T0_S - 200), 'fresh');
  });

  it('a signature created in the future is held longer (up to 2·maxSkew)', () => {
    const cache = new ReplayCache(SKEW);
    cache.remember('now', T0, T0_S);
    cache.remember('ahead', T0, T0_S + 300);
    const later = T0 + 450_000;
    assert.equal(cache.remember('ahead', later, T0_S + 300), 'replay');
    assert.equal(cache.remember('now', later, T0_S), 'fresh');
    assert.equal(cache.remember('ahead', T0 + 2 * SKEW, T0_S + 300), 'replay');
    assert.equal(cache.remember('ahead', T0 + 2 * SKEW + 1, T0_S + 300), 'fresh');
  });

  it('without created, a signature is kept for 2·maxSkew (the longest any accepted one needs)', () => {
    const cache = new ReplayCache(SKEW);
    cache.remember('unknown', T0);
    assert.equal(cache.remember('unknown', T0 + 2 * SKEW), 'replay');
    assert.equal(cache.remember('unknown', T0 + 2 * SKEW + 1), 'fresh');
  });

  it('a grace keeps every entry that much longer, rounded up to seconds', () => {
    const cache = new ReplayCache(SKEW, { graceMs: 2_500 });
    cache.remember('sig', T0, T0_S);
    assert.equal(cache.remember('sig', T0 + SKEW + 3_000, T0_S), 'replay');
    assert.equal(cache.remember('sig', T0 + SKEW + 3_001, T0_S), 'fresh');
  });

  it('a signature the verifier accepted at its window\'s last moment is still held through the current second', () => {
    const cache = new ReplayCache(SKEW);
    // Remembered 400 ms after its window closed (e.g. a slow caller): kept to the end of that second.
    assert.equal(cache.remember('late', T0 + SKEW + 400, T0_S), 'fresh');
    assert.equal(cache.remember('late', T0 + SKEW + 1_000, T0_S), 'replay');
  });

  it('a key is a replay for its whole window whatever other traffic does (property)', () => {
    fc.assert(fc.property(
      fc.array(fc.integer({ min: 0, max: 5_000 }), { minLength: 1, maxLength: 40 }),
      fc.integer({ min: -300, max: 300 }),
      fc.integer({ min: 0, max: 2 * SKEW }),
      (steps, createdOffset, probe) => {
        const cache = new ReplayCache(SKEW);
        let now = T0;
        for (const s of steps) cache.remember(`other-${now += s * 100}`, now, Math.floor(now / 1000));
        const addedAt = now;
        const created = Math.floor(addedAt / 1000) + createdOffset;
        assert.equal(cache.remember('sig', addedAt, created), 'fresh');
        const lastAccepted = created * 1000 + SKEW; // the verifier refuses it after this
        const end = Math.max(addedAt, Math.min(addedAt + probe, lastAccepted));
        for (const s of steps) cache.remember(`later-${s}-${now}`, now = Math.min(end, now + s * 100), Math.floor(now / 1000));
        assert.equal(cache.remember('sig', end, created), 'replay');
      }), { numRuns: 300 });
  });

  it('a clock that goes backwards forgets nothing', () => {
    const cache = new ReplayCache(SKEW);
    cache.remember('a', T0, T0_S);
    assert.equal(cache.remember('a', 0, T0_S), 'replay');
    cache.remember('b', T0 + 100_000, T0_S + 100);
    assert.equal(cache.remember('x', T0 - 100_000, T0_S - 100), 'fresh');
    assert.equal(cache.remember('a', T0 + SKEW, T0_S), 'replay');
  });
});

describe('replay cache: bound, growth, memory', () => {
  it('says full at its bound, still finds replays while full, and recovers as entries expire', () => {
    const cache = new ReplayCache(SKEW, { maxEntries: 3 });
    assert.equal(cache.remember('a', T0, T0_S), 'fresh');
    assert.equal(cache.remember('b', T0 + 10_000, T0_S + 10), 'fresh');
    assert.equal(cache.remember('c', T0 + 20_000, T0_S + 20), 'fresh');
    assert.equal(cache.remember('d', T0 + 30_000, T0_S + 30), 'full');
    assert.equal(cache.remember('a', T0 + 30_000, T0_S), 'replay');
    assert.equal(cache.size, 3);
    // a's window ends at T0 + SKEW: one place free again, and only one.
    assert.equal(cache.remember('d', T0 + SKEW + 1, T0_S + 30), 'fresh');
    assert.equal(cache.remember('e', T0 + SKEW + 1, T0_S + 30), 'full');
    assert.equal(cache.size, 3);
    // Long after every window: empty.
    assert.equal(cache.remember('f', T0 + 10 * SKEW, T0_S + 3000), 'fresh');
    assert.equal(cache.size, 1);
  });

  it('starts small, grows by doubling (at most half full after a growth), and shrinks back when traffic stops', () => {
    const cache = new ReplayCache(SKEW);
    assert.equal(cache.capacity, 1024);
    assert.ok(cache.bytes < 16 * 1024, `${cache.bytes} bytes idle`); // 12 KiB of slots + the per-second ring
    const capacities = new Set<number>();
    for (let i = 0; i < 50_000; i++) {
      assert.equal(cache.remember(`k${i}`, T0, T0_S), 'fresh');
      capacities.add(cache.capacity);
    }
    for (const c of capacities) assert.equal(c & (c - 1), 0, `${c} is a power of two`);
    assert.deepEqual([...capacities].sort((a, b) => a - b), [1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072]);
    assert.ok(cache.capacity >= 2 * cache.size);
    // Every one of them is still a replay after the growths.
    for (let i = 0; i < 50_000; i += 997) assert.equal(cache.remember(`k${i}`, T0 + 1000, T0_S), 'replay');
    // 12 bytes a slot: 16-48 bytes per live entry (here 50k in 131072 slots).
    const perEntry = (cache.capacity * 12) / cache.size;
    assert.ok(perEntry >= 16 && perEntry <= 48, `${perEntry} bytes per entry`);
    // After the window, the next call finds everything expired and gives the memory back.
    cache.remember('later', T0 + SKEW + 1_000, T0_S + 300);
    assert.equal(cache.size, 1);
    assert.equal(cache.capacity, 1024);
  });

  it('steady traffic reuses expired slots: the table stays at the size its live entries need', () => {
    const cache = new ReplayCache(10_000); // 10 s skew: entries live 10 s
    let peak = 0;
    for (let s = 0; s < 120; s++) {
      for (let i = 0; i < 200; i++) assert.equal(cache.remember(`s${s}-${i}`, T0 + s * 1000, T0_S + s), 'fresh');
      if (s > 20) peak = Math.max(peak, cache.capacity);
    }
    // ~2200 live (11 seconds of 200): 8192 slots at most, however long it runs.
    assert.ok(cache.size <= 2_400, `${cache.size} live`);
    assert.ok(peak <= 8192, `capacity ${peak}`);
  });

  it('behaves like a Map of key → expiry through slot reuse, growth and shrinking (model property)', () => {
    // Mostly a few ms apart (about a thousand live at once: growth), sometimes a jump of seconds (mass expiry).
    const step = fc.oneof({ arbitrary: fc.integer({ min: 0, max: 20 }), weight: 50 }, { arbitrary: fc.integer({ min: 1_000, max: 8_000 }), weight: 1 });
    const op = fc.record({ key: fc.integer({ min: 0, max: 5_000 }), step, offset: fc.integer({ min: -5, max: 5 }) });
    fc.assert(fc.property(fc.array(op, { minLength: 500, maxLength: 4_000, size: 'max' }), fc.integer({ min: 300, max: 3_000 }), (ops, maxEntries) => {
      const skewMs = 5_000;
      const cache = new ReplayCache(skewMs, { maxEntries });
      const model = new Map<string, number>(); // key → last ms it is a replay
      let now = T0;
      for (const o of ops) {
        now += o.step;
        const key = `sig-${o.key}`;
        const created = Math.floor(now / 1000) + o.offset;
        for (const [k, until] of model) if (until < now) model.delete(k);
        const expected = model.has(key) ? 'replay' : model.size >= maxEntries ? 'full' : 'fresh';
        assert.equal(cache.remember(key, now, created), expected);
        if (expected === 'fresh') model.set(key, Math.max(Math.ceil(now / 1000) * 1000, (created * 1000) + skewMs));
        assert.equal(cache.size, model.size);
      }
    }), { numRuns: 25 });
  });

  it('the same at a steady high load of the smallest table: runs that wrap past its end, deletions by the sweep (model)', () => {
    // Up to 740 live in 1024 slots for 30 000 calls: long probe runs, some wrapping around the end, and every
    // third call repeating one of the last 300 keys (a replay while it is live). A wrong backward shift at the
    // wrap (an entry moved before its home slot) makes this fail.
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 1 << 30 }), { minLength: 30_000, maxLength: 30_000 }), (keys) => {
      const skewMs = 3_000;
      const maxEntries = 740;
      const cache = new ReplayCache(skewMs, { maxEntries });
      const model = new Map<string, number>();
      let now = T0;
      keys.forEach((k, n) => {
        now += n % 3 === 0 ? 6 : 5;
        const key = `sig-${n % 3 === 0 ? keys[Math.max(0, n - 1 - (k % 300))] : k}`;
        const created = Math.floor(now / 1000);
        for (const [m, until] of model) if (until < now) model.delete(m);
        const expected = model.has(key) ? 'replay' : model.size >= maxEntries ? 'full' : 'fresh';
        assert.equal(cache.remember(key, now, created), expected);
        if (expected === 'fresh') model.set(key, created * 1000 + skewMs);
      });
    }), { numRuns: 6, endOnFailure: true }); // no shrinking of 30 000 keys
  });
});
