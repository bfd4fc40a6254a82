// The memory of HMAC signatures already accepted, so a captured request cannot be sent again. A signature is
// accepted only while its `created` is within ±maxSkew of the clock, so it needs remembering until
// created + maxSkew and not a second longer: after that the verifier refuses it as clock_skew anyway. Each
// entry therefore carries its own expiry second, and the cache forgets it exactly then (plus an optional
// grace for callers whose clock reading comes from elsewhere, see `graceMs`).
//
// Compact, because at one core's signed-request rate (~6.7k/s) the default window holds millions: an entry is
// a 64-bit fingerprint of the replay key plus a uint32 expiry second, 12 bytes in one Uint32Array of an
// open-addressing table (linear probing) kept between 1/4 and 3/4 full, so 16-48 bytes per live entry, 24 at
// the usual half-full; a JavaScript Set of strings costs ~100. The table starts at 1024 slots (12 KiB),
// doubles as needed, and is shrunk when traffic falls. Expired entries are cleared without a resize: every
// call sweeps a few slots further (deleting expired entries with linear probing's backward shift), so at a
// steady rate the table stays at its size. The live count is exact at every second (a ring of per-second
// counts), so 'full' means "this many signatures still inside their window", never "the table has stale
// slots".
//
// Resizing is incremental, because the cluster primary holds the one cache every worker asks: rebuilding a
// table of millions of slots at once paused every signed request for up to a second. A resize allocates the
// new table and keeps the old one beside it, frozen: nothing is written to it again, so its probe chains stay
// whole. Each call then moves the live entries among the next old slots into the new table (64 entries or
// 512 slots at most), and lookups search the new table, then the old one, until the last old slot is moved
// or every entry of the old table has expired; then the old table is dropped. New entries go to the new
// table only, and only after both were searched, so a key is never in the new table twice; a moved entry may
// be found in both (same key, same expiry: the same answer). The new table starts at most half full and a
// move is short enough that it is still under 3/4 when the move ends (see MOVE_ENTRIES), so a move never
// has to be hurried to make room.
//
// A 64-bit fingerprint can collide: two different keys with the same fingerprint make the second one look
// like a replay. That is a refused request (the client signs again and gets through), never an accepted
// replay: a replay has the same key, so the same fingerprint, and is always found. The chance is
// live / 2^64 per request (8M live: ~4e-13). Fingerprints are seeded per process, so nobody can aim
// requests at one probe chain; and only holders of an HMAC key reach the cache at all.
//
// O(1) per request (a sweep step, a move step, a probe of one or two tables), no per-entry timers, no
// allocation per call (a resize allocates its new table: once per doubling or shrink), bounded. Time is
// passed in. The sidecar keeps one of these where every worker reaches it (src/sidecar/auth/replay.ts).
import { randomBytes } from 'node:crypto';

export type ReplayOutcome = 'fresh' | 'replay' | 'full';

/**
 * The default bound: 8,388,608 (2^23) signatures still inside their window. Sized for the sustained rate of
 * one core (~6.7k signed requests/s) held for the longest a signature can need (2 × the default maxSkew of
 * 300 s, for clients whose clock runs ahead), times two workers: 6.7k × 600 × 2 ≈ 8.0M. At the bound the table
 * has 2^24 slots of 12 bytes: 192 MiB, the worst case (while the last doubling moves, the old table's 96 MiB
 * is held too).
 */
export const DEFAULT_MAX_REPLAY_ENTRIES = 2 ** 23;

/** The smallest table: 1024 slots, 12 KiB (an idle sidecar holds no more). */
const MIN_SLOTS = 1024;
/** Words per slot: fingerprint high, fingerprint low, expiry second (0 = empty). */
const STRIDE = 3;
/**
 * Slots each call sweeps for expired entries: the sweep passes the whole table every capacity/8 calls, so
 * at most ~1/8 of the slots hold expired entries (at most half hold live ones after a resize): the table
 * stays below the 3/4 that would force a resize.
 */
const SWEEP_SLOTS = 8;
/**
 * What each call moves during a resize: it looks at the next old slots until it has moved MOVE_ENTRIES live
 * entries or looked at MOVE_SCAN slots. A move of L live entries out of C_old slots thus lasts at most
 * L/64 + C_old/512 + 1 calls. It starts with L ≤ C_new/2 (slotsFor) and C_old ≤ 64·C_new (MAX_RESIZE; growth
 * doubles at most), so it lasts at most C_new/128 + C_new/8 + 1 calls, each adding at most one new entry: the
 * new table is under 2/3 full when the move ends, below the 3/4 that starts a resize. A shrinking table is
 * mostly empty or expired, so it is looked at 512 slots a call.
 */
const MOVE_ENTRIES = 64;
const MOVE_SCAN = 512;
/** The most one resize shrinks the table: more takes one move after another. */
const MAX_RESIZE = 64;

export interface ReplayCacheOptions {
  /** 'full' beyond this many live entries (DEFAULT_MAX_REPLAY_ENTRIES). */
  maxEntries?: number;
  /**
   * Extra time each entry is kept (ms, rounded up to seconds). 0 for a caller that verifies and remembers
   * with the same clock reading; the cluster primary, which remembers what a worker verified a moment ago,
   * sets it to cover that delay.
   */
  graceMs?: number;
}

export class ReplayCache {
  readonly maxEntries: number;
  private readonly skewMs: number;
  private readonly graceS: number;
  /** Seconds of expiry the ring tells apart: an entry's expiry second is at most this far ahead. */
  private readonly ringSize: number;
  /** Live entries by expiry second (index: second % ringSize). */
  private readonly ring: Uint32Array;
  private live = 0;
  /** Slots of `slots` not empty (live + expired ones not yet swept or reused; the old table not counted). */
  private used = 0;
  /** Where the sweep goes on. */
  private cursor = 0;
  private slots = new Uint32Array(MIN_SLOTS * STRIDE);
  private mask = MIN_SLOTS - 1;
  /** During a resize: the table being moved out of (never written to), else null. */
  private old: Uint32Array | null = null;
  private oldMask = 0;
  /** The next old slot to move. */
  private moved = 0;
  /** The latest expiry second ever remembered; the old table's, frozen when a resize starts. */
  private latest = 0;
  private oldLatest = 0;
  /** Slots read so far, all calls together: the work of one call is the difference (tests, benchmarks). */
  private visited = 0;
  /**
   * The first second not yet expired: an entry with expiry second u is live while u >= horizon, i.e. while
   * now <= u * 1000. Never goes back: a clock stepped backwards forgets nothing early.
   */
  private horizon = 0;
  private readonly seed1: number;
  private readonly seed2: number;
  private h1 = 0;
  private h2 = 0;

  /** `maxSkewMs` as in the HMAC policy. */
  constructor(maxSkewMs: number, opts: ReplayCacheOptions = {}) {
    this.skewMs = maxSkewMs;
    this.maxEntries = opts.maxEntries ?? DEFAULT_MAX_REPLAY_ENTRIES;
    this.graceS = Math.ceil((opts.graceMs ?? 0) / 1000);
    // expiry - horizon <= ceil(created + skew) + grace - ceil(now) <= 2·skew + grace + 1 for any created the
    // verifier accepts (created <= now + skew); two more seconds of slack.
    this.ringSize = Math.ceil((2 * maxSkewMs) / 1000) + this.graceS + 3;
    this.ring = new Uint32Array(this.ringSize);
    const seeds = randomBytes(8);
    this.seed1 = seeds.readUInt32LE(0);
    this.seed2 = seeds.readUInt32LE(4);
  }

  /** Signatures still inside their window. */
  get size(): number {
    return this.live;
  }

  /** Slots in the table now (it grows and shrinks by powers of two; during a resize, the new table's). */
  get capacity(): number {
    return this.mask + 1;
  }

  /** Bytes the tables (both during a resize) and the ring hold. */
  get bytes(): number {
    return this.slots.byteLength + (this.old?.byteLength ?? 0) + this.ring.byteLength;
  }

  /** True while a resize is moving entries out of the old table. */
  get resizing(): boolean {
    return this.old !== null;
  }

  /** Table slots read by every call so far (probes, sweep, moves): what bounds a call's time. */
  get slotsVisited(): number {
    return this.visited;
  }

  /**
   * 'fresh' (now remembered), 'replay' (seen, still inside its window) or 'full' (cannot remember more:
   * refuse the request rather than accept one that could be replayed). `now` in ms; `createdS` the
   * signature's `created` (unix seconds): it is kept until createdS + maxSkew. Without it (a caller that
   * could not tell) it is kept for the longest any accepted signature needs: now + 2·maxSkew.
   */
  remember(key: string, now: number, createdS?: number): ReplayOutcome {
    this.advance(now);
    this.sweep();
    if (this.old !== null) this.moveSome();
    this.fingerprint(key);
    const h1 = this.h1;
    const h2 = this.h2;
    const t = this.slots;
    const mask = this.mask;
    const horizon = this.horizon;
    let i = h2 & mask;
    let reusable = -1;
    let probes = 0;
    // Ends at an empty slot: the table is never more than 3/4 used (a resize starts before that).
    for (; probes <= mask; probes++) {
      const b = i * STRIDE;
      const until = t[b + 2]!;
      if (until === 0) break;
      if (until < horizon) {
        // Expired: reusable, but the chain goes on past it (an entry further on may be the key).
        if (reusable < 0) reusable = i;
      } else if (t[b] === h1 && t[b + 1] === h2) {
        this.visited += probes + 1;
        return 'replay';
      }
      i = (i + 1) & mask;
    }
    this.visited += probes + 1;
    // Not moved yet (or moved and also still there: the same answer).
    if (this.old !== null && this.inOld(h1, h2)) return 'replay';
    if (this.live >= this.maxEntries) return 'full';
    const created = createdS ?? Math.ceil(now / 1000) + this.skewMs / 1000;
    // At least the current second, at most what the ring can count (reached only by a `created` beyond
    // now + maxSkew, which the verifier refuses); never 0, which marks an empty slot.
    const until = Math.max(1, horizon, Math.min(Math.ceil(created + this.skewMs / 1000) + this.graceS, horizon + this.ringSize - 1));
    const slot = reusable >= 0 ? reusable : i;
    if (reusable < 0) this.used++;
    const b = slot * STRIDE;
    t[b] = h1;
    t[b + 1] = h2;
    t[b + 2] = until;
    this.ring[until % this.ringSize]!++;
    this.live++;
    if (until > this.latest) this.latest = until;
    if (this.used * 4 > this.capacity * 3) this.resize();
    return 'fresh';
  }

  /** Whether the frozen old table holds the fingerprint h1/h2, live. */
  private inOld(h1: number, h2: number): boolean {
    const t = this.old!;
    const mask = this.oldMask;
    const horizon = this.horizon;
    let i = h2 & mask;
    let probes = 0;
    let found = false;
    for (; probes <= mask; probes++) {
      const b = i * STRIDE;
      const until = t[b + 2]!;
      if (until === 0) break;
      if (until >= horizon && t[b] === h1 && t[b + 1] === h2) {
        found = true;
        break;
      }
      i = (i + 1) & mask;
    }
    this.visited += probes + 1;
    return found;
  }

  /** Moves the horizon to `now` (never back), dropping the counts of the seconds that expired. */
  private advance(now: number): void {
    const horizon = Math.ceil(now / 1000);
    if (horizon <= this.horizon) return;
    if (horizon - this.horizon >= this.ringSize) {
      this.ring.fill(0);
      this.live = 0;
    } else {
      for (let s = this.horizon; s < horizon; s++) {
        const r = s % this.ringSize;
        this.live -= this.ring[r]!;
        this.ring[r] = 0;
      }
    }
    this.horizon = horizon;
    // An old table whose entries have all expired needs no more moving: it goes at once.
    if (this.old !== null && this.oldLatest < horizon) this.old = null;
    // Traffic fell: give the memory back (checked once a second at most, when the horizon moves). Nothing
    // live: both tables hold only expired entries, so they go at once, mid-move or not. Else a shrink move,
    // one at a time (a shrink by more than MAX_RESIZE is a few moves in a row).
    if (this.live === 0) {
      this.old = null;
      if (this.capacity > MIN_SLOTS) this.replaceTable(MIN_SLOTS);
    } else if (this.old === null && this.capacity > MIN_SLOTS && this.live * 8 < this.capacity) {
      this.resize();
    }
  }

  /** Deletes the expired entries among the next SWEEP_SLOTS slots of the (new) table. */
  private sweep(): void {
    const t = this.slots;
    const mask = this.mask;
    let i = this.cursor;
    for (let k = 0; k < SWEEP_SLOTS; k++) {
      const until = t[i * STRIDE + 2]!;
      // After a deletion, slot i may hold an entry shifted back into it: look at it again.
      if (until !== 0 && until < this.horizon) this.remove(i);
      else i = (i + 1) & mask;
    }
    this.visited += SWEEP_SLOTS;
    this.cursor = i;
  }

  /**
   * Empties slot i without breaking any probe chain (Knuth's algorithm R for linear probing): each entry
   * after it in the same run moves back into the hole unless its home slot lies cyclically in (hole, its slot].
   */
  private remove(i: number): void {
    const t = this.slots;
    const mask = this.mask;
    let hole = i;
    let j = i;
    let probes = 0;
    for (; probes < mask; probes++) {
      j = (j + 1) & mask;
      const b = j * STRIDE;
      if (t[b + 2] === 0) break;
      const home = t[b + 1]! & mask;
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (stays) continue;
      const h = hole * STRIDE;
      t[h] = t[b]!;
      t[h + 1] = t[b + 1]!;
      t[h + 2] = t[b + 2]!;
      hole = j;
    }
    this.visited += probes + 1;
    const h = hole * STRIDE;
    t[h] = 0;
    t[h + 1] = 0;
    t[h + 2] = 0;
    this.used--;
  }

  /** The table size for `n` live entries: a power of two at least twice n (half full at most). */
  private slotsFor(n: number): number {
    let slots = MIN_SLOTS;
    while (slots < 2 * n) slots *= 2;
    return slots;
  }

  /**
   * Starts moving into a table sized for the live entries (at most MAX_RESIZE times smaller). The bound on a
   * move's length keeps the new table below 3/4 until the move ends, so no resize starts during one; were
   * that ever wrong, the move in progress is finished first (correct, only not incremental).
   */
  private resize(): void {
    while (this.old !== null) this.moveSome(); // at most old/64 steps
    this.old = this.slots;
    this.oldMask = this.mask;
    this.oldLatest = this.latest;
    this.moved = 0;
    this.replaceTable(Math.max(this.slotsFor(this.live), this.capacity / MAX_RESIZE));
  }

  /**
   * An empty table of `slots` slots in place of the current one. The one pause left, once per resize: Node
   * may run a full garbage collection when a large buffer is allocated (external memory grew), 1-7 ms
   * measured for 48-192 MiB on a shared machine; the zeroed pages themselves come lazily from the kernel.
   */
  private replaceTable(slots: number): void {
    this.slots = new Uint32Array(slots * STRIDE);
    this.mask = slots - 1;
    this.used = 0;
    this.cursor = 0;
  }

  /**
   * Moves the live entries among the next old slots into the table (MOVE_ENTRIES, MOVE_SCAN); drops the old
   * table after its last slot. The old slots are left as they are (frozen): lookups still walk their chains.
   */
  private moveSome(): void {
    const old = this.old!;
    const t = this.slots;
    const mask = this.mask;
    const horizon = this.horizon;
    const last = Math.min(this.moved + MOVE_SCAN, this.oldMask + 1);
    let entries = 0;
    let visited = 0;
    let i = this.moved;
    for (; i < last && entries < MOVE_ENTRIES; i++) {
      const b = i * STRIDE;
      const until = old[b + 2]!;
      if (until === 0 || until < horizon) continue;
      entries++;
      // The key is not live in the new table (see the header): its chain's first empty or expired slot.
      let j = old[b + 1]! & mask;
      for (let probes = 0; probes <= mask; probes++) {
        visited++;
        const u = t[j * STRIDE + 2]!;
        if (u === 0) {
          this.used++;
          break;
        }
        if (u < horizon) break;
        j = (j + 1) & mask;
      }
      const n = j * STRIDE;
      t[n] = old[b]!;
      t[n + 1] = old[b + 1]!;
      t[n + 2] = until;
    }
    this.visited += visited + (i - this.moved);
    this.moved = i;
    if (i > this.oldMask) this.old = null;
  }

  /**
   * The key's 64-bit fingerprint into h1/h2 (no allocation): cyrb53's two 32-bit lanes (a public-domain
   * string hash), seeded per process. The key is mostly an HMAC output, uniform already; the seeds stop
   * anyone from choosing keys that share a probe chain.
   */
  private fingerprint(key: string): void {
    let h1 = 0xdeadbeef ^ this.seed1;
    let h2 = 0x41c6ce57 ^ this.seed2;
    for (let k = 0; k < key.length; k++) {
      const c = key.charCodeAt(k);
      h1 = Math.imul(h1 ^ c, 2654435761);
      h2 = Math.imul(h2 ^ c, 1597334677);
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
    h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
    h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    this.h1 = h1 >>> 0;
    this.h2 = h2 >>> 0;
  }
}
