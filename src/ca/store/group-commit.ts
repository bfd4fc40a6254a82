// Group commit of issued certificates: inserts that arrive while one batch is being committed wait and go
// into the next batch, one statement for all of them (CaStore.insertCertificates). Under load (many Sign
// calls at once) that is one commit, and on PostgreSQL one round trip and one WAL flush, per batch instead
// of per certificate; a lone insert is
// committed at once, as before, so nothing waits for a timer. Each caller's promise settles only after its
// batch committed: a certificate is still never returned before its row is durable in the store, and a
// process killed mid-batch loses only certificates no caller received.
import type { CaStore, CertificateInsert } from './store.js';

/** The most rows in one transaction: bounds how long a batch holds its locks (and a SQLite write lock). */
const MAX_BATCH = 256;

interface Waiting { row: CertificateInsert; resolve: (inserted: boolean) => void; reject: (err: unknown) => void }

export class CertificateRecorder {
  private queue: Waiting[] = [];
  private committing = false;

  constructor(private readonly store: CaStore) {}

  /** Records one certificate; true when written, false when its serial was already taken (nothing written). */
  insert(row: CertificateInsert): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({ row, resolve, reject });
      if (!this.committing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.committing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, MAX_BATCH);
        try {
          const inserted = await this.store.insertCertificates(batch.map((w) => w.row));
          batch.forEach((w, i) => w.resolve(inserted[i]!));
        } catch (err) {
          // The whole batch rolled back: every caller in it gets the store's error (UNAVAILABLE), none a certificate.
          for (const w of batch) w.reject(err);
        }
      }
    } finally {
      this.committing = false;
    }
  }
}
