// How long each open inbound connection may live: no longer than its peer's certificate (notAfter),
// than limits.maxConnectionAge, and than the trust it was accepted under (a new crl.pem revoking the
// peer, a ca.crt no longer trusting its issuer). One timer, set to the earliest deadline, serves every
// connection; a trust change re-judges them all at once. When a connection's time is up, `end` is called
// once with the reason, and the owner ends it gracefully (GOAWAY, Connection: close, TCP close).
import type { TrustView } from '../tls/chain.js';
import { fallenCredential, type Fallen } from '../tls/standing.js';

export type EndReason = Fallen | 'max_age';

interface Entry {
  /** ms since the epoch at which the connection must end. */
  deadline: number;
  /** What reaching `deadline` means. */
  dueTo: EndReason;
  ended: boolean;
}

/** setTimeout takes at most 2^31-1 ms (a larger delay fires after 1 ms): longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * Sweeps run at most this often: each looks at every connection, so with maxConnectionAge (a deadline
 * per connection) sweeping at every deadline would cost O(connections²). A connection ends at most this
 * much after its deadline.
 */
const MIN_SWEEP_GAP_MS = 1000;

/** The deadline of a connection accepted at `acceptedAt` with a certificate valid until `notAfter`. */
export function connectionDeadline(acceptedAt: number, notAfter: number, maxAgeMs: number): { deadline: number; dueTo: EndReason } {
  const aged = maxAgeMs > 0 ? acceptedAt + maxAgeMs : Infinity;
  return aged < notAfter ? { deadline: aged, dueTo: 'max_age' } : { deadline: notAfter, dueTo: 'expired' };
}

export class ConnectionLifetimes<S extends object> {
  private readonly entries = new Map<S, Entry>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;

  constructor(
    private readonly maxAgeMs: number,
    /** Called once per connection whose time is up. */
    private readonly end: (socket: S, reason: EndReason) => void,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Starts tracking a connection whose peer certificate is valid until `notAfter`. */
  add(socket: S, notAfter: Date): void {
    const now = this.clock();
    const { deadline, dueTo } = connectionDeadline(now, notAfter.getTime(), this.maxAgeMs);
    this.entries.set(socket, { deadline, dueTo, ended: false });
    if (deadline < this.timerAt) this.schedule(deadline);
  }

  delete(socket: S): void {
    this.entries.delete(socket);
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * The trust changed: ends every connection whose chain (from `chainOf`, leaf first) no longer stands.
   * Returns how many were ended.
   */
  review(trust: TrustView, chainOf: (socket: S) => Buffer[]): number {
    const now = new Date(this.clock());
    let ended = 0;
    for (const [socket, entry] of this.entries) {
      if (entry.ended) continue;
      const fallen = fallenCredential(chainOf(socket), trust, now);
      if (fallen === undefined) continue;
      this.finish(socket, entry, fallen);
      ended++;
    }
    return ended;
  }

  /** Stops the timer (shutdown). */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private finish(socket: S, entry: Entry, reason: EndReason): void {
    entry.ended = true;
    this.end(socket, reason);
  }

  private schedule(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    const delay = Math.min(Math.max(MIN_SWEEP_GAP_MS, at - this.clock()), MAX_TIMER_MS);
    this.timer = setTimeout(() => this.sweep(), delay);
    this.timer.unref();
  }

  private sweep(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.clock();
    let next = Infinity;
    for (const [socket, entry] of this.entries) {
      if (entry.ended) continue;
      if (entry.deadline <= now) this.finish(socket, entry, entry.dueTo);
      else if (entry.deadline < next) next = entry.deadline;
    }
    if (next !== Infinity) this.schedule(next);
  }
}
