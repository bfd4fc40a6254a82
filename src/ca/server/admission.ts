// Admission of Sign calls (issue 12 item 7): at most `concurrency` in progress, the others wait their turn in
// arrival order, and at most `queueLimit` wait. Without a bound every call that arrives starts at once: they
// interleave at each of their steps (the renewal lookup, the CSR check and the signature on libuv's thread
// pool, the group commit), each takes about as long as all of them together, and an overloaded CA holds ever
// more calls until their deadlines pass, issuing certificates that reach nobody. With the bound, waiting
// calls cost a closure each, they start in order, one whose caller gave up is dropped before any work
// (server.ts), and beyond the queue a call is refused at once (RESOURCE_EXHAUSTED: the agent backs off and
// tries another replica).
// The default concurrency is above the 50 clients of bench/sign-rpc.ts on purpose: there, on 2 shared
// cores, 8, 16 and 32 showed no p99 gain within the machine's noise, and 8 cost more server CPU per Sign,
// most on PostgreSQL (smaller group commits: more round trips and WAL flushes per certificate).

/** Sign calls in progress at once (`ca serve --sign-concurrency`). */
export const DEFAULT_SIGN_CONCURRENCY = 64;
/** Sign calls that may wait for their turn (`ca serve --sign-queue`); beyond it RESOURCE_EXHAUSTED. */
export const DEFAULT_SIGN_QUEUE = 1024;

/** The queue is full: the call is refused before any work (mapped to RESOURCE_EXHAUSTED). */
export class AdmissionRefusedError extends Error {
  constructor(readonly queueLimit: number) {
    super(`the CA is busy: ${queueLimit} Sign calls are already waiting; retry with backoff`);
    this.name = 'AdmissionRefusedError';
  }
}

/** What stands in the queue for a call that gave up while waiting (see enter's `signal`). */
const ABANDONED = (): void => undefined;

export class Admission {
  private active = 0;
  /** Waiting calls in arrival order; `head` is the next to go (an index, so taking one is O(1)). */
  private waiting: (() => void)[] = [];
  private head = 0;

  constructor(readonly concurrency: number, readonly queueLimit: number) {
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be an integer >= 1, not ${concurrency}`);
    if (!Number.isSafeInteger(queueLimit) || queueLimit < 0) throw new RangeError(`queueLimit must be an integer >= 0, not ${queueLimit}`);
  }

  /** Calls in progress. */
  get inProgress(): number {
    return this.active;
  }

  /** Places in `waiting` (from `head` on) of calls that gave up while they waited: skipped when their turn comes. */
  private abandoned = 0;

  /** Calls waiting for their turn. */
  get queued(): number {
    return this.waiting.length - this.head - this.abandoned;
  }

  /**
   * Resolves with a release function once the call may start: at once when fewer than `concurrency` are in
   * progress and nobody waits, else when every call that arrived before it has started. Rejects with
   * AdmissionRefusedError, at once, when `queueLimit` calls already wait. `release` must be called exactly
   * once when the call's work is done (further calls are ignored), successful or not. When `signal` aborts
   * while the call waits, it leaves the queue at once (its place no longer counts against `queueLimit`) and
   * the promise rejects with the signal's reason: a burst of callers that gave up cannot keep live calls out.
   */
  enter(signal?: AbortSignal): Promise<() => void> {
    if (this.active < this.concurrency && this.queued === 0) {
      this.active += 1;
      return Promise.resolve(this.releaser());
    }
    if (this.queued >= this.queueLimit) return Promise.reject(new AdmissionRefusedError(this.queueLimit));
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      // The slot is handed over by release(): `active` is not decremented and incremented in between, so
      // a call arriving meanwhile cannot take it ahead of the waiting ones.
      const turn = () => {
        signal?.removeEventListener('abort', leave);
        resolve(this.releaser());
      };
      const leave = () => {
        const at = this.waiting.indexOf(turn, this.head);
        if (at === -1) return; // its turn came first
        this.waiting[at] = ABANDONED;
        this.abandoned += 1;
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', leave, { once: true });
      this.waiting.push(turn);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      let next = this.waiting[this.head];
      while (next === ABANDONED) {
        this.waiting[this.head] = undefined as unknown as () => void;
        this.head += 1;
        this.abandoned -= 1;
        next = this.waiting[this.head];
      }
      if (next === undefined) {
        this.active -= 1;
        return;
      }
      this.waiting[this.head] = undefined as unknown as () => void;
      this.head += 1;
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting = this.waiting.slice(this.head);
        this.head = 0;
      }
      next();
    };
  }
}
