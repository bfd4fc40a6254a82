// The trust bundle as the CA service publishes it: D/bundle.crt, polled because the CLI (`ca rotate`) may
// replace it (atomically, by rename, which defeats plain file watches) while the server runs. Subscribers
// (WatchTrustBundle streams, the TLS client-certificate verifier) are told of every change.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { decodePem } from '../../pki/pem.js';
import type { TrustBundleMessage } from './proto.js';

export const DEFAULT_BUNDLE_POLL_MS = 1000;

export function trustBundleMessage(pem: string): TrustBundleMessage {
  const roots = decodePem(pem).filter((b) => b.label === 'CERTIFICATE').map((b) => b.der);
  return { roots, pem, sha256: createHash('sha256').update(pem).digest('hex') };
}

export class TrustBundleWatch {
  private currentMessage: TrustBundleMessage;
  private readonly listeners = new Set<(bundle: TrustBundleMessage) => void>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly file: string, private readonly logger: Logger, pollMs = DEFAULT_BUNDLE_POLL_MS) {
    this.currentMessage = trustBundleMessage(readFileSync(file, 'utf8'));
    this.timer = setInterval(() => this.poll(), pollMs);
    this.timer.unref();
  }

  get current(): TrustBundleMessage {
    return this.currentMessage;
  }

  /** Calls `listener` on every change; returns the function that unsubscribes. */
  subscribe(listener: (bundle: TrustBundleMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Re-reads the file now (also called by the poll timer). */
  poll(): void {
    let next: TrustBundleMessage;
    try {
      const pem = readFileSync(this.file, 'utf8');
      if (pem === this.currentMessage.pem) return;
      next = trustBundleMessage(pem);
      if (next.roots.length === 0) throw new Error('it holds no certificate');
    } catch (err) {
      this.logger.warn({ event: 'trust_bundle', file: this.file, reason: (err as Error).message }, 'cannot read the trust bundle; keeping the previous one');
      return;
    }
    this.currentMessage = next;
    this.logger.info({ event: 'trust_bundle', sha256: next.sha256, roots: next.roots.length }, 'trust bundle changed');
    for (const l of this.listeners) l(next);
  }

  close(): void {
    clearInterval(this.timer);
    this.listeners.clear();
  }
}
