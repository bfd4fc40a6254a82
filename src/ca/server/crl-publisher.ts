// The CRL as `ca serve` publishes it (GetCrl, and pushed on WatchTrustBundle streams). Every replica keeps
// the store's current CRL in memory and learns of a new one from the store (PostgreSQL: LISTEN/NOTIFY plus
// polling; SQLite: polling), so a revocation made anywhere (another replica, `meshward cert revoke`) is
// served everywhere within one check. It also keeps the CRL from expiring when nothing is revoked: once
// 40% of a CRL's validity has passed (before half, so one missed check never lets it run out) a replica
// writes a fresh one; the store's advisory lock makes one replica the writer and the others read its CRL.
import type { Logger } from 'pino';
import type { Authority } from '../authority.js';
import { decodePem } from '../../pki/pem.js';
import type { StoredCrl } from '../store/store.js';
import type { CrlMessage } from './proto.js';

/** How often the store is read for a new or due CRL when no notification arrives (`ca serve --crl-check-interval`). */
export const DEFAULT_CRL_CHECK_MS = 5000;
/** A CRL is renewed once this fraction of its validity has passed. */
export const CRL_RENEW_FRACTION = 0.4;

/** When a CRL should be replaced by a fresh one even though nothing was revoked. */
export function crlRenewalTime(crl: Pick<StoredCrl, 'writtenAt' | 'nextUpdate'>): Date {
  const written = crl.writtenAt.getTime();
  return new Date(written + (crl.nextUpdate.getTime() - written) * CRL_RENEW_FRACTION);
}

/** What a stored CRL needs: rebuilt when a revocation is missing from it, renewed when due. */
export function crlNeedsWrite(crl: StoredCrl | undefined, revocations: bigint, now: Date): 'missing' | 'stale' | 'due' | undefined {
  if (!crl) return 'missing';
  if (crl.revocations < revocations) return 'stale';
  if (now.getTime() >= crlRenewalTime(crl).getTime()) return 'due';
  return undefined;
}

export function crlMessage(crl: StoredCrl): CrlMessage {
  return {
    crls: decodePem(crl.pem).filter((b) => b.label === 'X509 CRL').map((b) => b.der),
    pem: crl.pem,
    crlNumber: Number(crl.crlNumber),
    thisUpdate: Math.floor(crl.thisUpdate.getTime() / 1000),
    nextUpdate: Math.floor(crl.nextUpdate.getTime() / 1000),
  };
}

export class CrlPublisher {
  private current: StoredCrl | undefined;
  private readonly listeners = new Set<(crl: StoredCrl) => void>();
  private readonly timer: NodeJS.Timeout;
  private readonly unwatch: () => void;
  private checking: Promise<void> | undefined;
  private checkAgain = false;
  private lastProblem: string | undefined;
  private closed = false;

  private constructor(private readonly authority: Authority, private readonly logger: Logger, checkMs: number) {
    this.timer = setInterval(() => void this.check(), checkMs);
    this.timer.unref();
    this.unwatch = authority.store.onCrlChange(() => void this.check(), checkMs);
  }

  /** Starts publishing; resolves after the first check (which writes a CRL when none is current). */
  static async start(authority: Authority, logger: Logger, checkMs = DEFAULT_CRL_CHECK_MS): Promise<CrlPublisher> {
    const publisher = new CrlPublisher(authority, logger, checkMs);
    await publisher.check();
    return publisher;
  }

  /** The CRL served now (undefined only while the store has been unreachable since the start). */
  get crl(): StoredCrl | undefined {
    return this.current;
  }

  /** Calls `listener` with every new CRL; returns the unsubscribe. */
  subscribe(listener: (crl: StoredCrl) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Reads the store's CRL, writes a new one when it is missing, stale or due, and tells subscribers of a change. */
  check(): Promise<void> {
    if (this.checking) {
      this.checkAgain = true;
      return this.checking;
    }
    this.checking = (async () => {
      do {
        this.checkAgain = false;
        await this.checkOnce();
      } while (this.checkAgain && !this.closed);
      this.checking = undefined;
    })();
    return this.checking;
  }

  private async checkOnce(): Promise<void> {
    const now = new Date();
    try {
      const store = this.authority.store;
      let crl = await store.currentCrl();
      if (crlNeedsWrite(crl, (await store.crlGenerations()).revocations, now)) {
        // Decided again under the writer lock: of the replicas that see it due, one writes, the others read.
        const w = await this.authority.renewCrl(now, (current, revocations) => crlNeedsWrite(current, revocations, now));
        if (w.written) this.logger.info({ event: 'crl_written', reason: w.reason, crlNumber: String(w.crl!.crlNumber), nextUpdate: w.crl!.nextUpdate.toISOString() }, 'CRL written');
        crl = w.crl ?? crl;
      }
      if (this.lastProblem !== undefined) this.logger.info({ event: 'crl_store' }, 'the store answers again; CRL checks resumed');
      this.lastProblem = undefined;
      if (crl && !this.closed && (!this.current || crl.generation !== this.current.generation)) {
        this.current = crl;
        for (const l of this.listeners) l(crl);
      }
    } catch (err) {
      const reason = (err as Error).message;
      if (reason !== this.lastProblem) {
        this.lastProblem = reason;
        this.logger.warn({ event: 'crl_store', reason }, 'cannot read or write the CRL; serving the last one');
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.unwatch();
    this.listeners.clear();
    await this.checking;
  }
}
