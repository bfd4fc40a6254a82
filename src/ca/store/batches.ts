// One batching queue for the store's hot statements (issue 12 item 7): requests that arrive together go to
// the database as one statement. Used for the certificates issued (group commit: one transaction, and on
// PostgreSQL one round trip and one WAL flush, per batch) and for the renewal lookups (one grouped read).
// A batch starts at the end of the current turn of the event loop (setImmediate, not a timer), so the
// requests of one turn go together even on SQLite, whose synchronous statements would otherwise always
// find the queue empty; requests that arrive while a batch runs go into the next one. Every caller's
// promise settles with its own result once its batch is done: a certificate is never returned before its
// row is committed, and a failed batch fails every caller in it and no other.
import type { CaStore, CertificateInsert, CertificateRow } from './store.js';

/** The most items in one batch: bounds a statement's size and how long a batch holds its locks. */
export const MAX_BATCH = 256;

interface Waiting<I, O> { item: I; resolve: (result: O) => void; reject: (err: unknown) => void }

export class BatchQueue<I, O> {
  private queue: Waiting<I, O>[] = [];
  private running = false;

  /** `run` gets the items of one batch and returns one result per item, in the same order. */
  constructor(private readonly run: (items: I[]) => Promise<O[]>, private readonly max = MAX_BATCH) {}

  push(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.running) {
        this.running = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.max);
        try {
          const results = await this.run(batch.map((w) => w.item));
          if (results.length !== batch.length) throw new Error(`a batch of ${batch.length} returned ${results.length} results`);
          batch.forEach((w, i) => w.resolve(results[i]!));
        } catch (err) {
          for (const w of batch) w.reject(err);
        }
      }
    } finally {
      this.running = false;
    }
  }
}

/** Group commit of issued certificates: CaStore.insertCertificates for each batch, all rows or none. */
export class CertificateRecorder {
  private readonly batches: BatchQueue<CertificateInsert, boolean>;

  constructor(store: CaStore) {
    this.batches = new BatchQueue((rows) => store.insertCertificates(rows));
  }

  /** Records one certificate; true when written, false when its serial was already taken (nothing written). */
  insert(row: CertificateInsert): Promise<boolean> {
    return this.batches.push(row);
  }
}

/** Issued certificates looked up by serial, the lookups of one batch in one read (CaStore.certificatesBySerial). */
export class CertificateLookup {
  private readonly batches: BatchQueue<string, CertificateRow | undefined>;

  constructor(store: CaStore) {
    this.batches = new BatchQueue(async (serials) => {
      const rows = await store.certificatesBySerial([...new Set(serials)]);
      return serials.map((s) => rows.get(s));
    });
  }

  certificate(serialHex: string): Promise<CertificateRow | undefined> {
    return this.batches.push(serialHex);
  }
}
